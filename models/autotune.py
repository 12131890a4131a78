"""Pick the fastest way to run the network on this machine, by measuring, and remember it.

* :func:`choose_runner` times each candidate runner (e.g. eager PyTorch with channels_last and
  ONNX Runtime) on a representative batch of tiles — one untimed call, then the median of a
  few timed ones — and keeps the fastest. In the engine the network shares the CPU with the
  prepare workers, so the timing runs *under that load* (``contention`` busy processes,
  :func:`cpu_contention`): alone, eager PyTorch and ONNX Runtime were within 10 % of each
  other on the 2-core development machine, but with two busy processes beside them PyTorch's
  spinning OpenMP threads made it 16 times slower and ONNX Runtime (no spinning) 2 times —
  its fair share. The result is cached in a JSON file under a key made of the model's sha256,
  the machine (:func:`machine_fingerprint`), the thread count, the load and the batch shape,
  so the warm-up runs once per model and machine.
* :func:`cuda_batch_size` sizes tile batches from the device's free memory
  (``torch.cuda.mem_get_info``) and the measured memory per tile.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from models.config import ModelConfig
from models.errors import ModelError

__all__ = ["RunnerChoice", "machine_fingerprint", "time_runner", "choose_runner",
           "representative_tiles", "cuda_batch_size", "cpu_contention"]


@dataclass(frozen=True)
class RunnerChoice:
    """The runner picked and the timings behind the choice (seconds per tile)."""

    backend: str
    seconds_per_tile: dict[str, float]
    key: str
    cached: bool = False
    unavailable: dict[str, str] = field(default_factory=dict)

    @property
    def speedup(self) -> float:
        """How much faster the pick is than the slowest candidate measured (>= 1)."""
        times = list(self.seconds_per_tile.values())
        return max(times) / self.seconds_per_tile[self.backend] if times else 1.0

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "speedup": self.speedup}


def machine_fingerprint() -> str:
    """CPU model, core count, OS and library versions (what makes timings comparable).

    Examples
    --------
    >>> "cores=" in machine_fingerprint()
    True
    """
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    parts = [cpu, f"cores={os.cpu_count()}", platform.system(), f"torch={torch.__version__}"]
    try:
        import onnxruntime

        parts.append(f"ort={onnxruntime.__version__}")
    except ImportError:
        parts.append("ort=none")
    if torch.cuda.is_available():
        parts.append(f"cuda={torch.cuda.get_device_name(0)}")
    return "|".join(parts)


def representative_tiles(config: ModelConfig, n: int, *, seed: int = 0) -> torch.Tensor:
    """``n`` tiles of the model's tile size: smooth random colours in [0, 1] (NCHW)."""
    g = torch.Generator().manual_seed(seed)
    s = config.tile_size
    coarse = torch.rand(n, config.in_channels, max(1, s // 16), max(1, s // 16), generator=g)
    return torch.nn.functional.interpolate(coarse, size=(s, s), mode="bilinear",
                                           align_corners=False).contiguous()


def time_runner(runner: Callable[[Any], Any], tiles: torch.Tensor, *, repeats: int = 3,
                sync: Callable[[], None] | None = None,
                give_up_after: float | None = None) -> float:
    """Median seconds per tile of ``runner(tiles)`` after one untimed call (or, when that
    first call alone takes more than ``give_up_after`` seconds, its time: clearly slow).

    Examples
    --------
    >>> time_runner(lambda x: x * 2, torch.zeros(4, 3, 8, 8), repeats=2) >= 0
    True
    """
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats!r}")
    sync = sync or (lambda: None)
    t0 = time.perf_counter()
    runner(tiles)
    sync()
    first = time.perf_counter() - t0
    if give_up_after is not None and first > give_up_after:
        return first / len(tiles)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        runner(tiles)
        sync()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) / len(tiles)


@contextlib.contextmanager
def cpu_contention(n: int) -> Iterator[None]:
    """``n`` busy processes (pure-Python loops) for the duration of the block.

    Examples
    --------
    >>> with cpu_contention(1):
    ...     pass
    """
    procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]
    try:
        if procs:
            time.sleep(0.1)  # let them start
        yield
    finally:
        for p in procs:
            p.kill()
            p.wait()


def _read_cache(path: Path | None) -> dict[str, Any]:
    if path is None or not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def _write_cache(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".json")
    with os.fdopen(fd, "w") as fh:
        json.dump(data, fh, indent=2)
    os.replace(tmp, path)


def choose_runner(candidates: dict[str, Callable[[], Callable[[Any], Any]]], *,
                  tiles: torch.Tensor, key: str, cache_path: Path | None = None,
                  repeats: int = 3, refresh: bool = False, contention: int = 0
                  ) -> tuple[RunnerChoice, Callable[[Any], Any]]:
    """Build the candidate runners, time them on ``tiles``, return the fastest.

    Parameters
    ----------
    candidates : dict of name -> factory
        Each factory builds a runner (``tiles -> logits``); one that raises is recorded as
        unavailable and skipped.
    tiles : Tensor (N, C, H, W)
        A representative batch (:func:`representative_tiles`).
    key : str
        What the timings depend on: model sha256, machine, threads, batch shape.
    cache_path : Path, optional
        JSON file of earlier choices; a cached choice is used without timing (its runner
        is still built).
    repeats : int
        Timed calls per candidate.
    refresh : bool
        Time again even when the key is cached.
    contention : int
        Busy processes running beside the timing (the load the runner will share the CPU
        with; :func:`cpu_contention`). Part of what ``key`` should describe.

    Returns
    -------
    (RunnerChoice, runner)

    Raises
    ------
    ModelError
        No candidate could be built.

    Examples
    --------
    >>> slow = lambda: (lambda x: [time.sleep(0.01), x][1])
    >>> fast = lambda: (lambda x: x)
    >>> choice, run = choose_runner({"slow": slow, "fast": fast},
    ...                             tiles=torch.zeros(2, 3, 8, 8), key="k", repeats=1)
    >>> choice.backend
    'fast'
    """
    if not candidates:
        raise ModelError("choose_runner needs at least one candidate runner")
    cache = _read_cache(cache_path)
    hit = cache.get(key)
    if hit and not refresh and hit.get("backend") in candidates:
        try:
            runner = candidates[hit["backend"]]()
        except Exception:  # the cached pick cannot be built here any more: measure again
            runner = None
        if runner is not None:
            return RunnerChoice(hit["backend"], dict(hit.get("seconds_per_tile", {})), key,
                                cached=True, unavailable=dict(hit.get("unavailable", {}))
                                ), runner
    runners: dict[str, Callable[[Any], Any]] = {}
    timings: dict[str, float] = {}
    unavailable: dict[str, str] = {}
    for name, make in candidates.items():
        try:
            runners[name] = make()
            best = min(timings.values(), default=None)
            with cpu_contention(contention):
                timings[name] = time_runner(
                    runners[name], tiles, repeats=repeats,
                    give_up_after=None if best is None else 5 * best * len(tiles))
        except Exception as exc:  # e.g. onnxruntime missing, export failed
            runners.pop(name, None)
            unavailable[name] = f"{type(exc).__name__}: {exc}"[:300]
    if not timings:
        raise ModelError(f"no network runner could be built: {unavailable}")
    best = min(timings, key=timings.__getitem__)
    choice = RunnerChoice(best, timings, key, cached=False, unavailable=unavailable)
    if cache_path is not None:
        cache[key] = {"backend": best, "seconds_per_tile": timings, "unavailable": unavailable,
                      "contention": contention,
                      "measured_utc": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                      "tiles": list(tiles.shape)}
        _write_cache(cache_path, cache)
    return choice, runners[best]


def cuda_batch_size(runner: Callable[[torch.Tensor], Any], config: ModelConfig, *,
                    device: torch.device, fraction: float = 0.5, cap: int = 64) -> int:
    """Tiles per batch that fit in ``fraction`` of the device's free memory.

    Runs the network on 1 and on 2 tiles, reads the peak memory of each, and divides the
    free memory (``torch.cuda.mem_get_info``) by the difference (memory per tile). The result
    is a power of two in ``[1, cap]``.
    """
    if device.type != "cuda":
        raise ModelError(f"cuda_batch_size needs a CUDA device, got {device}")
    tiles = representative_tiles(config, 2).to(device)
    peaks = []
    for n in (1, 2):
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
        runner(tiles[:n])
        torch.cuda.synchronize(device)
        peaks.append(torch.cuda.max_memory_allocated(device) - base)
    per_tile = max(peaks[1] - peaks[0], peaks[0] // 2, 1)
    free, _ = torch.cuda.mem_get_info(device)
    n = int(np.clip(fraction * free // per_tile, 1, cap))
    return 1 << (n.bit_length() - 1)
