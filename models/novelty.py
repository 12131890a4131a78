"""Is this photo like the ones the model learned from? A per-photo out-of-distribution score.

A network's own probabilities can be high on a picture it has never seen anything like (a
cat, a retina), so the certainty of :mod:`models.confidence` is not enough. This module
describes each photo by a few interpretable figures of what the network found and what
surrounds it — the colour (CIE L*a*b* of the colour-corrected working image) of the predicted
donor site and of the skin ring around it, the site's size and fragmentation, and the
network's certainty — and compares that description with the descriptions of the model's
own training and validation photos (every kind of data it learned from: both synthetic
appearance models, real wounds). The score is the mean distance to the ``k`` nearest
reference photos, in robustly standardised units, divided by the same figure's 97.5th
percentile among the reference photos themselves (leave-one-out): below 1 is "like the
training data", above 1 is flagged ``out_of_distribution``.

The reference set ships in the model card (``novelty``), fitted by the recipe that trained
the model, so a model and its notion of "familiar" travel together.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from models.errors import InputShapeError

__all__ = ["DESCRIPTOR_NAMES", "photo_descriptor", "NoveltyReference"]

#: What :func:`photo_descriptor` returns, in order.
DESCRIPTOR_NAMES = ("site_L", "site_a", "site_b", "ring_L", "ring_a", "ring_b",
                    "ring_skin_share", "log_site_area_mm2", "log_components",
                    "confidence", "healed_interval", "site_hue_spread")
_RING_MM = (3.0, 12.0)
#: Smallest unit each figure is measured in when standardising (a figure that hardly varies
#: among the reference photos must not make every small difference look enormous).
_UNIT = np.array([3.0, 3.0, 3.0, 3.0, 3.0, 3.0, 0.05, 0.1, 0.2, 0.01, 1.0, 3.0])


def _lab(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(np.clip(rgb, 0, 1).astype(np.float32), cv2.COLOR_RGB2Lab)


def _skin_like(lab: np.ndarray) -> np.ndarray:
    """Pixels whose colour lies in a generous skin locus (all Fitzpatrick types)."""
    L, a, b = lab[..., 0], lab[..., 1], lab[..., 2]
    hue = np.degrees(np.arctan2(b, a))
    chroma = np.hypot(a, b)
    return (L > 5) & (L < 95) & (chroma > 2) & (chroma < 70) & (hue > -5) & (hue < 95)


def photo_descriptor(working: np.ndarray, proba: np.ndarray, *, px_per_mm: float,
                     confidence: float | None = None,
                     healed_interval: float | None = None) -> np.ndarray | None:
    """The description of one photo (``None`` when no donor site was found).

    Parameters
    ----------
    working : ndarray, float (h, w, 3)
        The colour-corrected working image (sRGB in [0, 1]) the network saw.
    proba : ndarray, float (K, h, w)
        The network's class probabilities for it (class 0 background).
    px_per_mm : float
        The working scale.
    confidence, healed_interval : float, optional
        From :func:`models.confidence.photo_confidence` (0 and 0 when not given).

    Returns
    -------
    ndarray of float64, shape (len(DESCRIPTOR_NAMES),), or None

    Examples
    --------
    >>> img = np.full((60, 60, 3), (0.8, 0.6, 0.5), np.float32)   # skin
    >>> img[20:40, 20:40] = (0.7, 0.2, 0.2)                         # a red site
    >>> p = np.zeros((3, 60, 60), np.float32); p[0] = 1
    >>> p[:, 20:40, 20:40] = np.array([0, 0, 1.0])[:, None, None]
    >>> d = photo_descriptor(img, p, px_per_mm=3.0)
    >>> float(d[DESCRIPTOR_NAMES.index("ring_skin_share")])
    1.0
    """
    img = np.asarray(working, dtype=np.float32)
    p = np.asarray(proba, dtype=np.float32)
    if img.ndim != 3 or p.ndim != 3 or img.shape[:2] != p.shape[1:]:
        raise InputShapeError(f"working image {img.shape} and probabilities {p.shape} must be "
                              f"(h, w, 3) and (K, h, w) of the same size")
    site = p[0] < 0.5
    if not site.any():
        return None
    lab = _lab(img)
    s = lab[site]
    n_comp, _ = cv2.connectedComponents(site.astype(np.uint8), connectivity=8)
    dist = cv2.distanceTransform((~site).astype(np.uint8), cv2.DIST_L2, 5) / px_per_mm
    ring = (dist >= _RING_MM[0]) & (dist <= _RING_MM[1])
    r = lab[ring] if ring.any() else np.zeros((1, 3), np.float32)
    ring_skin = float(_skin_like(lab)[ring].mean()) if ring.any() else 0.0
    hue = np.degrees(np.arctan2(s[:, 2], s[:, 1]))
    spread = float(np.subtract(*np.percentile(hue, [90, 10])))
    area = float(site.sum()) / px_per_mm ** 2
    return np.array([*np.median(s, axis=0), *np.median(r, axis=0), ring_skin,
                     np.log(area + 1.0), np.log(n_comp - 1.0 + 1.0),
                     confidence if confidence is not None else 0.0,
                     healed_interval if healed_interval is not None else 0.0, spread],
                    dtype=np.float64)


@dataclass(frozen=True)
class NoveltyReference:
    """The descriptions of the reference photos, standardised, and the score's scale.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> ref = NoveltyReference.fit(rng.normal(0, 1, (200, len(DESCRIPTOR_NAMES))), k=5)
    >>> typical = ref.score(np.zeros(len(DESCRIPTOR_NAMES)))
    >>> far = ref.score(np.full(len(DESCRIPTOR_NAMES), 8.0))
    >>> bool(typical < 1 < far)
    True
    """

    center: np.ndarray
    scale: np.ndarray
    points: np.ndarray  # standardised reference descriptions (n, d)
    k: int
    threshold_distance: float  # 97.5th percentile of the leave-one-out k-NN distance

    @classmethod
    def fit(cls, descriptors: np.ndarray, *, k: int = 5, quantile: float = 97.5
            ) -> NoveltyReference:
        x = np.asarray(descriptors, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != len(DESCRIPTOR_NAMES) or len(x) <= k:
            raise InputShapeError(f"descriptors must be (n > k, {len(DESCRIPTOR_NAMES)}), got "
                                  f"{x.shape}")
        center = np.median(x, axis=0)
        mad = np.median(np.abs(x - center), axis=0) * 1.4826
        scale = np.maximum(mad, _UNIT)
        z = (x - center) / scale
        d = np.sqrt(((z[:, None, :] - z[None, :, :]) ** 2).sum(-1))
        np.fill_diagonal(d, np.inf)
        loo = np.sort(d, axis=1)[:, :k].mean(axis=1)
        return cls(center, scale, z, int(k), float(np.percentile(loo, quantile)))

    def score(self, descriptor: np.ndarray | None) -> float | None:
        """Novelty of one description: ~1 at the reference photos' 97.5th percentile."""
        if descriptor is None:
            return None
        z = (np.asarray(descriptor, dtype=np.float64) - self.center) / self.scale
        d = np.sqrt(((self.points - z) ** 2).sum(-1))
        return float(np.sort(d)[:self.k].mean() / self.threshold_distance)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able form (stored in the model card's ``novelty``)."""
        return {"descriptor": list(DESCRIPTOR_NAMES), "k": self.k,
                "threshold_distance": round(self.threshold_distance, 6),
                "center": [round(float(v), 6) for v in self.center],
                "scale": [round(float(v), 6) for v in self.scale],
                "points": np.round(self.points, 4).tolist()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> NoveltyReference:
        if list(d.get("descriptor", [])) != list(DESCRIPTOR_NAMES):
            raise InputShapeError(f"novelty reference describes {d.get('descriptor')}, this "
                                  f"version computes {list(DESCRIPTOR_NAMES)}: refit it")
        return cls(np.asarray(d["center"], np.float64), np.asarray(d["scale"], np.float64),
                   np.asarray(d["points"], np.float64), int(d["k"]),
                   float(d["threshold_distance"]))
