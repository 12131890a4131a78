"""Plane geometry: the photo <-> sticker-plane homography and what follows from it.

The *plane* is the sticker card's coordinate system in millimetres (origin at the card's
top-left corner, x right, y down). The sticker lies flat in the skin plane, so the donor site
lives in the same coordinates. Image coordinates are OpenCV's: pixel centres at integers.

Areas are measured in the plane, never with one px/mm factor: the image -> plane map
``(x, y) -> (X/W, Y/W)`` with ``[X, Y, W] = H [x, y, 1]`` has the Jacobian determinant
``det(H) / W**3`` (closed form), which is the area in mm² covered by a pixel at ``(x, y)``.

Camera tilt is the angle between the optical axis and the plane's normal. It comes from
decomposing ``H_plane->image ~ K [r1 r2 t]`` with ``K = diag(f, f, 1)`` about the image centre,
``r3 = r1 × r2`` and ``tilt = arccos |r3_z|``. The focal length ``f`` is by default an assumed
35 mm-equivalent focal length (a phone's main camera, 26 mm; pass the photo's EXIF value when
known). It can instead be estimated from the homography itself (Zhang's two orthogonality
constraints ``r1·r2 = 0`` and ``|r1| = |r2|`` solved for ``1/f²`` by least squares, falling
back to the assumed value when ill-conditioned), but that estimate is fragile: it needs a
centred principal point (a cropped or shifted frame breaks it) and a clearly tilted view. The
tilt is a QC value; areas never depend on it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from calibration.errors import HomographyError

__all__ = ["PlaneGeometry", "estimate_tilt", "DEFAULT_FOCAL_35MM"]

#: Assumed 35 mm-equivalent focal length (a phone's main camera) when the homography does
#: not determine the focal length.
DEFAULT_FOCAL_35MM = 26.0
_DIAGONAL_35MM = float(np.hypot(36.0, 24.0))


def _as_homography(h: np.ndarray, name: str) -> np.ndarray:
    h = np.asarray(h, dtype=np.float64)
    if h.shape != (3, 3) or not np.all(np.isfinite(h)):
        raise HomographyError(f"{name}: expected a finite 3x3 matrix, got shape {h.shape}")
    if abs(np.linalg.det(h)) < 1e-300 or np.linalg.cond(h) > 1e15:
        raise HomographyError(f"{name}: singular homography {h.tolist()}")
    return h


def _apply(h: np.ndarray, pts: np.ndarray) -> np.ndarray:
    pts = np.asarray(pts, dtype=np.float64).reshape(-1, 2)
    hom = pts @ h[:, :2].T + h[:, 2]
    return hom[:, :2] / hom[:, 2:3]


@dataclass(frozen=True, eq=False)
class PlaneGeometry:
    """The image -> plane homography of one photo, with measurements in the plane.

    Parameters
    ----------
    homography : ndarray (3, 3)
        Maps image pixel coordinates ``(x, y)`` (pixel centres at integers) to plane mm.
    image_shape : (int, int)
        ``(height, width)`` of the photo the homography refers to.

    Examples
    --------
    >>> g = PlaneGeometry(np.diag([0.1, 0.1, 1.0]), (300, 400))
    >>> round(g.mm_per_px_at(200, 150), 6), round(float(g.pixel_area_mm2().sum()), 6)
    (0.1, 1200.0)
    """

    homography: np.ndarray
    image_shape: tuple[int, int]
    plane_to_image_h: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        h = _as_homography(self.homography, "image->plane homography")
        h = h / np.linalg.norm(h)
        if len(self.image_shape) < 2 or min(self.image_shape[:2]) <= 0:
            raise ValueError(f"image_shape must be (height, width) > 0, got {self.image_shape!r}")
        inv = np.linalg.inv(h)
        h.setflags(write=False)
        inv.setflags(write=False)
        object.__setattr__(self, "homography", h)
        object.__setattr__(self, "image_shape", (int(self.image_shape[0]),
                                                 int(self.image_shape[1])))
        object.__setattr__(self, "plane_to_image_h", inv)

    # ----------------------------------------------------------------------- mapping
    def image_to_plane(self, points_px: np.ndarray) -> np.ndarray:
        """Map image points ``(n, 2)`` (x, y) px to plane mm ``(n, 2)``."""
        return _apply(self.homography, points_px)

    def plane_to_image(self, points_mm: np.ndarray) -> np.ndarray:
        """Map plane points ``(n, 2)`` mm to image px ``(n, 2)``."""
        return _apply(self.plane_to_image_h, points_mm)

    def area_scale(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """``|det J|`` of the image -> plane map at ``(x, y)``: mm² per px² there."""
        h = self.homography
        x = np.asarray(x, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64)
        w = h[2, 0] * x + h[2, 1] * y + h[2, 2]
        return np.abs(np.linalg.det(h) / w**3)

    def mm_per_px_at(self, x: float, y: float) -> float:
        """Local scale (mm per pixel, geometric mean of both directions) at image ``(x, y)``."""
        return float(np.sqrt(self.area_scale(np.float64(x), np.float64(y))))

    # ------------------------------------------------------------------------- areas
    def _resample(self, shape: tuple[int, ...] | None) -> tuple[int, int, float, float]:
        big_h, big_w = self.image_shape
        if shape is None:
            return big_h, big_w, 1.0, 1.0
        if len(shape) < 2 or shape[0] <= 0 or shape[1] <= 0:
            raise ValueError(f"shape must be (height, width) > 0, got {shape!r}")
        h, w = int(shape[0]), int(shape[1])
        return h, w, big_w / w, big_h / h

    def pixel_area_mm2(self, shape: tuple[int, ...] | None = None) -> np.ndarray:
        """Skin-plane area in mm² covered by each pixel of the photo resampled to ``shape``.

        Parameters
        ----------
        shape : (int, int), optional
            ``(height, width)`` of a resampled copy of the photo (pixel grids aligned at the
            outer edges, as ``cv2.resize`` does); default :attr:`image_shape`.

        Returns
        -------
        ndarray of float64, shape ``shape``
        """
        h, w, sx, sy = self._resample(shape)
        xs = (np.arange(w, dtype=np.float64) + 0.5) * sx - 0.5
        ys = (np.arange(h, dtype=np.float64) + 0.5) * sy - 0.5
        return self.area_scale(xs[None, :], ys[:, None]) * (sx * sy)

    def area_mm2(self, mask: np.ndarray) -> float:
        """Skin-plane area in mm² of a boolean mask (at :attr:`image_shape` or resampled).

        Examples
        --------
        >>> g = PlaneGeometry(np.diag([0.5, 0.5, 1.0]), (10, 10))
        >>> g.area_mm2(np.ones((5, 5), bool))   # half resolution: each pixel is 1 mm^2
        25.0
        """
        mask = np.asarray(mask)
        if mask.ndim != 2:
            raise ValueError(f"mask must be 2-D (height, width), got shape {mask.shape}")
        _, _, sx, sy = self._resample(mask.shape)
        ys, xs = np.nonzero(mask)
        if xs.size == 0:
            return 0.0
        xo = (xs + 0.5) * sx - 0.5
        yo = (ys + 0.5) * sy - 0.5
        return float(self.area_scale(xo, yo).sum() * (sx * sy))

    def tilt(self, *, focal_px: float | None = None, focal_35mm: float = DEFAULT_FOCAL_35MM,
             estimate_focal: bool = False) -> tuple[float, float, bool]:
        """Camera tilt; see :func:`estimate_tilt`."""
        return estimate_tilt(self.plane_to_image_h, self.image_shape, focal_px=focal_px,
                             focal_35mm=focal_35mm, estimate_focal=estimate_focal)


def estimate_tilt(h_plane_to_image: np.ndarray, image_shape: tuple[int, int], *,
                  focal_px: float | None = None, focal_35mm: float = DEFAULT_FOCAL_35MM,
                  estimate_focal: bool = False) -> tuple[float, float, bool]:
    """Angle between the optical axis and the plane's normal, from a homography.

    Parameters
    ----------
    h_plane_to_image : ndarray (3, 3)
        Plane (mm) -> image (px) homography.
    image_shape : (int, int)
        ``(height, width)``; the principal point is assumed at the image centre.
    focal_px : float, optional
        Known focal length in pixels; by default from ``focal_35mm`` (or estimated).
    focal_35mm : float
        Assumed 35 mm-equivalent focal length.
    estimate_focal : bool
        Estimate the focal length from the homography (see the module docstring), falling
        back to ``focal_35mm`` when ill-conditioned.

    Returns
    -------
    tilt_deg : float
    focal_px : float
        The focal length used.
    estimated : bool
        Whether ``focal_px`` was estimated from the homography.

    Examples
    --------
    >>> h = np.array([[10.0, 0, 100], [0, 10.0, 100], [0, 0, 1]])
    >>> round(estimate_tilt(h, (300, 400))[0], 6)
    0.0
    """
    hh, ww = image_shape[:2]
    cx, cy = (ww - 1) / 2.0, (hh - 1) / 2.0
    t = np.array([[1.0, 0, -cx], [0, 1.0, -cy], [0, 0, 1.0]])
    g = t @ np.asarray(h_plane_to_image, dtype=np.float64)
    g = g / np.linalg.norm(g[:, :2])
    diag = float(np.hypot(hh, ww))
    estimated = False
    if focal_px is None and estimate_focal:
        (h11, h12), (h21, h22), (h31, h32) = g[0, :2], g[1, :2], g[2, :2]
        # a_k * u + b_k = 0 with u = 1/f^2, in pixel units scaled by the diagonal.
        s = diag
        a = np.array([(h11 * h12 + h21 * h22), (h11**2 + h21**2 - h12**2 - h22**2)])
        b = np.array([h31 * h32, h31**2 - h32**2]) * s**2
        denom = float(a @ a)
        u = -float(a @ b) / denom if denom > 0 else -1.0
        # Reliable only when the view has real perspective: the homogeneous scale of the
        # image -> plane map must vary across the frame.
        hi = np.linalg.inv(g)
        corners = np.array([[-cx, -cy, 1.0], [cx, -cy, 1.0], [cx, cy, 1.0], [-cx, cy, 1.0]])
        w = corners @ hi[2]
        strength = float((w.max() - w.min()) / abs(w.mean())) if w.mean() != 0 else 0.0
        if u > 0 and strength > 0.03:
            f_est = s / np.sqrt(u)
            if 0.3 * diag <= f_est <= 5.0 * diag:
                focal_px, estimated = f_est, True
    if focal_px is None:
        focal_px = focal_35mm / _DIAGONAL_35MM * diag
    b = np.diag([1.0 / focal_px, 1.0 / focal_px, 1.0]) @ g
    r1 = b[:, 0] / np.linalg.norm(b[:, 0])
    r2 = b[:, 1] / np.linalg.norm(b[:, 1])
    r3 = np.cross(r1, r2)
    r3 /= np.linalg.norm(r3)
    return float(np.degrees(np.arccos(min(1.0, abs(r3[2]))))), float(focal_px), estimated
