import json

import numpy as np
import pytest

from models.config import ModelConfig
from models.datasets import find_samples, read_image, read_labels
from models.errors import DatasetError
from models.prepare import is_synth_study, prepare_synth_study, resample_labels


def test_calibrated_preparation_skips_failures_and_applies_exif(tmp_path, synth_study):
    cfg = ModelConfig(px_per_mm=2.0)
    res = prepare_synth_study(synth_study, tmp_path / "prep", config=cfg)
    assert res.n_photos == 3 and res.n_written == 2 and len(res.skipped) == 1
    assert res.skipped[0][0].endswith("S01_D002_1.jpg")
    assert "calibration failed" in res.skipped[0][1]
    samples = find_samples(tmp_path / "prep")
    assert len(samples) == 2
    for s in samples:
        img, lab = read_image(s.image), read_labels(s.labels, cfg)
        # 4 px/mm photo at 800x600 -> 2 px/mm working image at 400x300
        assert img.shape == (300, 400, 3) and lab.shape == (300, 400)
        # labels line up with the painted site (raw is red, epithelialized pinker and lighter)
        raw, epi, bg = img[lab == 2].mean(0), img[lab == 1].mean(0), img[lab == 0].mean(0)
        assert raw[0] > 2 * raw[1] and epi[1] > raw[1] + 0.15
        assert np.abs(epi - bg).sum() > 0.05
    a, b = (read_image(s.image) for s in samples)
    assert np.abs(a - b).mean() < 0.01  # the EXIF-rotated copy is the same oriented photo
    meta = json.loads((tmp_path / "prep" / "prepared.json").read_text())
    assert meta["n_written"] == 2 and meta["mode"] == "calibrated"
    again = prepare_synth_study(synth_study, tmp_path / "prep", config=cfg)
    assert again.cached and again.n_written == 2


def test_truth_fallback_uses_the_true_scale(tmp_path, synth_study):
    res = prepare_synth_study(synth_study, tmp_path / "t", config=ModelConfig(px_per_mm=1.0),
                              mode="truth")
    assert res.n_written == 3 and not res.skipped
    assert read_image(find_samples(tmp_path / "t")[0].image).shape == (150, 200, 3)


def test_bad_inputs(tmp_path, synth_study):
    assert is_synth_study(synth_study) and not is_synth_study(tmp_path)
    with pytest.raises(DatasetError, match="not a synthetic study"):
        prepare_synth_study(tmp_path, tmp_path / "o", config=ModelConfig())
    with pytest.raises(DatasetError, match="px_per_mm"):
        prepare_synth_study(synth_study, tmp_path / "o", config=ModelConfig(px_per_mm=None))
    with pytest.raises(DatasetError, match="'magic'"):
        prepare_synth_study(synth_study, tmp_path / "o", config=ModelConfig(), mode="magic")


def test_label_resampling_takes_the_majority():
    lab = np.zeros((100, 100), np.uint8)
    lab[:, 30:] = 1
    lab[:, 70:] = 2
    small = resample_labels(lab, (10, 10), 3)
    assert small[0].tolist() == [0, 0, 0, 1, 1, 1, 1, 2, 2, 2]
    assert resample_labels(small, (20, 20), 3).shape == (20, 20)
