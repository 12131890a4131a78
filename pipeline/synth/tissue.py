"""The donor site: its shape, its healing-time field, and the look of its tissue.

Everything lives in the *site frame*: millimetres, origin at the site's centre, x along its
long side. A subject's site is a rounded rectangle with an irregular harvested edge, stored
as a signed distance field (negative inside). Healing is one field ``T(x, y)`` -- the day on
which each point becomes epithelialized -- the minimum of a front advancing from the edge
and of islands growing around adnexal seeds (hair follicles, glands), modulated by smooth
noise and scaled to the subject's healing speed. The epithelialized region at day ``d`` is
``{T <= d}``, so healing is monotonic by construction; the truth areas and the label masks
both threshold the same bilinearly interpolated fields.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from functools import cached_property

import cv2
import numpy as np

from pipeline.synth.fields import (
    periodic_noise,
    scaling,
    smooth_noise,
    smoothstep,
    soft_threshold,
    srgb_to_linear,
    translation,
)

__all__ = ["SiteModel", "build_site", "TissueLayers", "build_tissue_layers", "TissuePalette",
           "build_palette", "shade_tissue", "CELL_MM", "TEX_CELL_MM"]

#: Grid spacing of the shape and healing fields (mm); truth areas use a 2x finer grid.
CELL_MM = 0.2
#: Grid spacing of the tissue textures (mm).
TEX_CELL_MM = 0.1
#: Skin around the site covered by the site grid (mm): room for the redness halo.
MARGIN_MM = 30.0


@dataclass(frozen=True, eq=False)
class SiteModel:
    """A subject's donor site: shape and healing time on a grid in the site frame."""

    width_mm: float
    length_mm: float
    origin_mm: tuple[float, float]  # site-frame coordinates of grid pixel (0, 0)
    sdf_mm: np.ndarray  # (h, w) float32 signed distance to the edge, < 0 inside
    t_days: np.ndarray  # (h, w) float32 epithelialization day
    bbox_mm: tuple[float, float, float, float]  # xmin, ymin, xmax, ymax of the site
    sorted_t: np.ndarray  # T of every inside cell of the 2x grid, ascending
    heal_scale: float  # days per unit of the unscaled field (after the lag)

    @cached_property
    def sdf_t(self) -> np.ndarray:
        """(h, w, 2) float32: the signed distance and the healing day, stacked."""
        return np.dstack([self.sdf_mm, self.t_days])

    @property
    def site_from_grid(self) -> np.ndarray:
        """3x3 map from grid pixel coordinates to site millimetres."""
        return translation(*self.origin_mm) @ scaling(CELL_MM)

    @property
    def fine_cell_area_mm2(self) -> float:
        return (CELL_MM / 2) ** 2

    @property
    def donor_area_mm2(self) -> float:
        return self.sorted_t.size * self.fine_cell_area_mm2

    def areas_mm2(self, day: float) -> tuple[float, float, float]:
        """True (donor, epithelialized, raw) areas in mm² at ``day``."""
        n_epi = int(np.searchsorted(self.sorted_t, np.float32(day), side="right"))
        donor = self.donor_area_mm2
        epi = n_epi * self.fine_cell_area_mm2
        return donor, epi, donor - epi

    def healed_day(self, fraction: float) -> float:
        """First (continuous) day at which ``fraction`` of the site is epithelialized."""
        n = self.sorted_t.size
        k = min(max(math.ceil(fraction * n) - 1, 0), n - 1)
        return float(self.sorted_t[k])


def _rounded_rect_sdf(x: np.ndarray, y: np.ndarray, hl: float, hw: float, r: float
                      ) -> np.ndarray:
    qx, qy = np.abs(x) - (hl - r), np.abs(y) - (hw - r)
    outside = np.hypot(np.maximum(qx, 0), np.maximum(qy, 0))
    return outside + np.minimum(np.maximum(qx, qy), 0) - r


def site_grid(half_length_mm: float, half_width_mm: float
              ) -> tuple[float, float, np.ndarray, np.ndarray]:
    """The site model's grid: origin ``(ox, oy)`` in mm and cell centres ``xs`` (1, nx),
    ``ys`` (ny, 1), every :data:`CELL_MM`, covering the site and :data:`MARGIN_MM` around it
    (shared by both appearance models: :class:`SiteModel` is drawn on it).

    Examples
    --------
    >>> ox, oy, xs, ys = site_grid(40.0, 20.0)
    >>> (ox, oy) == (-(40.0 + MARGIN_MM), -(20.0 + MARGIN_MM)), xs.shape[0], ys.shape[1]
    (True, 1, 1)
    """
    ox, oy = -(half_length_mm + MARGIN_MM), -(half_width_mm + MARGIN_MM)
    nx, ny = int(math.ceil(2 * -ox / CELL_MM)) + 1, int(math.ceil(2 * -oy / CELL_MM)) + 1
    xs = (ox + CELL_MM * np.arange(nx, dtype=np.float32))[None, :]
    ys = (oy + CELL_MM * np.arange(ny, dtype=np.float32))[:, None]
    return ox, oy, xs, ys


def build_site(rng: np.random.Generator, *, width_mm: float, length_mm: float,
               t95_days: float, wide: bool = False) -> SiteModel:
    """Draw a donor site and its healing field, scaled so that 95 % heals on ``t95_days``.

    ``wide`` draws from the wider ranges of the ``"wide"`` study variety (island density from
    very sparse to very dense, slow-growing small islands, slower or faster edge fronts); the
    standard draws are unchanged by it.

    Examples
    --------
    >>> site = build_site(np.random.default_rng(0), width_mm=40, length_mm=80, t95_days=10)
    >>> round(site.healed_day(0.95), 3), site.areas_mm2(0)[1]
    (10.0, 0.0)
    """
    hl, hw = length_mm / 2, width_mm / 2
    ox, oy, xs, ys = site_grid(hl, hw)
    nx, ny = xs.shape[1], ys.shape[0]
    shape = (ny, nx)
    # shape: a slightly bent rounded rectangle with an irregular, ragged-ended edge
    bend = rng.uniform(-0.06, 0.06) * length_mm
    r = rng.uniform(0.15, 0.55) * hw
    sdf = _rounded_rect_sdf(xs, ys - bend * (xs / hl) ** 2, hl, hw, r)
    sdf += rng.uniform(0.6, 2.2) * smooth_noise(rng, shape, 7.0 / CELL_MM)
    sdf += rng.uniform(0.15, 0.5) * smooth_noise(rng, shape, 1.6 / CELL_MM)
    exit_side = rng.choice([-1.0, 1.0])
    w_end = smoothstep((exit_side * xs - (hl - 25.0)) / 25.0)
    sdf += w_end * (rng.uniform(0.8, 3.5) * smooth_noise(rng, shape, 3.0 / CELL_MM)
                    + rng.uniform(0.0, 0.25) * np.abs(ys))  # ragged, tapered exit end
    sdf = sdf.astype(np.float32)
    inside = sdf < 0
    iy, ix = np.nonzero(inside)
    bbox = (ox + CELL_MM * (ix.min() - 0.5), oy + CELL_MM * (iy.min() - 0.5),
            ox + CELL_MM * (ix.max() + 0.5), oy + CELL_MM * (iy.max() + 0.5))

    # healing from the edge: a front that starts after a lag and advances inwards
    if wide:
        t_edge = rng.uniform(2.5, 6.0) + np.maximum(-sdf, 0.0) / rng.uniform(0.2, 1.0)
    else:
        t_edge = rng.uniform(3.0, 4.5) + np.maximum(-sdf, 0.0) / rng.uniform(0.4, 0.9)
    # islands: adnexal seeds, denser in some regions, each activating and growing
    t_seed = _island_times(rng, sdf, (ox, oy), bbox, wide=wide)
    wobble = (0.14 * smooth_noise(rng, shape, 10.0 / CELL_MM)
              + 0.08 * smooth_noise(rng, shape, 3.0 / CELL_MM)
              + 0.04 * smooth_noise(rng, shape, 1.0 / CELL_MM))
    t0 = np.minimum(t_edge, t_seed) * np.exp(wobble)
    t0 = t0.astype(np.float32)

    fine_sdf = cv2.resize(sdf, (2 * nx, 2 * ny), interpolation=cv2.INTER_LINEAR)
    fine_t = cv2.resize(t0, (2 * nx, 2 * ny), interpolation=cv2.INTER_LINEAR)
    sorted_t0 = np.sort(fine_t[fine_sdf < 0])
    q95 = sorted_t0[min(max(math.ceil(0.95 * sorted_t0.size) - 1, 0), sorted_t0.size - 1)]
    # calendar: nothing is epithelialized before the lag, 95 % is on t95_days
    lag = min(rng.uniform(2.5, 4.0), 0.5 * t95_days)
    t_min = float(sorted_t0[0])
    k = (float(t95_days) - lag) / max(float(q95) - t_min, 1e-6)

    def calendar(t: np.ndarray) -> np.ndarray:
        return (np.float32(lag) + (t - np.float32(t_min)) * np.float32(k)).astype(np.float32)

    return SiteModel(width_mm=float(width_mm), length_mm=float(length_mm), origin_mm=(ox, oy),
                     sdf_mm=sdf, t_days=calendar(t0), bbox_mm=bbox, sorted_t=calendar(sorted_t0),
                     heal_scale=k)


def _island_times(rng: np.random.Generator, sdf: np.ndarray, origin: tuple[float, float],
                  bbox: tuple[float, float, float, float], *, wide: bool = False) -> np.ndarray:
    """min over seeds of (activation + distance / speed), each seed within 16 mm.

    ``wide``: density log-uniform in 0.7-25 seeds per cm² (standard 1.5-5), activations
    spread over days 2.5-6 (+ exponential), and speeds down to 0.08 mm/day, so that many
    islands stay small (0.2-2 mm) for days.
    """
    ny, nx = sdf.shape
    out = np.full(sdf.shape, 1e3, dtype=np.float32)
    x0, y0, x1, y1 = bbox
    area_cm2 = (x1 - x0) * (y1 - y0) / 100.0
    density = (math.exp(rng.uniform(math.log(0.7), math.log(25.0))) if wide
               else rng.uniform(1.5, 5.0))  # seeds per cm² where the harvest is thin
    n = rng.poisson(density * area_cm2 * 2.0)
    px, py = rng.uniform(x0, x1, n), rng.uniform(y0, y1, n)
    gx, gy = (px - origin[0]) / CELL_MM, (py - origin[1]) / CELL_MM
    ix = np.clip(np.round(gx).astype(int), 0, nx - 1)
    iy = np.clip(np.round(gy).astype(int), 0, ny - 1)
    thin = np.exp(0.45 * smooth_noise(rng, sdf.shape, 15.0 / CELL_MM))  # harvest depth varies
    keep = (sdf[iy, ix] < -0.3) & (rng.uniform(0, 1, n) < thin[iy, ix] / thin.max())
    gx, gy = gx[keep], gy[keep]
    if wide:
        act = rng.uniform(2.5, 6.0, gx.size) + rng.exponential(1.5, gx.size)
        speed = rng.uniform(0.08, 0.6) * rng.lognormal(0.0, 0.35, gx.size)
    else:
        act = rng.uniform(3.5, 5.5, gx.size) + rng.exponential(1.2, gx.size)
        speed = rng.uniform(0.25, 0.6) * rng.lognormal(0.0, 0.25, gx.size)
    rad = int(16.0 / CELL_MM)
    offs = np.arange(-rad, rad + 1, dtype=np.float32) * CELL_MM
    for cx, cy, a, v in zip(gx, gy, act, speed, strict=True):
        jx, jy = int(round(cx)), int(round(cy))
        xa, xb = max(jx - rad, 0), min(jx + rad + 1, nx)
        ya, yb = max(jy - rad, 0), min(jy + rad + 1, ny)
        dx = offs[xa - jx + rad:xb - jx + rad] - np.float32((cx - jx) * CELL_MM)
        dy = offs[ya - jy + rad:yb - jy + rad] - np.float32((cy - jy) * CELL_MM)
        t = np.float32(a) + np.sqrt(dy[:, None] ** 2 + dx[None, :] ** 2) / np.float32(v)
        np.minimum(out[ya:yb, xa:xb], t, out=out[ya:yb, xa:xb])
    return out


# ---------------------------------------------------------------------------- appearance
@dataclass(frozen=True)
class TissuePalette:
    """A subject's tissue colours (linear RGB reflectance)."""

    raw_bright: tuple[float, float, float]
    raw_dark: tuple[float, float, float]
    rawness: float  # 0 bright red .. 1 dark red at day 0
    epi_fresh: tuple[float, float, float]
    epi_mature: tuple[float, float, float]
    epi_red: tuple[float, float, float]  # hyperaemic patches of new epithelium
    fibrin: tuple[float, float, float]
    blood: tuple[float, float, float]
    crust_dark: tuple[float, float, float]
    crust_light: tuple[float, float, float]
    fibrin_max: float
    crust: bool
    erythema: float  # redness of the surrounding skin at day 0 (fades)
    erythema_mm: float  # its reach from the edge
    epi_gloss: float = 0.05  # share of the moist glints that new epithelium keeps (dry: ~0)
    flaking: float = 0.0  # whitish scale on the new epithelium (0: none)


def build_palette(rng: np.random.Generator, skin_rgb: np.ndarray, *, crust: bool,
                  wide: bool = False) -> TissuePalette:
    """Tissue colours for one subject, the mature epithelium leaning towards the skin.

    ``wide`` (the ``"wide"`` study variety): colours jitter about three times as much, the
    raw bed is lighter or darker and leans towards orange or purple, new epithelium ranges
    from very pale to deep pink, dry or glossy, sometimes flaking, and fibrin and redness
    span wider ranges. Without it the draws are the standard ones.
    """
    sd = 14.0 if wide else 5.0

    def lin(*rgb: float) -> tuple[float, float, float]:
        jitter = rng.normal(0, sd, 3)
        return tuple(float(v) for v in srgb_to_linear(np.clip(np.array(rgb) + jitter, 0, 255)))

    pink = np.array(lin(238, 178, 168))
    mature = 0.7 * pink + 0.3 * np.asarray(skin_rgb, dtype=float)
    base = TissuePalette(
        raw_bright=lin(205, 58, 52), raw_dark=lin(128, 22, 28), rawness=rng.uniform(0, 0.6),
        epi_fresh=lin(228, 128, 124), epi_mature=tuple(float(v) for v in mature),
        epi_red=lin(204, 84, 86), fibrin=lin(236, 212, 160), blood=lin(105, 8, 14),
        crust_dark=lin(70, 28, 20), crust_light=lin(150, 84, 48),
        fibrin_max=rng.uniform(0.03, 0.25), crust=crust,
        erythema=rng.uniform(0.08, 0.25), erythema_mm=rng.uniform(3.0, 10.0))
    if not wide:
        return base
    return _widen_palette(rng, base, skin_rgb)


def _widen_palette(rng: np.random.Generator, p: TissuePalette, skin_rgb: np.ndarray
                   ) -> TissuePalette:
    """The wide variety's extra draws on top of a standard palette."""
    def tint(rgb: tuple[float, float, float], gain: float, lean: np.ndarray) -> tuple:
        return tuple(float(v) for v in np.clip(np.asarray(rgb) * gain * lean, 0.0, 1.0))

    # the raw bed: lighter or darker, leaning towards orange (fibrinous) or purple (congested)
    lean = np.array([1.0, *np.exp(rng.normal(0, 0.25, 2))])
    gain = math.exp(rng.uniform(math.log(0.6), math.log(1.35)))
    # new epithelium from very pale (thin, whitish pink) to deep pink
    t = rng.uniform(0, 1)
    pale, deep = srgb_to_linear(np.array([246, 212, 206.0])), srgb_to_linear(
        np.array([222, 118, 122.0]))
    fresh = (1 - t) * pale + t * deep
    mature_mix = rng.uniform(0.45, 0.9)
    pink = 0.5 * (np.asarray(p.epi_fresh) + fresh)
    mature = mature_mix * pink + (1 - mature_mix) * np.asarray(skin_rgb, dtype=float)
    return replace(
        p, raw_bright=tint(p.raw_bright, gain, lean), raw_dark=tint(p.raw_dark, gain, lean),
        rawness=rng.uniform(0, 0.9), epi_fresh=tuple(float(v) for v in fresh),
        epi_mature=tuple(float(v) for v in mature), fibrin_max=rng.uniform(0.0, 0.45),
        erythema=rng.uniform(0.02, 0.35), erythema_mm=rng.uniform(2.0, 15.0),
        epi_gloss=float(rng.choice([rng.uniform(0.0, 0.05), rng.uniform(0.05, 0.6)])),
        flaking=float(rng.choice([0.0, rng.uniform(0.1, 0.6)], p=[0.6, 0.4])))


@dataclass(frozen=True, eq=False)
class TissueLayers:
    """Per-visit texture layers on a grid over the site (TEX_CELL_MM spacing).

    ``a``: (mottle, granulation, bleeding dots, fibrin); ``b``: (glints, sheen, epithelium
    texture, crust), all float32.
    """

    origin_mm: tuple[float, float]
    a: np.ndarray
    b: np.ndarray

    @property
    def site_from_grid(self) -> np.ndarray:
        return translation(*self.origin_mm) @ scaling(TEX_CELL_MM)


def build_tissue_layers(rng: np.random.Generator, crust_rng: np.random.Generator,
                        site: SiteModel, palette: TissuePalette, day: float) -> TissueLayers:
    """Texture layers of one visit (bleeding fades, fibrin comes and goes, crust persists)."""
    x0, y0, x1, y1 = site.bbox_mm
    ox, oy = x0 - 2.0, y0 - 2.0
    w = int(math.ceil((x1 - x0 + 4.0) / TEX_CELL_MM)) + 1
    h = int(math.ceil((y1 - y0 + 4.0) / TEX_CELL_MM)) + 1
    c = 1.0 / TEX_CELL_MM  # grid px per mm
    mottle = 0.6 * smooth_noise(rng, (h, w), 3 * c) + 0.8 * smooth_noise(rng, (h, w), 12 * c)
    gran = periodic_noise(rng, 512, 0.22 * c)
    gran = np.tile(gran, (h // 512 + 1, w // 512 + 1))[:h, :w]
    dots = np.zeros((h, w), np.float32)
    bleed = math.exp(-day / 2.5)
    n_dots = rng.poisson(rng.uniform(3, 9) * bleed * (x1 - x0) * (y1 - y0) / 100.0)
    for x, y, r in zip(rng.uniform(0, w, n_dots), rng.uniform(0, h, n_dots),
                       rng.uniform(0.12, 0.45, n_dots) * c, strict=True):
        cv2.circle(dots, (int(x * 16), int(y * 16)), max(int(r * 16), 8), 1.0, -1,
                   cv2.LINE_AA, shift=4)
    dots = cv2.GaussianBlur(dots, (0, 0), 0.6) * np.float32(0.5 + 0.5 * bleed)
    cover = palette.fibrin_max * float(smoothstep(day / 4.0) * (1 - smoothstep((day - 10) / 10)))
    fibrin = soft_threshold(0.7 * smooth_noise(rng, (h, w), 4 * c)
                            + 0.3 * smooth_noise(rng, (h, w), 0.8 * c), cover, 1.2)
    # glints cluster where the moist surface faces the light
    facing = smooth_noise(rng, (h, w), 12 * c)
    glint_src = (0.55 * smooth_noise(rng, (h, w), 0.5 * c) + 0.25 * smooth_noise(rng, (h, w), 2 * c)
                 + 0.6 * facing)
    glints = soft_threshold(glint_src, rng.uniform(0.008, 0.025), 0.3)
    sheen = soft_threshold(facing, 0.2, 1.5)
    epi_tex = 0.8 * smooth_noise(rng, (h, w), 4 * c) + 0.2 * smooth_noise(rng, (h, w), 1 * c)
    if palette.crust:  # crust persists from visit to visit: its own generator
        crust = soft_threshold(smooth_noise(crust_rng, (h, w), 6 * c),
                               crust_rng.uniform(0.1, 0.3), 0.4)
        crust *= np.float32(smoothstep((day - 2.0) / 3.0))
    else:
        crust = np.zeros((h, w), np.float32)
    a = np.dstack([mottle, gran, dots, fibrin]).astype(np.float32)
    b = np.dstack([glints, sheen, epi_tex, crust]).astype(np.float32)
    return TissueLayers(origin_mm=(ox, oy), a=a, b=b)


def shade_tissue(t_days: np.ndarray, a: np.ndarray, b: np.ndarray, palette: TissuePalette,
                 day: float) -> tuple[np.ndarray, np.ndarray]:
    """Reflectance (h, w, 3) and specular strength (h, w) of the site's tissue at ``day``.

    ``t_days``, ``a`` and ``b`` are the fields already sampled at the photo's pixels. The
    colour is a per-pixel mix of the palette's colours (raw bed bright/dark, blood, fibrin,
    crust, fresh/mature/hyperaemic epithelium, the pale rim at the healing front); the weights are
    computed first and the mix is one matrix product.
    """
    f32 = np.float32
    since = f32(day) - t_days
    w = np.clip(since / f32(0.35) + f32(0.5), 0, 1)  # epithelialized share (soft front)
    r = np.clip(f32(palette.rawness + 0.03 * day) + f32(0.22) * a[..., 0], 0, 1)
    g = 1 + f32(0.12) * a[..., 1]
    d = np.clip(a[..., 2], 0, 1)
    f = f32(0.45) * a[..., 3]
    c = b[..., 3] if palette.crust else np.zeros_like(w)
    t = np.clip(f32(0.5) + f32(0.4) * a[..., 0], 0, 1)
    m = np.clip(since / f32(8.0), 0, 1)
    e = 1 + f32(0.05) * b[..., 2] + f32(0.04) * a[..., 1]
    hyper = np.clip(f32(0.25) + f32(0.3) * b[..., 2], 0, 1) * (1 - f32(0.6) * m)
    q = f32(0.35) * np.exp(-(since / f32(0.8)) ** 2) * w
    raw_w = 1 - w
    k = (1 - f) * (1 - c) * raw_w
    kg = k * (1 - d) * g
    ke = w * e * (1 - q)
    kh = ke * (1 - hyper)
    weights = np.stack([kg * (1 - r), kg * r, k * d, f * (1 - c) * raw_w, c * (1 - t) * raw_w,
                        c * t * raw_w, kh * (1 - m), kh * m, ke * hyper, w * q], axis=-1)
    colours = np.array([palette.raw_bright, palette.raw_dark, palette.blood, palette.fibrin,
                        palette.crust_dark, palette.crust_light, palette.epi_fresh,
                        palette.epi_mature, palette.epi_red, (0.78, 0.55, 0.52)],
                       dtype=np.float32)
    rgb = weights @ colours
    if palette.flaking > 0:  # whitish scale on the drier, older epithelium
        flake = soft_threshold(b[..., 2], 0.25, 0.3) * w * f32(palette.flaking) * (0.3 + 0.7 * m)
        rgb += (np.array([0.72, 0.66, 0.62], np.float32) - rgb) * flake[..., None]
    moist = f32(0.35 + 0.65 * math.exp(-day / 4.0))
    spec = moist * (1 - c) * ((1 - f32(1 - palette.epi_gloss) * w) * b[..., 0]
                              + f32(0.012) * b[..., 1])
    return rgb, spec
