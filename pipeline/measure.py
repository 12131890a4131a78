"""Areas in the skin plane and healed percentages.

Areas are measured in mm² through the calibration's per-pixel area (perspective-aware), never
with one px/mm factor. ``healed_percent`` = epithelialized / (epithelialized + raw).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Protocol

import numpy as np

__all__ = ["Measurement", "measure_labels", "LABELS", "EPITHELIALIZED", "RAW"]

BACKGROUND, EPITHELIALIZED, RAW = 0, 1, 2
LABELS = {BACKGROUND: "background", EPITHELIALIZED: "epithelialized", RAW: "raw"}


class _AreaMeter(Protocol):
    def area_mm2(self, mask: np.ndarray) -> float: ...


@dataclass(frozen=True)
class Measurement:
    """Areas of one photo in mm² (skin plane) and its healed percentage (None: no site)."""

    donor_site_area_mm2: float
    epithelialized_area_mm2: float
    raw_area_mm2: float
    healed_percent: float | None

    def as_dict(self) -> dict[str, float | None]:
        return asdict(self)


def measure_labels(labels: np.ndarray, *, meter: _AreaMeter) -> Measurement:
    """Measure a label map (0 background, 1 epithelialized, 2 raw).

    Parameters
    ----------
    labels : ndarray of uint8, shape (H, W)
    meter : object with ``area_mm2(mask) -> float``
        Usually the photo's :class:`calibration.Calibration`.

    Returns
    -------
    Measurement

    Examples
    --------
    >>> class Flat:  # 0.1 mm per pixel everywhere: 0.01 mm² per pixel
    ...     def area_mm2(self, mask): return float(mask.sum()) * 0.01
    >>> lab = np.zeros((10, 10), np.uint8); lab[:, :3] = 1; lab[:, 3:4] = 2
    >>> m = measure_labels(lab, meter=Flat())
    >>> round(m.epithelialized_area_mm2, 3), round(m.healed_percent, 1)
    (0.3, 75.0)
    """
    if labels.ndim != 2:
        raise ValueError(f"labels must be 2-D (H, W), got shape {labels.shape}")
    # unsigned labels only need their maximum (0.1 ms on 12 Mpx, np.unique ~30 ms)
    fine = (np.issubdtype(labels.dtype, np.unsignedinteger) and labels.size
            and int(labels.max()) <= max(LABELS))
    bad = np.array([]) if fine or not labels.size else \
        np.setdiff1d(np.unique(labels), list(LABELS))
    if bad.size:
        raise ValueError(f"labels may only hold {sorted(LABELS)}, got values {bad.tolist()}")
    epi = float(meter.area_mm2(labels == EPITHELIALIZED))
    raw = float(meter.area_mm2(labels == RAW))
    donor = epi + raw
    healed = 100.0 * epi / donor if donor > 0 else None
    return Measurement(donor, epi, raw, healed)
