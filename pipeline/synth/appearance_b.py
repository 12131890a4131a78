"""Appearance model B: the donor site's shape, healing field and tissue, written
independently of model A (:mod:`pipeline.synth.tissue`).

B keeps A's *truth semantics* -- it returns the same :class:`~pipeline.synth.tissue.SiteModel`
(signed distance and epithelialization day on the shared 0.2 mm grid, truth areas on the 2x
finer grid, 95 % healed on the subject's ``t95`` day) -- so masks, ``photos.csv`` and every
scorer work unchanged. Everything else is its own:

* **Shape**: a tapered, bowed superellipse whose outline is perturbed by fBm; the signed
  distance comes from a distance transform of that mask (A: an analytic rounded rectangle).
* **Healing**: re-epithelialization from *clustered* adnexal seeds (follicular units: a
  parent point with 1-8 follicles/glands scattered around it), each activating on its own
  day and growing as a lobed island (a shared lobe field distorts the distance); seeds are
  found per grid cell with a k-d tree (k nearest). The rim advances from the edge with a
  speed that varies along the edge (irregular, fingered front).
* **Tissue**: Worley-cell granulation, gradient-noise colour, punctate bleeding, yellow
  fibrin, cracked crusts, dressing residue (petrolatum gauze weave, alginate or foam fibres),
  specular micro-glints; new epithelium translucent and pale pink with a whitish rim,
  maturing to a shiny pink that stays pinker than the skin; optional flaking.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
from scipy.spatial import cKDTree

from pipeline.synth.fields import scaling, srgb_to_linear, translation
from pipeline.synth.noise_b import fbm, perlin, ridged, worley
from pipeline.synth.tissue import CELL_MM, SiteModel, site_grid

__all__ = ["build_site_b", "PaletteB", "build_palette_b", "LayersB", "build_layers_b",
           "shade_tissue_b", "DRESSINGS", "TEX_MM"]

#: Grid spacing of B's tissue textures (mm).
TEX_MM = 0.1
#: Dressings whose residue may stick to the raw bed.
DRESSINGS = ("none", "petrolatum-gauze", "alginate", "foam")


def _ramp(x: np.ndarray | float) -> np.ndarray:
    """Clamp to [0, 1] with a cubic ease (B's own soft step)."""
    t = np.clip(x, 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def _cover(field: np.ndarray, share: float, soft: float) -> np.ndarray:
    """A soft mask covering about ``share`` of ``field`` (by its empirical quantile)."""
    if share <= 0:
        return np.zeros_like(field)
    sample = field[:: max(1, field.shape[0] // 64), :: max(1, field.shape[1] // 64)]
    thr = float(np.quantile(sample, 1.0 - min(share, 0.999)))
    return _ramp((field - np.float32(thr)) / np.float32(soft) + 0.5).astype(np.float32)


# ------------------------------------------------------------------------------- the site
def _site_mask(rng: np.random.Generator, xs: np.ndarray, ys: np.ndarray, hl: float,
               hw: float) -> np.ndarray:
    """Inside of a tapered, bowed superellipse with an fBm-perturbed outline."""
    shape = (ys.size, xs.size)
    n = rng.uniform(2.6, 6.0)  # 2: an ellipse; large: a rectangle with rounded corners
    taper = rng.uniform(0.0, 0.35)  # one end narrower (the dermatome's start or exit)
    bow = rng.uniform(-0.05, 0.05) * 2 * hl
    u = xs / hl
    half_w = hw * (1.0 - taper * (0.5 + 0.5 * u * rng.choice([-1.0, 1.0])))
    v = (ys - bow * (1 - u * u)) / np.maximum(half_w, 1.0)
    radius = (np.abs(u) ** n + np.abs(v) ** n) ** (1.0 / n)
    wobble = (rng.uniform(0.01, 0.035) * fbm(rng, shape, 12.0 / CELL_MM, octaves=3)
              + rng.uniform(0.004, 0.012) * fbm(rng, shape, 2.5 / CELL_MM, octaves=3))
    ends = _ramp((np.abs(u) - 0.75) / 0.25)  # ragged ends where the blade entered and left
    wobble += ends * rng.uniform(0.01, 0.05) * perlin(rng, shape, 4.0 / CELL_MM)
    return radius < 1.0 + wobble


def _signed_distance(inside: np.ndarray) -> np.ndarray:
    """Signed distance (mm, < 0 inside) from distance transforms, lightly smoothed."""
    ins = inside.astype(np.uint8)
    d_in = cv2.distanceTransform(ins, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    d_out = cv2.distanceTransform(1 - ins, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    sdf = np.where(inside, -(d_in - 0.5), d_out - 0.5) * np.float32(CELL_MM)
    return cv2.GaussianBlur(sdf.astype(np.float32), (0, 0), 1.0)


def _seeds(rng: np.random.Generator, sdf: np.ndarray, origin: tuple[float, float]
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Clustered adnexal seeds: positions (mm), activation days and growth speeds (mm/day)."""
    iy, ix = np.nonzero(sdf < 0)
    area_cm2 = iy.size * CELL_MM ** 2 / 100.0
    lo_x, hi_x = origin[0] + CELL_MM * ix.min(), origin[0] + CELL_MM * ix.max()
    lo_y, hi_y = origin[1] + CELL_MM * iy.min(), origin[1] + CELL_MM * iy.max()
    box_cm2 = (hi_x - lo_x) * (hi_y - lo_y) / 100.0
    parents_per_cm2 = math.exp(rng.uniform(math.log(0.3), math.log(4.0)))
    n_par = max(rng.poisson(parents_per_cm2 * box_cm2), 1)
    par = np.column_stack([rng.uniform(lo_x, hi_x, n_par), rng.uniform(lo_y, hi_y, n_par)])
    per = 1 + rng.poisson(rng.uniform(0.5, 5.0), n_par)
    spread = rng.uniform(0.4, 2.5)  # mm: follicular units are tight, gland fields looser
    pts = np.repeat(par, per, axis=0) + rng.normal(0, spread, (int(per.sum()), 2))
    # each parent has its own start (depth of the harvest varies), each follicle a delay
    start = np.repeat(rng.gamma(3.0, 0.7, n_par), per) + rng.exponential(0.8, pts.shape[0])
    base_speed = math.exp(rng.uniform(math.log(0.06), math.log(0.45)))
    speed = base_speed * np.exp(rng.normal(0, 0.45, pts.shape[0]))
    g = np.round((pts - np.asarray(origin)) / CELL_MM).astype(int)
    ok = ((g[:, 0] >= 0) & (g[:, 0] < sdf.shape[1]) & (g[:, 1] >= 0) & (g[:, 1] < sdf.shape[0]))
    ok[ok] = sdf[g[ok, 1], g[ok, 0]] < -0.4
    del area_cm2
    return pts[ok], start[ok], speed[ok]


def _healing_field(rng: np.random.Generator, sdf: np.ndarray, origin: tuple[float, float]
                   ) -> np.ndarray:
    """Unscaled epithelialization time of every grid cell: min of edge rim and islands."""
    shape = sdf.shape
    depth = np.maximum(-sdf, 0.0)
    # the rim: a lag, then a front whose speed varies along the edge (fingers and bays)
    edge_speed = rng.uniform(0.25, 0.9) * np.exp(rng.uniform(0.2, 0.55)
                                                 * fbm(rng, shape, 9.0 / CELL_MM, octaves=3))
    fingers = rng.uniform(0.5, 2.0) * ridged(rng, shape, 3.0 / CELL_MM, octaves=3)
    t_edge = rng.uniform(1.0, 3.0) + (depth + fingers * np.sqrt(depth)) / edge_speed
    t = t_edge.astype(np.float32)
    pts, start, speed = _seeds(rng, sdf, origin)
    if pts.shape[0]:
        iy, ix = np.nonzero(sdf < 0.5)
        cells = np.column_stack([origin[0] + CELL_MM * ix, origin[1] + CELL_MM * iy])
        k = min(8, pts.shape[0])
        dist, idx = cKDTree(pts).query(cells, k=k)
        dist, idx = dist.reshape(len(cells), k), idx.reshape(len(cells), k)
        lobes = 1.0 + rng.uniform(0.15, 0.45) * perlin(rng, shape, 0.9 / CELL_MM)[iy, ix]
        t_isl = (start[idx] + dist * lobes[:, None] / speed[idx]).min(axis=1)
        t[iy, ix] = np.minimum(t[iy, ix], t_isl.astype(np.float32))
    return t


def build_site_b(rng: np.random.Generator, *, width_mm: float, length_mm: float,
                 t95_days: float) -> SiteModel:
    """Draw a donor site of model B, scaled so that 95 % heals on ``t95_days``.

    Examples
    --------
    >>> site = build_site_b(np.random.default_rng(0), width_mm=40, length_mm=80, t95_days=10)
    >>> round(site.healed_day(0.95), 3), site.areas_mm2(0)[1]
    (10.0, 0.0)
    """
    hl, hw = length_mm / 2, width_mm / 2
    ox, oy, xs, ys = site_grid(hl, hw)
    nx, ny = xs.shape[1], ys.shape[0]
    inside = _site_mask(rng, xs, ys, hl, hw)
    sdf = _signed_distance(inside)
    inside = sdf < 0
    iy, ix = np.nonzero(inside)
    bbox = (ox + CELL_MM * (ix.min() - 0.5), oy + CELL_MM * (iy.min() - 0.5),
            ox + CELL_MM * (ix.max() + 0.5), oy + CELL_MM * (iy.max() + 0.5))
    t0 = _healing_field(rng, sdf, (ox, oy))
    # truth on the 2x grid, exactly as the masks threshold the bilinear fields
    fine_sdf = cv2.resize(sdf, (2 * nx, 2 * ny), interpolation=cv2.INTER_LINEAR)
    fine_t = cv2.resize(t0, (2 * nx, 2 * ny), interpolation=cv2.INTER_LINEAR)
    sorted_t0 = np.sort(fine_t[fine_sdf < 0])
    n = sorted_t0.size
    q95 = float(sorted_t0[min(max(math.ceil(0.95 * n) - 1, 0), n - 1)])
    t_min = float(sorted_t0[0])
    first = min(rng.uniform(2.0, 4.5), 0.5 * t95_days)  # first epithelium seen on this day
    k = (float(t95_days) - first) / max(q95 - t_min, 1e-6)

    def days(t: np.ndarray) -> np.ndarray:
        return (np.float32(first) + (t - np.float32(t_min)) * np.float32(k)).astype(np.float32)

    return SiteModel(width_mm=float(width_mm), length_mm=float(length_mm), origin_mm=(ox, oy),
                     sdf_mm=sdf, t_days=days(t0), bbox_mm=bbox, sorted_t=days(sorted_t0),
                     heal_scale=k)


# ------------------------------------------------------------------------------ palette
@dataclass(frozen=True)
class PaletteB:
    """One subject's tissue look in model B (linear RGB)."""

    bed_light: tuple[float, float, float]
    bed_deep: tuple[float, float, float]
    bed_shift: float  # 0 bright cherry-red .. 1 deep maroon
    blood: tuple[float, float, float]
    fibrin: tuple[float, float, float]
    fibrin_share: float
    crust: tuple[float, float, float]
    crust_share: float
    dressing: str
    residue_share: float
    residue: tuple[float, float, float]
    epi_new: tuple[float, float, float]
    epi_old: tuple[float, float, float]
    rim: tuple[float, float, float]
    translucency: float
    gloss: float  # sheen of the new epithelium (0 matte .. 1 glossy)
    flaking: float
    wetness: float  # specular micro-glints of the raw bed at day 0


def _lin(rng: np.random.Generator, rgb: tuple[float, float, float], sd: float
         ) -> tuple[float, float, float]:
    v = srgb_to_linear(np.clip(np.asarray(rgb, float) + rng.normal(0, sd, 3), 0, 255))
    return tuple(float(x) for x in v)


def build_palette_b(rng: np.random.Generator, skin_rgb: np.ndarray, *, crust: bool
                    ) -> PaletteB:
    """Draw a subject's tissue look; the healed epithelium leans pinker than ``skin_rgb``."""
    hue = rng.uniform(-1, 1)  # raw bed leaning orange-red (+) or purple-red (-)
    bed_light = _lin(rng, (212, 48 + 10 * hue, 56 - 10 * hue), 8)
    bed_deep = _lin(rng, (136, 24 + 5 * hue, 40 - 6 * hue), 8)
    pale = np.array(_lin(rng, (238, 184, 184), 7))
    pink = np.array(_lin(rng, (232, 150, 150), 9))
    mix = rng.uniform(0.0, 1.0)
    epi_new = (1 - mix) * pale + mix * pink
    skin = np.asarray(skin_rgb, float)
    rosy = np.array(srgb_to_linear((226, 132, 140)), float)
    old_mix = rng.uniform(0.35, 0.7)  # healed skin stays pinker than the intact skin
    epi_old = old_mix * rosy + (1 - old_mix) * skin * np.array([1.05, 0.9, 0.92])
    dressing = str(rng.choice(DRESSINGS, p=[0.25, 0.35, 0.25, 0.15]))
    residue = {"none": (0, 0, 0), "petrolatum-gauze": (226, 196, 92),
               "alginate": (236, 230, 206), "foam": (232, 226, 214)}[dressing]
    return PaletteB(
        bed_light=bed_light, bed_deep=bed_deep, bed_shift=rng.uniform(0.0, 0.7),
        blood=_lin(rng, (96, 10, 18), 6), fibrin=_lin(rng, (226, 200, 128), 10),
        fibrin_share=rng.uniform(0.0, 0.18), crust=_lin(rng, (92, 38, 26), 10),
        crust_share=rng.uniform(0.05, 0.22) if crust else 0.0, dressing=dressing,
        residue_share=0.0 if dressing == "none" else rng.uniform(0.03, 0.2),
        residue=_lin(rng, residue, 6) if dressing != "none" else (0.0, 0.0, 0.0),
        epi_new=tuple(float(x) for x in epi_new), epi_old=tuple(float(x) for x in np.clip(
            epi_old, 0, 1)), rim=_lin(rng, (244, 222, 216), 5),
        translucency=rng.uniform(0.05, 0.35), gloss=float(rng.choice([0.05, 0.4, 1.0])),
        flaking=float(rng.choice([0.0, rng.uniform(0.2, 0.7)], p=[0.6, 0.4])),
        wetness=rng.uniform(0.4, 1.0))


# ------------------------------------------------------------------------------- layers
@dataclass(frozen=True, eq=False)
class LayersB:
    """One visit's tissue texture on a grid over the site (``TEX_MM`` spacing), float32.

    ``bed``: (crevice, colour variation, bleeding, fibrin); ``cover``: (crust, crust
    crackle, dressing residue, fibres); ``surface``: (glints, sheen, epithelium variation,
    flakes).
    """

    origin_mm: tuple[float, float]
    bed: np.ndarray
    cover: np.ndarray
    surface: np.ndarray

    @property
    def site_from_grid(self) -> np.ndarray:
        return translation(*self.origin_mm) @ scaling(TEX_MM)


def _bleeding(rng: np.random.Generator, shape: tuple[int, int], day: float) -> np.ndarray:
    """Punctate bleeding points (dermal papillae), many on day 0, few after day 4."""
    h, w = shape
    per_cm2 = rng.uniform(8, 30) * math.exp(-day / 1.8)
    n = rng.poisson(per_cm2 * h * w * TEX_MM ** 2 / 100.0)
    layer = np.zeros(shape, np.float32)
    if n:
        ys, xs = rng.integers(0, h, n), rng.integers(0, w, n)
        layer[ys, xs] = rng.uniform(0.6, 1.0, n).astype(np.float32)
        layer = cv2.dilate(layer, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3)))
        layer = cv2.GaussianBlur(layer, (0, 0), 0.9) * 2.2
    if day < 2:  # fresh oozing: a few confluent smears
        ooze = _cover(fbm(rng, shape, 5.0 / TEX_MM, octaves=4), rng.uniform(0.0, 0.12), 0.5)
        layer = np.maximum(layer, ooze * np.float32(0.8 * (1 - day / 2)))
    return np.clip(layer, 0, 1)


def _residue(rng: np.random.Generator, crust_rng: np.random.Generator, shape: tuple[int, int],
             palette: PaletteB, day: float) -> tuple[np.ndarray, np.ndarray]:
    """Dressing residue (a weave pattern or a film) and loose fibres, days 1 on."""
    h, w = shape
    weave = np.zeros(shape, np.float32)
    fibres = np.zeros(shape, np.float32)
    if palette.dressing == "none" or day < 1:
        return weave, fibres
    patches = _cover(fbm(crust_rng, shape, 8.0 / TEX_MM, octaves=4), palette.residue_share, 0.6)
    patches *= np.float32(min(1.0, 0.4 + 0.15 * day) * math.exp(-max(day - 10, 0) / 6))
    if palette.dressing == "petrolatum-gauze":  # mesh of ~1.2 mm: the imprint of the threads
        pitch = crust_rng.uniform(0.9, 1.6) / TEX_MM
        a = crust_rng.uniform(0, math.pi)
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        u = xx * math.cos(a) + yy * math.sin(a)
        v = -xx * math.sin(a) + yy * math.cos(a)
        threads = np.maximum(np.cos(2 * np.pi * u / pitch), np.cos(2 * np.pi * v / pitch))
        weave = patches * (0.35 + 0.65 * _ramp((threads - 0.3) / 0.5))
    else:  # a thin film, with fibres (alginate) or crumbs (foam)
        weave = patches * np.float32(0.3)
        n = rng.poisson(palette.residue_share * h * w * TEX_MM ** 2 / 40.0)
        canvas = np.zeros(shape, np.uint8)
        for _ in range(int(n)):
            x, y = rng.uniform(0, w), rng.uniform(0, h)
            ang = rng.uniform(0, 2 * np.pi)
            if palette.dressing == "alginate":
                steps = rng.uniform(1.0, 4.0, 5) / TEX_MM
                turn = np.cumsum(rng.normal(0, 0.35, 5)) + ang
                px = x + np.concatenate([[0], np.cumsum(steps * np.cos(turn))])
                py = y + np.concatenate([[0], np.cumsum(steps * np.sin(turn))])
                pts = np.round(np.column_stack([px, py]) * 4).astype(np.int32)
                cv2.polylines(canvas, [pts], False, 255, 1, cv2.LINE_AA, shift=2)
            else:
                cv2.circle(canvas, (int(x), int(y)), int(rng.uniform(1, 4)), 255, -1)
        fibres = canvas.astype(np.float32) / np.float32(255 * 1.2)
    return weave.astype(np.float32), fibres


def build_layers_b(rng: np.random.Generator, crust_rng: np.random.Generator, site: SiteModel,
                   palette: PaletteB, day: float) -> LayersB:
    """The texture of one visit (crusts and residue keep their place from visit to visit:
    ``crust_rng`` is the subject's)."""
    x0, y0, x1, y1 = site.bbox_mm
    ox, oy = x0 - 2.0, y0 - 2.0
    shape = (int(math.ceil((y1 - y0 + 4.0) / TEX_MM)) + 1,
             int(math.ceil((x1 - x0 + 4.0) / TEX_MM)) + 1)
    c = 1.0 / TEX_MM
    f1, f2 = worley(rng, shape, rng.uniform(0.35, 0.7) * c)  # granules of the dermal bed
    crevice = np.exp(-((f2 - f1) / 0.12) ** 2).astype(np.float32) * (1 - _ramp(f1 / 0.6))
    crevice = crevice + 0.5 * np.exp(-((f2 - f1) / 0.08) ** 2)
    colour = 0.7 * fbm(rng, shape, 6.0 * c, octaves=5) + 0.3 * fbm(rng, shape, 1.2 * c)
    fibrin_now = palette.fibrin_share * float(_ramp(day / 3.0) * (1 - _ramp((day - 9) / 8)))
    fibrin = _cover(fbm(rng, shape, 4.0 * c, octaves=5), fibrin_now, 0.35)
    bed = np.dstack([crevice, colour, _bleeding(rng, shape, day), fibrin])
    # crusts and residue: the subject's generator, so they persist between visits
    crust = _cover(ridged(crust_rng, shape, 7.0 * c, octaves=4), palette.crust_share, 0.06)
    crust *= np.float32(_ramp((day - 1.5) / 3.0))
    c1, c2 = worley(crust_rng, shape, crust_rng.uniform(0.8, 2.0) * c)
    crackle = np.exp(-((c2 - c1) / 0.1) ** 2).astype(np.float32)
    weave, fibres = _residue(rng, crust_rng, shape, palette, day)
    cover = np.dstack([crust, crackle, weave, fibres])
    facing = fbm(rng, shape, 10.0 * c, octaves=2)
    micro = perlin(rng, shape, 0.25 * c) + 0.5 * perlin(rng, shape, 0.6 * c)
    glints = _ramp((micro + 0.35 * facing - 1.05) / 0.25)
    sheen = _ramp(facing * 0.6 + 0.3)
    epi_var = fbm(rng, shape, 2.5 * c, octaves=4)
    g1, g2 = worley(rng, shape, rng.uniform(0.4, 0.9) * c)
    flakes = _ramp(((g2 - g1) - 0.25) / 0.2) * _ramp(fbm(rng, shape, 3.0 * c, octaves=3))
    surface = np.dstack([glints, sheen, epi_var, flakes])
    return LayersB(origin_mm=(ox, oy), bed=bed.astype(np.float32),
                   cover=cover.astype(np.float32), surface=surface.astype(np.float32))


# ------------------------------------------------------------------------------ shading
def _lerp(base: np.ndarray, colour: np.ndarray | tuple, alpha: np.ndarray) -> np.ndarray:
    return base + (np.asarray(colour, np.float32) - base) * alpha[..., None]


def shade_tissue_b(t_days: np.ndarray, bed: np.ndarray, cover: np.ndarray, surface: np.ndarray,
                   palette: PaletteB, day: float) -> tuple[np.ndarray, np.ndarray]:
    """Reflectance (h, w, 3) and specular strength (h, w) of the site at ``day``, from the
    fields sampled at the photo's pixels; layers are composited over the bed in turn."""
    f = np.float32
    since = f(day) - t_days
    epi = np.clip(since / f(0.3) + f(0.5), 0, 1)
    raw = 1 - epi
    crevice, colour, blood, fibrin = (bed[..., i] for i in range(4))
    crust, crackle, weave, fibres = (cover[..., i] for i in range(4))
    glints, sheen, epi_var, flakes = (surface[..., i] for i in range(4))
    # the raw bed: deeper and darker with time (granulating), darker in the crevices
    shift = np.clip(f(palette.bed_shift + 0.025 * day) + f(0.18) * colour + f(0.15) * crevice,
                    0, 1)
    bed_rgb = (np.asarray(palette.bed_light, f) * (1 - shift)[..., None]
               + np.asarray(palette.bed_deep, f) * shift[..., None])
    bed_rgb *= (1 - f(0.14) * crevice)[..., None]
    bed_rgb = _lerp(bed_rgb, palette.blood, blood)
    bed_rgb = _lerp(bed_rgb, palette.fibrin, fibrin * (0.75 + 0.25 * (1 - crevice)))
    crust_rgb = np.asarray(palette.crust, f) * (0.6 + 0.5 * crackle + 0.15 * colour)[..., None]
    bed_rgb = _lerp(bed_rgb, np.clip(crust_rgb, 0, 1), crust)
    bed_rgb = _lerp(bed_rgb, palette.residue, np.clip(weave + fibres, 0, 1) * (1 - crust))
    # new epithelium: translucent and pale at first (a whitish rim at the island's margin),
    # then opaque, pink and shiny; healed skin stays pinker than the skin around
    age = np.clip(since / f(9.0), 0, 1)
    epi_rgb = (np.asarray(palette.epi_new, f) * (1 - age)[..., None]
               + np.asarray(palette.epi_old, f) * age[..., None])
    epi_rgb *= (1 + f(0.06) * epi_var)[..., None]
    rim = np.exp(-(np.maximum(since, 0) / f(0.7)) ** 2) * f(0.45)
    epi_rgb = _lerp(epi_rgb, palette.rim, rim)
    see_through = f(palette.translucency) * np.exp(-np.maximum(since, 0) / f(2.0))
    epi_rgb = _lerp(epi_rgb, np.asarray(palette.bed_light, f), see_through)
    if palette.flaking > 0:
        flake = flakes * f(palette.flaking) * _ramp((since - 2.0) / 4.0)
        epi_rgb = _lerp(epi_rgb, (0.74, 0.70, 0.66), flake)
    rgb = bed_rgb * raw[..., None] + epi_rgb * epi[..., None]
    wet = f(palette.wetness * (0.3 + 0.7 * math.exp(-day / 5.0)))
    spec = (raw * wet * (1 - crust) * (1 - 0.6 * fibrin) * glints
            + epi * f(0.02 * palette.gloss) * sheen * (1.0 + 2.0 * (1 - age)))
    return rgb.astype(np.float32), spec.astype(np.float32)
