"""Training data: folders of images with PNG label maps, random augmented crops.

A *label folder* holds ``images/<stem>.<jpg|jpeg|png>`` and ``labels/<stem>.png`` (single
channel). Label-file values are mapped to class indices by ``ModelConfig.label_values``
(FUSeg: ``{0: 0, 255: 1}``); a value the mapping lacks is an error naming the file. A
synthetic study prepared by :func:`models.prepare.prepare_synth_study` is a label folder of
working images whose labels are already class indices.

:class:`CropDataset` draws random crops with augmentations; crop ``i`` of epoch ``e`` depends
only on ``(seed, e, i)``, so training is reproducible whatever the number of workers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from models.config import ModelConfig
from models.errors import DatasetError

__all__ = ["Sample", "find_samples", "split_samples", "read_image", "read_labels",
           "CropDataset", "class_frequencies", "skin_type_weights", "colour_jitter",
           "IMAGE_SUFFIXES"]

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


@dataclass(frozen=True)
class Sample:
    """One training image and its label map."""

    image: Path
    labels: Path


def find_samples(folder: str | Path) -> list[Sample]:
    """The (image, label map) pairs of a label folder, sorted by stem.

    Raises
    ------
    DatasetError
        No ``images/`` or ``labels/`` folder, no pairs, or an image without a label map.
    """
    root = Path(folder)
    img_dir, lab_dir = root / "images", root / "labels"
    if not img_dir.is_dir() or not lab_dir.is_dir():
        hint = (" (it is a synthetic study: prepare it with models.prepare.prepare_synth_study "
                "or pass it to `donorsite train`, which does)"
                if (root / "manifest.csv").is_file() else "")
        raise DatasetError(f"{root} is not a label folder: it needs images/ and labels/{hint}")
    labels = {p.stem: p for p in lab_dir.glob("*.png")}
    samples, orphans = [], []
    for p in sorted(img_dir.iterdir()):
        if p.suffix.lower() not in IMAGE_SUFFIXES:
            continue
        if p.stem in labels:
            samples.append(Sample(p, labels[p.stem]))
        else:
            orphans.append(p.name)
    if orphans:
        raise DatasetError(f"{img_dir}: {len(orphans)} image(s) without labels/<stem>.png, "
                           f"e.g. {orphans[:3]}")
    if not samples:
        raise DatasetError(f"{root}: no images with label maps found")
    return samples


def split_samples(samples: Sequence[Sample], fraction: float,
                  seed: int) -> tuple[list[Sample], list[Sample]]:
    """``(train, held_out)``: a fixed random ``fraction`` held out (at least one sample).

    Examples
    --------
    >>> s = [Sample(Path(f"{i}.jpg"), Path(f"{i}.png")) for i in range(10)]
    >>> tr, va = split_samples(s, 0.2, seed=0)
    >>> len(tr), len(va), split_samples(s, 0.2, seed=0)[1] == va
    (8, 2, True)
    """
    samples = list(samples)
    if fraction <= 0:
        return samples, []
    n_val = max(1, int(round(len(samples) * fraction)))
    if n_val >= len(samples):
        raise DatasetError(f"cannot hold out {fraction:.0%} of {len(samples)} samples and "
                           f"keep any for training")
    order = np.random.default_rng(seed).permutation(len(samples))
    val = set(order[:n_val].tolist())
    return ([s for i, s in enumerate(samples) if i not in val],
            [s for i, s in enumerate(samples) if i in val])


def read_image(path: str | Path) -> np.ndarray:
    """An image file as float32 RGB (H, W, 3) in [0, 1]."""
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise DatasetError(f"cannot read image {path}")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB).astype(np.float32) / np.float32(255)


def read_labels(path: str | Path, config: ModelConfig) -> np.ndarray:
    """A label PNG as uint8 class indices through ``config.label_values``.

    Raises
    ------
    DatasetError
        Unreadable, not single-channel, or holding values the mapping lacks.
    """
    raw = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if raw is None:
        raise DatasetError(f"cannot read label map {path}")
    if raw.ndim != 2 or raw.dtype != np.uint8:
        raise DatasetError(f"label map {path} must be a single-channel 8-bit PNG, got shape "
                           f"{raw.shape} dtype {raw.dtype}")
    lut = np.full(256, 255, np.uint8)
    for value, index in config.label_values:
        lut[value] = index
    out = lut[raw]
    if (out == 255).any():
        bad = sorted(set(np.unique(raw).tolist()) - set(config.label_map))
        raise DatasetError(f"label map {path} holds values {bad[:10]} that label_values "
                           f"{config.label_map} does not map to a class")
    return out


def skin_type_weights(samples: Sequence[Sample],
                      weights: Sequence[float]) -> np.ndarray:
    """Sampling weight of each sample from its Fitzpatrick skin type.

    A prepared synthetic study (:func:`models.prepare.prepare_synth_study`) records each
    image's skin type (1..6) in ``photos.csv`` beside ``images/``; sample ``i`` gets
    ``weights[skin_type - 1]``. Samples of folders without that record (plain label folders)
    get weight 1.

    Parameters
    ----------
    samples : sequence of Sample
    weights : sequence of 6 float
        Relative weights of Fitzpatrick types I..VI (>= 0).

    Returns
    -------
    ndarray, float64 (len(samples),)
        Probabilities (summing to 1) for :class:`CropDataset`'s ``sample_weights``.

    Raises
    ------
    DatasetError
        ``weights`` is not 6 non-negative numbers, a recorded skin type is not 1..6, or all
        weights are 0.

    Examples
    --------
    >>> s = [Sample(Path(f"/none/images/{i}.png"), Path(f"/none/labels/{i}.png")) for i in "ab"]
    >>> skin_type_weights(s, [2, 2, 1, 1, 1, 1]).tolist()  # no photos.csv: uniform
    [0.5, 0.5]
    """
    import csv

    w = [float(v) for v in weights]
    if len(w) != 6 or min(w) < 0:
        raise DatasetError(f"skin type weights must be 6 numbers >= 0 (types I..VI), got "
                           f"{list(weights)}")
    types: dict[Path, dict[str, str]] = {}
    out = np.ones(len(samples), np.float64)
    for i, s in enumerate(samples):
        table = s.image.parent.parent / "photos.csv"
        if table not in types:
            types[table] = {}
            if table.is_file():
                with open(table, newline="") as f:
                    types[table] = {r["stem"]: r.get("skin_type", "") for r in csv.DictReader(f)}
        st = types[table].get(s.image.stem, "")
        if st:
            if not st.isdigit() or not 1 <= int(st) <= 6:
                raise DatasetError(f"{table}: skin type {st!r} of {s.image.stem} is not 1..6")
            out[i] = w[int(st) - 1]
    if out.sum() <= 0:
        raise DatasetError(f"skin type weights {w} give every sample weight 0")
    return out / out.sum()


def class_frequencies(samples: Sequence[Sample], config: ModelConfig) -> np.ndarray:
    """Share of pixels of each class over ``samples``."""
    counts = np.zeros(config.n_classes, np.float64)
    for s in samples:
        counts += np.bincount(read_labels(s.labels, config).ravel(),
                              minlength=config.n_classes)[:config.n_classes]
    return counts / max(counts.sum(), 1)


class CropDataset(torch.utils.data.Dataset):
    """Random augmented square crops from label-folder samples.

    Parameters
    ----------
    samples : sequence of Sample
    config : ModelConfig
    crop_size : int
    length : int
        Crops per epoch.
    seed : int
    augment : bool
    foreground_crop_p : float
        Probability that a crop is centred on a random non-background pixel.
    scale_jitter, rotation_jitter_deg : float
        Uniform scale in ``1 ± scale_jitter``; rotation in ``± rotation_jitter_deg``.
    cache : bool
        Keep decoded images (uint8) in memory: faster epochs, memory ~4 bytes per pixel.
    sample_weights : sequence of float, optional
        Probability of drawing each sample for a crop (e.g. :func:`skin_type_weights`);
        default uniform.
    augment_level : {'standard', 'strong'}
        Strength of the colour augmentation (see :func:`colour_jitter`).

    Items are ``(image (3, s, s) float32, labels (s, s) int64)``. Call :meth:`set_epoch`
    before each epoch.
    """

    def __init__(self, samples: Sequence[Sample], config: ModelConfig, *, crop_size: int,
                 length: int, seed: int = 0, augment: bool = True,
                 foreground_crop_p: float = 0.5, scale_jitter: float = 0.1,
                 rotation_jitter_deg: float = 10.0, cache: bool = False,
                 sample_weights: Sequence[float] | None = None,
                 augment_level: str = "standard") -> None:
        if not samples:
            raise DatasetError("CropDataset needs at least one sample")
        self.p: np.ndarray | None = None
        if sample_weights is not None:
            p = np.asarray(sample_weights, np.float64)
            if p.shape != (len(samples),) or not np.isfinite(p).all() or p.min() < 0 \
                    or p.sum() <= 0:
                raise DatasetError(f"sample_weights must be {len(samples)} numbers >= 0 with a "
                                   f"positive sum, got shape {p.shape}")
            self.p = p / p.sum()
        self.samples = list(samples)
        self.config = config
        self.crop_size = int(crop_size)
        self.length = int(length)
        self.seed = int(seed)
        self.augment = augment
        self.fg_p = foreground_crop_p
        self.scale_jitter = scale_jitter
        self.rot_jitter = rotation_jitter_deg
        self.epoch = 0
        self.cache = cache
        self.augment_level = augment_level
        self._cache: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}

    def set_epoch(self, epoch: int) -> None:
        """Select the crops of ``epoch`` (each epoch draws new ones)."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.length

    def _load(self, i: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if i in self._cache:
            return self._cache[i]
        s = self.samples[i]
        bgr = cv2.imread(str(s.image), cv2.IMREAD_COLOR)
        if bgr is None:
            raise DatasetError(f"cannot read image {s.image}")
        labels = read_labels(s.labels, self.config)
        if bgr.shape[:2] != labels.shape:
            raise DatasetError(f"{s.image} is {bgr.shape[:2]} but {s.labels} is "
                               f"{labels.shape}")
        item = (cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), labels,
                np.flatnonzero(labels).astype(np.int64))
        if self.cache:
            self._cache[i] = item
        return item

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        rng = np.random.default_rng([self.seed, self.epoch, int(index)])
        k = rng.integers(len(self.samples)) if self.p is None else rng.choice(len(self.p),
                                                                              p=self.p)
        image, labels, fg = self._load(int(k))
        img, lab = self._crop(image, labels, fg, rng)
        img = img.astype(np.float32) / np.float32(255)
        if self.augment:
            img = colour_jitter(img, rng, level=self.augment_level)
        return (torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1))),
                torch.from_numpy(lab.astype(np.int64)))

    def _crop(self, image: np.ndarray, labels: np.ndarray, fg: np.ndarray,
              rng: np.random.Generator):
        h, w = labels.shape
        c = self.crop_size
        if rng.random() < self.fg_p and len(fg):
            cy, cx = (float(v) for v in divmod(int(fg[rng.integers(len(fg))]), w))
        else:
            # integer centres: without jitter a crop is an exact window of the image
            cy = float(rng.integers(min(c // 2, h // 2), max(h - c // 2, h // 2) + 1))
            cx = float(rng.integers(min(c // 2, w // 2), max(w - c // 2, w // 2) + 1))
        angle, scale = 0.0, 1.0
        if self.augment:
            angle = rng.uniform(-self.rot_jitter, self.rot_jitter)
            scale = rng.uniform(1 - self.scale_jitter, 1 + self.scale_jitter)
        # Affine map: crop pixel -> source pixel, centred on (cx, cy).
        m = cv2.getRotationMatrix2D((c // 2, c // 2), angle, 1.0 / scale)
        m[:, 2] += (cx - c // 2, cy - c // 2)
        flags = cv2.WARP_INVERSE_MAP
        border = cv2.BORDER_REFLECT_101
        img = cv2.warpAffine(image, m, (c, c), flags=cv2.INTER_LINEAR | flags, borderMode=border)
        lab = cv2.warpAffine(labels, m, (c, c), flags=cv2.INTER_NEAREST | flags,
                             borderMode=border)
        if self.augment:
            k = int(rng.integers(4))
            img, lab = np.rot90(img, k), np.rot90(lab, k)
            if rng.random() < 0.5:
                img, lab = img[:, ::-1], lab[:, ::-1]
        return img, lab


def colour_jitter(img: np.ndarray, rng: np.random.Generator, *,
                  level: str = "standard") -> np.ndarray:
    """Brightness/contrast/saturation/hue jitter, then blur and noise (float32 RGB in [0, 1]).

    ``level='strong'`` first applies a wider photometric change — per-channel gains (a
    residual colour cast after correction), gamma, brightness 0.75-1.3, contrast 0.75-1.3,
    hue ±14°, saturation 0.7-1.35 — and may re-compress the crop as a JPEG of quality 35-90.

    Examples
    --------
    >>> img = np.full((8, 8, 3), 0.5, np.float32)
    >>> out = colour_jitter(img, np.random.default_rng(0), level="strong")
    >>> out.shape, out.dtype, bool(0 <= out.min() and out.max() <= 1)
    ((8, 8, 3), dtype('float32'), True)
    """
    img = np.ascontiguousarray(img, dtype=np.float32)
    if level == "strong":
        img = _strong_photometric(img, rng)
    img = img * rng.uniform(0.9, 1.1)                                     # brightness
    mean = img.mean()
    img = (img - mean) * rng.uniform(0.9, 1.1) + mean                     # contrast
    np.clip(img, 0, 1, out=img)
    hsv = cv2.cvtColor(img, cv2.COLOR_RGB2HSV)                            # H in [0, 360)
    hsv[..., 0] = (hsv[..., 0] + rng.uniform(-6, 6)) % 360
    hsv[..., 1] = np.clip(hsv[..., 1] * rng.uniform(0.9, 1.1), 0, 1)
    img = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)
    if rng.random() < 0.3:
        img = cv2.GaussianBlur(img, (0, 0), rng.uniform(0.3, 1.2))
    if rng.random() < 0.3:
        img = img + rng.normal(0, rng.uniform(0.005, 0.02), img.shape).astype(np.float32)
    img = np.clip(img, 0, 1).astype(np.float32)
    if level == "strong" and rng.random() < 0.3:
        img = _jpeg_roundtrip(img, int(rng.integers(35, 91)))
    return img


def _strong_photometric(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    img = img * np.exp(rng.normal(0, 0.06, 3)).astype(np.float32)          # residual cast
    np.clip(img, 0, 1, out=img)
    img = img ** np.float32(np.exp(rng.uniform(np.log(0.75), np.log(1.33))))  # gamma
    img = img * np.float32(rng.uniform(0.75, 1.3))
    mean = img.mean()
    img = (img - mean) * np.float32(rng.uniform(0.75, 1.3)) + mean
    np.clip(img, 0, 1, out=img)
    hsv = cv2.cvtColor(img, cv2.COLOR_RGB2HSV)
    hsv[..., 0] = (hsv[..., 0] + rng.uniform(-14, 14)) % 360
    hsv[..., 1] = np.clip(hsv[..., 1] * rng.uniform(0.7, 1.35), 0, 1)
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)


def _jpeg_roundtrip(img: np.ndarray, quality: int) -> np.ndarray:
    bgr = np.ascontiguousarray(np.round(img[..., ::-1] * 255).astype(np.uint8))
    ok, buf = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:  # pragma: no cover - OpenCV always encodes a small uint8 image
        return img
    out = cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1]
    return np.ascontiguousarray(out, dtype=np.float32) / np.float32(255)
