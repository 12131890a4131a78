"""Compose one photo of appearance model B: B's skin and tissue, the shared drape and sticker.

The study's geometry (visit, sticker placement, camera, homographies), the drape and the
sticker are the shared code of :mod:`pipeline.synth.scene`; the label mask is made exactly
as there (threshold of the bilinearly sampled signed distance and healing day), so the
truth of a B photo means what it means for an A photo.
"""

from __future__ import annotations

import cv2
import numpy as np

from calibration.sticker import StickerSpec
from pipeline.synth.appearance_b import LayersB, PaletteB, shade_tissue_b
from pipeline.synth.camera import Capture
from pipeline.synth.fields import apply_h, translation, warp
from pipeline.synth.scene import Visit, _apply_drape, _bbox_corners, _box, _draw_sticker
from pipeline.synth.skin_b import SkinB, draw_hairs_b, shade_skin_b
from pipeline.synth.tissue import SiteModel

__all__ = ["render_scene_b"]

_GLINT = 1.1  # neutral reflectance of a full specular glint
_ROWS = 192  # rows of the site shaded at a time


def render_scene_b(*, site: SiteModel, skin: SkinB, palette: PaletteB, layers: LayersB,
                   visit: Visit, cap: Capture, spec: StickerSpec, width: int, height: int,
                   rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Linear reflectance (height, width, 3) float32 and label mask (height, width) uint8."""
    img_from_plane = cap.h
    img_from_site = img_from_plane @ np.linalg.inv(visit.site_from_plane_h)
    rgb = _background(skin, site, visit, img_from_site, width, height, cap.px_per_mm, rng)
    labels = np.zeros((height, width), np.uint8)
    ppm = cap.px_per_mm
    tight = _box(apply_h(img_from_site, _bbox_corners(site.bbox_mm, 1.0 + 1.0 / ppm)),
                 width, height)
    if tight is not None:
        x0, y0, x1, y1 = tight
        for ya in range(y0, y1, _ROWS):
            _shade_rows(rgb, labels, (x0, ya, x1, min(ya + _ROWS, y1)), site, palette, layers,
                        img_from_site, cap, visit.day)
    _draw_sticker(rgb, spec, img_from_plane, rng)
    return rgb, labels


def _shade_rows(rgb: np.ndarray, labels: np.ndarray, box: tuple[int, int, int, int],
                site: SiteModel, palette: PaletteB, layers: LayersB,
                img_from_site: np.ndarray, cap: Capture, day: float) -> None:
    x0, y0, x1, y1 = box
    both = warp(site.sdf_t, img_from_site @ site.site_from_grid, box)
    sdf, t_days = both[..., 0], both[..., 1]
    labels[y0:y1, x0:x1] = np.where(sdf < 0, np.where(t_days <= day, 1, 2), 0)
    soft_mm = max(0.8 / cap.px_per_mm, 0.2)
    alpha = np.clip(0.5 - sdf / np.float32(soft_mm), 0, 1)
    if not alpha.any():
        return
    m = img_from_site @ layers.site_from_grid
    tissue, spec = shade_tissue_b(t_days, warp(layers.bed, m, box), warp(layers.cover, m, box),
                                  warp(layers.surface, m, box), palette, day)
    # the cut wall: a dark band just inside the margin, a faint lip just outside
    wall = np.float32(0.4) * np.exp(-((sdf + 0.25) / 0.35) ** 2) * (t_days > day)
    tissue *= (1 - wall)[..., None]
    sub = rgb[y0:y1, x0:x1]
    lip = np.float32(0.08) * np.exp(-((sdf - 0.6) / 0.5) ** 2)
    sub *= (1 - lip)[..., None]
    sub += (tissue - sub) * alpha[..., None]
    sub += (np.float32(_GLINT * cap.specular_gain) * spec * alpha)[..., None]


def _background(skin: SkinB, site: SiteModel, visit: Visit, img_from_site: np.ndarray,
                width: int, height: int, ppm: float, rng: np.random.Generator) -> np.ndarray:
    """Skin, hairs, marks and drape at half resolution, upsampled."""
    hw, hh = (width + 1) // 2, (height + 1) // 2
    sx, sy = hw / width, hh / height
    half_from_full = translation(-0.5, -0.5) @ np.diag([sx, sy, 1.0]) @ translation(0.5, 0.5)
    h_half = half_from_full @ img_from_site
    rgb = shade_skin_b(skin, site, h_half, hw, hh, visit.day, rng)
    draw_hairs_b(rgb, skin, h_half, ppm * sx)
    if visit.drape is not None:
        _apply_drape(rgb, visit.drape, h_half, rng)
    return cv2.resize(rgb, (width, height), interpolation=cv2.INTER_LINEAR)
