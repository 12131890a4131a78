"""Small synthetic photos of a sticker on skin with a known camera and illuminant.

Used by the calibration tests and the calibration benchmark (the full synthetic study
generator lives in ``pipeline.synth``). A pinhole camera looks at the sticker plane; the
scene is rendered in linear light, multiplied by a colour matrix (illuminant and camera),
scaled by an exposure, optionally given glare, noise, then encoded as sRGB uint8.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import cv2
import numpy as np

from calibration.sticker import Marker, StickerSpec, marker_cells, render_sticker

__all__ = ["Scene", "camera_homography", "render_scene", "srgb_encode", "srgb_decode",
           "with_markers", "with_patch"]

#: Linear sRGB reflectance of the default skin background.
SKIN_RGB_LINEAR = (0.45, 0.28, 0.21)


def srgb_encode(rgb_linear: np.ndarray) -> np.ndarray:
    """IEC 61966-2-1 sRGB encoding of linear values (clipped to [0, 1])."""
    x = np.clip(np.asarray(rgb_linear, dtype=np.float64), 0.0, 1.0)
    return np.where(x <= 0.0031308, 12.92 * x, 1.055 * np.power(x, 1 / 2.4) - 0.055)


def srgb_decode(rgb_srgb: np.ndarray) -> np.ndarray:
    """Inverse of :func:`srgb_encode`."""
    x = np.asarray(rgb_srgb, dtype=np.float64)
    return np.where(x <= 0.04045, x / 12.92, np.power((x + 0.055) / 1.055, 2.4))


@dataclass(frozen=True, eq=False)
class Scene:
    """A rendered photo and its truth."""

    image_rgb: np.ndarray          # uint8 (H, W, 3) sRGB
    homography_plane_to_image: np.ndarray  # 3x3, card mm -> px (centres at integers)
    tilt_deg: float
    focal_px: float


def camera_homography(*, size: tuple[int, int], px_per_mm: float, tilt_deg: float = 0.0,
                      tilt_axis_deg: float = 0.0, rotation_deg: float = 0.0,
                      target_mm: tuple[float, float] = (35.0, 25.0),
                      target_px: tuple[float, float] | None = None,
                      focal_px: float | None = None) -> np.ndarray:
    """Plane (mm) -> image (px) homography of a pinhole camera.

    The camera's optical axis passes through plane point ``target_mm``; it is tilted by
    ``tilt_deg`` about an in-plane axis at ``tilt_axis_deg`` and rolled by ``rotation_deg``.
    At the target the scale is ``px_per_mm`` (across the tilt axis it is foreshortened).
    ``target_px`` shifts the whole picture so the target lands there (default: centre).
    """
    w, h = size
    # Default: a phone's main camera, 26 mm equivalent (as calibration.geometry assumes).
    f = float(focal_px) if focal_px is not None else 26.0 / 43.2666 * float(np.hypot(w, h))
    a = np.radians(tilt_axis_deg)
    axis = np.array([np.cos(a), np.sin(a), 0.0])
    t = np.radians(tilt_deg)
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    r_tilt = np.eye(3) + np.sin(t) * k + (1 - np.cos(t)) * (k @ k)  # Rodrigues
    r = np.radians(rotation_deg)
    r_roll = np.array([[np.cos(r), -np.sin(r), 0], [np.sin(r), np.cos(r), 0], [0, 0, 1.0]])
    rot = r_roll @ r_tilt.T  # world -> camera
    dist = f / px_per_mm
    target = np.array([target_mm[0], target_mm[1], 0.0])
    centre = target - dist * (rot.T @ np.array([0.0, 0.0, 1.0]))
    tvec = -rot @ centre
    cx, cy = (w - 1) / 2.0, (h - 1) / 2.0
    kmat = np.array([[f, 0, cx], [0, f, cy], [0, 0, 1.0]])
    hom = kmat @ np.column_stack([rot[:, 0], rot[:, 1], tvec])
    if target_px is not None:
        shift = np.array([[1, 0, target_px[0] - cx], [0, 1, target_px[1] - cy], [0, 0, 1.0]])
        hom = shift @ hom
    return hom / hom[2, 2]


def render_scene(sticker: StickerSpec, *, size: tuple[int, int] = (800, 600),
                 px_per_mm: float = 6.0, tilt_deg: float = 0.0, tilt_axis_deg: float = 0.0,
                 rotation_deg: float = 0.0, target_mm: tuple[float, float] | None = None,
                 target_px: tuple[float, float] | None = None, focal_px: float | None = None,
                 colour_matrix: np.ndarray | None = None, exposure_ev: float = 0.0,
                 glare_mm: tuple[float, float, float] | None = None, glare_gain: float = 3.0,
                 noise_sigma: float = 0.0, blur_sigma: float = 0.0,
                 render_spec: StickerSpec | None = None,
                 background_rgb_linear: tuple[float, float, float] = SKIN_RGB_LINEAR,
                 extra_markers: tuple[Marker, ...] = (), seed: int = 0) -> Scene:
    """Render a photo of ``sticker`` on skin.

    Parameters
    ----------
    sticker : StickerSpec
        The sticker drawn (``render_spec`` overrides what is drawn, e.g. a damaged copy).
    size : (width, height)
    px_per_mm, tilt_deg, tilt_axis_deg, rotation_deg, target_mm, target_px, focal_px
        Camera, see :func:`camera_homography` (``target_mm`` defaults to the card centre).
    colour_matrix : ndarray (3, 3), optional
        Applied to linear RGB (illuminant and camera response); identity by default.
    exposure_ev : float
        Exposure, in stops.
    glare_mm : (x, y, radius), optional
        A specular highlight centred at plane (x, y) mm with that radius (mm).
    glare_gain : float
        Peak added linear intensity of the highlight.
    noise_sigma : float
        Gaussian noise added to the sRGB values (0..1 scale).
    blur_sigma : float
        Gaussian blur (px) of the optics, applied in linear light.
    extra_markers : tuple of Marker
        Markers of the sticker's dictionary drawn on white labels (one cell of margin) in
        the sticker's plane, anywhere (e.g. beside the card: a stray marker); at
        ``rotation_deg``.
    seed : int

    Returns
    -------
    Scene

    Examples
    --------
    >>> from calibration.sticker import load_sticker
    >>> render_scene(load_sticker(), size=(320, 240), px_per_mm=3).image_rgb.shape
    (240, 320, 3)
    """
    w, h = size
    drawn = render_spec if render_spec is not None else sticker
    if target_mm is None:
        target_mm = (sticker.card_width_mm / 2, sticker.card_height_mm / 2)
    hom = camera_homography(size=size, px_per_mm=px_per_mm, tilt_deg=tilt_deg,
                            tilt_axis_deg=tilt_axis_deg, rotation_deg=rotation_deg,
                            target_mm=target_mm, target_px=target_px, focal_px=focal_px)
    # An integer resolution keeps whole-millimetre positions on exact pixel edges.
    s = float(np.ceil(max(4.0, 2.0 * px_per_mm / max(np.cos(np.radians(tilt_deg)), 0.3))))
    card = render_sticker(drawn, px_per_mm=s)
    # Band-limit before resampling (a camera integrates over its pixels): about 0.5 px of
    # the photo, so straight edges are not quantized to the pixel grid.
    card = cv2.GaussianBlur(card, (0, 0), 0.5 * s / px_per_mm)
    # Render pixel index j has its centre at card x = (j + 0.5) / s.
    to_render = np.array([[s, 0, -0.5], [0, s, -0.5], [0, 0, 1.0]])
    warp = hom @ np.linalg.inv(to_render)
    sticker_img = cv2.warpPerspective(card, warp, (w, h), flags=cv2.INTER_LINEAR,
                                      borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    alpha = cv2.warpPerspective(np.ones(card.shape[:2], np.float32), warp, (w, h),
                                flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                                borderValue=0)[..., None]
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    shade = 1.0 + 0.08 * np.sin(xx / 37.0) * np.cos(yy / 53.0)
    skin = np.asarray(background_rgb_linear, np.float32)[None, None, :] * shade[..., None]
    linear = alpha * sticker_img + (1 - alpha) * skin
    for m in extra_markers:
        linear = _paste_marker(linear, drawn, m, hom, s, px_per_mm)
    if glare_mm is not None:
        gx, gy, gr = glare_mm
        plane_to_px = hom
        c = plane_to_px @ np.array([gx, gy, 1.0])
        c = c[:2] / c[2]
        r_px = gr * px_per_mm
        blob = np.exp(-((xx - c[0]) ** 2 + (yy - c[1]) ** 2) / (2 * (r_px / 2) ** 2))
        linear = linear + glare_gain * blob[..., None]
    m = np.eye(3) if colour_matrix is None else np.asarray(colour_matrix, np.float64)
    linear = (linear.reshape(-1, 3) @ m.T.astype(np.float32)).reshape(h, w, 3)
    linear = linear * np.float32(2.0**exposure_ev)
    if blur_sigma > 0:
        linear = cv2.GaussianBlur(linear, (0, 0), blur_sigma)
    srgb = srgb_encode(linear)
    if noise_sigma > 0:
        srgb = srgb + rng.normal(0.0, noise_sigma, srgb.shape)
    img = np.clip(np.round(srgb * 255.0), 0, 255).astype(np.uint8)
    hf = float(26.0 / 43.2666 * np.hypot(w, h)) if focal_px is None else float(focal_px)
    return Scene(img, hom, float(tilt_deg), hf)


def _paste_marker(linear: np.ndarray, spec: StickerSpec, marker: Marker, hom: np.ndarray,
                  s: float, px_per_mm: float) -> np.ndarray:
    """Composite a marker on a white label (one cell of margin) at its plane position."""
    h, w = linear.shape[:2]
    cells = marker_cells(spec, marker)
    n = cells.shape[0]
    cell_px = int(np.ceil(marker.size_mm / n * s))
    label = np.pad(np.where(cells, 0.03, 0.85).astype(np.float32), 1, constant_values=0.85)
    label = np.repeat(np.repeat(label, cell_px, axis=0), cell_px, axis=1)
    label = cv2.GaussianBlur(np.dstack([label] * 3), (0, 0), 0.5 * s / px_per_mm)
    k = cell_px / (marker.size_mm / n)  # label px per mm
    margin = marker.size_mm / n
    to_label = np.array([[k, 0, -k * (marker.x_mm - margin) - 0.5],
                         [0, k, -k * (marker.y_mm - margin) - 0.5], [0, 0, 1.0]])
    warp = hom @ np.linalg.inv(to_label)
    img = cv2.warpPerspective(label, warp, (w, h), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    alpha = cv2.warpPerspective(np.ones(label.shape[:2], np.float32), warp, (w, h),
                                flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                                borderValue=0)[..., None]
    return alpha * img + (1 - alpha) * linear


def with_markers(spec: StickerSpec, markers: tuple[Marker, ...]) -> StickerSpec:
    """A copy of ``spec`` drawn with other markers (no validation: draws bad stickers)."""
    return dataclasses.replace(spec, markers=tuple(markers))


def with_patch(spec: StickerSpec, index: int, lab_d50: tuple[float, float, float]
               ) -> StickerSpec:
    """A copy of ``spec`` whose patch ``index`` is printed in another colour (a faded patch)."""
    patches = list(spec.patches)
    p = patches[index]
    patches[index] = dataclasses.replace(p, lab_d50=tuple(lab_d50), reference=None)
    return dataclasses.replace(spec, patches=tuple(patches))
