"""Live planimetry in the viewer: what the page needs to measure a mask as the pipeline does.

The pipeline measures areas through the photo's image -> skin-plane homography: each pixel of
the full photo covers ``|det H| / w(x, y)^3`` mm² (:class:`calibration.geometry.PlaneGeometry`),
and a resampled copy (the review picture) covers the same per pixel times the resampling
factors, at pixel centres mapped as ``cv2.resize`` maps them. The viewer gets the homography
and the full photo's shape (:func:`planimetry_config`) and computes the same per-pixel areas
in JavaScript (``viewer.js``, ``areaMap``); :func:`reference_areas` is the pipeline's own
measurement of a review-size mask, which the browser tests compare with the page.

Results stored before the homography was recorded fall back to the flat scale
(``mm_per_px``), as the pipeline's ``mm_per_px`` figure does.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from calibration.geometry import PlaneGeometry
from pipeline.measure import Measurement, measure_labels

__all__ = ["planimetry_config", "geometry_from_config", "reference_areas"]


def planimetry_config(record_json: str | None, *, mm_per_px: float | None,
                      full_shape: tuple[int, int] | None) -> dict[str, Any] | None:
    """``{"homography": 3x3, "full_shape": [h, w]}`` for the viewer, or None (no calibration).

    Examples
    --------
    >>> planimetry_config(None, mm_per_px=0.5, full_shape=(30, 40))["homography"][0]
    [0.5, 0.0, 0.0]
    """
    try:
        record = json.loads(record_json) if record_json else {}
    except ValueError:
        record = {}
    h = record.get("homography_image_to_plane_mm") if isinstance(record, dict) else None
    shape = record.get("image_shape") if isinstance(record, dict) else None
    if h is not None and shape:
        hom = np.asarray(h, dtype=np.float64)
        full = (int(shape[0]), int(shape[1]))
    elif mm_per_px and full_shape:
        hom = np.diag([float(mm_per_px), float(mm_per_px), 1.0])
        full = (int(full_shape[0]), int(full_shape[1]))
    else:
        return None
    if hom.shape != (3, 3) or not np.all(np.isfinite(hom)) or min(full) <= 0:
        return None
    hom = hom / np.abs(hom).max()   # scale-free; keeps the numbers tidy in the page
    return {"homography": hom.tolist(), "full_shape": list(full)}


def geometry_from_config(cfg: dict[str, Any]) -> PlaneGeometry:
    """The pipeline's geometry for a viewer planimetry config."""
    return PlaneGeometry(np.asarray(cfg["homography"], dtype=np.float64),
                         tuple(cfg["full_shape"]))


def reference_areas(labels: np.ndarray, cfg: dict[str, Any]) -> Measurement:
    """The pipeline's measurement of a (review-size) label mask under a viewer config."""
    return measure_labels(labels, meter=geometry_from_config(cfg))
