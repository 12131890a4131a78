"""The per-photo certainty and novelty check, as a stage of every engine.

After the network, each photo's colour-corrected working image and its low-resolution class
probabilities go to the model's :class:`models.assess.PhotoAssessor` (thresholds and novelty
reference from the model card's ``qc`` entry). Its flags (``low_confidence``,
``out_of_distribution``: :data:`pipeline.qc.HOLD_FOR_READ_FLAGS`) join the photo's QC flags and
its figures are stored with the result (:meth:`pipeline.store.Store.save_result`
``assessment``). A model whose card has no ``qc`` entry is not assessed: the results carry no
assessment and no such flag (nothing fails).

The same function runs in the local engine's writer threads and in the Ray network actors,
on the same inputs, so both give the same figures.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["make_assessor", "assess_prepared", "proba_to_numpy"]


def make_assessor(card: dict[str, Any], config: Any) -> Any:
    """The model's :class:`models.assess.PhotoAssessor`, or ``None`` when its card has no
    ``qc`` entry (then photos are not assessed).

    Examples
    --------
    >>> make_assessor({"name": "old"}, None) is None
    True
    """
    if not card.get("qc"):
        return None
    from models.assess import PhotoAssessor

    px_per_mm = getattr(config, "px_per_mm", None) or 1.0
    return PhotoAssessor.from_card(card, px_per_mm=float(px_per_mm))


def proba_to_numpy(proba: Any) -> np.ndarray:
    """Class probabilities (a torch tensor on any device, or an array) as float32 numpy."""
    if hasattr(proba, "detach"):
        proba = proba.detach().float().cpu().numpy()
    return np.asarray(proba, dtype=np.float32)


def assess_prepared(assessor: Any, prepared: Any, proba: Any) -> Any:
    """Assess one prepared photo from its probabilities (``None`` without an assessor).

    Parameters
    ----------
    assessor : models.assess.PhotoAssessor or None
    prepared : pipeline.stages.Prepared
        With its working image and calibration (each working pixel is weighted by the skin
        area it covers, :meth:`calibration.Calibration.pixel_area_mm2`).
    proba : torch.Tensor or ndarray, float (K, h, w)
        The network's probabilities at the working image's size.

    Returns
    -------
    models.assess.Assessment or None
    """
    if assessor is None or prepared.working is None:
        return None
    p = proba_to_numpy(proba)
    area = prepared.calibration.pixel_area_mm2(p.shape[1:])
    return assessor.assess(prepared.working, p, pixel_area=area)
