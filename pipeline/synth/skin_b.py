"""Appearance model B: the skin around the donor site (written independently of
:mod:`pipeline.synth.skin`).

Skin colour is drawn in CIELAB from the individual typology angle (ITA°) ranges of the
Fitzpatrick types I-VI and converted to linear RGB. Texture lives on a tileable patch in the
site frame: Worley cells for the network of skin lines and for pores, tileable gradient
noise for mottling, drawn dots for freckles, naevi and shaved stubble. Around the site:
patchy erythema; on the skin: surgical marker-pen lines (gentian violet or black) and tape
marks (adhesive residue with a grimy border, or stripped, reddened skin), drawn on a raster
in the site frame; hairs as tapered, curved strokes drawn at the photo's resolution.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from pipeline.synth.fields import apply_h, scaling, translation, warp
from pipeline.synth.noise_b import fbm, perlin, worley
from pipeline.synth.tissue import CELL_MM, SiteModel

__all__ = ["SkinB", "build_skin_b", "shade_skin_b", "ITA_RANGES", "lab_to_linear"]

#: ITA° range of each Fitzpatrick type (very light > 55° ... dark < -30°).
ITA_RANGES: dict[int, tuple[float, float]] = {
    1: (55.0, 68.0), 2: (41.0, 55.0), 3: (28.0, 41.0), 4: (10.0, 28.0), 5: (-30.0, 10.0),
    6: (-60.0, -30.0)}
_B_STAR = {1: (11, 16), 2: (14, 19), 3: (16, 21), 4: (17, 23), 5: (14, 20), 6: (9, 15)}
TILE_MM, TILE_PX = 96.0, 768  # texture patch: period and size (0.125 mm per pixel)
DECOR_MM = 0.25  # grid of the marker-pen and tape raster
DECOR_REACH_MM = 70.0  # how far around the site marks may be drawn
_REDNESS = np.array([0.1, -0.85, -0.6], np.float32)


def lab_to_linear(lab: np.ndarray) -> np.ndarray:
    """CIELAB (D65) to linear sRGB, clipped to [0, 1].

    Examples
    --------
    >>> np.round(lab_to_linear(np.array([100.0, 0.0, 0.0])), 3).tolist()
    [1.0, 1.0, 1.0]
    """
    lab = np.asarray(lab, float)
    fy = (lab[..., 0] + 16) / 116
    fx, fz = fy + lab[..., 1] / 500, fy - lab[..., 2] / 200

    def inv(t: np.ndarray) -> np.ndarray:
        return np.where(t > 6 / 29, t ** 3, 3 * (6 / 29) ** 2 * (t - 4 / 29))

    xyz = np.stack([0.95047 * inv(fx), inv(fy), 1.08883 * inv(fz)], axis=-1)
    m = np.array([[3.2406, -1.5372, -0.4986], [-0.9689, 1.8758, 0.0415],
                  [0.0557, -0.2040, 1.0570]])
    return np.clip(xyz @ m.T, 0, 1).astype(np.float32)


@dataclass(frozen=True, eq=False)
class SkinB:
    """One subject's skin in model B (positions in site-frame mm)."""

    skin_type: int
    base_rgb: np.ndarray  # (3,) linear
    tile: np.ndarray  # (TILE_PX, TILE_PX, 4): lines, pores, mottle, pigment dots
    broad: np.ndarray  # (n, n, 2): brightness, redness on a 4 mm tileable grid
    relief: float
    oil: float  # broad oily highlight
    pigment_rgb: np.ndarray  # (3,) multiplicative colour of full pigment
    decor: np.ndarray  # (h, w, 4): marker ink, tape residue, tape border, stripped skin
    decor_origin_mm: tuple[float, float]
    ink_rgb: np.ndarray
    hairs: np.ndarray  # (m, 6, 2) polylines in mm
    hair_rgb: np.ndarray  # (m, 3)
    hair_width_mm: np.ndarray  # (m,)
    erythema: float
    erythema_mm: float


def _skin_colour(rng: np.random.Generator, skin_type: int) -> np.ndarray:
    lo, hi = ITA_RANGES[skin_type]
    ita = math.radians(rng.uniform(lo, hi))
    b = rng.uniform(*_B_STAR[skin_type])
    lightness = 50.0 + b * math.tan(ita)
    a = rng.uniform(5.0, 12.0) if skin_type <= 4 else rng.uniform(6.0, 11.0)
    return lab_to_linear(np.array([lightness, a, b]))


def _dots(rng: np.random.Generator, n: int, r_px: tuple[float, float],
          strength: tuple[float, float], blur: float) -> np.ndarray:
    layer = np.zeros((TILE_PX, TILE_PX), np.float32)
    for x, y, r, v in zip(rng.uniform(0, TILE_PX, n), rng.uniform(0, TILE_PX, n),
                          rng.uniform(*r_px, n), rng.uniform(*strength, n), strict=True):
        for dx in (-TILE_PX, 0, TILE_PX):
            for dy in (-TILE_PX, 0, TILE_PX):
                cv2.ellipse(layer, (int((x + dx) * 8), int((y + dy) * 8)),
                            (max(int(r * 8), 4), max(int(r * 8 * rng.uniform(0.7, 1.0)), 4)),
                            float(rng.uniform(0, 180)), 0, 360, float(v), -1, cv2.LINE_AA,
                            shift=3)
    if blur > 0:
        layer = cv2.GaussianBlur(np.pad(layer, 8, mode="wrap"), (0, 0), blur)[8:-8, 8:-8]
    return layer


def _texture_tile(rng: np.random.Generator, skin_type: int) -> np.ndarray:
    px_mm = TILE_PX / TILE_MM
    shape = (TILE_PX, TILE_PX)
    f1, f2 = worley(rng, shape, rng.uniform(0.7, 1.4) * px_mm, tile=True)
    lines = np.exp(-((f2 - f1) / 0.09) ** 2)
    p1, _ = worley(rng, shape, rng.uniform(0.3, 0.5) * px_mm, tile=True)
    pores = np.exp(-(p1 / 0.18) ** 2) * (rng.uniform(0, 1, shape) < 0.5)
    mottle = fbm(rng, shape, 12.0 * px_mm, octaves=5, tile=True)
    freckles = {1: 900, 2: 500, 3: 150}.get(skin_type, 0) * rng.uniform(0, 1) ** 2
    pigment = _dots(rng, rng.poisson(freckles), (0.3 * px_mm, 1.2 * px_mm), (0.25, 0.6), 1.2)
    pigment += _dots(rng, rng.poisson(rng.uniform(0, 3)), (1.0 * px_mm, 2.2 * px_mm),
                     (0.6, 0.9), 1.0)  # naevi
    if rng.uniform() < 0.35:  # shaved stubble
        pigment += _dots(rng, rng.poisson(rng.uniform(0.5, 3) * TILE_MM ** 2 / 100),
                         (0.05 * px_mm, 0.09 * px_mm), (0.5, 0.9), 0.5)
    return np.dstack([lines, pores, mottle, np.clip(pigment, 0, 1)]).astype(np.float32)


def _decor(rng: np.random.Generator, site: SiteModel) -> tuple[np.ndarray, tuple[float, float]]:
    """Marker-pen lines and tape marks on a raster around the site."""
    x0, y0, x1, y1 = site.bbox_mm
    ox, oy = x0 - DECOR_REACH_MM, y0 - DECOR_REACH_MM
    w = int((x1 - x0 + 2 * DECOR_REACH_MM) / DECOR_MM) + 1
    h = int((y1 - y0 + 2 * DECOR_REACH_MM) / DECOR_MM) + 1
    ink = np.zeros((h, w), np.float32)
    tape = np.zeros((h, w), np.float32)
    stripped = np.zeros((h, w), np.float32)

    def px(pts_mm: np.ndarray) -> np.ndarray:
        return np.round((pts_mm - [ox, oy]) / DECOR_MM * 8).astype(np.int32)

    width_px = max(int(rng.uniform(0.6, 1.5) / DECOR_MM), 1)
    if rng.uniform() < 0.55:  # the planned harvest outline, dashed, some mm outside the cut
        gap = rng.uniform(3.0, 12.0)
        corners = np.array([[x0 - gap, y0 - gap], [x1 + gap, y0 - gap], [x1 + gap, y1 + gap],
                            [x0 - gap, y1 + gap], [x0 - gap, y0 - gap]])
        dash, space = rng.uniform(4, 15), rng.uniform(0, 6)
        for a, b in zip(corners[:-1], corners[1:], strict=True):
            length = float(np.linalg.norm(b - a))
            s = rng.uniform(0, dash)
            while s < length:
                e = min(s + dash, length)
                seg = np.array([a + (b - a) * s / length, a + (b - a) * e / length])
                seg += rng.normal(0, 0.6, seg.shape)
                cv2.polylines(ink, [px(seg)], False, 1.0, width_px, cv2.LINE_AA, shift=3)
                s = e + space
    for _ in range(rng.poisson(1.2)):  # hash marks and arrows near the site
        c = np.array([rng.uniform(x0 - 30, x1 + 30), rng.uniform(y0 - 30, y1 + 30)])
        d = rng.uniform(5, 25) * np.array([math.cos(a := rng.uniform(0, 6.3)), math.sin(a)])
        cv2.polylines(ink, [px(np.array([c - d / 2, c + d / 2]))], False, 1.0, width_px,
                      cv2.LINE_AA, shift=3)
    for _ in range(rng.poisson(1.0)):  # tape strips from earlier dressings
        cx = rng.uniform(x0 - 30, x1 + 30)
        cy = rng.choice([y0 - rng.uniform(10, 40), y1 + rng.uniform(10, 40)])
        ang = rng.uniform(-30, 30) + rng.choice([0.0, 90.0])
        rect = ((float((cx - ox) / DECOR_MM), float((cy - oy) / DECOR_MM)),
                (rng.uniform(40, 110) / DECOR_MM, rng.uniform(18, 30) / DECOR_MM), float(ang))
        box = cv2.boxPoints(rect)
        target = stripped if rng.uniform() < 0.35 else tape
        cv2.fillConvexPoly(target, np.round(box * 8).astype(np.int32), 1.0, cv2.LINE_AA, 3)
    noise = fbm(rng, (h // 4 + 1, w // 4 + 1), 6.0 / DECOR_MM / 4, octaves=3)
    noise = cv2.resize(noise, (w, h), interpolation=cv2.INTER_LINEAR)
    ink *= np.clip(0.75 + 0.35 * noise, 0, 1)  # the pen skips
    border = np.clip(cv2.morphologyEx(tape, cv2.MORPH_GRADIENT, np.ones((5, 5), np.uint8)),
                     0, 1)
    tape = np.clip(tape * (0.5 + 0.4 * noise), 0, 1)
    # nothing is drawn on the donor site itself
    gy = (oy + DECOR_MM * np.arange(h, dtype=np.float32) - site.origin_mm[1]) / CELL_MM
    gx = (ox + DECOR_MM * np.arange(w, dtype=np.float32) - site.origin_mm[0]) / CELL_MM
    mx, my = (m.astype(np.float32) for m in np.meshgrid(gx, gy))
    sdf = cv2.remap(site.sdf_mm, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                    borderValue=100.0)
    keep = np.clip((sdf - 2.0) / 2.0, 0, 1)
    decor = np.dstack([ink, tape, border, stripped]) * keep[..., None]
    return cv2.GaussianBlur(decor.astype(np.float32), (0, 0), 0.7), (ox, oy)


def _hairs(rng: np.random.Generator, site: SiteModel, skin_type: int
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    density = float(rng.choice([0.0, rng.uniform(0.1, 0.8), rng.uniform(0.8, 3.0)],
                               p=[0.3, 0.4, 0.3]))
    x0, y0, x1, y1 = site.bbox_mm
    reach = 200.0
    n = rng.poisson(density * (x1 - x0 + 2 * reach) * (y1 - y0 + 2 * reach) / 100.0)
    roots = np.column_stack([rng.uniform(x0 - reach, x1 + reach, n),
                             rng.uniform(y0 - reach, y1 + reach, n)])
    flow = rng.uniform(0, 2 * np.pi)
    ang = flow + 0.4 * perlin(rng, (64, 64), 16.0)[(roots[:, 1] % 64).astype(int),
                                                   (roots[:, 0] % 64).astype(int)]
    ang += rng.normal(0, 0.25, n)
    length = rng.gamma(3.0, rng.uniform(1.5, 4.0), n)
    bend = rng.normal(0, 0.12, n)
    pts = [roots]
    for k in range(5):
        a = ang + bend * k
        pts.append(pts[-1] + (length / 5)[:, None] * np.column_stack([np.cos(a), np.sin(a)]))
    hairs = np.stack(pts, axis=1).astype(np.float32)
    g = np.round((hairs.reshape(-1, 2) - np.asarray(site.origin_mm)) / CELL_MM).astype(int)
    hh, ww = site.sdf_mm.shape
    ok = (g[:, 0] >= 0) & (g[:, 0] < ww) & (g[:, 1] >= 0) & (g[:, 1] < hh)
    sdf = np.full(len(g), 99.0, np.float32)
    sdf[ok] = site.sdf_mm[g[ok, 1], g[ok, 0]]
    hairs = hairs[sdf.reshape(n, 6).min(axis=1) > 1.5]
    dark = 0.025 if skin_type >= 3 or rng.uniform() < 0.5 else 0.12
    hair_rgb = np.clip(dark * np.array([1.3, 1.0, 0.8]) * np.exp(rng.normal(0, 0.25,
                                                                            (len(hairs), 1))),
                       0, 1).astype(np.float32)
    widths = rng.uniform(0.04, 0.1, len(hairs)).astype(np.float32)
    return hairs, hair_rgb, widths


def build_skin_b(rng: np.random.Generator, skin_type: int, site: SiteModel) -> SkinB:
    """Draw a subject's skin of Fitzpatrick type ``skin_type`` (1-6) in model B."""
    if skin_type not in ITA_RANGES:
        raise ValueError(f"skin_type must be 1..6, got {skin_type!r}")
    base = _skin_colour(rng, skin_type)
    broad = np.dstack([fbm(rng, (128, 128), 24.0, octaves=4, tile=True),
                       fbm(rng, (128, 128), 16.0, octaves=3, tile=True)]).astype(np.float32)
    decor, origin = _decor(rng, site)
    hairs, hair_rgb, widths = _hairs(rng, site, skin_type)
    ink = rng.choice([(0.22, 0.08, 0.42), (0.05, 0.06, 0.18), (0.04, 0.04, 0.05)])
    return SkinB(skin_type=skin_type, base_rgb=base, tile=_texture_tile(rng, skin_type),
                 broad=broad, relief=rng.uniform(0.5, 1.3), oil=rng.uniform(0.0, 0.015),
                 pigment_rgb=np.array([0.55, 0.42, 0.33], np.float32) if skin_type <= 3
                 else np.array([0.6, 0.52, 0.48], np.float32),
                 decor=decor, decor_origin_mm=origin, ink_rgb=np.asarray(ink, np.float32),
                 hairs=hairs, hair_rgb=hair_rgb, hair_width_mm=widths,
                 erythema=rng.uniform(0.1, 0.45), erythema_mm=rng.uniform(2.0, 14.0))


def shade_skin_b(skin: SkinB, site: SiteModel, img_from_site: np.ndarray, width: int,
                 height: int, day: float, rng: np.random.Generator) -> np.ndarray:
    """Reflectance (height, width, 3) of the skin, its erythema and its marks."""
    box = (0, 0, width, height)
    tile = warp(skin.tile, img_from_site @ scaling(TILE_MM / TILE_PX), box,
                border=cv2.BORDER_WRAP)
    broad = warp(skin.broad, img_from_site @ scaling(4.0), box, border=cv2.BORDER_WRAP)
    f = np.float32
    lum = np.exp(f(0.07) * broad[..., 0] + f(0.04) * tile[..., 2])
    lum *= 1 - f(skin.relief) * (f(0.12) * tile[..., 0] + f(0.18) * tile[..., 1])
    red = f(0.04) * broad[..., 1] + f(0.015) * tile[..., 2]
    sdf = warp(site.sdf_mm, img_from_site @ site.site_from_grid, box,
               border=cv2.BORDER_CONSTANT, border_value=1e3)
    fade = f(0.35 + 0.65 * math.exp(-day / 7.0))
    patchy = 1 + 0.5 * cv2.resize(perlin(rng, (height // 16 + 2, width // 16 + 2), 4.0),
                                  (width, height))
    red += f(skin.erythema) * fade * np.exp(-np.maximum(sdf, 0) / f(skin.erythema_mm)) * patchy
    decor = warp(skin.decor, img_from_site @ translation(*skin.decor_origin_mm)
                 @ scaling(DECOR_MM), box, border=cv2.BORDER_CONSTANT)
    red += f(0.25) * decor[..., 3] * f(math.exp(-day / 12.0))  # stripped by tape removal
    rgb = lum[..., None] * np.asarray(skin.base_rgb, f) * (1 + red[..., None] * _REDNESS)
    rgb *= 1 - tile[..., 3:4] * (1 - skin.pigment_rgb)
    grime = decor[..., 1] * f(0.12) + decor[..., 2] * f(0.35 if day >= 3 else 0.1)
    rgb *= (1 - grime)[..., None] * np.array([1.0, 0.97, 0.9], f) + grime[..., None] * f(0.35)
    ink = decor[..., 0] * f(0.85 * math.exp(-day / 25.0))
    rgb += (skin.ink_rgb - rgb) * ink[..., None]
    if skin.oil > 0:
        rgb += (f(skin.oil) * np.clip(broad[..., 0] + 0.8, 0, 3))[..., None]
    return rgb


def draw_hairs_b(rgb: np.ndarray, skin: SkinB, img_from_site: np.ndarray, px_per_mm: float
                 ) -> None:
    """Tapered hairs: a thick translucent root half and a thinner tip half."""
    if len(skin.hairs) == 0:
        return
    height, width = rgb.shape[:2]
    p = apply_h(img_from_site, skin.hairs.reshape(-1, 2)).reshape(skin.hairs.shape)
    inside = ((p[..., 0] > -5) & (p[..., 0] < width + 5) & (p[..., 1] > -5)
              & (p[..., 1] < height + 5))
    ok = inside.any(axis=1) & np.isfinite(p).all(axis=(1, 2))
    ok &= (np.abs(p) < 4 * max(width, height)).all(axis=(1, 2))
    if not ok.any():
        return
    for half, scale in ((slice(0, 4), 1.0), (slice(3, 6), 0.6)):
        cover = np.zeros((height, width), np.uint8)
        tint = np.zeros((height, width, 3), np.float32)
        for q, c, wmm in zip(p[ok][:, half], skin.hair_rgb[ok], skin.hair_width_mm[ok],
                             strict=True):
            w_px = wmm * px_per_mm * scale
            val = int(255 * min(w_px, 1.0))
            cv2.polylines(cover, [np.round(q * 8).astype(np.int32)], False, val,
                          max(int(round(w_px)), 1), cv2.LINE_AA, shift=3)
            cv2.polylines(tint, [np.round(q * 8).astype(np.int32)], False, tuple(
                float(v) for v in c), max(int(round(w_px)), 1), cv2.LINE_8, shift=3)
        alpha = cover.astype(np.float32) / np.float32(255 / 0.85)
        rgb += (tint - rgb) * alpha[..., None]
