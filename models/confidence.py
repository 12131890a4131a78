"""How sure the network is of one photo, from its working-resolution class probabilities.

A healed percentage is only as good as the pixels it is counted from. Three per-photo figures
come from the probabilities ``p`` (background, epithelialized, raw) that the network returns at
the working scale, each pixel weighted by the skin area it covers:

``confidence``
    Mean probability of the chosen class over the donor site (pixels whose background
    probability is below one half): 1 when the network is certain everywhere, 1/3 at worst.
``healed_low``, ``healed_high``
    The healed % if every *ambiguous* donor-site pixel (epithelialized share of its tissue
    probability ``q = p_epi / (p_epi + p_raw)`` between 0.2 and 0.8) were raw, or
    epithelialized: the spread of answers the probabilities allow. Their difference is the
    healed % **interval width**, in percentage points.
``ambiguous_site_share``
    Share of the donor-site area (probability-weighted) whose background probability is
    itself ambiguous (0.2-0.8): the outline is uncertain there.

:func:`is_low_confidence` turns them into the ``low_confidence`` QC flag with thresholds that
ship with the model (its card, ``confidence_thresholds``), tuned on in-distribution
development photos only.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from models.errors import InputShapeError

__all__ = ["PhotoConfidence", "photo_confidence", "is_low_confidence", "DEFAULT_THRESHOLDS"]

#: Flag thresholds used when a model card carries none: confidence below ``min_confidence``
#: or a healed % interval wider than ``max_interval`` points.
DEFAULT_THRESHOLDS: dict[str, float] = {"min_confidence": 0.85, "max_interval": 10.0}
_AMBIGUOUS = (0.2, 0.8)


@dataclass(frozen=True)
class PhotoConfidence:
    """Per-photo certainty figures (``None`` where no donor site was found)."""

    confidence: float | None
    healed_low: float | None
    healed_high: float | None
    ambiguous_site_share: float | None
    site_pixels: int

    @property
    def interval(self) -> float | None:
        """Width of the healed % interval in percentage points."""
        if self.healed_low is None or self.healed_high is None:
            return None
        return self.healed_high - self.healed_low

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "healed_interval": self.interval}


def photo_confidence(proba: np.ndarray, *, pixel_area: np.ndarray | None = None,
                     epithelialized: int = 1, raw: int = 2) -> PhotoConfidence:
    """Certainty of one photo's segmentation from its class probabilities.

    Parameters
    ----------
    proba : ndarray, float (K, h, w)
        Class probabilities at the working scale (they sum to 1 over axis 0; class 0 is the
        background).
    pixel_area : ndarray, float (h, w), optional
        Skin area of each working pixel (any unit); default: all equal.
    epithelialized, raw : int
        Channel indices of the two tissue classes.

    Returns
    -------
    PhotoConfidence

    Examples
    --------
    >>> p = np.zeros((3, 4, 4), np.float32); p[0] = 1.0
    >>> p[:, 1:3, 1:3] = [[[0.0]], [[0.5]], [[0.5]]]          # a site of 4 px, epi/raw 50:50
    >>> c = photo_confidence(p)
    >>> round(c.confidence, 2), round(c.healed_low, 1), round(c.healed_high, 1)
    (0.5, 0.0, 100.0)
    >>> p[:, 1:3, 1:3] = [[[0.0]], [[0.95]], [[0.05]]]        # certain: all epithelialized
    >>> c = photo_confidence(p)
    >>> round(c.confidence, 2), c.healed_low, c.healed_high
    (0.95, 100.0, 100.0)
    """
    p = np.asarray(proba, dtype=np.float32)
    if p.ndim != 3 or p.shape[0] < 3 or max(epithelialized, raw) >= p.shape[0]:
        raise InputShapeError(f"proba must be (K, h, w) class probabilities with K >= 3, got "
                              f"shape {p.shape}")
    area = np.ones(p.shape[1:], np.float32) if pixel_area is None else \
        np.asarray(pixel_area, dtype=np.float32)
    if area.shape != p.shape[1:]:
        raise InputShapeError(f"pixel_area {area.shape} must match the probabilities' "
                              f"{p.shape[1:]}")
    bg = p[0]
    site = bg < 0.5
    n = int(np.count_nonzero(site))
    if n == 0:
        return PhotoConfidence(None, None, None, None, 0)
    a = area[site]
    tissue = 1.0 - bg[site]  # probability that a pixel is donor site at all
    confidence = float(np.sum(a * p[:, site].max(axis=0)) / np.sum(a))
    pe, pr = p[epithelialized][site], p[raw][site]
    q = pe / np.maximum(pe + pr, 1e-6)
    w = a * tissue
    total = float(np.sum(w))
    sure_epi = q >= _AMBIGUOUS[1]
    maybe_epi = q > _AMBIGUOUS[0]
    low = 100.0 * float(np.sum(w[sure_epi])) / total
    high = 100.0 * float(np.sum(w[maybe_epi])) / total
    edge = (bg > _AMBIGUOUS[0]) & (bg < _AMBIGUOUS[1])
    w_all = area * (1.0 - bg)
    ambiguous = float(np.sum(w_all[edge]) / max(np.sum(w_all[bg < 0.8]), 1e-12))
    return PhotoConfidence(confidence, low, high, ambiguous, n)


def is_low_confidence(c: PhotoConfidence, thresholds: dict[str, float] | None = None) -> bool:
    """Whether ``c`` falls below the thresholds (a photo with no site is never 'low': it
    gets ``no_donor_site_found`` instead).

    Examples
    --------
    >>> is_low_confidence(PhotoConfidence(0.7, 10.0, 12.0, 0.0, 50))
    True
    >>> is_low_confidence(PhotoConfidence(0.97, 40.0, 43.0, 0.01, 50))
    False
    """
    t = {**DEFAULT_THRESHOLDS, **(thresholds or {})}
    if c.confidence is None:
        return False
    return c.confidence < t["min_confidence"] or (c.interval or 0.0) > t["max_interval"]
