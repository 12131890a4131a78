"""The engine's front half: prepared photos from a bounded pool of workers, as they finish.

:class:`PrepareStream` keeps at most ``ahead`` photos between "submitted" and "taken by the
network", so memory stays flat whatever the study size (unlike ``Pool.imap``, whose feeder
submits everything at once and queues every result). Workers are spawned processes for
``jobs >= 2`` (decode and calibration are CPU-bound Python/OpenCV work); with ``jobs == 1``
one worker process from :data:`PROCESS_MIN_TASKS` photos on, and one thread below (no start-up
cost for a handful of photos, still overlapped with the network).

With ``gpu_decode`` set, JPEGs are read, checked and decoded here in batches on the GPU
(:func:`pipeline.gpu_decode.decode_jpegs`), shrunk by the decode factor on the device, and the
workers only calibrate and build the working image from the pixels they are sent.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import multiprocessing as mp
import os
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np

from pipeline.engine_prepare import DecodePolicy, choose_reduce, prepare_photo, prepare_pixels
from pipeline.stages import Prepared, PrepareOptions, Task

__all__ = ["PrepareStream", "start_workers", "single_threaded_children", "PROCESS_MIN_TASKS"]

#: With one job, a worker process is worth its start-up time from this many photos on.
PROCESS_MIN_TASKS = 8
_THREAD_ENV = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


@contextlib.contextmanager
def single_threaded_children() -> Iterator[None]:
    """Processes started in this block run their BLAS / OpenMP single-threaded.

    The workers are the parallelism; a multi-threaded BLAS inside them (numpy's OpenBLAS,
    used by the colour correction's matrix product) busy-waits for cores the network is
    using and was measured 50x slower on a loaded 2-core machine.
    """
    before = {k: os.environ.get(k) for k in _THREAD_ENV}
    os.environ.update({k: "1" for k in _THREAD_ENV})
    try:
        yield
    finally:
        for k, v in before.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _init_worker() -> None:
    import cv2

    import calibration.calibrate  # noqa: F401 - the heavy imports, once, before any photo
    import models.preprocess  # noqa: F401

    cv2.setNumThreads(1)


def start_workers(jobs: int) -> Any:
    """A pool of ``jobs`` spawned prepare workers (single-threaded BLAS); the caller closes it
    (``pool.terminate(); pool.join()``)."""
    ctx = mp.get_context("spawn")  # no fork of a process holding torch threads
    with single_threaded_children():
        return ctx.Pool(jobs, initializer=_init_worker)


def _prepare_pixels(task: Task, options: PrepareOptions, rgb: np.ndarray,
                    full_shape: tuple[int, int], metadata: dict,
                    policy: DecodePolicy) -> Prepared:
    return prepare_pixels(task, options, rgb, full_shape=full_shape, metadata=metadata,
                          policy=policy)


class _FutureAdapter:
    def __init__(self, fut: Future) -> None:
        self.fut = fut

    def ready(self) -> bool:
        return self.fut.done()

    def wait(self, timeout: float) -> None:
        concurrent.futures.wait([self.fut], timeout=timeout)

    def get(self) -> Prepared:
        return self.fut.result()


class PrepareStream:
    """Prepared photos in task order; see the module docstring.

    Use as a context manager; :meth:`take` blocks for the next photo, :meth:`ready` says
    whether it is already there.
    """

    def __init__(self, tasks: Sequence[Task], options: PrepareOptions, *, jobs: int,
                 policy: DecodePolicy, ahead: int, gpu_decode: str | None = None,
                 decode_batch: int = 8, pool: Any = None) -> None:
        self.tasks = list(tasks)
        self.options = options
        self.policy = policy
        self.ahead = max(1, ahead)
        self.gpu_decode = gpu_decode
        self.decode_batch = max(1, decode_batch)
        self._next = 0
        self._pending: deque[Any] = deque()
        self._pool: Any = pool
        self._own_pool = False
        #: pixel bytes sent to worker processes (decoded on the GPU here)
        self.bytes_sent = 0
        self._threads: ThreadPoolExecutor | None = None
        if pool is None:
            if (jobs >= 2 and len(self.tasks) >= 2) or len(self.tasks) >= PROCESS_MIN_TASKS:
                self._pool = start_workers(jobs)
                self._own_pool = True
            else:
                self._threads = ThreadPoolExecutor(1, thread_name_prefix="prepare")

    def __enter__(self) -> PrepareStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._pool is not None and self._own_pool:
            self._pool.terminate()
            self._pool.join()
        self._pool = None
        if self._threads is not None:
            self._threads.shutdown(wait=True, cancel_futures=True)
            self._threads = None

    def __len__(self) -> int:
        return len(self.tasks)

    @property
    def pool(self) -> Any:
        """The worker processes (``None`` on the one-thread path): the engine sends them the
        photos' finishing work too, so that a photo's pixels stay in the workers."""
        return self._pool

    @property
    def exhausted(self) -> bool:
        """No photo left to take."""
        self._fill()
        return not self._pending

    def ready(self) -> bool:
        """Whether :meth:`take` would return without waiting."""
        self._fill()
        return any(r.ready() for r in self._pending)

    def take(self) -> Prepared:
        """The next prepared photo to finish — not necessarily the next task: a slow photo
        does not hold the network up (blocks until one is ready)."""
        self._fill()
        if not self._pending:
            raise StopIteration
        while True:
            for i, r in enumerate(self._pending):
                if r.ready():
                    del self._pending[i]
                    result = r.get()
                    self._fill()
                    return result
            self._pending[0].wait(0.005)

    # -------------------------------------------------------------------- internals
    def _fill(self) -> None:
        while len(self._pending) < self.ahead and self._next < len(self.tasks):
            if self.gpu_decode:
                n = min(self.decode_batch, len(self.tasks) - self._next)
                batch = self.tasks[self._next:self._next + n]
                self._next += n
                self._pending.extend(self._submit_decoded(batch))
            else:
                task = self.tasks[self._next]
                self._next += 1
                self._pending.append(self._submit(prepare_photo, task))

    def _submit(self, fn: Any, *args: Any) -> Any:
        if fn is prepare_photo:
            args = (args[0], self.options, self.policy)
        else:
            task, rgb, full_shape, meta = args
            fn = _prepare_pixels
            args = (task, self.options, rgb, full_shape, meta, self.policy)
            if self._pool is not None:
                self.bytes_sent += rgb.nbytes
        if self._pool is not None:
            return self._pool.apply_async(fn, args)
        assert self._threads is not None
        return _FutureAdapter(self._threads.submit(fn, *args))

    def _submit_decoded(self, batch: list[Task]) -> list[Any]:
        """Read, check and decode a batch of JPEGs on the device; the rest go the CPU way."""
        from pipeline.decode import read_bytes, sha256_bytes
        from pipeline.errors import PipelineError
        from pipeline.gpu_decode import decode_jpegs, read_jpeg_header

        slots: list[Any] = [None] * len(batch)
        todo: list[tuple[int, bytes, Any, int]] = []
        for i, task in enumerate(batch):
            try:
                data = read_bytes(task.path)
                head = read_jpeg_header(data, name=task.name,
                                        max_pixels=self.options.max_pixels)
            except PipelineError:
                slots[i] = self._submit(prepare_photo, task)  # reports the error
                continue
            if sha256_bytes(data) != task.sha256 or \
                    self.options.model_config.px_per_mm is None:
                slots[i] = self._submit(prepare_photo, task)
                continue
            k = choose_reduce(head.width, head.height, self.policy)
            todo.append((i, data, head, k))
        for k in sorted({t[3] for t in todo}):
            group = [t for t in todo if t[3] == k]
            try:
                pixels = decode_jpegs([t[1] for t in group], [t[2].orientation for t in group],
                                      device=self.gpu_decode, reduce=k)
            except Exception:  # a damaged file fails the whole nvJPEG batch: go one by one
                pixels = [None] * len(group)
            for (i, _, head, _), rgb in zip(group, pixels, strict=True):
                if rgb is None:
                    slots[i] = self._submit(prepare_photo, batch[i])
                else:
                    slots[i] = self._submit(prepare_pixels, batch[i], rgb,
                                            head.oriented_shape, head.metadata)
        return slots
