"""Set the engine's network up: device, back-end (measured on the CPU), threads, batch size.

On CUDA: eager PyTorch (optionally ``torch.compile``\\ d) in bf16 autocast with channels_last,
tile batches sized from free device memory. On the CPU: eager PyTorch with channels_last and
ONNX Runtime on the exported network are both timed on a representative tile batch, beside as
many busy processes as there will be prepare workers (:func:`models.autotune.choose_runner`),
and the faster one is used; the export and the choice
are cached under ``EngineOptions.cache_dir`` per model sha256 and machine.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = ["build_segmenter", "CPU_TILE_BATCH", "torch_threads"]

#: Tiles per forward pass on the CPU (larger batches do not run faster per tile there).
CPU_TILE_BATCH = 4


@contextlib.contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """``torch.set_num_threads(n)`` for the duration of the block."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def build_segmenter(model: Any, config: Any, card: dict, *, device: str, options: Any,
                    jobs: int = 1) -> tuple[Any, Any, Any, int]:
    """``(TiledSegmenter, RunnerChoice, torch.device, cpu_threads)`` for ``model``; on the
    CPU the back-ends are timed beside ``jobs`` busy processes (the prepare workers)."""
    import torch

    from models.autotune import RunnerChoice, cuda_batch_size, representative_tiles
    from models.fastpath import TiledSegmenter, TorchRunner
    from models.predictor import resolve_device

    dev = resolve_device(device)
    threads = options.threads or (os.cpu_count() or 1)
    sha = str(card.get("sha256", "")) or "unregistered"
    if dev.type == "cuda":
        if options.backend == "onnxruntime":
            from pipeline.engine import EngineOptionsError

            raise EngineOptionsError(f"EngineOptions.backend: 'onnxruntime' is the CPU fast "
                                     f"path; the device is {dev}")
        precision = "bf16" if torch.cuda.is_bf16_supported() else "fp32"
        runner = TorchRunner(model, device=dev, precision=precision, channels_last=True,
                             compile_mode=options.compile_mode)
        batch = options.tile_batch or cuda_batch_size(runner, config, device=dev)
        runner(representative_tiles(config, batch).to(dev))  # warm-up (and compilation)
        torch.cuda.synchronize(dev)
        choice = RunnerChoice("torch", {}, f"{sha}|cuda|{precision}|batch={batch}")
        return TiledSegmenter(runner, config, device=dev, batch_size=batch), choice, dev, \
            threads
    batch = options.tile_batch or CPU_TILE_BATCH
    cache_dir = Path(options.cache_dir) if options.cache_dir else None
    candidates = _cpu_candidates(model, config, sha, cache_dir=cache_dir, threads=threads,
                                 backend=options.backend)
    from models.autotune import choose_runner, machine_fingerprint

    contention = min(jobs, os.cpu_count() or 1)
    key = (f"{sha}|{machine_fingerprint()}|threads={threads}|busy={contention}|"
           f"batch={batch}x{config.tile_size}")
    with torch_threads(threads):
        choice, runner = choose_runner(
            candidates, tiles=representative_tiles(config, batch), key=key,
            cache_path=None if cache_dir is None else cache_dir / "engine-backends.json",
            refresh=options.refresh, contention=contention)
    return TiledSegmenter(runner, config, device=dev, batch_size=batch), choice, dev, threads


def _cpu_candidates(model: Any, config: Any, sha: str, *, cache_dir: Path | None,
                    threads: int, backend: str) -> dict[str, Any]:
    from models.fastpath import TorchRunner
    from models.onnx_export import OPSET, OrtRunner, export_onnx

    def make_torch() -> Any:
        return TorchRunner(model, device="cpu", precision="fp32", channels_last=True)

    def make_ort() -> Any:
        if cache_dir is not None and sha != "unregistered":
            path = cache_dir / "onnx" / f"{sha[:16]}-opset{OPSET}.onnx"
        else:
            path = Path(tempfile.mkdtemp(prefix="donorsite-onnx-")) / "model.onnx"
        if not path.is_file():
            export_onnx(model, config, path)
        return OrtRunner(path, threads=threads)

    out = {"onnxruntime": make_ort, "torch": make_torch}
    return out if backend == "auto" else {backend: out[backend]}
