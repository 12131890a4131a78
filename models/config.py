"""Validated, immutable configurations: the network (:class:`ModelConfig`) and its training
(:class:`TrainConfig`).

Both are frozen dataclasses validated on construction; every error is a
:class:`~models.errors.ModelConfigError` that names the field and echoes the bad value. They
round-trip through plain dicts / JSON (:meth:`ModelConfig.to_dict`, :meth:`ModelConfig.from_json`)
so a model card can carry the exact configuration of its weights.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from models.errors import ModelConfigError

__all__ = ["ARCHITECTURES", "ModelConfig", "TrainConfig", "preset", "PRESETS"]

#: Architectures the factory builds (segmentation_models_pytorch classes). For ``'unet'`` and
#: ``'unetplusplus'`` ``decoder_channels`` has one entry per encoder stage; for ``'fpn'`` it is
#: ``(pyramid_channels, segmentation_channels)``.
ARCHITECTURES = ("unet", "unetplusplus", "fpn")
DEVICES = ("auto", "cpu", "cuda")
#: Augmentation strengths of :class:`TrainConfig` (``augment_level``).
AUGMENT_LEVELS = ("standard", "strong")


def _err(name: str, value: object, why: str, source: str = "") -> ModelConfigError:
    where = f" in {source}" if source else ""
    return ModelConfigError(f"model config{where}: {name} {why}, got {value!r}")


@dataclass(frozen=True)
class ModelConfig:
    """What the network is and what it sees.

    Parameters
    ----------
    architecture : {'unet', 'unetplusplus', 'fpn'}
        segmentation_models_pytorch architecture.
    encoder : str
        smp encoder name (``'mobilenet_v2'``, ``'efficientnet-b0'``) or a timm encoder with
        the ``'tu-'`` prefix (``'tu-mobilenetv3_large_100'``). Built without pretrained weights.
    encoder_depth : int
        Encoder stages, 3 to 5; the output stride (what input sides must divide) is
        ``2 ** encoder_depth``.
    decoder_channels : tuple of int
        See :data:`ARCHITECTURES`.
    classes : tuple of str
        Class names; index 0 is the background.
    label_values : mapping of int to int, optional
        Label-file value -> class index (``{0: 0, 255: 1}`` for FUSeg). Default: identity.
    px_per_mm : float or None
        Working scale the network was trained at; ``None`` means images are used at their own
        resolution (no physical scale, e.g. FUSeg).
    tile_size : int
        Side of the square tiles the predictor feeds the network (multiple of the stride).
    tile_overlap : float
        Fraction of a tile shared with its neighbour, in [0, 0.75].
    in_channels : int
        Input channels (3 for RGB).
    input_mean, input_std : tuple of float
        Per-channel normalisation applied inside the network module to [0, 1] inputs.

    Examples
    --------
    >>> cfg = ModelConfig(classes=("background", "wound"), label_values={0: 0, 255: 1})
    >>> cfg.n_classes, cfg.stride, cfg.label_map[255]
    (2, 32, 1)
    """

    architecture: str = "unet"
    encoder: str = "tu-mobilenetv3_large_100"
    encoder_depth: int = 5
    decoder_channels: tuple[int, ...] = (64, 32, 16, 16, 8)
    classes: tuple[str, ...] = ("background", "epithelialized", "raw")
    label_values: Any = None
    px_per_mm: float | None = 3.0
    tile_size: int = 384
    tile_overlap: float = 0.25
    in_channels: int = 3
    input_mean: tuple[float, ...] = (0.5, 0.5, 0.5)
    input_std: tuple[float, ...] = (0.25, 0.25, 0.25)

    def __post_init__(self) -> None:
        s = object.__setattr__
        if self.architecture not in ARCHITECTURES:
            raise _err("architecture", self.architecture, f"must be one of {ARCHITECTURES}")
        if not isinstance(self.encoder, str) or not self.encoder.strip():
            raise _err("encoder", self.encoder, "must be a non-empty smp/timm encoder name")
        if not _is_int(self.encoder_depth) or not 3 <= self.encoder_depth <= 5:
            raise _err("encoder_depth", self.encoder_depth, "must be an integer from 3 to 5")
        try:
            dec = tuple(int(c) for c in self.decoder_channels)
        except (TypeError, ValueError):
            raise _err("decoder_channels", self.decoder_channels, "must be integers") from None
        want = 2 if self.architecture == "fpn" else self.encoder_depth
        if len(dec) != want or any(c < 1 for c in dec):
            raise _err("decoder_channels", self.decoder_channels,
                       f"must be {want} positive integers for {self.architecture!r} "
                       f"with encoder_depth={self.encoder_depth}")
        if self.architecture == "fpn" and dec[1] % 32:
            raise _err("decoder_channels", self.decoder_channels,
                       "must have a segmentation width (2nd entry) divisible by 32 for 'fpn' "
                       "(GroupNorm with 32 groups)")
        s(self, "decoder_channels", dec)
        classes = tuple(self.classes) if not isinstance(self.classes, str) else ()
        if len(classes) < 2 or not all(isinstance(c, str) and c for c in classes):
            raise _err("classes", self.classes, "must be at least 2 non-empty names "
                       "(index 0 = background)")
        if len(set(classes)) != len(classes):
            raise _err("classes", self.classes, "must be unique")
        s(self, "classes", classes)
        s(self, "label_values", self._check_label_values(self.label_values, len(classes)))
        if self.px_per_mm is not None:
            if not _is_num(self.px_per_mm) or not 0 < float(self.px_per_mm) <= 100:
                raise _err("px_per_mm", self.px_per_mm, "must be a number in (0, 100] or None")
            s(self, "px_per_mm", float(self.px_per_mm))
        if not _is_int(self.tile_size) or self.tile_size < self.stride or \
                self.tile_size % self.stride:
            raise _err("tile_size", self.tile_size,
                       f"must be a positive multiple of the output stride {self.stride}")
        if not _is_num(self.tile_overlap) or not 0 <= float(self.tile_overlap) <= 0.75:
            raise _err("tile_overlap", self.tile_overlap, "must be a number in [0, 0.75]")
        s(self, "tile_overlap", float(self.tile_overlap))
        if not _is_int(self.in_channels) or self.in_channels < 1:
            raise _err("in_channels", self.in_channels, "must be a positive integer")
        for name in ("input_mean", "input_std"):
            v = getattr(self, name)
            try:
                t = tuple(float(x) for x in v)
            except (TypeError, ValueError):
                raise _err(name, v, "must be numbers") from None
            if len(t) != self.in_channels or (name == "input_std" and min(t) <= 0):
                raise _err(name, v, f"must be {self.in_channels} numbers (std > 0)")
            s(self, name, t)

    @staticmethod
    def _check_label_values(lv: Any, n: int) -> tuple[tuple[int, int], ...]:
        if lv is None:
            return tuple((i, i) for i in range(n))
        items = lv.items() if isinstance(lv, Mapping) else lv
        try:
            pairs = tuple(sorted((int(k), int(v)) for k, v in items))
        except (TypeError, ValueError):
            raise _err("label_values", lv, "must map file values to class indices") from None
        for k, v in pairs:
            if not 0 <= k <= 255 or not 0 <= v < n:
                raise _err("label_values", lv, f"must map values 0..255 to class indices "
                           f"0..{n - 1} (bad pair {k}: {v})")
        if len({k for k, _ in pairs}) != len(pairs) or not pairs:
            raise _err("label_values", lv, "must have unique file values")
        return pairs

    # ------------------------------------------------------------------ derived values
    @property
    def n_classes(self) -> int:
        """Number of classes (network output channels)."""
        return len(self.classes)

    @property
    def stride(self) -> int:
        """Output stride: input sides must be multiples of it (the predictor pads)."""
        return 2 ** self.encoder_depth

    @property
    def label_map(self) -> dict[int, int]:
        """Label-file value -> class index."""
        return dict(self.label_values)

    # ---------------------------------------------------------------- serialisation
    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict (``label_values`` with string keys, as JSON requires)."""
        d = asdict(self)
        d["label_values"] = {str(k): v for k, v in self.label_values}
        for k in ("decoder_channels", "classes", "input_mean", "input_std"):
            d[k] = list(d[k])
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], *, source: str = "") -> ModelConfig:
        """Build from :meth:`to_dict` output; unknown keys are an error."""
        return _from_dict(cls, d, source)

    def to_json(self, path: str | Path | None = None) -> str:
        """JSON text; also written to ``path`` when given."""
        text = json.dumps(self.to_dict(), indent=2)
        if path is not None:
            Path(path).write_text(text + "\n")
        return text

    @classmethod
    def from_json(cls, path: str | Path) -> ModelConfig:
        """Read a JSON file written by :meth:`to_json`."""
        return cls.from_dict(_read_json(path), source=str(path))


@dataclass(frozen=True)
class TrainConfig:
    """How to train.

    Parameters
    ----------
    epochs, steps_per_epoch, batch_size : int
        One epoch is ``steps_per_epoch`` batches of random crops.
    crop_size : int or None
        Training crop side (multiple of the stride); ``None`` uses the model's ``tile_size``.
    lr, weight_decay : float
        AdamW; cosine decay after a short linear warm-up.
    class_weights : tuple of float or None
        Cross-entropy class weights (``None``: all 1).
    dice_weight, ce_weight : float
        Loss = ce_weight * CE + dice_weight * (1 - soft Dice of the foreground classes).
    foreground_crop_p : float
        Probability that a crop is centred on a random non-background pixel.
    augment : bool
        Flips, 90° rotations, scale/rotation jitter, colour jitter, blur, noise.
    val_fraction : float
        Fraction of the training images held out for validation (fixed by ``split_seed``)
        when no separate validation folder is given.
    seed : int
        Seeds the weights, the crops and the augmentations.
    num_workers : int
        DataLoader worker processes.
    device : {'auto', 'cpu', 'cuda'}
    amp : bool
        bf16 autocast on CUDA (ignored on CPU).
    max_val_images : int or None
        Cap on validation images per epoch.
    cache_images : bool
        Keep decoded training images in memory (use with ``num_workers=0``).
    deterministic : bool
        ``torch.use_deterministic_algorithms`` during training. Off by default: on CPU the
        default kernels already repeat exactly for a given seed and thread count, and the
        deterministic upsampling backward is ~6x slower; turn it on for CUDA runs that must
        repeat bit for bit.
    skin_type_weights : tuple of 6 float or None
        Relative probability of drawing a crop from a photo of Fitzpatrick type I..VI (read
        from a prepared synthetic study's ``photos.csv``; other images weigh 1). ``None``:
        every image equally.
    num_threads : int or None
        torch CPU threads during training (``None``: torch's default). On a CPU shared with
        other busy processes 1 thread can be several times faster than 2, because OpenMP
        threads wait on each other when they do not get a core each.
    data_weights : tuple of float or None
        Share of the crops drawn from each training folder/study, in the order they are
        given (normalised; within a folder the skin-type weights apply). ``None``: every
        image equally, whatever its folder.
    init_from : str or None
        Start from the weights of this model file (or registered name) instead of random
        weights; it must have the same architecture and classes.
    augment_level : {'standard', 'strong'}
        ``'strong'`` widens the colour jitter (brightness, contrast, hue, saturation, gamma,
        per-channel gains) and adds JPEG re-compression, for models that must hold on photos
        unlike their training data.

    Examples
    --------
    >>> TrainConfig(epochs=2, steps_per_epoch=5).total_steps
    10
    """

    epochs: int = 20
    steps_per_epoch: int = 100
    batch_size: int = 8
    crop_size: int | None = None
    lr: float = 2e-3
    weight_decay: float = 1e-4
    class_weights: tuple[float, ...] | None = None
    dice_weight: float = 1.0
    ce_weight: float = 1.0
    foreground_crop_p: float = 0.5
    augment: bool = True
    scale_jitter: float = 0.1
    rotation_jitter_deg: float = 10.0
    val_fraction: float = 0.0
    split_seed: int = 0
    seed: int = 0
    num_workers: int = 0
    device: str = "auto"
    amp: bool = True
    max_val_images: int | None = None
    cache_images: bool = False
    deterministic: bool = False
    num_threads: int | None = None
    skin_type_weights: tuple[float, ...] | None = None
    data_weights: tuple[float, ...] | None = None
    init_from: str | None = None
    augment_level: str = "standard"

    def __post_init__(self) -> None:
        for name in ("epochs", "steps_per_epoch", "batch_size"):
            v = getattr(self, name)
            if not _is_int(v) or v < 1:
                raise _err(name, v, "must be a positive integer")
        if self.crop_size is not None and (not _is_int(self.crop_size) or self.crop_size < 16):
            raise _err("crop_size", self.crop_size, "must be an integer >= 16 or None")
        for name in ("lr", "weight_decay", "dice_weight", "ce_weight", "scale_jitter",
                     "rotation_jitter_deg"):
            v = getattr(self, name)
            if not _is_num(v) or v < 0 or (name == "lr" and v == 0):
                raise _err(name, v, "must be a non-negative number (lr > 0)")
        if self.dice_weight == 0 and self.ce_weight == 0:
            raise _err("dice_weight/ce_weight", (0, 0), "must not both be 0")
        if self.class_weights is not None:
            try:
                cw = tuple(float(w) for w in self.class_weights)
            except (TypeError, ValueError):
                raise _err("class_weights", self.class_weights, "must be numbers") from None
            if not cw or min(cw) < 0 or max(cw) == 0:
                raise _err("class_weights", self.class_weights, "must be >= 0, not all 0")
            object.__setattr__(self, "class_weights", cw)
        if self.skin_type_weights is not None:
            try:
                sw = tuple(float(w) for w in self.skin_type_weights)
            except (TypeError, ValueError):
                raise _err("skin_type_weights", self.skin_type_weights, "must be numbers") \
                    from None
            if len(sw) != 6 or min(sw) < 0 or max(sw) == 0:
                raise _err("skin_type_weights", self.skin_type_weights,
                           "must be 6 numbers >= 0 (types I..VI), not all 0")
            object.__setattr__(self, "skin_type_weights", sw)
        if self.data_weights is not None:
            try:
                dw = tuple(float(w) for w in self.data_weights)
            except (TypeError, ValueError):
                raise _err("data_weights", self.data_weights, "must be numbers") from None
            if not dw or min(dw) < 0 or max(dw) == 0:
                raise _err("data_weights", self.data_weights,
                           "must be one number >= 0 per training folder, not all 0")
            object.__setattr__(self, "data_weights", dw)
        if self.init_from is not None and (not isinstance(self.init_from, str)
                                           or not self.init_from):
            raise _err("init_from", self.init_from, "must be a model path or name, or None")
        if self.augment_level not in AUGMENT_LEVELS:
            raise _err("augment_level", self.augment_level, f"must be one of {AUGMENT_LEVELS}")
        for name in ("foreground_crop_p",):
            v = getattr(self, name)
            if not _is_num(v) or not 0 <= v <= 1:
                raise _err(name, v, "must be in [0, 1]")
        if not _is_num(self.val_fraction) or not 0 <= self.val_fraction < 1:
            raise _err("val_fraction", self.val_fraction, "must be in [0, 1)")
        for name in ("seed", "split_seed", "num_workers"):
            v = getattr(self, name)
            if not _is_int(v) or v < 0:
                raise _err(name, v, "must be a non-negative integer")
        if self.device not in DEVICES:
            raise _err("device", self.device, f"must be one of {DEVICES}")
        if self.num_threads is not None and (not _is_int(self.num_threads)
                                             or self.num_threads < 1):
            raise _err("num_threads", self.num_threads, "must be a positive integer or None")
        if self.max_val_images is not None and (not _is_int(self.max_val_images)
                                                or self.max_val_images < 1):
            raise _err("max_val_images", self.max_val_images, "must be a positive integer")

    @property
    def total_steps(self) -> int:
        """Optimiser steps over the whole run."""
        return self.epochs * self.steps_per_epoch

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict."""
        d = asdict(self)
        for k in ("class_weights", "skin_type_weights", "data_weights"):
            if d[k] is not None:
                d[k] = list(d[k])
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], *, source: str = "") -> TrainConfig:
        """Build from :meth:`to_dict` output; unknown keys are an error."""
        return _from_dict(cls, d, source)


def _from_dict(cls: type, d: Mapping[str, Any], source: str) -> Any:
    if not isinstance(d, Mapping):
        raise _err(cls.__name__, d, "must be a JSON object", source)
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(d) - known)
    if unknown:
        raise _err("key", unknown[0], f"is not a {cls.__name__} field {sorted(known)}", source)
    kw = dict(d)
    for k in ("decoder_channels", "classes", "input_mean", "input_std", "class_weights",
              "skin_type_weights", "data_weights"):
        if isinstance(kw.get(k), list):
            kw[k] = tuple(kw[k])
    try:
        return cls(**kw)
    except ModelConfigError as exc:
        if source:
            raise ModelConfigError(f"{exc} (in {source})") from None
        raise


def _read_json(path: str | Path) -> Any:
    p = Path(path)
    try:
        return json.loads(p.read_text())
    except FileNotFoundError:
        raise ModelConfigError(f"model config file not found: {p}") from None
    except (OSError, json.JSONDecodeError) as exc:
        raise ModelConfigError(f"model config file {p} is not readable JSON: {exc}") from None


def _is_int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v: object) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


#: Named configurations: ``'starter'`` (the shipped donor-site model, 3 classes at 3 px/mm),
#: ``'fuseg'`` (2-class wound model for the FUSeg 512×512 photos at their own resolution).
PRESETS: dict[str, ModelConfig] = {
    "starter": ModelConfig(),
    "fuseg": ModelConfig(classes=("background", "wound"), label_values={0: 0, 255: 1},
                         px_per_mm=None, tile_size=512),
}


def preset(name_or_path: str | Path) -> ModelConfig:
    """A named preset (see :data:`PRESETS`) or a JSON file written by :meth:`ModelConfig.to_json`.

    Examples
    --------
    >>> preset("fuseg").classes
    ('background', 'wound')
    """
    if str(name_or_path) in PRESETS:
        return PRESETS[str(name_or_path)]
    p = Path(name_or_path)
    if p.suffix.lower() == ".json" or p.exists():
        return ModelConfig.from_json(p)
    raise ModelConfigError(f"model config {str(name_or_path)!r} is neither a preset "
                           f"{sorted(PRESETS)} nor a JSON file")
