"""Procedural noise of appearance model B: gradient (Perlin) noise, fBm, ridged fBm, Worley.

Appearance model B is written independently of model A (whose textures are upsampled or
Fourier-filtered white noise, :mod:`pipeline.synth.fields`). Here every texture is built
from a lattice of random unit gradients interpolated with Perlin's quintic fade (gradient
noise), summed over octaves (fractional Brownian motion, plain or ridged), or from jittered
feature points (Worley / cellular noise: the distances to the nearest and second-nearest
point give cells, their borders and their centres). All functions can tile: with
``period`` the lattice wraps, so the field repeats every ``period`` pixels and can be
sampled with ``cv2.BORDER_WRAP``. Everything is vectorised over pixels.
"""

from __future__ import annotations

import cv2
import numpy as np

__all__ = ["perlin", "fbm", "ridged", "worley"]


def _fade(t: np.ndarray) -> np.ndarray:
    return t * t * t * (t * (t * 6.0 - 15.0) + 10.0)


def _axis(n: int, cell: float, offset: float) -> tuple[np.ndarray, np.ndarray]:
    pos = (np.arange(n, dtype=np.float32) + np.float32(offset)) / np.float32(cell)
    idx = np.floor(pos).astype(np.int64)
    return idx, (pos - idx).astype(np.float32)


def _gather(table: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    return np.take(np.take(table, rows, axis=0), cols, axis=1)


#: Lattice spacing (px) above which a non-tiling octave is made at a lower resolution and
#: upsampled (it is smooth at that scale).
_COARSE = 8.0


def perlin(rng: np.random.Generator, shape: tuple[int, int], cell: float, *,
           tile: bool = False) -> np.ndarray:
    """Gradient noise with lattice spacing ``cell`` pixels (values roughly within +-1).

    ``tile``: the field repeats with the period ``shape`` (``cell`` is rounded so that a
    whole number of lattice cells fits).

    Examples
    --------
    >>> n = perlin(np.random.default_rng(0), (32, 48), 8.0)
    >>> n.shape, n.dtype, bool(np.abs(n).max() <= 1.0)
    ((32, 48), dtype('float32'), True)
    """
    h, w = shape
    cell = max(float(cell), 1.0)
    if not tile and cell > _COARSE and min(h, w) > 16:
        f = cell / _COARSE
        small = perlin(rng, (max(int(np.ceil(h / f)), 2), max(int(np.ceil(w / f)), 2)), _COARSE)
        big = cv2.resize(small, (int(round(small.shape[1] * f)), int(round(small.shape[0] * f))),
                         interpolation=cv2.INTER_CUBIC)
        out = np.zeros(shape, np.float32)
        out[:min(h, big.shape[0]), :min(w, big.shape[1])] = big[:h, :w]
        return out
    if tile:
        ny, nx = max(int(round(h / cell)), 1), max(int(round(w / cell)), 1)
        cy, cx, oy, ox = h / ny, w / nx, 0.0, 0.0
    else:
        ny, nx = int(np.ceil(h / cell)) + 2, int(np.ceil(w / cell)) + 2
        cy = cx = cell
        oy, ox = rng.uniform(0, cell, 2)
    angle = rng.uniform(0, 2 * np.pi, (ny, nx))
    gx, gy = np.cos(angle).astype(np.float32), np.sin(angle).astype(np.float32)
    iy, fy = _axis(h, cy, oy)
    ix, fx = _axis(w, cx, ox)
    iy0, iy1 = iy % ny, (iy + 1) % ny
    ix0, ix1 = ix % nx, (ix + 1) % nx
    fy, fx = fy[:, None], fx[None, :]

    def corner(jy: np.ndarray, jx: np.ndarray, dy: np.ndarray, dx: np.ndarray) -> np.ndarray:
        # the lattice index is separable: gather rows, then columns (fast contiguous takes)
        return (_gather(gx, jy, jx) * dx + _gather(gy, jy, jx) * dy).astype(np.float32)

    n00 = corner(iy0, ix0, fy, fx)
    n01 = corner(iy0, ix1, fy, fx - 1)
    n10 = corner(iy1, ix0, fy - 1, fx)
    n11 = corner(iy1, ix1, fy - 1, fx - 1)
    u, v = _fade(fx), _fade(fy)
    top = n00 + (n01 - n00) * u
    bottom = n10 + (n11 - n10) * u
    return ((top + (bottom - top) * v) * np.float32(1.41)).astype(np.float32)


def fbm(rng: np.random.Generator, shape: tuple[int, int], cell: float, *, octaves: int = 5,
        gain: float = 0.5, lacunarity: float = 2.0, tile: bool = False) -> np.ndarray:
    """Fractional Brownian motion of gradient noise, zero mean and unit variance.

    The coarsest octave has lattice spacing ``cell``; octaves finer than 1.5 px are skipped.

    Examples
    --------
    >>> f = fbm(np.random.default_rng(1), (40, 40), 16.0)
    >>> bool(np.isclose(f.std(), 1.0, atol=1e-3))
    True
    """
    out = np.zeros(shape, np.float32)
    amp, c = 1.0, float(cell)
    for _ in range(octaves):
        if c < 1.5:
            break
        out += np.float32(amp) * perlin(rng, shape, c, tile=tile)
        amp *= gain
        c /= lacunarity
    out -= out.mean()
    return out / np.float32(max(float(out.std()), 1e-6))


def ridged(rng: np.random.Generator, shape: tuple[int, int], cell: float, *, octaves: int = 4,
           tile: bool = False) -> np.ndarray:
    """Ridged multifractal-style noise in [0, 1]: sharp crests along the zero lines of
    gradient noise (cracks, veins, fibrous strands)."""
    out = np.zeros(shape, np.float32)
    amp, total, c = 1.0, 0.0, float(cell)
    for _ in range(octaves):
        if c < 1.5:
            break
        out += np.float32(amp) * (1.0 - np.abs(perlin(rng, shape, c, tile=tile))) ** 2
        total += amp
        amp *= 0.5
        c /= 2.0
    return out / np.float32(max(total, 1e-6))


def worley(rng: np.random.Generator, shape: tuple[int, int], cell: float, *,
           tile: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Cellular noise: distances (in units of ``cell``) to the nearest and second-nearest of
    feature points jittered one per lattice cell.

    ``F1`` is small at the cell centres (pores, dots); ``F2 - F1`` is small on the cell
    borders (skin lines, crackle, granules).

    Examples
    --------
    >>> f1, f2 = worley(np.random.default_rng(2), (30, 30), 6.0)
    >>> bool((f2 >= f1).all()), f1.dtype
    (True, dtype('float32'))
    """
    h, w = shape
    cell = max(float(cell), 1.0)
    if tile:
        ny, nx = max(int(round(h / cell)), 1), max(int(round(w / cell)), 1)
        cy, cx, oy, ox = h / ny, w / nx, 0.0, 0.0
    else:
        ny, nx = int(np.ceil(h / cell)) + 2, int(np.ceil(w / cell)) + 2
        cy = cx = cell
        oy, ox = rng.uniform(0, cell, 2)
    jitter = rng.uniform(0.0, 1.0, (ny, nx, 2)).astype(np.float32)
    iy, fy = _axis(h, cy, oy)
    ix, fx = _axis(w, cx, ox)
    best1 = np.full(shape, np.inf, np.float32)
    best2 = np.full(shape, np.inf, np.float32)
    for dy in (-1, 0, 1):
        jy = (iy + dy) % ny
        for dx in (-1, 0, 1):
            jx = (ix + dx) % nx
            py = _gather(jitter[..., 1], jy, jx) + np.float32(dy) - fy[:, None]
            px = _gather(jitter[..., 0], jy, jx) + np.float32(dx) - fx[None, :]
            d = np.sqrt(px * px + py * py)
            best2 = np.minimum(best2, np.maximum(best1, d))
            best1 = np.minimum(best1, d)
    return best1, best2
