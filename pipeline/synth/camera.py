"""The virtual camera: pose -> plane-to-image homography, and image formation -> JPEG.

Geometry: a pinhole camera looks at the skin plane (card millimetres, z into the skin) with
its optical axis tilted from the skin normal by ``tilt_deg`` towards ``tilt_azimuth_deg``;
the in-plane rotation is a rotation of the image about the principal point, and the frame is
shifted so that the donor site and the sticker are fully inside it.

Radiometry, linear up to the sRGB encoding: reflectance x illuminant (CCT via
colour-science) -> partial white balance -> camera colour matrix -> exposure (metered on the
sticker's white, plus an exposure error) -> vignetting and uneven light -> defocus blur ->
sensor noise -> sRGB encoding -> JPEG (some files stored rotated with an EXIF Orientation).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from pipeline.synth.fields import apply_h, translation

if TYPE_CHECKING:
    from pipeline.synth.config import StudyConfig

__all__ = ["Capture", "sample_capture", "camera_homography", "local_px_per_mm",
           "illuminant_rgb", "develop", "encode_srgb", "to_stored", "write_jpeg",
           "WHITE_TARGET"]

#: Linear value of the sticker's white (brightest channel) at zero exposure error.
WHITE_TARGET = 0.62
_STICKER_WHITE = 0.85


@dataclass(frozen=True)
class Capture:
    """Everything about how one photo was taken (angles in degrees)."""

    homography: tuple[float, ...]  # plane (card mm) -> oriented image px, row-major 3x3
    tilt_deg: float
    tilt_azimuth_deg: float
    rotation_deg: float  # direction of the card's x axis in the image (clockwise from +x)
    focal_px: float
    distance_mm: float  # from the camera to the scene's centre, along the optical axis
    px_per_mm: float  # sqrt |det J| of plane -> image at the donor site's centre
    cct_k: float
    awb_strength: float
    colour_matrix: tuple[float, ...]
    exposure_ev: float
    exposure_gain: float
    vignetting: float
    light_gradient: tuple[float, float]
    specular_gain: float
    blur_sigma_px: float
    noise_sigma: float
    jpeg_quality: int
    exif_orientation: int  # 1 = stored as oriented; 3, 6 or 8 = stored rotated

    @property
    def h(self) -> np.ndarray:
        return np.array(self.homography, dtype=np.float64).reshape(3, 3)

    def to_dict(self) -> dict[str, object]:
        d = asdict(self)
        d["homography"] = self.h.tolist()
        d["colour_matrix"] = np.array(self.colour_matrix).reshape(3, 3).tolist()
        d["light_gradient"] = list(self.light_gradient)
        return d


def camera_homography(*, tilt_deg: float, azimuth_deg: float, focal_px: float,
                      distance_mm: float, target_xy: tuple[float, float],
                      principal_xy: tuple[float, float]) -> np.ndarray:
    """Plane -> image homography of a camera at ``distance_mm`` from ``target_xy``.

    Examples
    --------
    >>> h = camera_homography(tilt_deg=0, azimuth_deg=0, focal_px=1000, distance_mm=100,
    ...                       target_xy=(0, 0), principal_xy=(50, 40))
    >>> apply_h(h, [[1.0, 0.0]]).round(6).tolist()
    [[60.0, 40.0]]
    """
    th, ph = math.radians(tilt_deg), math.radians(azimuth_deg)
    axis = np.array([math.cos(ph), math.sin(ph), 0.0])
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    r_c2w = np.eye(3) + math.sin(th) * k + (1 - math.cos(th)) * (k @ k)  # Rodrigues
    centre = np.array([target_xy[0], target_xy[1], 0.0]) - distance_mm * r_c2w[:, 2]
    r = r_c2w.T
    kmat = np.array([[focal_px, 0, principal_xy[0]], [0, focal_px, principal_xy[1]], [0, 0, 1]])
    h = kmat @ np.column_stack([r[:, 0], r[:, 1], -r @ centre])
    return h / h[2, 2]


def local_px_per_mm(h: np.ndarray, xy: tuple[float, float] | np.ndarray) -> float:
    """sqrt |det J| of the plane -> image map at plane point ``xy`` (px per mm)."""
    x, y = float(xy[0]), float(xy[1])
    w = h[2, 0] * x + h[2, 1] * y + h[2, 2]
    u = (h[0, 0] * x + h[0, 1] * y + h[0, 2]) / w
    v = (h[1, 0] * x + h[1, 1] * y + h[1, 2]) / w
    jac = np.array([[h[0, 0] - u * h[2, 0], h[0, 1] - u * h[2, 1]],
                    [h[1, 0] - v * h[2, 0], h[1, 1] - v * h[2, 1]]]) / w
    return math.sqrt(abs(np.linalg.det(jac)))


def _rotation_about(cx: float, cy: float, deg: float) -> np.ndarray:
    c, s = math.cos(math.radians(deg)), math.sin(math.radians(deg))
    rot = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
    return translation(cx, cy) @ rot @ translation(-cx, -cy)


def _direction_deg(h: np.ndarray, xy: np.ndarray, vec: np.ndarray) -> float:
    a, b = apply_h(h, np.array([xy, np.asarray(xy) + vec]))
    return math.degrees(math.atan2(b[1] - a[1], b[0] - a[0])) % 360.0


def sample_capture(rng: np.random.Generator, cfg: StudyConfig, *, scene_pts: np.ndarray,
                   site_centre: np.ndarray, site_axis: np.ndarray,
                   card_centre: np.ndarray) -> Capture:
    """Draw a camera pose and settings that frame ``scene_pts`` (plane mm) fully.

    The photographer frames the scene to span 65-97 % of the usable frame (a wide shot,
    35-65 %, one time in seven); the scale at the site centre is then kept within
    ``cfg.px_per_mm`` (times ``cfg.scale``, but not below ``cfg.min_px_per_mm``) and lowered
    when the scene would not fit. Half of the photos are taken with the site's long axis roughly
    along the image's, the others at any rotation; the frame is then shifted at random within
    the room left (a shifted principal point).
    """
    width, height = cfg.width, cfg.height
    principal = ((width - 1) / 2, (height - 1) / 2)
    focal = max(width, height) / 2 / math.tan(math.radians(rng.uniform(60, 75)) / 2)
    tmax = cfg.tilt_max_deg
    if rng.uniform() < 0.5:
        tilt = rng.uniform(0, tmax)
    else:  # most photographers hold the phone nearly square to the skin
        tilt = min(abs(rng.normal(0, tmax / 2.5)), tmax)
    azimuth = rng.uniform(0, 360)
    lo, hi = cfg.px_per_mm
    # share of the usable frame the scene spans (before limits): mostly framed tightly,
    # sometimes a wide shot
    fill = rng.uniform(0.65, 0.97) if rng.uniform() < 0.85 else rng.uniform(0.35, 0.65)
    aligned = rng.uniform() < 0.5
    roll_free, roll_jitter, flip = rng.uniform(0, 360), rng.normal(0, 12), rng.choice([0.0, 180.0])
    margin = 0.03 * min(width, height)
    centre = (scene_pts.min(axis=0) + scene_pts.max(axis=0)) / 2

    def frame(d: float) -> tuple[np.ndarray, float, float]:
        h0 = camera_homography(tilt_deg=tilt, azimuth_deg=azimuth, focal_px=focal,
                               distance_mm=d, target_xy=tuple(centre), principal_xy=principal)
        roll = (flip + roll_jitter - _direction_deg(h0, site_centre, site_axis)) if aligned \
            else roll_free
        h1 = _rotation_about(*principal, roll) @ h0
        p = apply_h(h1, scene_pts)
        fit = max(np.ptp(p[:, 0]) / (width - 2 * margin), np.ptp(p[:, 1]) / (height - 2 * margin))
        return h1, fit, local_px_per_mm(h1, site_centre)

    dist = focal / (hi * cfg.scale)
    for _ in range(3):  # the scale that makes the scene fill the frame
        h1, fit, ppm = frame(dist)
        dist *= fit
    target = float(np.clip(ppm * fill, max(lo * cfg.scale, cfg.min_px_per_mm), hi * cfg.scale))
    for _ in range(20):
        h1, fit, ppm = frame(dist)
        factor = max(fit, ppm / target)
        if abs(factor - 1.0) < 1e-4:
            break
        dist *= factor
    h1, fit, ppm = frame(dist)
    while fit > 1.0:
        dist *= fit * 1.0005
        h1, fit, ppm = frame(dist)
    p = apply_h(h1, scene_pts)
    x0, y0 = p.min(axis=0)
    free_x = width - 2 * margin - np.ptp(p[:, 0])
    free_y = height - 2 * margin - np.ptp(p[:, 1])
    h = translation(margin + rng.uniform(0, max(free_x, 0)) - x0,
                    margin + rng.uniform(0, max(free_y, 0)) - y0) @ h1
    h = h / h[2, 2]

    # radiometry
    cct = rng.uniform(*cfg.cct_k)
    sd = cfg.colour_matrix_sd
    off = np.clip(rng.normal(0, sd, (3, 3)), -3 * sd, 3 * sd)
    np.fill_diagonal(off, 0.0)
    cmat = off + np.diag(1.0 - off.sum(axis=1))  # rows sum to 1: neutrals stay neutral
    ev_max = cfg.exposure_ev_max
    ev = float(np.clip(rng.normal(0, cfg.exposure_ev_sd), -ev_max, ev_max))
    vig = rng.uniform(*cfg.vignetting)
    grad = tuple(float(g) for g in rng.uniform(-0.15, 0.15, 2))
    awb = rng.uniform(*cfg.awb_strength)
    card_img = apply_h(h, card_centre[None])[0]
    light_at_card = float(_gain(vig, grad, width, height, card_img[0], card_img[1]))
    white = _colour_chain(cct, cmat, awb) @ np.full(3, _STICKER_WHITE)
    gain = WHITE_TARGET * 2.0 ** ev / (white.max() * light_at_card)
    blo, bhi = cfg.blur_sigma_px
    nlo, nhi = cfg.noise_sigma
    noise = 0.0
    if nhi > 0:
        noise = math.exp(rng.uniform(math.log(max(nlo, 1e-6)), math.log(nhi)))
    exif = 1
    if rng.uniform() < cfg.exif_fraction:
        exif = int(rng.choice([3, 6, 8], p=[0.2, 0.5, 0.3]))
    return Capture(
        homography=tuple(float(v) for v in h.ravel()), tilt_deg=float(tilt),
        tilt_azimuth_deg=float(azimuth),
        rotation_deg=_direction_deg(h, card_centre, np.array([1.0, 0.0])),
        focal_px=float(focal), distance_mm=float(dist),
        px_per_mm=local_px_per_mm(h, site_centre), cct_k=float(cct), awb_strength=float(awb),
        colour_matrix=tuple(float(v) for v in cmat.ravel()),
        exposure_ev=ev, exposure_gain=float(gain), vignetting=float(vig), light_gradient=grad,
        specular_gain=float(rng.uniform(0.3, 1.2)),
        blur_sigma_px=float((blo + (bhi - blo) * rng.uniform() ** 1.5) * cfg.scale),
        noise_sigma=float(noise),
        jpeg_quality=int(rng.integers(cfg.jpeg_quality[0], cfg.jpeg_quality[1] + 1)),
        exif_orientation=exif)


def illuminant_rgb(cct_k: float) -> np.ndarray:
    """Linear-sRGB colour of a Planckian illuminant (no adaptation), green = 1.

    Examples
    --------
    >>> rgb = illuminant_rgb(2700)
    >>> bool(rgb[0] > 1 > rgb[2])
    True
    """
    import colour

    xy = colour.temperature.CCT_to_xy(float(cct_k), method="Kang 2002")
    xyz = colour.xy_to_XYZ(xy)
    rgb = colour.XYZ_to_RGB(xyz, "sRGB", illuminant=None, chromatic_adaptation_transform=None,
                            apply_cctf_encoding=False)
    return np.asarray(rgb, dtype=np.float64) / rgb[1]


def _colour_chain(cct: float, cmat: np.ndarray, awb: float) -> np.ndarray:
    """Reflectance -> output RGB: colour matrix @ diag(white balance) @ diag(illuminant).

    The white balance removes the share ``awb`` of the illuminant's cast (in log terms);
    the colour matrix is the camera's residual colour error.
    """
    e = illuminant_rgb(cct)
    gains = e ** -awb
    gains /= gains[1]
    return cmat @ np.diag(gains * e)


def _gain(vig: float, grad: tuple[float, float], width: int, height: int, u, v):
    """Vignetting x uneven illumination at image position(s) (u, v)."""
    cx, cy = (width - 1) / 2, (height - 1) / 2
    rho2 = ((u - cx) ** 2 + (v - cy) ** 2) / (cx ** 2 + cy ** 2)
    return (1.0 - vig * rho2) * (1.0 + grad[0] * (u - cx) / width + grad[1] * (v - cy) / height)


def develop(scene_rgb: np.ndarray, cap: Capture, rng: np.random.Generator, *,
            strip: int = 128) -> np.ndarray:
    """Form the 8-bit sRGB photo from a linear reflectance image.

    Works through the image in strips of ``strip`` rows (with a margin for the blur), so the
    temporaries stay small; the result does not depend on ``strip``.
    """
    height, width = scene_rgb.shape[:2]
    cmat = _colour_chain(cap.cct_k, np.array(cap.colour_matrix).reshape(3, 3), cap.awb_strength)
    cmat = (cmat * cap.exposure_gain).astype(np.float32)
    # light fall-off is smooth: evaluate it on a coarse grid and interpolate
    gh, gw = height // 16 + 2, width // 16 + 2
    u = (np.arange(gw, dtype=np.float32) * 16 + 7.5)[None, :]
    v = (np.arange(gh, dtype=np.float32) * 16 + 7.5)[:, None]
    coarse_gain = _gain(cap.vignetting, cap.light_gradient, width, height, u, v)
    coarse_gain = coarse_gain.astype(np.float32)
    sigma_blur = cap.blur_sigma_px if cap.blur_sigma_px > 0.3 else 0.0
    pad = int(math.ceil(4 * sigma_blur)) + 1 if sigma_blur else 0
    # demosaiced-looking noise: drawn at half resolution and interpolated (x1.6 undoes the
    # interpolation's smoothing), scaled by the local signal (shot + read noise)
    hh, hw = (height + 1) // 2 + 1, (width + 1) // 2 + 1
    noise = rng.standard_normal((hh, hw, 3), dtype=np.float32) if cap.noise_sigma > 0 else None
    sx, sy = hw / width, hh / height
    out = np.empty((height, width, 3), np.uint8)
    for y0 in range(0, height, strip):
        y1 = min(y0 + strip, height)
        a0, a1 = max(y0 - pad, 0), min(y1 + pad, height)
        img = cv2.transform(scene_rgb[a0:a1], cmat)
        gain = cv2.warpAffine(coarse_gain, np.array([[1 / 16, 0, -7.5 / 16],
                                                     [0, 1 / 16, (a0 - 7.5) / 16]]),
                              (width, a1 - a0), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                              borderMode=cv2.BORDER_REPLICATE)
        img *= gain[..., None]
        if sigma_blur:
            img = cv2.GaussianBlur(img, (0, 0), sigma_blur)  # kernel radius 4 sigma <= pad
        img = img[y0 - a0:y1 - a0]
        if noise is not None:
            m = np.array([[sx, 0, 0.5 * sx - 0.5], [0, sy, (y0 + 0.5) * sy - 0.5]])
            n = cv2.warpAffine(noise, m, (width, y1 - y0),
                               flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                               borderMode=cv2.BORDER_REPLICATE)
            sigma = cv2.sqrt(np.maximum(img[..., 1], 0) * np.float32(0.75 / 0.18)
                             + np.float32(0.25))
            sigma *= np.float32(cap.noise_sigma * 1.6)
            n *= sigma[..., None]
            img += n
        out[y0:y1] = encode_srgb(img)
    return out


def encode_srgb(rgb_linear: np.ndarray) -> np.ndarray:
    """Clip to [0, 1] and apply the sRGB encoding; uint8 out (the input is clipped in place)."""
    np.clip(rgb_linear, 0.0, 1.0, out=rgb_linear)
    out = cv2.convertScaleAbs(cv2.pow(rgb_linear, 1 / 2.4), alpha=255 * 1.055, beta=-255 * 0.055)
    dark = cv2.compare(rgb_linear, 0.0031308, cv2.CMP_LT)  # the linear toe of the curve
    cv2.copyTo(cv2.convertScaleAbs(rgb_linear, alpha=12.92 * 255), dark, out)
    return out


def to_stored(oriented: np.ndarray, orientation: int) -> np.ndarray:
    """The pixels to store so that applying EXIF ``orientation`` gives ``oriented``."""
    k = {1: 0, 3: 2, 6: 1, 8: -1}[orientation]
    return np.ascontiguousarray(np.rot90(oriented, k=k)) if k else oriented


def write_jpeg(path: Path, oriented_rgb: np.ndarray, *, quality: int, orientation: int,
               software: str) -> None:
    """Write an oriented 8-bit RGB photo as JPEG, rotated + tagged when ``orientation != 1``."""
    from PIL import Image

    exif = Image.Exif()
    exif[0x0131] = software
    if orientation != 1:
        exif[0x0112] = orientation
    Image.fromarray(to_stored(oriented_rgb, orientation)).save(
        path, format="JPEG", quality=int(quality), exif=exif.tobytes())
