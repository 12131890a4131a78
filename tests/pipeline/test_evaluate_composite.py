"""Scoring of composite studies and the kind dispatch of ``python -m pipeline.evaluate``."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pandas as pd
import pytest

from pipeline import evaluate
from pipeline.evaluate_composite import flag_sets


def _study(root, kind: str, masks: list[np.ndarray]) -> None:
    (root / "truth" / "masks").mkdir(parents=True)
    rows = []
    for i, m in enumerate(masks):
        cv2.imwrite(str(root / "truth" / "masks" / f"P{i}.png"), m)
        rows.append({"file": f"photos/P{i}.jpg", "subject_id": f"P{i}",
                     "mask_file": f"truth/masks/P{i}.png", "healed_percent": 0,
                     "source_kind": "scene" if i % 2 else "skin_crop", "px_per_mm": 5.0})
    pd.DataFrame(rows).to_csv(root / "truth" / "photos.csv", index=False)
    (root / "study.json").write_text(json.dumps({"kind": kind}))


def _processed(root, preds: list[np.ndarray | None], flags: list[str]) -> None:
    (root / "masks").mkdir(parents=True)
    rows = []
    for i, (p, f) in enumerate(zip(preds, flags, strict=True)):
        if p is not None:
            cv2.imwrite(str(root / "masks" / f"x{i}.png"), p)
        rows.append({"file": f"photos/P{i}.jpg", "status": "ok" if p is not None else "failed",
                     "healed_percent": 50.0, "qc_flags": f,
                     "mask_file": f"masks/x{i}.png" if p is not None else "",
                     "confidence": 0.5 + 0.1 * i, "mm_per_px": 0.2 * (1 + 0.01 * i)})
    rows.append({"file": "photos/other.jpg", "status": "ok", "qc_flags": ""})  # not scored
    pd.DataFrame(rows).to_csv(root / "measurements.csv", index=False)


def test_fuseg_kind(tmp_path):
    truth = np.zeros((40, 50), np.uint8)
    truth[10:20, 10:30] = 2  # 200 px raw
    pred_good = truth.copy()
    pred_epi = np.zeros_like(truth)
    pred_epi[10:20, 10:20] = 2  # 100 px raw, all inside the truth
    pred_epi[30:40, :] = 1  # 25 % of the frame epithelialized
    _study(tmp_path / "s", "fuseg_composite", [truth, truth, truth])
    _processed(tmp_path / "o", [pred_good, pred_epi, pred_epi],
               ["", "donor_site_touches_photo_edge", "low_confidence"])
    summary, table = evaluate.evaluate(tmp_path / "s", tmp_path / "o")
    assert summary["photos"] == 3 and summary["processed_ok"] == 3
    assert summary["raw_dice_pooled"] == pytest.approx(2 * 400 / (400 + 600))
    assert summary["photos_epi_over_1pct"] == 2
    assert summary["photos_epi_over_1pct_not_flagged"] == 1  # the edge flag does not hold
    assert summary["flagged_share"] == pytest.approx(1 / 3)
    assert summary["confidence_median"] == pytest.approx(0.6)
    assert summary["scale_abs_rel_err_pct_max"] == pytest.approx(2.0)
    assert "| raw_dice_pooled | 0.8 |" in table


def test_ood_kind_and_cli(tmp_path, capsys):
    empty = np.zeros((20, 20), np.uint8)
    site = empty.copy()
    site[5:10, 5:10] = 1
    _study(tmp_path / "s", "ood_composite", [empty] * 4)
    _processed(tmp_path / "o", [site, empty, site, None],
               ["out_of_distribution", "no_donor_site_found", "", ""])
    evaluate.main([str(tmp_path / "s"), str(tmp_path / "o"), "--json", str(tmp_path / "j")])
    summary = json.loads((tmp_path / "j").read_text())
    assert summary["kind"] == "ood_composite"
    assert (summary["flagged"], summary["no_site"], summary["not_processed"]) == (1, 1, 1)
    assert summary["caught_share"] == pytest.approx(0.75)
    assert summary["by_source"]["scene"]["caught_share"] == pytest.approx(1.0)
    assert capsys.readouterr().out.startswith("**ood_composite**")


def test_kind_of_synth_and_unknown(tmp_path):
    assert evaluate.study_kind(tmp_path) == "synth"
    (tmp_path / "study.json").write_text(json.dumps({"seed": 1}))
    assert evaluate.study_kind(tmp_path) == "synth"
    (tmp_path / "study.json").write_text(json.dumps({"kind": "martian"}))
    with pytest.raises(ValueError, match="unknown study kind"):
        evaluate.evaluate(tmp_path, tmp_path)


def test_flag_sets_reads_both_columns():
    m = pd.DataFrame({"qc_flags": ["a;b", None], "flags": ["c,low_confidence", ""]})
    assert flag_sets(m) == [{"a", "b", "c", "low_confidence"}, set()]
