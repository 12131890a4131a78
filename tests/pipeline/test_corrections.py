"""The corrections loop on tiny data: process -> simulated corrected reads -> export ->
fine-tune -> guard -> register -> reprocess, and the choice of teaching masks."""

from __future__ import annotations

import json
import shutil

import cv2
import numpy as np
import pytest

from pipeline.corrections import CorrectionsError, choose_masks, export_training_data


@pytest.fixture(scope="module")
def processed(tmp_path_factory, small_study, tiny_model):
    from pipeline.config import Settings
    from pipeline.process import process_study

    root = tmp_path_factory.mktemp("corr")
    study = root / "study"
    shutil.copytree(small_study, study)
    settings = Settings(out_dir=root / "out", model=str(tiny_model), jobs=1, device="cpu")
    summary = process_study(study, settings, progress=False)
    assert summary.n_failed == 0
    return study, settings


def _store(settings):
    from pipeline.store import Store

    return Store.open(settings.store_path)


def test_reads_to_training_data_finetune_guard_register(processed, tmp_path, tiny_model):
    from models.config import ModelConfig
    from models.datasets import find_samples
    from models.registry import load_model
    from pipeline.config import Settings
    from pipeline.corrections_sim import simulate_corrected_reads, truth_by_photo
    from pipeline.finetune import (
        FinetuneRecipe,
        GuardResult,
        finetune,
        models_used_line,
        register_checked,
    )
    from pipeline.process import process_study

    study, settings = processed
    with _store(settings) as s:
        truth = truth_by_photo(s, study)
        ids = sorted(truth)
        assert len(ids) == 4
        assert simulate_corrected_reads(s, study, ids, out_dir=settings.out_dir) == 4
        chosen, skipped = choose_masks(s.conn)
    assert [c.source for c in chosen] == ["corrected"] * 4 and not skipped
    cfg = ModelConfig(encoder="tu-resnet10t", encoder_depth=3, decoder_channels=(16, 8, 8),
                      tile_size=64, px_per_mm=1.0)
    res = export_training_data(settings.out_dir, tmp_path / "corr", config=cfg,
                               heldout_fraction=0.5)
    assert (res.n_train, res.n_heldout) == (2, 2)
    reads = json.loads((tmp_path / "corr" / "reads.json").read_text())
    # held out by subject: the two photos of one subject are on the same side
    by_subject: dict[str, set[str]] = {}
    for r in reads["photos"]:
        by_subject.setdefault(truth[r["photo_id"]][2], set()).add(r["part"])
    assert all(len(parts) == 1 for parts in by_subject.values())
    text = (tmp_path / "corr" / "reads.json").read_text()
    assert not any(subj in text for subj in by_subject)  # opaque codes only
    samples = find_samples(res.train_dir)
    assert {p.image.stem for p in samples} <= set(ids)
    # the exported labels are the truth at the working scale (1 px/mm here)
    lab = cv2.imread(str(samples[0].labels), cv2.IMREAD_UNCHANGED)
    full = cv2.imread(str(truth[samples[0].image.stem][0]), cv2.IMREAD_UNCHANGED)
    assert set(np.unique(lab)) == set(np.unique(full))
    img = cv2.imread(str(samples[0].image))
    assert img.shape[:2] == lab.shape and lab.shape[1] < full.shape[1]
    with pytest.raises(CorrectionsError, match="exists"):
        export_training_data(settings.out_dir, tmp_path / "corr", config=cfg)

    run = finetune(str(tiny_model), tmp_path / "corr", tmp_path / "run",
                   recipe=FinetuneRecipe(epochs=1, steps_per_epoch=2, batch_size=2))
    card = load_model(run.weights).card
    assert card["corrections"]["n_train"] == 2 and card["finetune"]["base"] == str(tiny_model)

    refused = GuardResult(False, {"dice": 0.9, "healed_p95": 2.0},
                          {"dice": 0.85, "healed_p95": 2.0}, ("Dice drops by 0.0500 > 0.01",))
    with pytest.raises(CorrectionsError, match="Dice drops"):
        register_checked(run.weights, "tiny-site", refused, weights_dir=tmp_path / "w")
    ok = GuardResult(True, {"dice": 0.5, "healed_p95": 9.0},
                     {"dice": 0.5, "healed_p95": 9.0}, ())
    new = register_checked(run.weights, "tiny-site", ok, weights_dir=tmp_path / "w")
    assert load_model(new).card["guard"]["passed"]
    with pytest.raises(CorrectionsError, match="exists"):
        register_checked(run.weights, "tiny-site", ok, weights_dir=tmp_path / "w")

    # registering changed nothing; reprocessing with the new model makes new versions
    with _store(settings) as s:
        before = models_used_line(s)
    assert before.count("results") == 1
    re = Settings(out_dir=settings.out_dir, model=str(new), jobs=1, device="cpu")
    process_study(study, re, reprocess=True, reason="site fine-tune", progress=False)
    with _store(settings) as s:
        line = models_used_line(s)
    assert "site fine-tune" in line and str(new.name) not in before


def test_choice_of_masks_unassessable_and_disagreement(processed):
    from pipeline.review.reads import ReadInput, save_read

    study, settings = processed
    with _store(settings) as s:
        rows = s.conn.execute("SELECT task_code, photo_id FROM review_tasks WHERE "
                              "assessor='sim-assessor' ORDER BY position").fetchall()
        if not rows:
            pytest.skip("needs the loop test's queue")
        code, pid = rows[0]
        save_read(s, assessor="sim-assessor", task_code=code,
                  read=ReadInput(estimate_percent=None, verdict="unassessable",
                                 reason="blurred"),
                  corrected_labels=None, out_dir=settings.out_dir)
        chosen, skipped = choose_masks(s.conn)
    assert skipped.get(pid) == "unassessable" and pid not in {c.photo_id for c in chosen}


def test_cli_train_from_reads(processed, tmp_path, tiny_model):
    from typer.testing import CliRunner

    from pipeline.cli import app

    _, settings = processed
    runner = CliRunner()
    res = runner.invoke(app, ["train-from-reads", str(settings.out_dir), str(tmp_path / "c"),
                              "--model", str(tiny_model), "--heldout-fraction", "0"])
    if "no accepted, corrected" in (res.output + str(res.stderr_bytes or b"")):
        pytest.skip("needs the loop test's reads")
    assert res.exit_code == 0, res.output
    assert "held-out photos: 0" in res.output and (tmp_path / "c" / "reads.json").is_file()
    again = runner.invoke(app, ["train-from-reads", str(settings.out_dir),
                                str(tmp_path / "c"), "--model", str(tiny_model)])
    assert again.exit_code == 2
