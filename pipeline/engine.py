"""The staged, overlapped executor that turns tasks into outcomes (``donorsite process``).

Three stages run at the same time, joined by bounded queues so memory stays flat whatever the
study size:

1. **prepare** (:mod:`pipeline.engine_stream`): read, decode (reduced-size JPEG decoding where
   the working resolution allows, :mod:`pipeline.engine_prepare`; batched nvJPEG decoding on
   a GPU, :mod:`pipeline.gpu_decode`, opt-in), calibrate, colour-correct and resample to the working
   image — in a pool of worker processes, a bounded number of photos ahead;
2. **network** (this process): the working images of the photos that are ready are cut into
   tiles that share forward batches (:class:`models.fastpath.TiledSegmenter`); on CUDA the
   batch is assembled in pinned memory, the network runs in bf16 autocast with channels_last,
   the tiles are blended, upsampled to the full photo and argmaxed on the device, and the
   uint8 mask is copied back asynchronously; on the CPU the network is whichever of eager
   PyTorch (channels_last, tuned threads) and ONNX Runtime a timed warm-up found faster
   (:mod:`models.autotune`, cached per model and machine);
3. **finish** — in the worker processes when there are some (they receive only the low-res
   probabilities: no photo's pixels cross a process boundary), else in a pool of threads
   here: the per-photo assessment (:mod:`pipeline.assessment`), full-resolution labels,
   areas through the calibration, mask, overlay and review picture written atomically
   (:mod:`pipeline.stages`). Every stage's CPU time is accounted (:mod:`pipeline.engine_cpu`,
   ``Engine.last_run.cpu``).

Outcomes are yielded as photos finish, each with its task. ``torch.compile`` / CUDA graphs are
opt-in (:class:`EngineOptions` ``compile_mode``) because they only pay where measured.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import time
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, as_completed, wait
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.assessment import proba_to_numpy
from pipeline.config import Settings
from pipeline.engine_cpu import CpuAccount, StageClock, payload_bytes, process_cpu_s
from pipeline.engine_prepare import DecodePolicy
from pipeline.engine_stream import PrepareStream
from pipeline.errors import PipelineError
from pipeline.measure import Measurement
from pipeline.stages import (
    Prepared,
    PrepareOptions,
    Task,
    encode_outputs,
    segment_and_measure,
    write_files,
)

__all__ = ["Engine", "EngineOptions", "EngineOptionsError", "Outcome", "RunStats", "BACKENDS",
           "DECODERS"]

#: Network back-ends: ``'auto'`` measures torch against onnxruntime on the CPU (CUDA: torch).
BACKENDS = ("auto", "torch", "onnxruntime")
#: JPEG decoders: ``'auto'`` is Pillow (libjpeg-turbo) in the workers, on every device: GPU
#: decoding only helps when the pixels stay on the device, and calibration needs them on the
#: CPU (issue 16); ``'torchvision'`` (nvJPEG on CUDA) stays available to measure.
DECODERS = ("auto", "pillow", "torchvision")
#: Where a photo is finished after the network (labels, areas, files): ``'auto'`` = in the
#: worker processes when there are some (a photo's pixels never cross a process boundary),
#: else in writer threads here; ``'threads'`` forces the latter (the layout before issue 16,
#: kept to compare).
FINISHERS = ("auto", "threads")


class EngineOptionsError(PipelineError, ValueError):
    """An invalid :class:`EngineOptions` value (the message names the field)."""

    code = "bad_engine_options"


@dataclass(frozen=True)
class EngineOptions:
    """How the engine runs (the defaults measure and adapt; set a field to force it).

    Parameters
    ----------
    backend : {'auto', 'torch', 'onnxruntime'}
    decode : {'auto', 'pillow', 'torchvision'}
        ``'auto'``: Pillow in the workers. ``'torchvision'`` decodes in batches on the
        engine's device (nvJPEG on CUDA); on the CPU its pixels equal Pillow's bit for bit
        (both libjpeg-turbo), nvJPEG's may differ by a level here and there.
    reduce : {1, 'auto', 2, 4, 8}
        Reduced-size JPEG decoding (:class:`pipeline.engine_prepare.DecodePolicy`). Off (1) by
        default: ~20 % faster on 2 cores, but it moves the starter's healed % by more than
        0.2 points on some photos (see that module).
    tile_batch : int or None
        Tiles per forward pass; ``None``: 4 on the CPU, from free device memory on CUDA.
    threads : int or None
        CPU threads of the network; ``None``: all cores.
    writers : int or None
        Measure-and-write threads; ``None``: ``max(2, cores // 2)``.
    ahead : int or None
        Photos prepared ahead of the network at most; ``None``: ``2 * jobs + 2``.
    compile_mode : {None, 'default', 'reduce-overhead', 'max-autotune'}
        ``torch.compile`` the network (``'reduce-overhead'``: CUDA graphs). Opt-in.
    cache_dir : Path or None
        Where the ONNX export and the back-end timings are kept; ``None``:
        ``Settings.out_dir / 'cache'``.
    refresh : bool
        Time the back-ends again even when a cached choice exists.
    finish : {'auto', 'threads'}
        Where photos are finished after the network (:data:`FINISHERS`).

    Examples
    --------
    >>> EngineOptions(backend="tensorrt")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    pipeline.engine.EngineOptionsError: EngineOptions.backend: 'tensorrt' is not one of ...
    """

    backend: str = "auto"
    decode: str = "auto"
    reduce: str | int = 1
    tile_batch: int | None = None
    threads: int | None = None
    writers: int | None = None
    ahead: int | None = None
    compile_mode: str | None = None
    cache_dir: Path | None = None
    refresh: bool = False
    finish: str = "auto"

    def __post_init__(self) -> None:
        from models.fastpath import COMPILE_MODES

        def bad(name: str, why: str) -> None:
            raise EngineOptionsError(f"EngineOptions.{name}: {getattr(self, name)!r} {why}")

        if self.backend not in BACKENDS:
            bad("backend", f"is not one of {BACKENDS}")
        if self.decode not in DECODERS:
            bad("decode", f"is not one of {DECODERS}")
        if self.finish not in FINISHERS:
            bad("finish", f"is not one of {FINISHERS}")
        if self.reduce != "auto" and self.reduce not in (1, 2, 4, 8):
            bad("reduce", "is not one of 'auto', 1, 2, 4, 8")
        for name in ("tile_batch", "threads", "writers", "ahead"):
            v = getattr(self, name)
            if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
                bad(name, "must be a positive integer or None")
        if self.compile_mode not in COMPILE_MODES:
            bad("compile_mode", f"is not one of {COMPILE_MODES}")


@dataclass
class RunStats:
    """Where the main thread's time went in the last run (seconds), for tuning."""

    wall_s: float = 0.0
    network_s: float = 0.0
    waiting_for_prepare_s: float = 0.0
    waiting_for_writers_s: float = 0.0
    #: where the photos were finished: ``'workers'`` (processes) or ``'threads'`` (here)
    finish_in: str = "threads"
    #: CPU accounting of the run (:class:`pipeline.engine_cpu.CpuAccount`.to_dict())
    cpu: dict[str, Any] = field(default_factory=dict)


@dataclass
class Outcome:
    """A photo's result after all stages (or the stage that failed)."""

    prepared: Prepared
    measurement: Measurement | None = None
    mask_file: str | None = None
    overlay_file: str | None = None
    qc_flags: tuple[str, ...] = field(default_factory=tuple)
    error_code: str | None = None
    error_message: str | None = None
    #: the model's certainty and the photo's novelty (:class:`models.assess.Assessment`),
    #: ``None`` when the model card has no ``qc`` entry
    assessment: Any = None
    #: CPU seconds of the finishing stages (:mod:`pipeline.engine_cpu`)
    cpu_s: dict[str, float] = field(default_factory=dict)


class Engine:
    """Runs the stages with a loaded model. Build with :meth:`Engine.create`."""

    def __init__(self, segmenter: Any, config: Any, card: dict, *, jobs: int, device: Any,
                 options: EngineOptions, choice: Any, threads: int, model_name: str) -> None:
        self.segmenter = segmenter
        self.config = config
        self.card = dict(card)
        self.jobs = jobs
        self.device = device
        self.options = options
        self.choice = choice
        self.threads = threads
        self.model_name = model_name
        cores = os.cpu_count() or 1
        self.writers = options.writers or max(2, cores // 2)
        self.ahead = options.ahead or 2 * jobs + 2
        self.gpu_decode = str(device) if options.decode == "torchvision" else None
        self._pool: Any = None
        self._workers_prepare = False
        self.last_run = RunStats()
        from pipeline.assessment import make_assessor

        self.assessor = make_assessor(self.card, config)

    # ----------------------------------------------------------------- construction
    @classmethod
    def create(cls, settings: Settings, options: EngineOptions | None = None) -> Engine:
        """Load ``settings.model`` (sha256-verified) and set the network up on the device."""
        from models.registry import load_model

        loaded = load_model(settings.model)
        opts = options or EngineOptions()
        if opts.cache_dir is None:
            opts = EngineOptions(**{**asdict(opts), "cache_dir": settings.out_dir / "cache"})
        return cls.from_model(loaded.model, loaded.config, loaded.card, jobs=settings.jobs,
                              device=settings.device, options=opts,
                              model_name=str(loaded.card.get("name", settings.model)))

    @classmethod
    def from_model(cls, model: Any, config: Any, card: dict, *, jobs: int = 1,
                   device: str = "auto", options: EngineOptions | None = None,
                   model_name: str = "model") -> Engine:
        """An engine around an already loaded network (see :func:`pipeline.engine_setup`)."""
        from pipeline.engine_setup import build_segmenter

        opts = options or EngineOptions()
        seg, choice, dev, threads = build_segmenter(model, config, card, device=device,
                                                    options=opts, jobs=jobs)
        return cls(seg, config, card, jobs=jobs, device=dev, options=opts, choice=choice,
                   threads=threads, model_name=model_name)

    @property
    def model_sha256(self) -> str:
        return str(self.card.get("sha256", "unknown"))

    @property
    def model_config(self) -> Any:
        return self.config

    def params(self) -> dict[str, Any]:
        """What ran, for the provenance of every result."""
        return {"jobs": self.jobs, "device": str(self.device),
                "network": {**self.choice.to_dict(), "tile_batch": self.segmenter.batch_size,
                            "threads": self.threads,
                            "compile_mode": self.options.compile_mode},
                "decode": {"decoder": "torchvision" if self.gpu_decode else "pillow",
                           "reduce": self.options.reduce},
                "writers": self.writers, "finish": self.options.finish,
                "model_config": self.config.to_dict()}

    # ---------------------------------------------------------------------- running
    @contextlib.contextmanager
    def workers(self) -> Iterator[Engine]:
        """Keep one pool of prepare workers for every :meth:`run` inside the block (a run
        otherwise starts and stops its own)."""
        from pipeline.engine_stream import start_workers

        self._pool = start_workers(self.jobs)
        try:
            yield self
        finally:
            pool, self._pool = self._pool, None
            pool.terminate()
            pool.join()

    def run(self, tasks: Sequence[Task], options: PrepareOptions, *, out_dir: Path,
            progress: bool = True) -> Iterator[Outcome]:
        """Yield one :class:`Outcome` per task, as photos finish (not in task order: each
        outcome carries its task, ``outcome.prepared.task``)."""
        from tqdm import tqdm

        out_dir = Path(out_dir)
        bar = tqdm(total=len(tasks), unit="photo", disable=not progress or not tasks,
                   desc="processing")
        policy = DecodePolicy(reduce=self.options.reduce)
        try:
            with self.cpu_threads(), \
                    PrepareStream(tasks, options, jobs=self.jobs, policy=policy,
                                  ahead=self.ahead, gpu_decode=self.gpu_decode,
                                  pool=self._pool) as stream, \
                    ThreadPoolExecutor(self.writers, thread_name_prefix="write") as writer:
                pending: deque[Future] = deque()
                stats = self.last_run = RunStats()
                account = CpuAccount()
                pool = stream.pool if self.options.finish == "auto" else None
                stats.finish_in = "workers" if pool is not None else "threads"
                self._workers_prepare = stream.pool is not None
                account.start([w.pid for w in getattr(stream.pool, "_pool", [])])
                t_start = time.perf_counter()
                # CPU: one photo per network call, so its tiles' batches (and so its answer,
                # to the last bit) never depend on timing; CUDA: photos share batches
                group_tiles = 2 * self.segmenter.batch_size if self.device.type == "cuda" else 0
                while not stream.exhausted:
                    t0 = time.perf_counter()
                    group = [stream.take()]
                    tiles = self._n_tiles(group[0])
                    while tiles < group_tiles and stream.ready():
                        group.append(stream.take())
                        tiles += self._n_tiles(group[-1])
                    t1 = time.perf_counter()
                    pending.extend(self._segment(group, writer, out_dir, pool, account))
                    t2 = time.perf_counter()
                    stats.waiting_for_prepare_s += t1 - t0
                    stats.network_s += t2 - t1
                    while pending:
                        done = [f for f in pending if f.done()]
                        if not done and len(pending) <= 2 * self.writers:
                            break
                        if not done:  # bounded: wait for a writer before the next photo
                            t3 = time.perf_counter()
                            wait(pending, return_when=FIRST_COMPLETED)
                            stats.waiting_for_writers_s += time.perf_counter() - t3
                            continue
                        for f in done:
                            pending.remove(f)
                            yield self._account(f.result(), account, pool)
                            bar.update(1)
                for f in as_completed(list(pending)):
                    yield self._account(f.result(), account, pool)
                    bar.update(1)
                stats.wall_s = time.perf_counter() - t_start
                account.bytes_to_workers += stream.bytes_sent
                account.stop()
                stats.cpu = account.to_dict()
        finally:
            bar.close()

    def _n_tiles(self, p: Prepared) -> int:
        if not p.ok or p.working is None:
            return 0
        from models.tiling import plan_tiles

        c = self.config
        return len(plan_tiles(p.working.shape[:2], tile=c.tile_size, overlap=c.tile_overlap,
                              stride=c.stride).starts)

    @staticmethod
    def _account(outcome: Outcome, account: CpuAccount, pool: Any) -> Outcome:
        account.photos += 1
        account.add_stages(outcome.prepared.cpu_s)
        account.add_stages(outcome.cpu_s)
        if pool is not None:  # the outcome came back from a worker
            account.bytes_from_workers += payload_bytes(outcome)
        return outcome

    def _segment(self, group: list[Prepared], writer: ThreadPoolExecutor, out_dir: Path,
                 pool: Any, account: CpuAccount) -> list[Future]:
        ok = [p for p in group if p.ok]
        sources: dict[int, Any] = {}
        if ok:
            if self._workers_prepare:  # the prepared photos came from worker processes
                account.bytes_from_workers += payload_bytes(*ok)
            c0 = process_cpu_s()
            probas = self._proba([p.working for p in ok])
            for p, proba in zip(ok, probas, strict=True):
                if pool is not None:  # the workers finish: low-res probabilities go there
                    sources[id(p)] = (proba_to_numpy(proba),)
                else:
                    # CUDA: upsample + argmax queued on the device now, copied back
                    # asynchronously; CPU: the border-only upsampling runs in the writer
                    sources[id(p)] = (proba, self.segmenter.labels(proba, p.full_shape)
                                      if self.device.type == "cuda" else None)
            account.main_network_s += process_cpu_s() - c0
        futures = []
        for p in group:
            fut: Future = Future()
            if not p.ok:
                fut.set_result(Outcome(p))
            elif pool is not None:
                (proba,) = sources.pop(id(p))
                if self.assessor is None:  # the working image is only needed to assess
                    p = dataclasses.replace(p, working=np.empty((*p.working.shape[:2], 0),
                                                                np.float32))
                account.bytes_to_workers += payload_bytes(p, proba)
                pool.apply_async(finish_photo, (p, proba, out_dir, self.assessor),
                                 callback=fut.set_result, error_callback=fut.set_exception)
            else:
                fut = writer.submit(self._finish, p, *sources.pop(id(p)), out_dir)
            futures.append(fut)
        return futures

    def _proba(self, images: list[np.ndarray]) -> list[Any]:
        while True:
            try:
                return self.segmenter.proba(images)
            except RuntimeError as exc:  # CUDA out of memory: halve the batch and go on
                if "out of memory" not in str(exc) or self.segmenter.batch_size == 1:
                    raise
                import torch

                torch.cuda.empty_cache()
                self.segmenter.batch_size //= 2

    def _finish(self, p: Prepared, proba: Any, pending: Any, out_dir: Path) -> Outcome:
        return finish_photo(p, proba, out_dir, self.assessor, pending=pending,
                            segmenter=self.segmenter)

    @contextlib.contextmanager
    def cpu_threads(self) -> Iterator[None]:
        """CPU threads for the run, restored afterwards. torch gets the network's threads
        only when it runs the network on the CPU; otherwise it only blends tiles, on one
        thread, because idle OpenMP threads spin after every operation and that burnt a
        whole core of this 2-core machine (measured). OpenCV runs single-threaded here (the
        writer threads are the parallelism)."""
        import cv2
        import torch

        before = torch.get_num_threads(), cv2.getNumThreads()
        torch_cpu = self.device.type == "cpu" and self.choice.backend == "torch"
        torch.set_num_threads(self.threads if torch_cpu else 1)
        cv2.setNumThreads(1)
        try:
            yield
        finally:
            torch.set_num_threads(before[0])
            cv2.setNumThreads(before[1])


def finish_photo(p: Prepared, proba: Any, out_dir: Path, assessor: Any, *,
                 pending: Any = None, segmenter: Any = None) -> Outcome:
    """Everything after the network for one photo, wherever it runs (a worker process that
    receives the low-resolution probabilities, or a writer thread of the main process):
    assessment, full-size labels (the exact border-only upsampling of
    :func:`models.upsample.upsample_labels`, or ``pending`` labels from the device), areas,
    QC flags, encoded files written atomically. Each stage's CPU time is in the outcome's
    ``cpu_s``. The outcome carries the photo without its pixels (only the working image's
    shape is kept, as the store's provenance)."""
    from models.upsample import upsample_labels
    from pipeline.assessment import assess_prepared

    cpu: dict[str, float] = {}
    clock = StageClock(cpu)
    with clock("assess"):
        assessment = assess_prepared(assessor, p, proba)
    with clock("labels"):
        if pending is None and segmenter is not None:
            pending = segmenter.labels(proba, p.full_shape)
        labels = pending.result() if pending is not None else \
            upsample_labels(proba_to_numpy(proba), p.full_shape)
    outcome, files = measure_and_encode(p, labels, assessment=assessment, clock=clock)
    with clock("write"):
        if files:
            write_files(files, out_dir=out_dir)
    outcome.cpu_s = cpu
    p.working = np.empty((*p.working.shape[:2], 0), np.float32)
    p.review = None
    return outcome


def measure_and_encode(p: Prepared, labels: np.ndarray, *, outcome_type: type[Outcome] = Outcome,
                       assessment: Any = None, clock: Any = None,
                       **extra: Any) -> tuple[Outcome, dict[str, bytes]]:
    """The last stage of both engines for one photo with its full-resolution labels: areas
    through the calibration, QC flags (the label checks and ``assessment``'s flags) and the
    encoded output files (written by the caller: the local writer threads, or the Ray
    driver). An encoding error is a failed outcome."""
    clock = clock or StageClock({})
    with clock("measure"):
        m = segment_and_measure(p, labels)
    try:
        with clock("encode"):
            files = encode_outputs(p, labels)
    except PipelineError as exc:
        return outcome_type(p, m, error_code=exc.code, error_message=str(exc),
                            assessment=assessment, **extra), {}
    mask_file, overlay_file = list(files)[:2]
    flags = _label_qc(labels, m) + (tuple(assessment.flags) if assessment is not None else ())
    return outcome_type(p, m, mask_file, overlay_file, flags, assessment=assessment,
                        **extra), files


def _label_qc(labels: np.ndarray, m: Measurement) -> tuple[str, ...]:
    flags = []
    if m.donor_site_area_mm2 <= 0:
        flags.append("no_donor_site_found")
    if m.donor_site_area_mm2 > 0 and (labels[0].any() or labels[-1].any()
                                      or labels[:, 0].any() or labels[:, -1].any()):
        flags.append("donor_site_touches_photo_edge")
    return tuple(flags)
