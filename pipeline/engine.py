"""The executor that runs the per-photo stages over a batch.

CPU stages (decode, calibrate, colour-correct, working image) run in a pool of worker
processes; the network runs in this process on the prepared working images, in order; the
measurement and the atomic writes follow. The performance work (batched, overlapped GPU loop,
fast CPU path) belongs here and nowhere else: ``donorsite process`` only calls
:meth:`Engine.run`.
"""

from __future__ import annotations

import multiprocessing as mp
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.config import Settings
from pipeline.measure import Measurement
from pipeline.stages import Prepared, PrepareOptions, Task, prepare, write_outputs

__all__ = ["Engine", "Outcome"]


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


_WORKER_OPTIONS: PrepareOptions | None = None


def _init_worker(options: PrepareOptions) -> None:
    global _WORKER_OPTIONS  # per worker process, set once by the pool initializer
    import cv2

    cv2.setNumThreads(1)
    _WORKER_OPTIONS = options


def _prepare_in_worker(task: Task) -> Prepared:
    assert _WORKER_OPTIONS is not None
    return prepare(task, _WORKER_OPTIONS)


class Engine:
    """Runs the stages with a loaded model. Build with :meth:`Engine.create`."""

    def __init__(self, predictor: Any, *, jobs: int, model_name: str) -> None:
        self.predictor = predictor
        self.jobs = jobs
        self.model_name = model_name

    @classmethod
    def create(cls, settings: Settings) -> Engine:
        from models import Predictor

        device = None if settings.device == "auto" else settings.device
        predictor = Predictor.from_registry(settings.model, device=device or "auto")
        return cls(predictor, jobs=settings.jobs,
                   model_name=str(predictor.card.get("name", settings.model)))

    @property
    def model_sha256(self) -> str:
        return str(self.predictor.card.get("sha256", "unknown"))

    @property
    def model_config(self) -> Any:
        return self.predictor.config

    def params(self) -> dict[str, Any]:
        return {"jobs": self.jobs, "device": str(self.predictor.device),
                "model_config": self.predictor.config.to_dict()}

    def run(self, tasks: Sequence[Task], options: PrepareOptions, *, out_dir: Path,
            progress: bool = True) -> Iterator[Outcome]:
        """Yield one :class:`Outcome` per task, in task order."""
        from tqdm import tqdm

        bar = tqdm(total=len(tasks), unit="photo", disable=not progress or not tasks,
                   desc="processing")
        try:
            for prepared in self._prepared(tasks, options):
                yield self._finish(prepared, out_dir)
                bar.update(1)
        finally:
            bar.close()

    def _prepared(self, tasks: Sequence[Task], options: PrepareOptions) -> Iterator[Prepared]:
        if self.jobs <= 1 or len(tasks) <= 1:
            for t in tasks:
                yield prepare(t, options)
            return
        ctx = mp.get_context("spawn")  # no fork of a process holding torch threads
        with ctx.Pool(self.jobs, initializer=_init_worker, initargs=(options,)) as pool:
            yield from pool.imap(_prepare_in_worker, tasks, chunksize=1)

    def _finish(self, p: Prepared, out_dir: Path) -> Outcome:
        if not p.ok:
            return Outcome(p)
        labels = self.predictor.predict(p.working, output_shape=p.full_shape)
        from pipeline.stages import segment_and_measure

        m = segment_and_measure(p, labels)
        mask_file, overlay_file = write_outputs(p, labels, out_dir=out_dir)
        return Outcome(p, m, mask_file, overlay_file, _label_qc(labels, m))


def _label_qc(labels: np.ndarray, m: Measurement) -> tuple[str, ...]:
    flags = []
    if m.donor_site_area_mm2 <= 0:
        flags.append("no_donor_site_found")
    site = labels > 0
    if site.any() and (site[0].any() or site[-1].any() or site[:, 0].any() or site[:, -1].any()):
        flags.append("donor_site_touches_photo_edge")
    return tuple(flags)
