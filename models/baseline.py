"""A classical baseline: thresholds in CIE L*a*b* on the colour-corrected working image.

Reported beside the U-Net so the gain from the network is visible. Two axis-aligned
thresholds, fitted on training label folders by exhaustive search over quantiles:

1. donor site vs intact skin: one of L*, a*, b*, C*ab, h_ab above/below a threshold;
2. inside the donor site, raw vs epithelialized: again one feature and a threshold;

followed by a median filter of the label map. The image is smoothed (Gaussian, sigma in
working pixels) before the conversion so sensor noise does not speckle the result.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np

from models.config import ModelConfig
from models.datasets import Sample, read_image, read_labels
from models.errors import DatasetError, ModelConfigError

__all__ = ["FEATURES", "Threshold", "LabBaseline", "lab_features", "fit_baseline"]

#: Features the thresholds may use: CIE L*, a*, b* (D65), chroma C*ab and hue angle h_ab (deg).
FEATURES = ("L", "a", "b", "C", "h")


@dataclass(frozen=True)
class Threshold:
    """``feature > value`` (``above=True``) or ``feature <= value`` selects the class."""

    feature: str
    value: float
    above: bool

    def __post_init__(self) -> None:
        if self.feature not in FEATURES:
            raise ModelConfigError(f"baseline feature must be one of {FEATURES}, got "
                                   f"{self.feature!r}")

    def apply(self, feats: np.ndarray) -> np.ndarray:
        x = feats[..., FEATURES.index(self.feature)]
        return x > self.value if self.above else x <= self.value


def lab_features(image_rgb: np.ndarray, *, smooth_sigma: float = 1.0) -> np.ndarray:
    """(H, W, 5) float32 features L*, a*, b*, C*ab, h_ab of an sRGB float image.

    Examples
    --------
    >>> f = lab_features(np.full((4, 4, 3), [0.8, 0.2, 0.2], np.float32))
    >>> bool(f[0, 0, 1] > 40)  # strongly red: high a*
    True
    """
    from skimage.color import rgb2lab

    img = np.asarray(image_rgb, np.float32)
    if smooth_sigma > 0:
        img = cv2.GaussianBlur(img, (0, 0), smooth_sigma)
    lab = rgb2lab(np.clip(img, 0, 1)).astype(np.float32)
    c = np.hypot(lab[..., 1], lab[..., 2])
    h = np.degrees(np.arctan2(lab[..., 2], lab[..., 1])) % 360
    return np.concatenate([lab, c[..., None], h[..., None]], axis=-1)


@dataclass(frozen=True)
class LabBaseline:
    """Two Lab thresholds + a median filter; labels 0 background, 1 epithelialized, 2 raw.

    Examples
    --------
    >>> bl = LabBaseline(Threshold("a", 20.0, True), Threshold("L", 50.0, False))
    >>> img = np.zeros((20, 20, 3), np.float32) + [0.8, 0.7, 0.6]   # skin-ish
    >>> img[5:15, 5:15] = [0.6, 0.1, 0.1]                            # dark red: raw
    >>> int(bl.predict(img)[10, 10]), int(bl.predict(img)[0, 0])
    (2, 0)
    """

    donor: Threshold
    raw: Threshold
    smooth_sigma: float = 1.0
    median_size: int = 5
    fitted_dice: tuple[float, float] = (float("nan"), float("nan"))

    def predict(self, image_rgb: np.ndarray) -> np.ndarray:
        """uint8 label map of a colour-corrected working image."""
        f = lab_features(image_rgb, smooth_sigma=self.smooth_sigma)
        donor = self.donor.apply(f)
        out = np.where(donor, np.where(self.raw.apply(f), 2, 1), 0).astype(np.uint8)
        if self.median_size > 1:
            out = cv2.medianBlur(out, self.median_size)
        return out

    def to_json(self, path: str | Path) -> Path:
        """Write the thresholds as JSON."""
        Path(path).write_text(json.dumps(asdict(self), indent=2) + "\n")
        return Path(path)

    @classmethod
    def from_json(cls, path: str | Path) -> LabBaseline:
        """Read thresholds written by :meth:`to_json`."""
        try:
            d = json.loads(Path(path).read_text())
            return cls(Threshold(**d["donor"]), Threshold(**d["raw"]),
                       float(d["smooth_sigma"]), int(d["median_size"]),
                       tuple(d.get("fitted_dice", (np.nan, np.nan))))
        except (OSError, KeyError, TypeError, json.JSONDecodeError) as exc:
            raise ModelConfigError(f"baseline file {path} is unreadable: {exc}") from None


def _best_threshold(feats: np.ndarray, target: np.ndarray, n_q: int = 96) -> tuple[Threshold,
                                                                                     float]:
    best = (Threshold("L", 0.0, True), -1.0)
    n_pos = target.sum()
    for j, name in enumerate(FEATURES):
        x = feats[:, j]
        for v in np.unique(np.quantile(x, np.linspace(0.01, 0.99, n_q))):
            sel = x > v
            tp = np.count_nonzero(sel & target)
            for above, (tp_, n_sel) in ((True, (tp, sel.sum())),
                                        (False, (n_pos - tp, len(x) - sel.sum()))):
                dice = 2 * tp_ / max(1, n_sel + n_pos)
                if dice > best[1]:
                    best = (Threshold(name, float(v), above), float(dice))
    return best


def fit_baseline(samples: Sequence[Sample], config: ModelConfig, *, pixels_per_image: int = 20000,
                 seed: int = 0, smooth_sigma: float = 1.0, median_size: int = 5) -> LabBaseline:
    """Fit the two thresholds on training images (colour-corrected working images).

    Parameters
    ----------
    samples : sequence of Sample
        Label folders with classes 0 background, 1 epithelialized, 2 raw.
    config : ModelConfig
        For the label mapping.
    pixels_per_image : int
        Random pixels drawn from each image (seeded).
    """
    if config.n_classes != 3:
        raise DatasetError(f"the Lab baseline needs 3 classes (background, epithelialized, "
                           f"raw), got {config.classes}")
    if not samples:
        raise DatasetError("fit_baseline needs at least one training image")
    rng = np.random.default_rng(seed)
    feats, labels = [], []
    for s in samples:
        f = lab_features(read_image(s.image), smooth_sigma=smooth_sigma).reshape(-1, 5)
        lab = read_labels(s.labels, config).ravel()
        idx = rng.choice(len(lab), size=min(pixels_per_image, len(lab)), replace=False)
        feats.append(f[idx])
        labels.append(lab[idx])
    f, lab = np.concatenate(feats), np.concatenate(labels)
    donor, d_dice = _best_threshold(f, lab > 0)
    inside = lab > 0
    if not inside.any():
        raise DatasetError("no donor-site pixels in the training images")
    raw, r_dice = _best_threshold(f[inside], lab[inside] == 2)
    return LabBaseline(donor, raw, smooth_sigma, median_size, (round(d_dice, 4),
                                                               round(r_dice, 4)))
