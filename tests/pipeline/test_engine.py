"""The engine: every path gives the same answers, every task comes back, queues are bounded.

Paths compared on a small synthetic study with a tiny (untrained) model: the naive per-photo
reference (``stages.prepare`` + ``Predictor.predict``), the engine with eager PyTorch, the
engine with ONNX Runtime, the engine with batched torchvision decoding (the GPU decode logic,
run on the CPU) and, when CUDA is available, the engine on the GPU. Masks must agree on
>= 99.5 % of pixels and healed percentages within 0.2 points.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from calibration import load_sticker
from pipeline.config import Settings
from pipeline.decode import sha256_bytes
from pipeline.engine import Engine, EngineOptions, EngineOptionsError
from pipeline.engine_prepare import DecodePolicy
from pipeline.engine_stream import PrepareStream
from pipeline.stages import PrepareOptions, Task, prepare, segment_and_measure

ROOT = Path(__file__).resolve().parents[2]
STARTER = ROOT / "models" / "weights" / "starter.safetensors"


def _tasks(study: Path) -> list[Task]:
    rows = list(csv.DictReader((study / "manifest.csv").open()))
    return [Task(f"P{i:03d}", 1, study / r["file"], r["file"],
                 sha256_bytes((study / r["file"]).read_bytes())) for i, r in enumerate(rows)]


def _options(config) -> PrepareOptions:
    return PrepareOptions(sticker=load_sticker(), model_config=config)


def _engine(model: Path, out: Path, *, jobs: int = 1, device: str = "cpu", **kw) -> Engine:
    return Engine.create(Settings(out_dir=out, model=str(model), jobs=jobs, device=device),
                         EngineOptions(**kw))


def _run(engine: Engine, tasks: list[Task], out: Path) -> dict[str, tuple]:
    res = {}
    for o in engine.run(tasks, _options(engine.model_config), out_dir=out, progress=False):
        assert o.error_code is None and o.prepared.ok, o.prepared.error_message
        labels = np.asarray(Image.open(out / o.mask_file))
        res[o.prepared.task.photo_id] = (labels, o.measurement.healed_percent)
    return res


def _naive(model: Path, tasks: list[Task]) -> dict[str, tuple]:
    from models import Predictor
    from pipeline.engine_setup import torch_threads

    pred = Predictor.from_registry(str(model), device="cpu")
    res = {}
    with torch_threads(1):  # one thread: robust to a busy machine (no OpenMP spinning)
        for t in tasks:
            p = prepare(t, _options(pred.config))
            labels = pred.predict(p.working, output_shape=p.full_shape)
            res[t.photo_id] = (labels, segment_and_measure(p, labels).healed_percent)
    return res


def _assert_same(a: dict, b: dict, what: str) -> None:
    assert a.keys() == b.keys()
    for k in a:
        (la, ha), (lb, hb) = a[k], b[k]
        assert la.shape == lb.shape, what
        agree = float((la == lb).mean())
        assert agree >= 0.995, f"{what}: {k} masks agree on {agree:.4%}"
        if ha is None or hb is None:
            assert ha == hb, what
        else:
            assert abs(ha - hb) <= 0.2, f"{what}: {k} healed {ha:.3f} vs {hb:.3f}"


@pytest.fixture(scope="module")
def reference(small_study, tiny_model):
    return _naive(tiny_model, _tasks(small_study))


@pytest.mark.parametrize("path", ["torch", "onnxruntime", "torchvision-decode"])
def test_every_cpu_path_gives_the_same_answers(path, tmp_path, small_study, tiny_model,
                                               reference):
    kw = {"backend": "torch", "threads": 1} if path == "torch" else \
        {"backend": "onnxruntime"} if path == "onnxruntime" else \
        {"backend": "onnxruntime", "decode": "torchvision"}
    engine = _engine(tiny_model, tmp_path / "out", **kw)
    assert engine.choice.backend == kw["backend"]
    assert (engine.gpu_decode == "cpu") == (path == "torchvision-decode")
    _assert_same(reference, _run(engine, _tasks(small_study), tmp_path / "out"), path)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("decode", ["auto", "torchvision"])
def test_gpu_path_gives_the_same_answers(decode, tmp_path, small_study, tiny_model, reference):
    engine = _engine(tiny_model, tmp_path / "out", device="cuda", decode=decode)
    # auto: decoded by Pillow in the workers; torchvision: nvJPEG, still measured
    assert engine.device.type == "cuda" and engine.gpu_decode == (
        "cuda" if decode == "torchvision" else None)
    _assert_same(reference, _run(engine, _tasks(small_study), tmp_path / "out"), "cuda")


def test_identity_failures_and_worker_processes(tmp_path, small_study, tiny_model):
    tasks = _tasks(small_study)
    bad = tmp_path / "text.jpg"
    bad.write_bytes(b"not an image\n" * 40)
    mixed = [tasks[0], Task("PX1", 1, tmp_path / "missing.jpg", "missing.jpg", "0" * 64),
             tasks[1], Task("PX2", 1, bad, "text.jpg", sha256_bytes(bad.read_bytes())),
             tasks[2], tasks[3]]
    engine = _engine(tiny_model, tmp_path / "out", jobs=2, backend="onnxruntime", ahead=2)
    outs = list(engine.run(mixed, _options(engine.model_config), out_dir=tmp_path / "out",
                           progress=False))
    assert sorted(o.prepared.task.photo_id for o in outs) == sorted(t.photo_id for t in mixed)
    codes = {o.prepared.task.photo_id: o.prepared.error_code for o in outs}
    assert codes == {mixed[0].photo_id: None, "PX1": "missing_file", mixed[2].photo_id: None,
                     "PX2": "not_an_image", mixed[4].photo_id: None, mixed[5].photo_id: None}
    for o in outs:
        if o.prepared.ok:
            assert (tmp_path / "out" / o.mask_file).is_file()
            assert (tmp_path / "out" / o.overlay_file).is_file()


def test_prepare_stream_is_bounded_and_complete(small_study, tiny_model):
    from models.registry import load_model

    tasks = _tasks(small_study)[:3] * 2  # 6 < PROCESS_MIN_TASKS: the thread path
    opts = _options(load_model(str(tiny_model)).config)
    seen = []
    with PrepareStream(tasks, opts, jobs=1, policy=DecodePolicy(), ahead=2) as stream:
        while not stream.exhausted:
            assert len(stream._pending) <= 2
            seen.append(stream.take().task.photo_id)
    assert sorted(seen) == sorted(t.photo_id for t in tasks)


def test_backend_choice_is_measured_cached_and_recorded(tmp_path, tiny_model):
    first = _engine(tiny_model, tmp_path / "out")
    assert first.choice.backend in ("torch", "onnxruntime") and not first.choice.cached
    assert set(first.choice.seconds_per_tile) == {"torch", "onnxruntime"}
    cache = json.loads((tmp_path / "out" / "cache" / "engine-backends.json").read_text())
    assert [v["backend"] for v in cache.values()] == [first.choice.backend]
    second = _engine(tiny_model, tmp_path / "out")
    assert second.choice.cached and second.choice.backend == first.choice.backend
    params = second.params()
    assert params["network"]["backend"] == first.choice.backend
    assert params["decode"] == {"decoder": "pillow", "reduce": 1}
    assert params["model_config"]["tile_size"] == 64
    json.dumps(params)  # stored with every run


def test_bad_options():
    with pytest.raises(EngineOptionsError, match="tensorrt"):
        EngineOptions(backend="tensorrt")
    with pytest.raises(EngineOptionsError, match="reduce"):
        EngineOptions(reduce=3)
    with pytest.raises(EngineOptionsError, match="tile_batch"):
        EngineOptions(tile_batch=0)


@pytest.mark.slow
@pytest.mark.skipif(not STARTER.is_file(), reason="the starter model is not trained yet")
def test_starter_model_paths_agree(tmp_path):
    """The shipped model on 4000x3000 photos: reduced decode + ORT vs torch vs naive."""
    from pipeline.synth import StudyConfig, generate_study

    study = tmp_path / "s"
    generate_study(study, StudyConfig.from_cli(seed=29, subjects=1, days="0,14",
                                               size="4000x3000"), jobs=1, progress=False)
    tasks = _tasks(study)
    ref = _naive(STARTER, tasks)
    for backend in ("torch", "onnxruntime"):
        engine = _engine(STARTER, tmp_path / backend, backend=backend, threads=1)
        _assert_same(ref, _run(engine, tasks, tmp_path / backend), f"starter/{backend}")
