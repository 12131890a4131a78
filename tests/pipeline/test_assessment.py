"""The per-photo assessment runs in every engine path and reaches the store and the tables.

A copy of the tiny test model gets a card ``qc`` entry fitted (``models.assess.
fit_assessment``) on the small study's own photos; a study made of those photos plus a
kitchen scene with the sticker composited into it is then processed. Each photo must be
assessed and stored, the scene flagged ``out_of_distribution``, and the local thread path
and the worker-process path must store identical figures. A model without ``qc`` (the shipped
starter today) stores no assessment and does not fail.
"""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from calibration import load_sticker
from models.assess import OUT_OF_DISTRIBUTION
from pipeline.config import Settings
from pipeline.engine import EngineOptions
from pipeline.process import process_study
from pipeline.qc import HOLD_FOR_READ_FLAGS
from pipeline.store import ASSESSMENT_COLUMNS, Store

FIGURES = ["confidence", "healed_percent_low", "healed_percent_high", "ood_score"]


def _scene_with_sticker(path: Path) -> None:
    """A kitchen scene (skimage's ``coffee``) with the DS-CAL-1 sticker pasted in a corner."""
    import cv2
    from skimage import data

    from calibration.sticker import render_sticker
    from pipeline.synth.camera import encode_srgb

    scene = cv2.resize(data.coffee(), (1000, 750), interpolation=cv2.INTER_CUBIC)
    card = encode_srgb(render_sticker(load_sticker(), px_per_mm=4.0))
    h, w = card.shape[:2]
    scene[40:40 + h, 680 - w // 2:680 - w // 2 + w] = card
    Image.fromarray(scene).save(path, quality=95)


@pytest.fixture(scope="module")
def ood_study(tmp_path_factory, small_study) -> Path:
    root = tmp_path_factory.mktemp("ood") / "study"
    shutil.copytree(small_study, root)
    _scene_with_sticker(root / "scene.jpg")
    with (root / "manifest.csv").open("a", newline="") as f:
        csv.writer(f).writerow(["S09", 0, "buttock-left", "scene.jpg"])
    return root


@pytest.fixture(scope="module")
def qc_model(tmp_path_factory, small_study, tiny_model, publish_with_qc) -> Path:
    """The tiny model with a ``qc`` card entry fitted on the small study's photos."""
    return publish_with_qc(tiny_model, small_study, tmp_path_factory.mktemp("qcw"))


def _process(study: Path, model: Path, out: Path, *, jobs: int) -> pd.DataFrame:
    settings = Settings(out_dir=out, model=str(model), jobs=jobs, device="cpu")
    summary = process_study(study, settings, progress=False,
                            engine_options=EngineOptions(backend="torch", threads=1))
    assert summary.n_failed == 0
    return pd.read_csv(out / "measurements.csv").set_index("file").sort_index()


def test_assessments_are_stored_and_the_scene_is_flagged(tmp_path, ood_study, qc_model):
    threads = _process(ood_study, qc_model, tmp_path / "a", jobs=1)
    assert threads[FIGURES].notna().all().all(), threads[FIGURES]
    flags = threads["qc_flags"].fillna("").str.split(";")
    assert OUT_OF_DISTRIBUTION in flags["scene.jpg"]
    assert OUT_OF_DISTRIBUTION in HOLD_FOR_READ_FLAGS
    for name, f in flags.items():
        if name != "scene.jpg":
            assert OUT_OF_DISTRIBUTION not in f, (name, threads.loc[name, "ood_score"])
    assert threads.loc["scene.jpg", "ood_score"] > 1.0
    with Store.open(tmp_path / "a" / "study.sqlite") as store:
        n = store.conn.execute("SELECT COUNT(*) FROM assessments").fetchone()[0]
    assert n == len(threads)


@pytest.mark.slow
def test_worker_processes_store_the_same_assessments(tmp_path, ood_study, qc_model):
    threads = _process(ood_study, qc_model, tmp_path / "a", jobs=1)
    procs = _process(ood_study, qc_model, tmp_path / "b", jobs=2)  # spawned workers
    pd.testing.assert_frame_equal(threads[FIGURES + ["qc_flags"]], procs[FIGURES + ["qc_flags"]])


def test_a_model_without_qc_is_not_assessed(tmp_path, small_study, tiny_model):
    df = _process(small_study, tiny_model, tmp_path / "o", jobs=1)
    assert len(df) == 4 and (df["status"] == "ok").all()
    assert df[FIGURES].isna().all().all()
    assert not df["qc_flags"].fillna("").str.contains("out_of_distribution").any()
    assert set(ASSESSMENT_COLUMNS) >= {"confidence", "ood_score"}
    assert np.isfinite(df["healed_percent"]).all()
