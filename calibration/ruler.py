"""Ruler check: measure the printed ruler through the homography.

An independent check of the scale: the ruler's major ticks (its coarsest tick class, 10 mm
on DS-CAL-1) are located in the photo from its pixels (a band of the card beside the
baseline, on the ticks' side, where only the major ticks reach, is
resampled through the homography and its darkness profile searched for tick centres), and
the distance between the first and last tick is read in plane millimetres. A correct
homography gives the described length; a wrong scale or a warped sticker does not.
"""

from __future__ import annotations

import cv2
import numpy as np

from calibration.geometry import PlaneGeometry
from calibration.sticker import Ruler

__all__ = ["measure_ruler"]


def measure_ruler(image_rgb: np.ndarray, geometry: PlaneGeometry, ruler: Ruler, *,
                  step_mm: float = 0.05) -> float | None:
    """Length in mm between the ruler's first and last major ticks, measured in the photo.

    The major ticks are the coarsest (longest) tick class (every 10 mm on DS-CAL-1).

    Parameters
    ----------
    image_rgb : ndarray (H, W, 3) uint8 or (H, W) grey
    geometry : PlaneGeometry
    ruler : Ruler
    step_mm : float
        Sampling step along the ruler.

    Returns
    -------
    float or None
        ``None`` when the ticks cannot be found (occluded, blurred beyond recognition).

    Examples
    --------
    >>> from calibration.sticker import load_sticker
    >>> from calibration.synthetic import render_scene
    >>> spec = load_sticker()
    >>> scene = render_scene(spec, size=(800, 600), px_per_mm=8.0)
    >>> geo = PlaneGeometry(np.linalg.inv(scene.homography_plane_to_image), (600, 800))
    >>> round(measure_ruler(scene.image_rgb, geo, spec.ruler), 1)
    40.0
    """
    major = ruler.major_mm
    n_major = int(np.floor(ruler.length_mm / major + 1e-9))
    if n_major < 1:
        return None
    long_ = ruler.tick_lengths_mm[-1]
    mid = ruler.tick_lengths_mm[-2] if len(ruler.tick_lengths_mm) > 1 else 0.0
    # Band where only the major ticks are: between the next-longest and the long tick tips.
    y0 = ruler.y_mm + ruler.sign * (mid + 0.25 * (long_ - mid))
    y1 = ruler.y_mm + ruler.sign * (long_ - 0.25 * (long_ - mid))
    ys = np.linspace(y0, y1, 5)
    xs = np.arange(ruler.x0_mm - 2.0, ruler.x1_mm + 2.0 + step_mm / 2, step_mm)
    gx, gy = np.meshgrid(xs, ys)
    pts = geometry.plane_to_image(np.column_stack([gx.ravel(), gy.ravel()])).astype(np.float32)
    vals = cv2.remap(image_rgb, pts[:, 0].reshape(gx.shape), pts[:, 1].reshape(gx.shape),
                     cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE).astype(np.float64)
    if vals.ndim == 3:  # grey only at the samples, not over the whole photo
        vals = vals @ np.array([0.299, 0.587, 0.114])
    profile = vals.mean(axis=0)
    lo, hi = np.percentile(profile, 2), np.percentile(profile, 90)
    if hi - lo < 20:
        return None
    dark = np.clip((hi - profile) / (hi - lo), 0.0, 1.0)
    on = dark > 0.5
    edges = np.flatnonzero(np.diff(np.r_[0, on.astype(np.int8), 0]))
    runs = list(zip(edges[::2], edges[1::2], strict=True))
    centres = []
    for a, b in runs:
        a2, b2 = max(0, a - 3), min(len(xs), b + 3)
        wgt = dark[a2:b2]
        centres.append(float((xs[a2:b2] * wgt).sum() / wgt.sum()))
    if len(centres) != n_major + 1:
        return None
    c = np.array(centres)
    expected = ruler.x0_mm + major * np.arange(n_major + 1)
    if np.max(np.abs(c - expected)) > 2.0:
        return None
    return float(c[-1] - c[0])
