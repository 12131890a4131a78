"""Predictor: load a network once, segment many working images, on CPU or CUDA.

The batch processing, the benchmark and the review app all call :class:`Predictor`. It pads
images whose sides are not multiples of the network's stride, tiles images larger than the
model's tile size with overlap and Gaussian blending (:mod:`models.tiling`), runs tiles in
batches (tiles of several images share batches), and can return the label map at another
resolution (e.g. the full photo), upsampling the class probabilities before the argmax so the
full-resolution outline is smooth rather than blocky.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from models.config import ModelConfig
from models.errors import InputShapeError, ModelConfigError
from models.preprocess import as_float_rgb
from models.tiling import (
    gaussian_importance,
    pad_image,
    plan_tiles,
    upsample_argmax,
    upsample_proba,
)

__all__ = ["Predictor", "resolve_device"]

PRECISIONS = ("auto", "fp32", "bf16")


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``'auto'`` -> CUDA when available, else CPU; ``'cuda'`` without CUDA is an error.

    Examples
    --------
    >>> resolve_device("cpu").type
    'cpu'
    """
    if isinstance(device, torch.device):
        return device
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device not in ("cpu", "cuda") and not str(device).startswith("cuda:"):
        raise ModelConfigError(f"device must be one of 'auto', 'cpu', 'cuda', got {device!r}")
    if str(device).startswith("cuda") and not torch.cuda.is_available():
        raise ModelConfigError(f"device {device!r} requested but CUDA is not available; "
                               f"use device='cpu' or 'auto'")
    return torch.device(device)


class Predictor:
    """Segment images with one loaded network.

    Parameters
    ----------
    model : nn.Module
        Maps ``(N, C, H, W)`` images in [0, 1] (sides multiples of ``config.stride``) to class
        logits ``(N, K, H, W)`` — e.g. :func:`models.factory.build_model` with loaded weights.
    config : ModelConfig
        Tile size, overlap, stride and classes.
    device : {'auto', 'cpu', 'cuda'} or torch.device
    precision : {'auto', 'fp32', 'bf16'}
        ``'auto'``: bf16 autocast on CUDA when supported, fp32 otherwise.
    channels_last : bool or None
        Memory format for convolutions; default: on CUDA only.
    batch_size : int
        Tiles per forward pass.
    card : dict or None
        The model card the weights came with (kept for provenance: ``card['sha256']``).

    Examples
    --------
    >>> from models.factory import build_model
    >>> cfg = ModelConfig(encoder="tu-resnet10t", encoder_depth=3,
    ...                   decoder_channels=(16, 8, 8), tile_size=64)
    >>> pred = Predictor(build_model(cfg), cfg, device="cpu")
    >>> pred.predict(np.zeros((70, 45, 3), np.float32), output_shape=(140, 90)).shape
    (140, 90)
    """

    def __init__(self, model: nn.Module, config: ModelConfig, *, device: Any = "auto",
                 precision: str = "auto", channels_last: bool | None = None,
                 batch_size: int = 8, card: dict | None = None) -> None:
        if precision not in PRECISIONS:
            raise ModelConfigError(f"precision must be one of {PRECISIONS}, got {precision!r}")
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ModelConfigError(f"batch_size must be a positive integer, got {batch_size!r}")
        self.config = config
        self.device = resolve_device(device)
        cuda = self.device.type == "cuda"
        if precision == "auto":
            precision = "bf16" if cuda and torch.cuda.is_bf16_supported() else "fp32"
        self.precision = precision
        self.channels_last = cuda if channels_last is None else bool(channels_last)
        self.batch_size = batch_size
        self.card = dict(card or {})
        self.model = model.to(self.device).eval()
        if self.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self._weights: dict[tuple[int, int], np.ndarray] = {}

    @classmethod
    def from_registry(cls, name_or_path: str | Path, *, device: Any = "auto",
                      weights_dir: str | Path | None = None, **kwargs: Any) -> Predictor:
        """Load a registered model (``'starter'``) or a ``.safetensors`` file with its card.

        The file's sha256 is checked against its card; see :func:`models.registry.load_model`.
        """
        from models.registry import load_model

        loaded = load_model(name_or_path, weights_dir=weights_dir)
        return cls(loaded.model, loaded.config, device=device, card=loaded.card, **kwargs)

    @property
    def classes(self) -> tuple[str, ...]:
        """Class names; a label value is an index into this tuple."""
        return self.config.classes

    # -------------------------------------------------------------------- public API
    def predict_proba(self, image: np.ndarray, *,
                      output_shape: tuple[int, int] | None = None) -> np.ndarray:
        """Class probabilities, float32 (K, H, W), at the image's size or ``output_shape``."""
        proba = self._proba_batch([image])[0]
        if output_shape is not None and tuple(output_shape) != proba.shape[1:]:
            proba = upsample_proba(proba, _check_shape(output_shape))
        return proba

    def predict(self, image: np.ndarray, *,
                output_shape: tuple[int, int] | None = None) -> np.ndarray:
        """Label map, uint8 (H, W) of class indices, at the image's size or ``output_shape``.

        Parameters
        ----------
        image : ndarray (H, W, 3)
            The working image: float RGB in [0, 1] (or uint8).
        output_shape : (int, int) or None
            Resolution of the returned labels, e.g. the full photo's (H, W): the probabilities
            are upsampled bilinearly (in row chunks, bounding memory) before the argmax.
        """
        return self.predict_batch([image], output_shapes=[output_shape])[0]

    def predict_batch(self, images: Sequence[np.ndarray], *,
                      output_shapes: Sequence[tuple[int, int] | None] | None = None,
                      ) -> list[np.ndarray]:
        """:meth:`predict` for several images; their tiles share forward batches."""
        if output_shapes is None:
            output_shapes = [None] * len(images)
        if len(output_shapes) != len(images):
            raise InputShapeError(f"output_shapes has {len(output_shapes)} entries for "
                                  f"{len(images)} images; give one (or None) per image")
        out = []
        for proba, shape in zip(self._proba_batch(images), output_shapes, strict=True):
            shape = proba.shape[1:] if shape is None else _check_shape(shape)
            out.append(upsample_argmax(proba, shape))
        return out

    # --------------------------------------------------------------------- internals
    def _importance(self, shape: tuple[int, int]) -> np.ndarray:
        if shape not in self._weights:
            self._weights[shape] = gaussian_importance(shape)
        return self._weights[shape]

    def _proba_batch(self, images: Sequence[np.ndarray]) -> list[np.ndarray]:
        cfg = self.config
        k = cfg.n_classes
        padded, plans, accs, wsums = [], [], [], []
        for i, image in enumerate(images):
            img = as_float_rgb(image, name=f"image {i}")
            plan = plan_tiles(img.shape[:2], tile=cfg.tile_size, overlap=cfg.tile_overlap,
                              stride=cfg.stride)
            padded.append(pad_image(img, plan.pad))
            plans.append(plan)
            accs.append(np.zeros((k, *plan.padded_shape), np.float32))
            wsums.append(np.zeros(plan.padded_shape, np.float32))
        jobs = [(i, y, x) for i, p in enumerate(plans) for (y, x) in p.starts]
        batch: list[tuple[int, int, int]] = []
        for n, job in enumerate(jobs):
            batch.append(job)
            last = n + 1 == len(jobs)
            if len(batch) == self.batch_size or last or \
                    plans[jobs[n + 1][0]].tile_shape != plans[job[0]].tile_shape:
                self._run(batch, padded, plans, accs, wsums)
                batch = []
        out = []
        for plan, acc, ws in zip(plans, accs, wsums, strict=True):
            h, w = plan.image_shape
            out.append(acc[:, :h, :w] / ws[None, :h, :w])
        return out

    def _run(self, batch, padded, plans, accs, wsums) -> None:
        th, tw = plans[batch[0][0]].tile_shape
        tiles = np.stack([padded[i][y:y + th, x:x + tw] for i, y, x in batch])
        proba = self._forward(tiles)
        wt = self._importance((th, tw))
        for (i, y, x), p in zip(batch, proba, strict=True):
            accs[i][:, y:y + th, x:x + tw] += p * wt
            wsums[i][y:y + th, x:x + tw] += wt

    def _forward(self, tiles_nhwc: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(np.ascontiguousarray(tiles_nhwc)).permute(0, 3, 1, 2)
        x = x.to(self.device, non_blocking=True)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.inference_mode(), self._autocast():
            logits = self.model(x)
            proba = torch.softmax(logits.float(), dim=1)
        return proba.cpu().numpy()

    def _autocast(self) -> contextlib.AbstractContextManager:
        if self.precision == "bf16":
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()


def _check_shape(shape: Any) -> tuple[int, int]:
    try:
        h, w = (int(v) for v in shape)
    except (TypeError, ValueError):
        raise InputShapeError(f"output_shape must be (height, width), got {shape!r}") from None
    if h < 1 or w < 1:
        raise InputShapeError(f"output_shape must be positive (height, width), got {shape!r}")
    return h, w


