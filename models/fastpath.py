"""Batched, tiled inference for the engine, on any torch device, with a pluggable network.

:class:`TiledSegmenter` does what :class:`models.predictor.Predictor` does — pad, cut into
overlapping tiles (:func:`models.tiling.plan_tiles`), run the network, blend the tiles'
softmax probabilities with a Gaussian — but for *many* images at once and on the device:
each padded working image goes to the device once, from pinned host memory and
asynchronously (CUDA); the batches are cut from those images on the device, and tiles of
several photos share each forward pass; the probabilities stay on the device until
:meth:`TiledSegmenter.labels` has upsampled them to the full photo and taken the argmax there;
only the uint8 label map comes back, through a pinned buffer, without blocking
(:class:`PendingLabels`).

The network is a *runner*: a callable ``tiles (N, C, H, W) -> logits (N, K, H, W)``.
:class:`TorchRunner` (eager PyTorch; bf16 autocast and channels_last on CUDA, channels_last on
the CPU; ``torch.compile`` only when asked) or :class:`models.onnx_export.OrtRunner` (ONNX
Runtime, CPU). Every runner gives the same labels to within floating-point noise.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from models.config import ModelConfig
from models.errors import ModelConfigError
from models.preprocess import as_float_rgb
from models.tiling import TilePlan, gaussian_importance, pad_image, plan_tiles
from models.upsample import upsample_labels, upsample_labels_torch

__all__ = ["TorchRunner", "TiledSegmenter", "PendingLabels", "COMPILE_MODES"]

#: ``torch.compile`` modes a :class:`TorchRunner` accepts (``None``: eager).
#: ``'reduce-overhead'`` captures CUDA graphs.
COMPILE_MODES = (None, "default", "reduce-overhead", "max-autotune")


class TorchRunner:
    """Eager (or, on request, compiled) PyTorch network: tiles in, logits out.

    Parameters
    ----------
    model : nn.Module
        Takes ``(N, C, H, W)`` floats in [0, 1], returns logits.
    device : torch.device or str
    precision : {'fp32', 'bf16'}
        ``'bf16'``: autocast (CUDA; on the CPU only when asked, it is rarely faster).
    channels_last : bool
        NHWC memory format for the convolutions.
    compile_mode : one of :data:`COMPILE_MODES`
        ``torch.compile`` the network (opt-in: it pays only where measured).

    Examples
    --------
    >>> from models.factory import build_model
    >>> cfg = ModelConfig(encoder="tu-resnet10t", encoder_depth=3,
    ...                   decoder_channels=(16, 8, 8), tile_size=64)
    >>> TorchRunner(build_model(cfg), device="cpu")(torch.zeros(2, 3, 64, 64)).shape
    torch.Size([2, 3, 64, 64])
    """

    name = "torch"

    def __init__(self, model: nn.Module, *, device: Any = "cpu", precision: str = "fp32",
                 channels_last: bool = True, compile_mode: str | None = None) -> None:
        if precision not in ("fp32", "bf16"):
            raise ModelConfigError(f"precision must be 'fp32' or 'bf16', got {precision!r}")
        if compile_mode not in COMPILE_MODES:
            raise ModelConfigError(f"compile_mode must be one of {COMPILE_MODES}, got "
                                   f"{compile_mode!r}")
        self.device = torch.device(device)
        self.precision = precision
        self.channels_last = bool(channels_last)
        self.compile_mode = compile_mode
        model = model.to(self.device).eval()
        if self.channels_last:
            model = model.to(memory_format=torch.channels_last)
        self.model = model
        self._forward: Callable[[torch.Tensor], torch.Tensor] = model
        if compile_mode is not None:
            self._forward = torch.compile(model, mode=compile_mode, dynamic=False)

    def __call__(self, tiles: torch.Tensor) -> torch.Tensor:
        """Logits (float32 or bf16) on the runner's device."""
        x = tiles.to(self.device, non_blocking=True)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        autocast = (torch.autocast(self.device.type, dtype=torch.bfloat16)
                    if self.precision == "bf16" else contextlib.nullcontext())
        with torch.inference_mode(), autocast:
            return self._forward(x)

    def describe(self) -> dict[str, Any]:
        return {"backend": self.name, "device": str(self.device), "precision": self.precision,
                "channels_last": self.channels_last, "compile_mode": self.compile_mode,
                "torch": torch.__version__, "threads": torch.get_num_threads()}


class PendingLabels:
    """A label map on its way back from the device; :meth:`result` waits for it."""

    def __init__(self, host: torch.Tensor | np.ndarray, event: Any = None) -> None:
        self._host = host
        self._event = event

    def result(self) -> np.ndarray:
        """uint8 (H, W) label map (blocks until the copy has landed)."""
        if self._event is not None:
            self._event.synchronize()
            self._event = None
        h = self._host
        return h.numpy() if isinstance(h, torch.Tensor) else h


@dataclass
class _Job:
    image: int
    y: int
    x: int


class TiledSegmenter:
    """Tile, batch, run and blend many working images; labels at any resolution.

    Parameters
    ----------
    runner : callable
        ``tiles (N, C, H, W) -> logits`` (a :class:`TorchRunner` or an ``OrtRunner``).
    config : ModelConfig
        Tile size, overlap, stride, classes.
    device : torch.device or str
        Where the blending and the upsampling happen (the runner's device; ``'cpu'`` for ONNX
        Runtime).
    batch_size : int
        Tiles per forward pass.

    Examples
    --------
    >>> from models.factory import build_model
    >>> cfg = ModelConfig(encoder="tu-resnet10t", encoder_depth=3,
    ...                   decoder_channels=(16, 8, 8), tile_size=64)
    >>> seg = TiledSegmenter(TorchRunner(build_model(cfg)), cfg, batch_size=4)
    >>> probas = seg.proba([np.zeros((70, 45, 3), np.float32), np.ones((90, 130, 3), np.float32)])
    >>> [tuple(p.shape) for p in probas]
    [(3, 70, 45), (3, 90, 130)]
    >>> seg.labels(probas[0], (140, 90)).result().shape
    (140, 90)
    """

    def __init__(self, runner: Callable[[torch.Tensor], Any], config: ModelConfig, *,
                 device: Any = "cpu", batch_size: int = 4) -> None:
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ModelConfigError(f"batch_size must be a positive integer, got {batch_size!r}")
        self.runner = runner
        self.config = config
        self.device = torch.device(device)
        self.batch_size = batch_size
        self._cuda = self.device.type == "cuda"
        self._weights: dict[tuple[int, int], torch.Tensor] = {}

    # ------------------------------------------------------------------ public API
    def proba(self, images: Sequence[np.ndarray]) -> list[torch.Tensor]:
        """Blended class probabilities, float32 (K, h, w) on :attr:`device`, per image."""
        k = self.config.n_classes
        padded, plans, accs, wsums = [], [], [], []
        for i, image in enumerate(images):
            img = as_float_rgb(image, name=f"image {i}")
            plan = plan_tiles(img.shape[:2], tile=self.config.tile_size,
                              overlap=self.config.tile_overlap, stride=self.config.stride)
            padded.append(self._upload(np.ascontiguousarray(pad_image(img, plan.pad))))
            plans.append(plan)
            accs.append(torch.zeros((k, *plan.padded_shape), device=self.device))
            wsums.append(torch.zeros(plan.padded_shape, device=self.device))
        # group tiles by shape so batches are full; tiles of several images share a batch
        by_shape: dict[tuple[int, int], list[_Job]] = {}
        for i, plan in enumerate(plans):
            for y, x in plan.starts:
                by_shape.setdefault(plan.tile_shape, []).append(_Job(i, y, x))
        for shape, jobs in by_shape.items():
            for s in range(0, len(jobs), self.batch_size):
                self._run(jobs[s:s + self.batch_size], shape, padded, accs, wsums)
        return [_crop(acc, ws, plan) for acc, ws, plan in zip(accs, wsums, plans, strict=True)]

    def labels(self, proba: torch.Tensor, out_shape: tuple[int, int]) -> PendingLabels:
        """uint8 labels at ``out_shape``: upsampled and argmaxed on the device (CPU: the exact
        border-only method of :func:`models.upsample.upsample_labels`)."""
        if not self._cuda:
            return PendingLabels(upsample_labels(proba.numpy(), out_shape))
        lab = upsample_labels_torch(proba, out_shape)
        host = torch.empty(lab.shape, dtype=torch.uint8, pin_memory=True)
        host.copy_(lab, non_blocking=True)
        event = torch.cuda.Event()
        event.record()
        return PendingLabels(host, event)

    def segment(self, images: Sequence[np.ndarray],
                out_shapes: Sequence[tuple[int, int] | None]) -> list[PendingLabels]:
        """:meth:`proba` then :meth:`labels` for each image (``None``: working size)."""
        probas = self.proba(images)
        return [self.labels(p, tuple(p.shape[1:]) if s is None else s)
                for p, s in zip(probas, out_shapes, strict=True)]

    # -------------------------------------------------------------------- internals
    def _importance(self, shape: tuple[int, int]) -> torch.Tensor:
        if shape not in self._weights:
            self._weights[shape] = torch.from_numpy(gaussian_importance(shape)).to(self.device)
        return self._weights[shape]

    def _upload(self, image_hwc: np.ndarray) -> torch.Tensor:
        """A padded working image as a (C, H, W) tensor on the device: on CUDA through pinned
        memory, asynchronously (the tiles are then cut on the device)."""
        t = torch.from_numpy(image_hwc)
        if self._cuda:
            t = t.pin_memory().to(self.device, non_blocking=True)
        return t.permute(2, 0, 1)

    def _run(self, jobs: list[_Job], shape: tuple[int, int], padded: list[torch.Tensor],
             accs: list[torch.Tensor], wsums: list[torch.Tensor]) -> None:
        th, tw = shape
        x = torch.stack([padded[j.image][:, j.y:j.y + th, j.x:j.x + tw] for j in jobs])
        logits = self.runner(x)
        if not isinstance(logits, torch.Tensor):
            logits = torch.from_numpy(np.asarray(logits))
        with torch.inference_mode():
            proba = torch.softmax(logits.to(self.device).float(), dim=1)
            wt = self._importance(shape)
            for job, p in zip(jobs, proba, strict=True):
                accs[job.image][:, job.y:job.y + th, job.x:job.x + tw].add_(p * wt)
                wsums[job.image][job.y:job.y + th, job.x:job.x + tw].add_(wt)


def _crop(acc: torch.Tensor, wsum: torch.Tensor, plan: TilePlan) -> torch.Tensor:
    h, w = plan.image_shape
    return acc[:, :h, :w] / wsum[None, :h, :w]
