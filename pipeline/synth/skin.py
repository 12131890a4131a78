"""Intact skin around the donor site: Fitzpatrick I-VI colour, texture, freckles and hair.

A subject's skin is fixed in the site frame (it is the same skin at every visit): smooth
colour variation on a coarse grid; mottling, freckles and naevi, and micro-relief (pores, the
network of skin lines) on periodic tiles; hairs as polylines that are projected and drawn at
the photo's own resolution. Reflectances are linear RGB.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from pipeline.synth.fields import (
    apply_h,
    periodic_noise,
    scaling,
    smooth_noise,
    soft_threshold,
    srgb_to_linear,
    translation,
    warp,
)
from pipeline.synth.tissue import CELL_MM, SiteModel

__all__ = ["SkinModel", "build_skin", "shade_skin", "FITZPATRICK_SRGB"]

#: Typical 8-bit sRGB colour of each Fitzpatrick type's skin under neutral light.
FITZPATRICK_SRGB: dict[int, tuple[int, int, int]] = {
    1: (238, 206, 188), 2: (226, 184, 154), 3: (200, 152, 114),
    4: (160, 112, 78), 5: (112, 74, 50), 6: (66, 44, 33),
}
LOW_CELL_MM, FINE_CELL_MM, COARSE_CELL_MM = 4.0, 0.1, 0.4
TILE = 1024
EXTENT_MM = 500.0  # hairs are placed within +-EXTENT_MM of the site
RED_DIRECTION = np.array([0.12, -0.9, -0.7], dtype=np.float32)  # redness: less green and blue


@dataclass(frozen=True, eq=False)
class SkinModel:
    """One subject's skin (arrays float32, positions in site-frame mm)."""

    skin_type: int
    base_rgb: np.ndarray  # (3,)
    low: np.ndarray  # (h, w, 2): brightness, redness on a LOW_CELL_MM grid
    low_origin_mm: tuple[float, float]
    fine: np.ndarray  # (TILE, TILE, 2): pores, skin lines (period TILE*FINE_CELL_MM)
    coarse: np.ndarray  # (TILE, TILE, 3): mottle, redness mottle, freckle pigment
    texture_amp: float
    sheen: float  # neutral reflectance of the skin's oily sheen where it catches the light
    freckle_tint: np.ndarray  # (3,) multiplicative colour of a full-strength freckle
    hairs: np.ndarray  # (m, 4, 2) polylines
    hair_rgb: np.ndarray  # (3,)
    hair_width_mm: float
    hair_opacity: float


def build_skin(rng: np.random.Generator, skin_type: int, site: SiteModel) -> SkinModel:
    """Draw a subject's skin of Fitzpatrick type ``skin_type`` (1-6) around ``site``.

    Examples
    --------
    >>> from pipeline.synth.tissue import build_site
    >>> site = build_site(np.random.default_rng(0), width_mm=40, length_mm=80, t95_days=10)
    >>> skin = build_skin(np.random.default_rng(1), 3, site)
    >>> skin.base_rgb.shape, skin.fine.shape
    ((3,), (1024, 1024, 2))
    """
    if skin_type not in FITZPATRICK_SRGB:
        raise ValueError(f"skin_type must be 1..6, got {skin_type!r}")
    base = srgb_to_linear(np.clip(np.array(FITZPATRICK_SRGB[skin_type]) + rng.normal(0, 6, 3),
                                  0, 255))
    n_low = int(2 * EXTENT_MM * 1.6 / LOW_CELL_MM)
    low = np.dstack([0.7 * smooth_noise(rng, (n_low, n_low), 60 / LOW_CELL_MM)
                     + 0.3 * smooth_noise(rng, (n_low, n_low), 15 / LOW_CELL_MM),
                     smooth_noise(rng, (n_low, n_low), 40 / LOW_CELL_MM)]).astype(np.float32)
    pores = soft_threshold(periodic_noise(rng, TILE, 0.12 / FINE_CELL_MM), 0.07, 0.4)
    lines = np.exp(-(periodic_noise(rng, TILE, 0.5 / FINE_CELL_MM) / 0.22) ** 2)
    fine = np.dstack([pores, lines]).astype(np.float32)
    coarse = np.dstack([0.6 * periodic_noise(rng, TILE, 3 / COARSE_CELL_MM)
                        + 0.4 * periodic_noise(rng, TILE, 10 / COARSE_CELL_MM),
                        periodic_noise(rng, TILE, 5 / COARSE_CELL_MM)]).astype(np.float32)
    coarse = np.dstack([coarse, _freckles(rng, skin_type, site)])

    # hairs: a subject-wide direction, slightly curved strands
    hair_density = rng.choice([0.0, rng.uniform(0.05, 0.5), rng.uniform(0.5, 2.5)],
                              p=[0.25, 0.35, 0.4])  # per cm²: none, sparse, hairy
    n_h = rng.poisson(hair_density * (2 * EXTENT_MM) ** 2 / 100.0)
    roots = rng.uniform(-EXTENT_MM, EXTENT_MM, (n_h, 2))
    ang = rng.uniform(0, 2 * np.pi) + rng.normal(0, 0.35, n_h)
    curl = rng.normal(0, 0.25, n_h)
    step = rng.uniform(4, 14, n_h) / 3
    pts = [roots]
    for k in range(3):
        a = ang + curl * k
        pts.append(pts[-1] + step[:, None] * np.column_stack([np.cos(a), np.sin(a)]))
    hairs = np.stack(pts, axis=1).astype(np.float32)
    near = np.stack([_site_sdf(site, hairs[:, k]) for k in range(4)], axis=1).min(axis=1) < 2.0
    hairs = hairs[~near]
    if skin_type <= 2 and rng.uniform() < 0.5:
        hair_rgb = srgb_to_linear((150, 112, 72))
    else:
        hair_rgb = srgb_to_linear((34, 25, 20))
    tint = np.array([0.62, 0.48, 0.40] if skin_type <= 3 else [0.50, 0.44, 0.42], np.float32)
    return SkinModel(skin_type=skin_type, base_rgb=base, low=low,
                     low_origin_mm=(-n_low * LOW_CELL_MM / 2,) * 2, fine=fine, coarse=coarse,
                     texture_amp=rng.uniform(0.6, 1.2), sheen=rng.uniform(0.0, 0.01),
                     freckle_tint=tint, hairs=hairs,
                     hair_rgb=hair_rgb,
                     hair_width_mm=rng.uniform(0.05, 0.09), hair_opacity=rng.uniform(0.55, 0.9))


def _freckles(rng: np.random.Generator, skin_type: int, site: SiteModel) -> np.ndarray:
    """Pigment of freckles (light skin) and naevi (any skin) on the periodic coarse tile."""
    period = TILE * COARSE_CELL_MM
    area_cm2 = period ** 2 / 100.0
    density = {1: 1.2, 2: 0.6, 3: 0.15}.get(skin_type, 0.0) * rng.uniform(0, 1) ** 1.5
    n_f = rng.poisson(density * area_cm2 * 2.0)
    n_n = rng.poisson(rng.uniform(0.0, 0.008) * area_cm2)
    xy = rng.uniform(-period / 2, period / 2, (n_f + n_n, 2))
    cluster = smooth_noise(rng, (64, 64), 6.0)
    ci = np.clip(((xy + period / 2) / period * 63).astype(int), 0, 63)
    keep = np.concatenate([rng.uniform(0, 1, n_f) < 1 / (1 + np.exp(-2 * cluster[ci[:n_f, 1],
                                                                              ci[:n_f, 0]])),
                           np.ones(n_n, bool)])
    radius = np.concatenate([rng.uniform(0.4, 1.6, n_f), rng.uniform(0.8, 2.5, n_n)])
    strength = np.concatenate([rng.uniform(0.2, 0.6, n_f), rng.uniform(0.5, 0.9, n_n)])
    keep &= _site_sdf(site, xy) > 1.5 + radius
    layer = np.zeros((TILE, TILE), np.float32)
    for (x, y), r, v in zip(xy[keep] / COARSE_CELL_MM % TILE, radius[keep] / COARSE_CELL_MM,
                            strength[keep], strict=True):
        for dx in (-TILE, 0, TILE):  # wrap around the tile's edges
            for dy in (-TILE, 0, TILE):
                if -r - 2 < x + dx < TILE + r + 2 and -r - 2 < y + dy < TILE + r + 2:
                    cv2.circle(layer, (int((x + dx) * 16), int((y + dy) * 16)),
                               max(int(r * 16), 8), float(v), -1, cv2.LINE_AA, shift=4)
    padded = cv2.GaussianBlur(np.pad(layer, 4, mode="wrap"), (0, 0), 0.8)
    return np.ascontiguousarray(padded[4:-4, 4:-4])


def _site_sdf(site: SiteModel, xy: np.ndarray) -> np.ndarray:
    """The site's signed distance at points (nearest grid cell; far outside = +inf)."""
    h, w = site.sdf_mm.shape
    g = np.round((np.asarray(xy) - np.array(site.origin_mm)) / CELL_MM).astype(int)
    ok = (g[:, 0] >= 0) & (g[:, 0] < w) & (g[:, 1] >= 0) & (g[:, 1] < h)
    out = np.full(len(g), np.inf, dtype=np.float32)
    out[ok] = site.sdf_mm[g[ok, 1], g[ok, 0]]
    return out


def shade_skin(skin: SkinModel, img_from_site: np.ndarray, width: int, height: int,
               px_per_mm: float) -> np.ndarray:
    """Reflectance (height, width, 3) of the skin seen through ``img_from_site``."""
    box = (0, 0, width, height)
    low = warp(skin.low, img_from_site @ translation(*skin.low_origin_mm) @ scaling(LOW_CELL_MM),
               box, border=cv2.BORDER_REFLECT)
    # tiles: the site centre maps near the tile origin (warp coordinates are 16-bit)
    coarse = warp(skin.coarse, img_from_site @ scaling(COARSE_CELL_MM), box,
                  border=cv2.BORDER_WRAP)
    fine = warp(skin.fine, img_from_site @ scaling(FINE_CELL_MM), box, border=cv2.BORDER_WRAP)
    amp = np.float32(skin.texture_amp)
    lum = np.exp(0.06 * low[..., 0] + (0.05 * amp) * coarse[..., 0])
    lum *= 1.0 - amp * (0.25 * fine[..., 0] + 0.10 * fine[..., 1])
    red = np.maximum(0.035 * low[..., 1] + 0.025 * coarse[..., 1], -0.015)
    rgb = (lum[..., None] * skin.base_rgb) * (1.0 + red[..., None] * RED_DIRECTION)
    rgb *= 1.0 - coarse[..., 2:3] * (1.0 - skin.freckle_tint)
    if skin.sheen > 0:  # a broad, faint highlight: most visible on dark skin
        shine = np.clip(low[..., 0] + 0.5, 0, 3) * np.float32(skin.sheen)
        rgb += shine[..., None]
    _draw_hairs(rgb, skin, img_from_site, px_per_mm)
    return rgb


def _in_frame(p: np.ndarray, width: int, height: int, pad: float) -> np.ndarray:
    return ((p[..., 0] > -pad) & (p[..., 0] < width + pad)
            & (p[..., 1] > -pad) & (p[..., 1] < height + pad))


def _draw_hairs(rgb: np.ndarray, skin: SkinModel, h: np.ndarray, ppm: float) -> None:
    if len(skin.hairs) == 0:
        return
    height, width = rgb.shape[:2]
    p = apply_h(h, skin.hairs.reshape(-1, 2)).reshape(skin.hairs.shape)
    ok = (_in_frame(p, width, height, 0).any(axis=1)
          & _in_frame(p, width, height, max(width, height)).all(axis=1))
    if not ok.any():
        return
    w_px = skin.hair_width_mm * ppm
    cover = np.zeros((height, width), np.uint8)
    cv2.polylines(cover, list(np.round(p[ok] * 16).astype(np.int32)), False, 255,
                  max(int(round(w_px)), 1), cv2.LINE_AA, shift=4)
    alpha = cover.astype(np.float32) * np.float32(min(w_px, 1.0) * skin.hair_opacity / 255.0)
    rgb += (skin.hair_rgb - rgb) * alpha[..., None]
