import numpy as np
import pytest

from models.baseline import LabBaseline, Threshold, fit_baseline, lab_features
from models.config import ModelConfig
from models.datasets import find_samples, read_image, read_labels
from models.errors import ModelConfigError
from models.prepare import prepare_synth_study


def test_fitted_thresholds_separate_the_painted_site(tmp_path, synth_study):
    cfg = ModelConfig(px_per_mm=2.0)
    prepare_synth_study(synth_study, tmp_path / "p", config=cfg)
    samples = find_samples(tmp_path / "p")
    bl = fit_baseline(samples, cfg, pixels_per_image=5000)
    assert min(bl.fitted_dice) > 0.9
    img, truth = read_image(samples[0].image), read_labels(samples[0].labels, cfg)
    pred = bl.predict(img)
    for k in (1, 2):
        inter = np.count_nonzero((pred == k) & (truth == k))
        assert 2 * inter / (np.count_nonzero(pred == k) + np.count_nonzero(truth == k)) > 0.9
    again = LabBaseline.from_json(bl.to_json(tmp_path / "bl.json"))
    assert again == bl


def test_features_and_errors(tmp_path):
    f = lab_features(np.full((3, 3, 3), 0.5, np.float32), smooth_sigma=0)
    assert f.shape == (3, 3, 5) and abs(f[0, 0, 0] - 53.4) < 0.5 and abs(f[0, 0, 3]) < 0.01
    with pytest.raises(ModelConfigError, match="'Q'"):
        Threshold("Q", 1.0, True)
    (tmp_path / "x.json").write_text("{}")
    with pytest.raises(ModelConfigError, match="x.json"):
        LabBaseline.from_json(tmp_path / "x.json")
