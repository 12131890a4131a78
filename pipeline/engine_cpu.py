"""CPU-time accounting of the engine: per photo, per stage, per process (``make bench``).

What bounds a many-core GPU machine is CPU time, not wall time: photos/s can never exceed
``cores / CPU-seconds per photo outside the network``, and CPU time can be measured on any
machine, loaded or not. Three figures:

* **per stage** — each stage of each photo is timed with :func:`time.thread_time` (the CPU
  time of the thread doing it; workers and OpenCV run single-threaded, so that is all of it)
  wherever it runs: read, decode, calibrate, working image, review picture in the prepare
  worker; assessment, labels, measure, encode and write in the finishing worker
  (:class:`StageClock`, carried back in ``Prepared.cpu_s`` / ``Outcome.cpu_s``);
* **per process** — the main process's CPU time over a run (all its threads: the network's
  included, reported beside it) and each worker process's, from ``/proc`` (:func:`process_cpu_s`);
* **bytes crossing process boundaries** — the array payload of every object sent to or
  received from a worker (:func:`payload_bytes`).
"""

from __future__ import annotations

import contextlib
import os
import resource
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["StageClock", "process_cpu_s", "payload_bytes", "CpuAccount", "PREPARE_STAGES",
           "FINISH_STAGES"]

#: Stages timed in the prepare worker, then in the finishing one.
PREPARE_STAGES = ("read", "decode", "calibrate", "working", "review")
FINISH_STAGES = ("assess", "labels", "measure", "encode", "write")


class StageClock:
    """CPU seconds of the calling thread per stage, added into ``into``.

    Examples
    --------
    >>> d = {}
    >>> clock = StageClock(d)
    >>> with clock("decode"):
    ...     _ = sum(range(1000))
    >>> list(d), d["decode"] >= 0
    (['decode'], True)
    """

    def __init__(self, into: dict[str, float]) -> None:
        self.into = into

    @contextlib.contextmanager
    def __call__(self, stage: str) -> Iterator[None]:
        t = time.thread_time()
        try:
            yield
        finally:
            self.into[stage] = self.into.get(stage, 0.0) + time.thread_time() - t


_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def process_cpu_s(pid: int | None = None) -> float:
    """User + system CPU seconds of a process so far (this one: ``getrusage``; another:
    ``/proc/PID/stat``, 0.0 where it cannot be read)."""
    if pid is None or pid == os.getpid():
        r = resource.getrusage(resource.RUSAGE_SELF)
        return r.ru_utime + r.ru_stime
    try:
        fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / _TICK
    except (OSError, IndexError, ValueError):
        return 0.0


def payload_bytes(*objs: Any) -> int:
    """Bytes of the numpy arrays in ``objs`` and in their attributes one level down (what a
    pickle of a :class:`pipeline.stages.Prepared` or an outcome mostly consists of)."""
    n = 0
    for o in objs:
        if isinstance(o, np.ndarray):
            n += o.nbytes
        elif hasattr(o, "__dict__"):
            n += sum(v.nbytes for v in vars(o).values() if isinstance(v, np.ndarray))
            inner = getattr(o, "prepared", None)
            if inner is not None:
                n += payload_bytes(inner)
    return n


@dataclass
class CpuAccount:
    """The CPU time of one engine run (see the module docstring); :meth:`to_dict` reports
    it per photo."""

    photos: int = 0
    stage_s: dict[str, float] = field(default_factory=dict)
    main_s: float = 0.0
    main_network_s: float = 0.0
    workers_s: float = 0.0
    bytes_to_workers: int = 0
    bytes_from_workers: int = 0
    wall_s: float = 0.0
    _t0: tuple[float, float, dict[int, float]] | None = None

    def start(self, worker_pids: list[int]) -> None:
        self._t0 = (process_cpu_s(), time.perf_counter(),
                    {p: process_cpu_s(p) for p in worker_pids})

    def stop(self) -> None:
        if self._t0 is None:
            return
        cpu0, wall0, workers0 = self._t0
        self.main_s = process_cpu_s() - cpu0
        self.wall_s = time.perf_counter() - wall0
        self.workers_s = sum(max(0.0, process_cpu_s(p) - c) for p, c in workers0.items())
        self._t0 = None

    def add_stages(self, cpu_s: dict[str, float]) -> None:
        for k, v in cpu_s.items():
            self.stage_s[k] = self.stage_s.get(k, 0.0) + v

    def to_dict(self) -> dict[str, Any]:
        n = max(self.photos, 1)
        stages = {k: 1e3 * v / n for k, v in self.stage_s.items()}
        outside = self.main_s - self.main_network_s
        return {"photos": self.photos, "wall_s": self.wall_s,
                "stage_cpu_ms_per_photo": stages,
                "stages_cpu_ms_per_photo_total": sum(stages.values()),
                "main_process_cpu_ms_per_photo": 1e3 * self.main_s / n,
                "main_network_cpu_ms_per_photo": 1e3 * self.main_network_s / n,
                "main_outside_network_cpu_ms_per_photo": 1e3 * outside / n,
                "workers_cpu_ms_per_photo": 1e3 * self.workers_s / n,
                "cpu_ms_per_photo_outside_network": 1e3 * (outside + self.workers_s) / n,
                "bytes_to_workers_per_photo": self.bytes_to_workers / n,
                "bytes_from_workers_per_photo": self.bytes_from_workers / n}
