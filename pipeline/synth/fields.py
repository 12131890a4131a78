"""Random fields and small geometric helpers shared by the scene's layers.

Noise is always made at low resolution and upsampled (or shaped in the Fourier domain for
periodic tiles); nothing here loops over pixels in Python.
"""

from __future__ import annotations

import cv2
import numpy as np

__all__ = ["smooth_noise", "periodic_noise", "smoothstep", "soft_threshold", "srgb_to_linear",
           "warp", "translation", "scaling", "apply_h"]


def smooth_noise(rng: np.random.Generator, shape: tuple[int, int], cell_px: float
                 ) -> np.ndarray:
    """Zero-mean, unit-variance smooth noise of feature size ``cell_px`` pixels.

    Examples
    --------
    >>> n = smooth_noise(np.random.default_rng(0), (64, 80), 8.0)
    >>> n.shape, n.dtype, bool(abs(n.mean()) < 0.5)
    ((64, 80), dtype('float32'), True)
    """
    h, w = shape
    cell = max(float(cell_px), 1.0)
    lh, lw = int(np.ceil(h / cell)) + 3, int(np.ceil(w / cell)) + 3
    low = rng.standard_normal((lh, lw), dtype=np.float32)
    big = cv2.resize(low, (int(round(lw * cell)), int(round(lh * cell))),
                     interpolation=cv2.INTER_CUBIC)
    off = int(round(cell))
    out = np.ascontiguousarray(big[off:off + h, off:off + w])
    std = float(out.std())
    return (out - float(out.mean())) / (std if std > 0 else 1.0)


def periodic_noise(rng: np.random.Generator, size: int, scale_px: float, *,
                   channels: int = 1) -> np.ndarray:
    """Tileable Gaussian-filtered noise (size x size [x channels]), unit variance.

    The field repeats with period ``size`` in both directions, so it can be sampled with
    ``cv2.BORDER_WRAP`` over any extent.

    Examples
    --------
    >>> t = periodic_noise(np.random.default_rng(0), 64, 4.0)
    >>> t.shape, bool(np.isclose(t.std(), 1.0, atol=1e-3))
    ((64, 64), True)
    """
    white = rng.standard_normal((channels, size, size))
    f = np.fft.fftfreq(size)
    k2 = f[:, None] ** 2 + f[None, :] ** 2
    sigma_f = 1.0 / (2 * np.pi * max(scale_px, 0.5))
    filt = np.exp(-k2 / (2 * sigma_f ** 2))
    out = np.fft.ifft2(np.fft.fft2(white) * filt).real
    out -= out.mean(axis=(1, 2), keepdims=True)
    out /= out.std(axis=(1, 2), keepdims=True) + 1e-12
    out = out.astype(np.float32)
    return out[0] if channels == 1 else np.ascontiguousarray(np.moveaxis(out, 0, -1))


def smoothstep(x: np.ndarray) -> np.ndarray:
    """Hermite step from 0 (x <= 0) to 1 (x >= 1)."""
    t = np.clip(x, 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def soft_threshold(noise: np.ndarray, coverage: float, softness: float = 0.3) -> np.ndarray:
    """A soft mask covering about ``coverage`` of a unit-variance noise field."""
    if coverage <= 0:
        return np.zeros_like(noise)
    from statistics import NormalDist

    thr = NormalDist().inv_cdf(min(max(1.0 - coverage, 1e-4), 1 - 1e-4))
    return smoothstep((noise - thr) / softness + 0.5)


def srgb_to_linear(rgb8: tuple[float, float, float] | np.ndarray) -> np.ndarray:
    """8-bit sRGB values to linear RGB in [0, 1] (the sRGB decoding curve)."""
    v = np.asarray(rgb8, dtype=np.float64) / 255.0
    return np.where(v <= 0.04045, v / 12.92, ((v + 0.055) / 1.055) ** 2.4).astype(np.float32)


def translation(dx: float, dy: float) -> np.ndarray:
    return np.array([[1.0, 0.0, dx], [0.0, 1.0, dy], [0.0, 0.0, 1.0]])


def scaling(s: float) -> np.ndarray:
    return np.diag([s, s, 1.0])


def apply_h(h: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """Apply a 3x3 homography to (n, 2) points (NaN for points behind the camera, w <= 0)."""
    p = np.asarray(pts, dtype=np.float64).reshape(-1, 2)
    q = p @ h[:, :2].T + h[:, 2]
    w = np.where(q[:, 2:3] > 1e-9, q[:, 2:3], np.nan)
    return q[:, :2] / w


def warp(src: np.ndarray, dst_from_src: np.ndarray, box: tuple[int, int, int, int], *,
         border: int = cv2.BORDER_REPLICATE, nearest: bool = False,
         border_value: float | tuple[float, ...] = 0.0) -> np.ndarray:
    """Sample ``src`` onto the destination pixels ``box`` = (x0, y0, x1, y1).

    ``dst_from_src`` maps src pixel coordinates to destination pixel coordinates (pixel
    centres at integers in both).
    """
    x0, y0, x1, y1 = box
    m = np.linalg.inv(translation(-x0, -y0) @ dst_from_src)  # (box-local dst) -> src
    flags = (cv2.INTER_NEAREST if nearest else cv2.INTER_LINEAR) | cv2.WARP_INVERSE_MAP
    if isinstance(border_value, float | int):
        border_value = (float(border_value),) * 4
    return cv2.warpPerspective(src, m, (x1 - x0, y1 - y0), flags=flags, borderMode=border,
                               borderValue=border_value)
