"""Pieces of ``donorsite bench``: the naive loop, each engine stage alone, the network alone,
peak memory. Timings only; :mod:`pipeline.bench` runs them and writes the report.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.engine_prepare import DecodePolicy, choose_reduce, prepare_pixels
from pipeline.engine_stream import single_threaded_children
from pipeline.stages import PrepareOptions, Task, prepare, segment_and_measure, write_outputs

__all__ = ["PeakMemory", "naive_loop", "engine_loop", "stage_decode", "stage_calibrate",
           "stage_network", "stage_write", "network_sweep", "matmul_peak_tflops",
           "flops_per_tile"]


# ------------------------------------------------------------------------------ memory
def _rss_kib(pid: int | str = "self") -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _children(pid: int) -> list[int]:
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if int((d / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    out.append(int(d.name))
            except (OSError, ValueError, IndexError):
                continue
    return out


class PeakMemory:
    """Peak resident memory of this process and of this process plus its children (sampled
    every ``interval`` s from /proc), and peak CUDA memory, while the block runs. Entered
    again, it keeps the peaks over all its blocks."""

    def __init__(self, interval: float = 0.05) -> None:
        self.interval = interval
        self.self_mib = 0.0
        self.total_mib = 0.0
        self.device_mib: float | None = None

    def __enter__(self) -> PeakMemory:
        import torch

        if torch.cuda.is_available():
            torch.cuda.reset_peak_memory_stats()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        me = os.getpid()
        while not self._stop.is_set():
            own = _rss_kib()
            kids = sum(_rss_kib(c) for c in _children(me))
            self.self_mib = max(self.self_mib, own / 1024)
            self.total_mib = max(self.total_mib, (own + kids) / 1024)
            self._stop.wait(self.interval)

    def __exit__(self, *exc: object) -> None:
        import torch

        self._stop.set()
        self._thread.join()
        if torch.cuda.is_available():
            self.device_mib = max(self.device_mib or 0.0,
                                  torch.cuda.max_memory_allocated() / 2**20)

    def to_dict(self) -> dict[str, Any]:
        return {"peak_rss_main_mib": round(self.self_mib, 1),
                "peak_rss_with_workers_mib": round(self.total_mib, 1),
                "peak_device_mib": None if self.device_mib is None else round(self.device_mib, 1)}


# ------------------------------------------------------------------------ end to end
def naive_loop(tasks: Sequence[Task], options: PrepareOptions, predictor: Any,
               out_dir: Path) -> tuple[float, dict[str, tuple]]:
    """One photo at a time: full decode -> calibrate -> fp32 eager network -> measure ->
    write. Returns (seconds, {photo_id: (labels, healed)})."""
    res = {}
    t0 = time.perf_counter()
    for t in tasks:
        p = prepare(t, options)
        if not p.ok:
            continue
        labels = predictor.predict(p.working, output_shape=p.full_shape)
        m = segment_and_measure(p, labels)
        write_outputs(p, labels, out_dir=out_dir)
        res[t.photo_id] = (labels, m.healed_percent)
    return time.perf_counter() - t0, res


def engine_loop(engine: Any, tasks: Sequence[Task], options: PrepareOptions,
                out_dir: Path) -> tuple[float, dict[str, tuple]]:
    """(wall seconds, {photo_id: (labels read back from the mask file, healed)})."""
    from PIL import Image

    res = {}
    t0 = time.perf_counter()
    for o in engine.run(tasks, options, out_dir=out_dir, progress=False):
        if o.error_code is None and o.prepared.ok:
            res[o.prepared.task.photo_id] = (o.mask_file, o.measurement.healed_percent)
    wall = time.perf_counter() - t0
    return wall, {k: (np.asarray(Image.open(out_dir / f)), h) for k, (f, h) in res.items()}


# ------------------------------------------------------------------ stages, CPU workers
_CACHE: dict[str, Any] = {}


def _init_stage(options: PrepareOptions, policy: DecodePolicy, paths: list[str],
                predecode: bool) -> None:
    import cv2

    from pipeline.decode import decode_photo

    cv2.setNumThreads(1)
    _CACHE.update(options=options, policy=policy, paths=paths, pixels={})
    if predecode:
        for i, p in enumerate(paths):
            _CACHE["pixels"][i] = _decode(p, policy, decode_photo)
        _calibrate_job(0)  # warm-up: lazy imports, first-call costs
    else:
        _decode_job(0)


def _decode(path: str, policy: DecodePolicy, decode_photo: Any) -> Any:
    from PIL import Image

    data = Path(path).read_bytes()
    with Image.open(path) as img:
        k = choose_reduce(*img.size, policy) if img.format == "JPEG" else 1
    photo = decode_photo(data, name=Path(path).name, reduce=k)
    return photo, data


def _decode_job(i: int) -> float:
    from pipeline.decode import decode_photo

    t0 = time.perf_counter()
    _decode(_CACHE["paths"][i], _CACHE["policy"], decode_photo)
    return time.perf_counter() - t0


def _calibrate_job(i: int) -> float:
    from pipeline.decode import sha256_bytes

    photo, data = _CACHE["pixels"][i]
    path = Path(_CACHE["paths"][i])
    task = Task(f"B{i}", 1, path, path.name, sha256_bytes(data))
    w, h = photo.metadata["width"], photo.metadata["height"]  # the header's, unoriented
    full = (w, h) if photo.metadata.get("orientation") in (5, 6, 7, 8) else (h, w)
    t0 = time.perf_counter()
    prepare_pixels(task, _CACHE["options"], photo.rgb, full_shape=full,
                   metadata=photo.metadata, policy=_CACHE["policy"])
    return time.perf_counter() - t0


def _pool_stage(job: Any, paths: Sequence[Path], options: PrepareOptions,
                policy: DecodePolicy, jobs: int, predecode: bool) -> dict[str, float]:
    ctx = mp.get_context("spawn")
    with single_threaded_children():
        pool = ctx.Pool(jobs, initializer=_init_stage,
                        initargs=(options, policy, [str(p) for p in paths], predecode))
    try:
        pool.map(_noop, range(jobs))  # wait until every worker is up (and has pre-decoded)
        t0 = time.perf_counter()
        per = pool.map(job, range(len(paths)), chunksize=1)
        wall = time.perf_counter() - t0
    finally:
        pool.terminate()
        pool.join()
    return {"photos_per_s": len(paths) / wall, "workers": jobs,
            "median_s_per_photo_one_worker": float(np.median(per))}


def _noop(_: int) -> None:
    time.sleep(0.2)


def stage_decode(paths: Sequence[Path], options: PrepareOptions, policy: DecodePolicy,
                 jobs: int) -> dict[str, float]:
    """Read + (reduced) JPEG decode alone, ``jobs`` worker processes."""
    return _pool_stage(_decode_job, paths, options, policy, jobs, predecode=False)


def stage_calibrate(paths: Sequence[Path], options: PrepareOptions, policy: DecodePolicy,
                    jobs: int) -> dict[str, float]:
    """Calibrate + working image + review picture alone (photos decoded beforehand)."""
    return _pool_stage(_calibrate_job, paths, options, policy, jobs, predecode=True)


# ----------------------------------------------------------------- network and writing
def flops_per_tile(model: Any, config: Any) -> int:
    """FLOPs of one forward pass at the working tile size (torch's FlopCounterMode)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    x = torch.rand(1, config.in_channels, config.tile_size, config.tile_size)
    p = next(model.parameters())
    with torch.inference_mode(), FlopCounterMode(display=False) as fc:
        model(x.to(p.device))
    return int(fc.get_total_flops())


def stage_network(segmenter: Any, workings: Sequence[np.ndarray], flops: int,
                  repeats: int = 3) -> dict[str, float]:
    """The network alone on the working images (tiling, batching and blending included)."""
    from models.tiling import plan_tiles

    c = segmenter.config
    tiles = sum(len(plan_tiles(w.shape[:2], tile=c.tile_size, overlap=c.tile_overlap,
                               stride=c.stride).starts) for w in workings)
    segmenter.proba(workings[:1])  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = segmenter.proba(list(workings))
        if out and out[0].is_cuda:
            import torch

            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    t = float(np.median(times))
    return {"photos_per_s": len(workings) / t, "tiles_per_s": tiles / t, "tiles": tiles,
            "tflop_per_s": tiles * flops / t / 1e12, "batch": segmenter.batch_size}


def stage_write(segmenter: Any, prepared: Sequence[Any], probas: Sequence[Any],
                out_dir: Path, writers: int) -> dict[str, float]:
    """Full-resolution labels + measure + mask/overlay/review files, ``writers`` threads."""
    import cv2

    def one(i: int) -> None:
        p = prepared[i]
        labels = segmenter.labels(probas[i], p.full_shape).result()
        segment_and_measure(p, labels)
        write_outputs(p, labels, out_dir=out_dir)

    before = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        with ThreadPoolExecutor(writers) as ex:
            list(ex.map(one, range(min(writers, len(prepared)))))  # warm-up
            t0 = time.perf_counter()
            list(ex.map(one, range(len(prepared))))
            wall = time.perf_counter() - t0
    finally:
        cv2.setNumThreads(before)
    return {"photos_per_s": len(prepared) / wall, "threads": writers}


def network_sweep(runner: Any, config: Any, flops: int, batches: Sequence[int],
                  device: Any) -> list[dict[str, float]]:
    """The bare network (no tiling) at several batch sizes: images/s and TFLOP/s."""
    import torch

    from models.autotune import representative_tiles, time_runner

    sync = torch.cuda.synchronize if getattr(device, "type", "cpu") == "cuda" else None
    out = []
    for b in batches:
        try:
            x = representative_tiles(config, b)
            x = x.to(device) if sync else x
            s = time_runner(runner, x, repeats=3, sync=sync)
        except RuntimeError as exc:  # out of memory at a large batch
            out.append({"batch": b, "error": str(exc)[:120]})
            break
        out.append({"batch": b, "images_per_s": 1 / s, "tflop_per_s": flops / s / 1e12})
    return out


def matmul_peak_tflops(device: Any, *, dtype: str = "bf16", n: int = 8192,
                       repeats: int = 10) -> float:
    """Measured matrix-multiply throughput (TFLOP/s) of ``device`` in ``dtype``."""
    import torch

    dt = {"bf16": torch.bfloat16, "fp32": torch.float32}[dtype]
    a = torch.randn(n, n, device=device, dtype=dt)
    b = torch.randn(n, n, device=device, dtype=dt)
    sync = torch.cuda.synchronize if a.is_cuda else (lambda: None)
    a @ b
    sync()
    t0 = time.perf_counter()
    for _ in range(repeats):
        a @ b
    sync()
    best = 2 * n**3 * repeats / (time.perf_counter() - t0) / 1e12
    if not a.is_cuda:  # the CPU: the better of torch's and numpy's BLAS
        an, bn = a.float().numpy(), b.float().numpy()
        an @ bn
        t0 = time.perf_counter()
        for _ in range(repeats):
            an @ bn
        best = max(best, 2 * n**3 * repeats / (time.perf_counter() - t0) / 1e12)
    return best
