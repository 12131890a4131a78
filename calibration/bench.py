"""Calibration benchmark: time per photo on one thread, decode excluded.

``donorsite bench`` calls :func:`bench_calibration` with a decoded 4000x3000 photo.
"""

from __future__ import annotations

import time

import cv2
import numpy as np

from calibration.calibrate import CalibrationOptions, calibrate
from calibration.sticker import StickerSpec

__all__ = ["bench_calibration", "bench_photo"]


def bench_calibration(image_rgb: np.ndarray, sticker: StickerSpec, *, repeats: int = 5,
                      options: CalibrationOptions | None = None) -> dict:
    """Median wall time of :func:`~calibration.calibrate.calibrate` on one thread.

    Parameters
    ----------
    image_rgb : ndarray (H, W, 3) uint8
        A decoded, oriented photo with the sticker in it.
    sticker : StickerSpec
    repeats : int
        Timed runs (after one untimed warm-up run).
    options : CalibrationOptions, optional

    Returns
    -------
    dict
        ``name``, ``image_shape``, ``threads`` (1), ``repeats``, ``median_ms``, ``min_ms``,
        ``max_ms``, ``method``.

    Examples
    --------
    >>> from calibration.sticker import load_sticker
    >>> from calibration.synthetic import render_scene
    >>> spec = load_sticker()
    >>> r = bench_calibration(render_scene(spec, size=(640, 480), px_per_mm=5).image_rgb,
    ...                       spec, repeats=2)
    >>> r["threads"], r["median_ms"] > 0
    (1, True)
    """
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats!r}")
    opts = options if options is not None else CalibrationOptions()
    before = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        calibrate(image_rgb, sticker, options=opts, source="<bench>")  # warm-up (imports)
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            calibrate(image_rgb, sticker, options=opts, source="<bench>")
            times.append((time.perf_counter() - t0) * 1e3)
    finally:
        cv2.setNumThreads(before)
    return {
        "name": "calibration",
        "image_shape": list(image_rgb.shape[:2]),
        "threads": 1,
        "repeats": repeats,
        "median_ms": round(float(np.median(times)), 2),
        "min_ms": round(float(np.min(times)), 2),
        "max_ms": round(float(np.max(times)), 2),
        "method": opts.method,
    }


def bench_photo(sticker: StickerSpec, *, size: tuple[int, int] = (4000, 3000),
                seed: int = 0) -> np.ndarray:
    """A synthetic photo for the benchmark when no study photo is at hand.

    The sticker fills about a quarter of the frame's width, tilted 20°, under a warm cast.
    """
    from calibration.synthetic import render_scene

    w = size[0]
    return render_scene(sticker, size=size, px_per_mm=0.25 * w / sticker.card_width_mm,
                        tilt_deg=20.0, tilt_axis_deg=30.0, rotation_deg=10.0,
                        target_px=(0.3 * w, 0.6 * size[1]), noise_sigma=0.01,
                        colour_matrix=np.diag([1.0, 0.85, 0.6]), seed=seed).image_rgb


if __name__ == "__main__":  # pragma: no cover
    import json

    from calibration.sticker import load_sticker

    spec = load_sticker()
    print(json.dumps(bench_calibration(bench_photo(spec), spec)))
