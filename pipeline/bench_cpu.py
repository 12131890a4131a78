"""``donorsite bench --cpu``: where the engine's CPU goes, per photo, per stage, per process.

Runs the engine over the bench photos with CPU-time accounting (:mod:`pipeline.engine_cpu`)
in the layouts worth comparing, in one run:

* ``threads`` — photos finished in writer threads of the main process (the layout before
  issue 16: the full-size labels, areas and files are made beside the network);
* ``workers`` — photos finished in the worker processes that prepared them (the default:
  only working images go to the network, only low-res probabilities come back);

each with the real network and, with ``standin_ms``, with a **GPU stand-in**
(:class:`StandInSegmenter`): a network that takes a set time per batch while using no CPU (a
sleep), so the CPU side's photos/s, its scaling with ``jobs`` and the main process's
overhead can be measured on a machine without a GPU. Start-up (engine creation to first
photo out) is reported for each run.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["StandInSegmenter", "StandInChoice", "cpu_runs", "format_cpu_table"]


class StandInSegmenter:
    """A network stand-in: ``ms_per_batch`` of sleep per forward batch, no CPU.

    Its probabilities are fixed (an ellipse of donor site, left half epithelialized, in the
    middle of the working image), so measuring and writing have real work to do.
    """

    def __init__(self, ms_per_batch: float, *, batch_size: int = 8) -> None:
        self.ms_per_batch = float(ms_per_batch)
        self.batch_size = batch_size
        self._cache: dict[tuple[int, int], Any] = {}

    def _proba(self, shape: tuple[int, int]) -> Any:
        import torch

        if shape not in self._cache:
            h, w = shape
            yy, xx = np.mgrid[0:h, 0:w]
            site = ((yy - h / 2) / (h / 4)) ** 2 + ((xx - w / 2) / (w / 4)) ** 2 < 1
            p = np.zeros((3, h, w), np.float32)
            p[0] = np.where(site, 0.05, 0.95)
            p[1] = np.where(site & (xx < w / 2), 0.9, 0.025)
            p[2] = 1 - p[0] - p[1]
            self._cache[shape] = torch.from_numpy(p)
        return self._cache[shape].clone()

    def proba(self, images: Sequence[np.ndarray]) -> list[Any]:
        time.sleep(self.ms_per_batch / 1e3)
        return [self._proba(tuple(im.shape[:2])) for im in images]

    def labels(self, proba: Any, out_shape: tuple[int, int]) -> Any:
        from models.fastpath import PendingLabels
        from models.upsample import upsample_labels

        return PendingLabels(upsample_labels(proba.numpy(), out_shape))


@dataclass(frozen=True)
class StandInChoice:
    """What :meth:`pipeline.engine.Engine.params` reports for the stand-in."""

    ms_per_batch: float
    backend: str = "stand-in"

    def to_dict(self) -> dict[str, Any]:
        return {"backend": self.backend, "ms_per_batch": self.ms_per_batch}


def _standin_engine(config: Any, card: dict, *, jobs: int, ms: float, finish: str) -> Any:
    import torch

    from pipeline.engine import Engine, EngineOptions

    return Engine(StandInSegmenter(ms), config, card, jobs=jobs, device=torch.device("cpu"),
                  options=EngineOptions(finish=finish), choice=StandInChoice(ms), threads=1,
                  model_name="stand-in")


def cpu_runs(tasks: Sequence[Any], options: Any, *, net: Any, config: Any, card: dict,
             model_name: str, device: str, jobs_list: Sequence[int], work: Path,
             cache_dir: Path, standin_ms: float | None = None,
             progress: Any = print) -> list[dict[str, Any]]:
    """One cold engine run per (network, layout, jobs); each row: photos/s, start-up, the CPU
    accounting, and the answers' fingerprint (to check the layouts agree)."""
    from pipeline.engine import Engine, EngineOptions

    rows = []
    nets = [("network", None)] + ([("stand-in", standin_ms)] if standin_ms else [])
    for net_name, ms in nets:
        for finish in ("threads", "auto"):
            for jobs in jobs_list:
                t0 = time.perf_counter()
                if ms is None:
                    engine = Engine.from_model(net, config, card, jobs=jobs, device=device,
                                               options=EngineOptions(cache_dir=cache_dir,
                                                                     finish=finish),
                                               model_name=model_name)
                else:
                    engine = _standin_engine(config, card, jobs=jobs, ms=ms, finish=finish)
                out = work / f"{net_name}-{finish}-{jobs}"
                shutil.rmtree(out, ignore_errors=True)
                first = None
                healed = {}
                for o in engine.run(tasks, options, out_dir=out, progress=False):
                    first = first if first is not None else time.perf_counter() - t0
                    if o.measurement is not None:
                        healed[o.prepared.task.photo_id] = o.measurement.healed_percent
                wall = time.perf_counter() - t0
                stats = engine.last_run
                row = {"network": net_name, "finish_in": stats.finish_in, "jobs": jobs,
                       "photos_per_s": len(tasks) / stats.wall_s, "wall_s_with_startup": wall,
                       "startup_to_first_photo_s": first, "cpu": stats.cpu,
                       "healed": healed}
                rows.append(row)
                progress(_line(row))
                shutil.rmtree(out, ignore_errors=True)
    return rows


def _line(r: dict[str, Any]) -> str:
    c = r["cpu"]
    st = " ".join(f"{k} {v:.0f}" for k, v in c["stage_cpu_ms_per_photo"].items())
    return (f"{r['network']:<8} finish={r['finish_in']:<7} jobs={r['jobs']}: "
            f"{r['photos_per_s']:.2f} photos/s, start-up {r['startup_to_first_photo_s']:.1f} s;"
            f" CPU ms/photo: main {c['main_process_cpu_ms_per_photo']:.0f} (outside network "
            f"{c['main_outside_network_cpu_ms_per_photo']:.0f}), workers "
            f"{c['workers_cpu_ms_per_photo']:.0f}, outside network total "
            f"{c['cpu_ms_per_photo_outside_network']:.0f}; MB/photo to/from workers "
            f"{c['bytes_to_workers_per_photo'] / 1e6:.1f}/"
            f"{c['bytes_from_workers_per_photo'] / 1e6:.1f}; stages: {st}")


def format_cpu_table(rows: list[dict[str, Any]]) -> str:
    """The runs as a plain-text table (one line per run, then the stages)."""
    head = (f"{'network':<8} {'finish':<7} {'jobs':>4} {'ph/s':>6} {'start s':>7} "
            f"{'main ms':>7} {'main-net':>8} {'workers':>7} {'out-net':>7} {'MB to':>6} "
            f"{'MB from':>7}")
    lines = [head]
    stages: list[str] = []
    for r in rows:
        c = r["cpu"]
        for k in c["stage_cpu_ms_per_photo"]:
            if k not in stages:
                stages.append(k)
        lines.append(
            f"{r['network']:<8} {r['finish_in']:<7} {r['jobs']:>4} {r['photos_per_s']:>6.2f} "
            f"{r['startup_to_first_photo_s']:>7.1f} {c['main_process_cpu_ms_per_photo']:>7.0f} "
            f"{c['main_outside_network_cpu_ms_per_photo']:>8.0f} "
            f"{c['workers_cpu_ms_per_photo']:>7.0f} "
            f"{c['cpu_ms_per_photo_outside_network']:>7.0f} "
            f"{c['bytes_to_workers_per_photo'] / 1e6:>6.1f} "
            f"{c['bytes_from_workers_per_photo'] / 1e6:>7.1f}")
    lines.append("")
    lines.append("CPU ms per photo per stage (thread CPU time, wherever the stage ran):")
    lines.append(f"{'network':<8} {'finish':<7} {'jobs':>4} " +
                 " ".join(f"{s:>9}" for s in stages))
    for r in rows:
        st = r["cpu"]["stage_cpu_ms_per_photo"]
        lines.append(f"{r['network']:<8} {r['finish_in']:<7} {r['jobs']:>4} " +
                     " ".join(f"{st.get(s, 0.0):>9.1f}" for s in stages))
    return "\n".join(lines)
