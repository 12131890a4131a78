import json

import cv2
import numpy as np
import pytest

from models.baseline import LabBaseline, Threshold
from models.config import ModelConfig
from models.evaluate import (
    evaluate_study,
    fitzpatrick_group,
    main,
    metrics_markdown,
    score_labels,
    summarise,
)
from models.factory import build_model
from models.registry import save_model


class BaselinePredictor:
    """A Predictor stand-in: thresholds, then probabilities upsampled like the U-Net's."""

    def __init__(self):
        self.config = ModelConfig(px_per_mm=2.0)
        self.bl = LabBaseline(Threshold("C", 25.0, True), Threshold("L", 45.0, False))

    def predict(self, image, *, output_shape=None):
        lab = self.bl.predict(image)
        return cv2.resize(lab, output_shape[::-1], interpolation=cv2.INTER_NEAREST)


def test_full_resolution_scores_on_a_study(synth_study):
    pred = BaselinePredictor()
    res = evaluate_study(synth_study, pred, baseline=pred.bl)
    assert res["n_photos"] == 3 and res["n_failed"] == 1
    s = res["summary"]["unet"]["all"]
    assert s["n_photos"] == 2 and s["dice_donor_pooled"] > 0.95
    assert s["dice_epithelialized_pooled"] > 0.9 and s["dice_raw_pooled"] > 0.9
    assert s["healed_abs_error_median"] < 5
    assert set(res["summary"]["unet"]) == {"all", "I-II", "III-IV"}
    assert res["summary"]["baseline_lab"]["all"]["n_photos"] == 2
    assert "| unet | all | 2 |" in metrics_markdown(res)


def test_score_labels_weights_areas_by_pixel_area():
    truth = np.zeros((10, 10), np.uint8)
    truth[:, :5], truth[:, 5:] = 1, 2
    pred = truth.copy()
    area = np.ones((10, 10))
    area[:, 5:] = 3.0  # the raw half lies farther from the camera: bigger pixels
    s = score_labels(truth, pred, pixel_area=area, healed_true=25.0)
    assert s.healed_pred == pytest.approx(25.0) and s.healed_abs_error == pytest.approx(0)
    empty = score_labels(truth, np.zeros_like(truth), pixel_area=None, healed_true=10.0)
    assert empty.dice_donor == 0 and np.isnan(empty.healed_pred)
    summ = summarise([s, empty])
    assert summ["dice_donor_pooled"] == pytest.approx(2 * 100 / 300, abs=1e-4)
    assert summ["healed_undefined"] == 1


@pytest.mark.parametrize("value, group", [("I", "I-II"), (4, "III-IV"), ("V", "V-VI"),
                                          ("x", "unknown"), ("7", "unknown")])
def test_fitzpatrick_groups(value, group):
    assert fitzpatrick_group(value) == group


def test_command_line_writes_json(tmp_path, synth_study, make_cfg):
    cfg = make_cfg(px_per_mm=2.0)
    path = save_model(build_model(cfg), cfg, tmp_path / "m.safetensors")
    out = tmp_path / "eval.json"
    main([str(synth_study), "--model", str(path), "--out", str(out), "--limit", "1",
          "--device", "cpu", "--baseline", str(tmp_path / "none.json")])
    res = json.loads(out.read_text())
    assert res["n_photos"] == 1 and res["model"]["sha256"] and len(res["photos"]) == 1
