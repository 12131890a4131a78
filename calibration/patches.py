"""Sample the sticker's colour patches in a photo, robustly.

The inner part of each (rectangular) patch (``inner_fraction`` of its width and height)
is mapped into the photo through the homography and read at about the photo's own pixel
density (nearest pixel, so values are the camera's); clipped pixels (any channel at or above
``clip_level``) and specular pixels are rejected and the rest averaged with a trimmed mean,
in linear light. Glare only ever adds light, so the patch's level and noise are read from
the lower half of its luminance distribution (level = median, ``sigma = (p50 - p10) /
1.28``, exact for Gaussian noise, however correlated by demosaicing and JPEG) and samples
brighter than ``level + specular_sigma * sigma + 5 %`` are specular. A patch left with less
than a quarter of its samples is unusable (NaN).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from calibration.colour import srgb_to_linear
from calibration.geometry import PlaneGeometry
from calibration.sticker import StickerSpec

__all__ = ["PatchSamples", "sample_patches"]


@dataclass(frozen=True, eq=False)
class PatchSamples:
    """Robust colours of the sticker's patches in one photo.

    Attributes
    ----------
    rgb_linear : ndarray (n, 3)
        Trimmed-mean linear RGB of each patch (NaN when nothing usable was left).
    clipped_fraction, specular_fraction : ndarray (n,)
        Fraction of each patch's samples rejected as clipped / specular.
    floored_fraction : ndarray (n,)
        Fraction of samples with a channel at the floor (at or below ``floor_level``): the
        colour lies outside what the photo could encode (a strong cast); kept in the mean.
    boxes_px : ndarray (n, 4, 2)
        The sampled inner areas' corners in the photo (for debug pictures).
    n_samples : int
        Samples read per patch.
    """

    rgb_linear: np.ndarray
    clipped_fraction: np.ndarray
    specular_fraction: np.ndarray
    floored_fraction: np.ndarray
    boxes_px: np.ndarray
    n_samples: int


def sample_patches(image_rgb: np.ndarray, geometry: PlaneGeometry, sticker: StickerSpec, *,
                   inner_fraction: float = 0.6, clip_level: int = 250, floor_level: int = 2,
                   specular_sigma: float = 4.0, trim: float = 0.2,
                   max_samples: int = 48) -> PatchSamples:
    """Sample every patch's inner area robustly (see the module docstring).

    Parameters
    ----------
    image_rgb : ndarray (H, W, 3) uint8
        The photo the geometry belongs to.
    geometry : PlaneGeometry
    sticker : StickerSpec
    inner_fraction : float
        Width and height of the sampled rectangle relative to the patch's.
    clip_level : int
        A sample with any channel at or above this uint8 value is clipped.
    floor_level : int
        A sample with any channel at or below this uint8 value is floored.
    specular_sigma : float
        A sample brighter than the patch's level by this many noise sigmas (plus 5 %) is
        specular.
    trim : float
        Fraction trimmed from each end (per channel) before averaging.
    max_samples : int
        At most ``max_samples`` samples along each side of a patch.

    Returns
    -------
    PatchSamples

    Examples
    --------
    >>> from calibration.sticker import load_sticker
    >>> from calibration.synthetic import render_scene
    >>> spec = load_sticker()
    >>> scene = render_scene(spec, size=(640, 480), px_per_mm=5.0)
    >>> geo = PlaneGeometry(np.linalg.inv(scene.homography_plane_to_image), (480, 640))
    >>> s = sample_patches(scene.image_rgb, geo, spec)
    >>> bool(np.allclose(s.rgb_linear, np.clip(spec.reference_rgb_linear, 0, 1), atol=0.01))
    True
    """
    from scipy.stats import trim_mean

    if image_rgb.dtype != np.uint8 or image_rgb.ndim != 3:
        raise ValueError(f"image_rgb must be uint8 (H, W, 3), got {image_rgb.dtype} "
                         f"{image_rgb.shape}")
    h, w = image_rgb.shape[:2]
    n = len(sticker.patches)
    if n == 0:
        empty = np.zeros(0)
        return PatchSamples(np.zeros((0, 3)), empty, empty.copy(), empty.copy(),
                            np.zeros((0, 4, 2)), 0)
    w_px, h_px = [], []
    for p in sticker.patches:
        cx, cy = geometry.plane_to_image(np.array([p.centre_mm]))[0]
        mm_per_px = geometry.mm_per_px_at(cx, cy)
        w_px.append(inner_fraction * p.width_mm / mm_per_px)
        h_px.append(inner_fraction * p.height_mm / mm_per_px)
    kx = int(np.clip(np.ceil(max(w_px)), 4, max_samples))
    ky = int(np.clip(np.ceil(max(h_px)), 4, max_samples))
    ux = (np.arange(kx) + 0.5) / kx - 0.5  # -0.5..0.5
    uy = (np.arange(ky) + 0.5) / ky - 0.5
    rgb = np.full((n, 3), np.nan)
    clipped = np.zeros(n)
    floored = np.zeros(n)
    specular = np.zeros(n)
    boxes = np.zeros((n, 4, 2))
    for i, p in enumerate(sticker.patches):
        cxm, cym = p.centre_mm
        hx, hy = inner_fraction * p.width_mm / 2, inner_fraction * p.height_mm / 2
        gx, gy = np.meshgrid(cxm + 2 * hx * ux, cym + 2 * hy * uy)
        pts = geometry.plane_to_image(np.column_stack([gx.ravel(), gy.ravel()]))
        boxes[i] = geometry.plane_to_image(np.array(
            [[cxm - hx, cym - hy], [cxm + hx, cym - hy], [cxm + hx, cym + hy],
             [cxm - hx, cym + hy]]))
        xi = np.clip(np.rint(pts[:, 0]).astype(int), 0, w - 1)
        yi = np.clip(np.rint(pts[:, 1]).astype(int), 0, h - 1)
        vals = image_rgb[yi, xi]
        is_clipped = (vals >= clip_level).any(axis=1)
        lin = srgb_to_linear(vals).astype(np.float64)
        lum = lin @ np.array([0.2126, 0.7152, 0.0722])
        if (~is_clipped).sum() >= 4:
            p10, base = np.percentile(lum[~is_clipped], [10, 50])
            sigma = (base - p10) / 1.2816
            is_spec = ~is_clipped & (lum > base + specular_sigma * sigma + 0.05 * base)
        else:
            is_spec = np.zeros_like(is_clipped)
        clipped[i] = is_clipped.mean()
        floored[i] = (vals <= floor_level).any(axis=1).mean()
        specular[i] = is_spec.mean()
        good = ~is_clipped & ~is_spec
        if good.sum() >= max(4, 0.25 * len(good)):
            rgb[i] = trim_mean(lin[good], trim, axis=0)
    return PatchSamples(rgb, clipped, specular, floored, boxes, kx * ky)
