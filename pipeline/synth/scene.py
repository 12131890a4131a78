"""Compose one photo's scene: skin, drape, donor site and sticker, and its label mask.

The sticker is drawn with :func:`calibration.sticker.render_sticker` from the project's
sticker description, lying flat beside the site (never over it). The plane coordinates of a
photo are the card's millimetres, so a visit fixes where the card lies in the site frame
(``site_from_plane``); a photo adds the camera. Every layer is sampled straight into the
image through the true homography, so the picture and the mask agree pixel for pixel.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from calibration.sticker import StickerSpec, render_sticker
from pipeline.synth.camera import Capture
from pipeline.synth.fields import apply_h, scaling, smooth_noise, srgb_to_linear, translation, warp
from pipeline.synth.skin import RED_DIRECTION, SkinModel, shade_skin
from pipeline.synth.tissue import SiteModel, TissueLayers, TissuePalette, shade_tissue

__all__ = ["Visit", "Drape", "sample_visit", "scene_points", "render_scene", "LABELS"]

#: Label values of the masks.
LABELS = {"background": 0, "epithelialized": 1, "raw": 2}
_DRAPES = ((62, 112, 160), (70, 132, 112), (226, 226, 220), (120, 170, 190))
_SPECULAR = 0.9  # neutral reflectance added by a full glint
_ERYTHEMA_REACH = 25.0  # mm of skin around the site that the redness halo may reach
_STRIP = 256  # rows of the site shaded at a time (keeps temporaries in cache)


@dataclass(frozen=True)
class Drape:
    """A surgical drape covering the half-plane ``normal . p > offset`` (site frame, mm)."""

    normal: tuple[float, float]
    offset_mm: float
    rgb: tuple[float, float, float]


@dataclass(frozen=True)
class Visit:
    """One visit's wound state and sticker placement."""

    day: float
    site_from_plane: tuple[float, ...]  # 3x3 row-major: card mm -> site mm
    drape: Drape | None

    @property
    def site_from_plane_h(self) -> np.ndarray:
        return np.array(self.site_from_plane, dtype=np.float64).reshape(3, 3)


def _card_corners(spec: StickerSpec, pad: float = 0.0) -> np.ndarray:
    w, h = spec.card_width_mm, spec.card_height_mm
    return np.array([[-pad, -pad], [w + pad, -pad], [w + pad, h + pad], [-pad, h + pad]])


def _bbox_corners(bbox: tuple[float, float, float, float], pad: float = 0.0) -> np.ndarray:
    x0, y0, x1, y1 = bbox
    return np.array([[x0 - pad, y0 - pad], [x1 + pad, y0 - pad], [x1 + pad, y1 + pad],
                     [x0 - pad, y1 + pad]])


def sample_visit(rng: np.random.Generator, site: SiteModel, spec: StickerSpec, *, day: float,
                 drape_probability: float) -> Visit:
    """Place the sticker beside the site (a gap of 8-30 mm) and maybe a drape further out."""
    x0, y0, x1, y1 = site.bbox_mm
    cw, ch = spec.card_width_mm, spec.card_height_mm
    side = int(rng.choice(4, p=[0.35, 0.35, 0.15, 0.15]))  # below, above, right, left
    beta = (0.0 if side < 2 else 90.0) + rng.choice([0.0, 180.0]) + rng.normal(0, 10)
    c, s = math.cos(math.radians(beta)), math.sin(math.radians(beta))
    ex, ey = (abs(c) * cw + abs(s) * ch) / 2, (abs(s) * cw + abs(c) * ch) / 2
    gap = rng.uniform(8, 30)

    def along(lo: float, hi: float, half: float) -> float:
        mid = (lo + hi) / 2
        return rng.uniform(min(lo + half, mid), max(hi - half, mid))

    if side == 0:
        cx, cy = along(x0, x1, ex), y1 + gap + ey
    elif side == 1:
        cx, cy = along(x0, x1, ex), y0 - gap - ey
    elif side == 2:
        cx, cy = x1 + gap + ex, along(y0, y1, ey)
    else:
        cx, cy = x0 - gap - ex, along(y0, y1, ey)
    rot = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
    site_from_plane = translation(cx, cy) @ rot @ translation(-cw / 2, -ch / 2)
    drape = None
    if rng.uniform() < drape_probability:
        a = rng.uniform(0, 2 * math.pi)
        n = np.array([math.cos(a), math.sin(a)])
        pts = np.vstack([_bbox_corners(site.bbox_mm),
                         apply_h(site_from_plane, _card_corners(spec))])
        offset = float((pts @ n).max() + rng.uniform(25, 120))
        colour = np.array(_DRAPES[int(rng.integers(len(_DRAPES)))]) + rng.normal(0, 6, 3)
        rgb = srgb_to_linear(np.clip(colour, 0, 255))
        drape = Drape((float(n[0]), float(n[1])), offset, tuple(float(v) for v in rgb))
    return Visit(day=float(day), site_from_plane=tuple(float(v) for v in site_from_plane.ravel()),
                 drape=drape)


def scene_points(site: SiteModel, spec: StickerSpec, visit: Visit) -> np.ndarray:
    """Plane points (card mm) that must lie inside the photo: card and site, with a margin."""
    plane_from_site = np.linalg.inv(visit.site_from_plane_h)
    return np.vstack([_card_corners(spec, pad=3.0),
                      apply_h(plane_from_site, _bbox_corners(site.bbox_mm, pad=8.0))])


def _box(pts: np.ndarray, width: int, height: int) -> tuple[int, int, int, int] | None:
    pts = pts[np.all(np.isfinite(pts), axis=1)]
    if len(pts) == 0:
        return None
    x0, y0 = np.floor(pts.min(axis=0)).astype(int) - 2
    x1, y1 = np.ceil(pts.max(axis=0)).astype(int) + 3
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, width), min(y1, height)
    return (x0, y0, x1, y1) if x1 > x0 and y1 > y0 else None


def render_scene(*, site: SiteModel, skin: SkinModel, palette: TissuePalette,
                 layers: TissueLayers, visit: Visit, cap: Capture, spec: StickerSpec,
                 width: int, height: int, rng: np.random.Generator
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Linear reflectance (height, width, 3) float32 and label mask (height, width) uint8."""
    img_from_plane = cap.h
    img_from_site = img_from_plane @ np.linalg.inv(visit.site_from_plane_h)
    ppm, day = cap.px_per_mm, visit.day
    rgb = _background(skin, site, palette, visit, img_from_site, width, height, ppm, rng)
    labels = np.zeros((height, width), np.uint8)
    tight = _box(apply_h(img_from_site, _bbox_corners(site.bbox_mm, 1.0 + 1.0 / ppm)),
                 width, height)
    if tight is not None:
        x0, y0, x1, y1 = tight
        for ya in range(y0, y1, _STRIP):
            strip = (x0, ya, x1, min(ya + _STRIP, y1))
            _shade_strip(rgb, labels, strip, site, palette, layers, img_from_site, cap, day)
    _draw_sticker(rgb, spec, img_from_plane, rng)
    return rgb, labels


def _shade_strip(rgb: np.ndarray, labels: np.ndarray, box: tuple[int, int, int, int],
                 site: SiteModel, palette: TissuePalette, layers: TissueLayers,
                 img_from_site: np.ndarray, cap: Capture, day: float) -> None:
    """Labels and tissue of the donor site within ``box`` (a strip of rows)."""
    x0, y0, x1, y1 = box
    fields = warp(site.sdf_t, img_from_site @ site.site_from_grid, box)
    sdf, t_days = fields[..., 0], fields[..., 1]
    labels[y0:y1, x0:x1] = np.where(sdf < 0, np.where(t_days <= day, 1, 2), 0)
    edge_mm = max(1.0 / cap.px_per_mm, 0.25)
    alpha = np.clip(0.5 - sdf / np.float32(edge_mm), 0, 1)
    if not alpha.any():
        return
    tex = img_from_site @ layers.site_from_grid
    tissue, spec_map = shade_tissue(t_days, warp(layers.a, tex, box), warp(layers.b, tex, box),
                                    palette, day)
    # the cut edge: a thin shadow just inside the wound margin
    tissue *= (1.0 - 0.3 * np.exp(-((sdf + 0.35) / 0.3) ** 2))[..., None]
    sub = rgb[y0:y1, x0:x1]
    sub += (tissue - sub) * alpha[..., None]
    sub += (np.float32(_SPECULAR * cap.specular_gain) * spec_map * alpha)[..., None]


def _background(skin: SkinModel, site: SiteModel, palette: TissuePalette, visit: Visit,
                img_from_site: np.ndarray, width: int, height: int, ppm: float,
                rng: np.random.Generator) -> np.ndarray:
    """Skin, its redness around the wound, and the drape, rendered at half resolution and
    upsampled: they are smooth at that scale, and they are most of the image."""
    hw, hh = (width + 1) // 2, (height + 1) // 2
    sx, sy = hw / width, hh / height  # cv2.resize's own mapping between the two grids
    half_from_full = (translation(-0.5, -0.5) @ np.diag([sx, sy, 1.0])
                      @ translation(0.5, 0.5))
    h_half = half_from_full @ img_from_site
    rgb = shade_skin(skin, h_half, hw, hh, ppm * sx)
    halo = _box(apply_h(h_half, _bbox_corners(site.bbox_mm, _ERYTHEMA_REACH)), hw, hh)
    if halo is not None:
        x0, y0, x1, y1 = halo
        sdf = warp(site.sdf_mm, h_half @ site.site_from_grid, halo)
        ery = palette.erythema * (0.4 + 0.6 * math.exp(-visit.day / 6.0))
        patches = cv2.resize(smooth_noise(rng, ((y1 - y0) // 8 + 2, (x1 - x0) // 8 + 2), 3.0),
                             (x1 - x0, y1 - y0), interpolation=cv2.INTER_LINEAR)
        redness = np.float32(ery) * np.exp(-np.maximum(sdf, 0) / np.float32(palette.erythema_mm))
        redness *= np.clip(1.0 + 0.5 * patches, 0.2, 2.0)  # the redness is patchy
        rgb[y0:y1, x0:x1] *= 1.0 + redness[..., None] * RED_DIRECTION
    if visit.drape is not None:
        _apply_drape(rgb, visit.drape, h_half, rng)
    return cv2.resize(rgb, (width, height), interpolation=cv2.INTER_LINEAR)


def _apply_drape(rgb: np.ndarray, drape: Drape, img_from_site: np.ndarray,
                 rng: np.random.Generator) -> None:
    height, width = rgb.shape[:2]
    g = np.linalg.inv(img_from_site)  # image -> site
    if g[2] @ np.array([width / 2, height / 2, 1.0]) < 0:
        g = -g
    n0, n1 = drape.normal
    line = n0 * g[0] + n1 * g[1] - drape.offset_mm * g[2]
    u = np.arange(width, dtype=np.float32)[None, :]
    v = np.arange(height, dtype=np.float32)[:, None]
    s = (np.float32(line[0]) * u + np.float32(line[1]) * v + np.float32(line[2])) / (
        np.float32(g[2, 0]) * u + np.float32(g[2, 1]) * v + np.float32(g[2, 2]))
    if float(s.max()) < -60:
        return
    folds = cv2.resize(smooth_noise(rng, (height // 16 + 1, width // 16 + 1), 6.0), (width, height),
                       interpolation=cv2.INTER_LINEAR)
    shade = np.float32(0.88) + np.float32(0.09) * folds
    alpha = np.clip(s / np.float32(1.5) + np.float32(0.5), 0, 1)
    limb = 1.0 - 0.45 * np.exp(np.minimum(s, 0) / np.float32(14.0)) * (1 - alpha)
    rgb *= limb[..., None]
    rgb += (np.float32(drape.rgb) * shade[..., None] - rgb) * alpha[..., None]


def _draw_sticker(rgb: np.ndarray, spec: StickerSpec, img_from_plane: np.ndarray,
                  rng: np.random.Generator) -> None:
    """Composite the card (with a faint contact shadow) through the homography."""
    height, width = rgb.shape[:2]
    pad = 2.0
    corners = apply_h(img_from_plane, _card_corners(spec, pad))
    box = _box(corners, width, height)
    if box is None:
        return
    c0 = _card_corners(spec)
    steps = [apply_h(img_from_plane, c0 + d) - apply_h(img_from_plane, c0)
             for d in ((1.0, 0.0), (0.0, 1.0))]
    dens = float(np.nanmax(np.linalg.norm(np.vstack(steps), axis=1)))  # max image px per mm
    rho = float(np.clip(math.ceil(1.5 * dens), 4, 48))
    card = render_sticker(spec, px_per_mm=rho)
    p = int(round(pad * rho))
    ch, cw = card.shape[:2]
    cover = np.zeros((ch + 2 * p, cw + 2 * p), np.float32)
    cover[p:p + ch, p:p + cw] = 1.0
    premult = np.zeros((ch + 2 * p, cw + 2 * p, 3), np.float32)
    premult[p:p + ch, p:p + cw] = card
    shift = rng.uniform(0.1, 0.35, 2) * rho
    shadow = cv2.warpAffine(cover, np.array([[1, 0, shift[0]], [0, 1, shift[1]]], np.float32),
                            (cw + 2 * p, ch + 2 * p))
    shadow = cv2.GaussianBlur(shadow, (0, 0), 0.4 * rho)
    trans = (1.0 - cover) * (1.0 - np.float32(rng.uniform(0.15, 0.35)) * shadow)
    raster = np.dstack([premult, trans])
    aa = 0.5 * rho / max(dens, 1e-6)  # pre-filter so the warp does not alias
    if aa > 0.5:
        raster = cv2.GaussianBlur(raster, (0, 0), aa)
    plane_from_raster = translation(-pad, -pad) @ scaling(1.0 / rho) @ translation(0.5, 0.5)
    out = warp(raster, img_from_plane @ plane_from_raster, box, border=cv2.BORDER_CONSTANT,
               border_value=(0.0, 0.0, 0.0, 1.0))
    x0, y0, x1, y1 = box
    sub = rgb[y0:y1, x0:x1]
    sub *= out[..., 3:4]
    sub += out[..., :3]
