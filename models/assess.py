"""Per-photo QC from the network's output: certainty, novelty, and the flags they raise.

:class:`PhotoAssessor` is built from a model's card (the thresholds and the novelty
reference that the training recipe fitted, :func:`fit_assessment`) and turns one photo's
working image and class probabilities into an :class:`Assessment`: the figures of
:mod:`models.confidence` and :mod:`models.novelty` and the QC flags

``low_confidence``
    the network is unsure of the photo (confidence below, or healed % interval above, the
    thresholds);
``out_of_distribution``
    the photo is unlike the photos the model learned from (novelty above 1).

Both hold a photo out of the endpoints until a blinded read accepts it (``pipeline.qc``).
The thresholds are set on the model's *validation* photos (in-distribution, never the
held-out test sets) so that about 2.5 % of such photos raise each flag.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from models.confidence import (
    DEFAULT_THRESHOLDS,
    PhotoConfidence,
    is_low_confidence,
    photo_confidence,
)
from models.novelty import NoveltyReference, photo_descriptor

__all__ = ["LOW_CONFIDENCE", "OUT_OF_DISTRIBUTION", "Assessment", "PhotoAssessor",
           "fit_assessment"]

LOW_CONFIDENCE = "low_confidence"
OUT_OF_DISTRIBUTION = "out_of_distribution"


@dataclass(frozen=True)
class Assessment:
    """One photo's certainty, novelty and the flags they raise."""

    confidence: PhotoConfidence
    novelty: float | None
    flags: tuple[str, ...]

    def as_dict(self) -> dict[str, Any]:
        """Rounded figures for tables (``None`` where no site was found)."""
        c = self.confidence

        def r(v: float | None, n: int) -> float | None:
            return None if v is None else round(float(v), n)

        return {"confidence": r(c.confidence, 4), "healed_percent_low": r(c.healed_low, 2),
                "healed_percent_high": r(c.healed_high, 2),
                "outline_ambiguity": r(c.ambiguous_site_share, 4),
                "ood_score": r(self.novelty, 3)}


class PhotoAssessor:
    """Assess photos with one model's thresholds and novelty reference.

    Parameters
    ----------
    px_per_mm : float
        The model's working scale.
    thresholds : dict, optional
        ``min_confidence`` and ``max_interval`` (default :data:`models.confidence.
        DEFAULT_THRESHOLDS`).
    reference : NoveltyReference, optional
        Without one, no novelty is computed and ``out_of_distribution`` is never raised.
    """

    def __init__(self, *, px_per_mm: float, thresholds: dict[str, float] | None = None,
                 reference: NoveltyReference | None = None) -> None:
        self.px_per_mm = float(px_per_mm)
        self.thresholds = {**DEFAULT_THRESHOLDS, **(thresholds or {})}
        self.reference = reference

    @classmethod
    def from_card(cls, card: dict[str, Any], *, px_per_mm: float) -> PhotoAssessor:
        """The assessor a model card describes (``qc``: thresholds and novelty reference)."""
        qc = card.get("qc") or {}
        ref = NoveltyReference.from_dict(qc["novelty"]) if qc.get("novelty") else None
        return cls(px_per_mm=px_per_mm, thresholds=qc.get("thresholds"), reference=ref)

    @classmethod
    def for_predictor(cls, predictor: Any) -> PhotoAssessor:
        """The assessor of a loaded model (its card's ``qc``; none: no novelty)."""
        return cls.from_card(getattr(predictor, "card", None) or {},
                             px_per_mm=predictor.config.px_per_mm or 1.0)

    def assess(self, working: np.ndarray, proba: np.ndarray, *,
               pixel_area: np.ndarray | None = None) -> Assessment:
        """Certainty, novelty and flags of one photo.

        Examples
        --------
        >>> a = PhotoAssessor(px_per_mm=3.0)
        >>> img = np.full((30, 30, 3), 0.6, np.float32)
        >>> p = np.zeros((3, 30, 30), np.float32); p[0] = 1
        >>> a.assess(img, p).flags                     # no site: nothing to doubt
        ()
        >>> p[:, 10:20, 10:20] = np.array([0.0, 0.5, 0.5])[:, None, None]
        >>> a.assess(img, p).flags
        ('low_confidence',)
        """
        c = photo_confidence(proba, pixel_area=pixel_area)
        flags = []
        if is_low_confidence(c, self.thresholds):
            flags.append(LOW_CONFIDENCE)
        novelty = None
        if self.reference is not None:
            d = photo_descriptor(working, proba, px_per_mm=self.px_per_mm,
                                 confidence=c.confidence, healed_interval=c.interval)
            novelty = self.reference.score(d)
            if novelty is not None and novelty > 1.0:
                flags.append(OUT_OF_DISTRIBUTION)
        return Assessment(c, novelty, tuple(flags))


def fit_assessment(photos: Iterable[tuple[np.ndarray, np.ndarray]], *, px_per_mm: float,
                   quantile: float = 97.5, k: int = 5) -> dict[str, Any]:
    """The card's ``qc`` entry from in-distribution photos ``(working image, probabilities)``.

    ``min_confidence`` is the ``100 - quantile`` percentile of their confidence and
    ``max_interval`` the ``quantile`` percentile of their healed % interval (so about
    ``100 - quantile`` % of such photos raise ``low_confidence`` through each); the novelty
    reference is fitted on their descriptions.
    """
    confs, intervals, descs = [], [], []
    for working, proba in photos:
        c = photo_confidence(proba)
        if c.confidence is None:
            continue
        confs.append(c.confidence)
        intervals.append(c.interval)
        descs.append(photo_descriptor(working, proba, px_per_mm=px_per_mm,
                                      confidence=c.confidence, healed_interval=c.interval))
    if len(descs) <= k:
        raise ValueError(f"fitting the QC needs more than {k} photos with a site, got "
                         f"{len(descs)}")
    ref = NoveltyReference.fit(np.array(descs), k=k, quantile=quantile)
    return {"thresholds": {"min_confidence": round(float(np.percentile(confs, 100 - quantile)), 4),
                           "max_interval": round(float(np.percentile(intervals, quantile)), 3)},
            "novelty": ref.to_dict(), "n_photos": len(descs), "quantile": quantile,
            "note": "thresholds and novelty reference fitted on the model's validation and "
                    "training photos (in-distribution), never on held-out test photos"}
