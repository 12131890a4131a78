"""CPU accounting of the engine and the finishing layouts (issue 16), with a network stand-in.

With worker processes, a photo is finished (labels, areas, files) in the workers: the
answers must equal those of finishing in the main process's threads, every stage must be
timed, and no photo's pixels may come back with its outcome.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from calibration import load_sticker
from models.config import ModelConfig
from pipeline.bench_cpu import StandInSegmenter, _standin_engine, format_cpu_table
from pipeline.decode import sha256_bytes
from pipeline.engine import EngineOptions, EngineOptionsError
from pipeline.engine_cpu import (
    FINISH_STAGES,
    PREPARE_STAGES,
    CpuAccount,
    payload_bytes,
    process_cpu_s,
)
from pipeline.stages import PrepareOptions, Task


def test_accounting_pieces():
    a = np.zeros((10, 10), np.float32)
    assert payload_bytes(a, np.zeros(3, np.uint8)) == 403
    acc = CpuAccount(photos=2, main_s=0.010, main_network_s=0.004, workers_s=0.5)
    acc.add_stages({"decode": 0.1})
    acc.add_stages({"decode": 0.1, "write": 0.02})
    d = acc.to_dict()
    assert d["stage_cpu_ms_per_photo"] == pytest.approx({"decode": 100.0, "write": 10.0})
    assert d["main_outside_network_cpu_ms_per_photo"] == pytest.approx(3.0)
    assert d["cpu_ms_per_photo_outside_network"] == pytest.approx(253.0)
    assert process_cpu_s() > 0
    with pytest.raises(EngineOptionsError, match="finish"):
        EngineOptions(finish="gpu")


def _run(engine, tasks, options, out: Path) -> dict:
    return {o.prepared.task.photo_id: o for o in engine.run(tasks, options, out_dir=out,
                                                            progress=False)}


@pytest.mark.slow  # two runs with spawned workers: ~25 s of CPU
def test_finishing_in_workers_equals_threads_and_is_accounted(tmp_path, small_study):
    rows = list(csv.DictReader((small_study / "manifest.csv").open()))
    tasks = [Task(f"P{i}", 1, small_study / r["file"], r["file"],
                  sha256_bytes((small_study / r["file"]).read_bytes()))
             for i, r in enumerate(rows)]
    config = ModelConfig(encoder="tu-resnet10t", encoder_depth=3, decoder_channels=(16, 8, 8),
                         tile_size=64, px_per_mm=1.0)
    options = PrepareOptions(sticker=load_sticker(), model_config=config)
    res, stats = {}, {}
    for finish in ("threads", "auto"):
        engine = _standin_engine(config, {}, jobs=2, ms=1.0, finish=finish)
        assert isinstance(engine.segmenter, StandInSegmenter)
        res[finish] = _run(engine, tasks, options, tmp_path / finish)
        stats[finish] = engine.last_run
    assert stats["threads"].finish_in == "threads" and stats["auto"].finish_in == "workers"
    for pid, o in res["auto"].items():
        t = res["threads"][pid]
        assert o.error_code is None and o.prepared.ok
        assert o.measurement.healed_percent == t.measurement.healed_percent
        assert o.prepared.review is None and o.prepared.working.size == 0  # no pixels back
        a = np.asarray(Image.open(
            tmp_path / "auto" / o.mask_file))
        b = np.asarray(Image.open(
            tmp_path / "threads" / t.mask_file))
        assert np.array_equal(a, b)
        assert set(PREPARE_STAGES) <= set(o.prepared.cpu_s)
        assert set(FINISH_STAGES) <= set(o.cpu_s)
    cpu = stats["auto"].cpu
    assert cpu["photos"] == len(tasks)
    assert cpu["bytes_to_workers_per_photo"] > 0 and cpu["bytes_from_workers_per_photo"] > 0
    assert cpu["workers_cpu_ms_per_photo"] > 0
    assert "write" in format_cpu_table([{"network": "stand-in", "finish_in": "workers",
                                         "jobs": 2, "photos_per_s": 1.0,
                                         "startup_to_first_photo_s": 1.0, "cpu": cpu}])
