"""Outlier pictures for training (no tissue, all background)."""

import cv2
import numpy as np
import pytest

from models.config import PRESETS
from models.datasets import find_samples, read_labels
from models.outliers import KINDS, make_outlier, write_outlier_folder


@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_is_reproducible_and_varied(kind):
    a = make_outlier(np.random.default_rng([3, 1]), kind=kind, size=(48, 64))
    b = make_outlier(np.random.default_rng([3, 1]), kind=kind, size=(48, 64))
    c = make_outlier(np.random.default_rng([3, 2]), kind=kind, size=(48, 64))
    assert a.shape == (48, 64, 3) and a.dtype == np.uint8
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)
    assert a.std() > 1  # not a flat picture


def test_unknown_kind_is_refused():
    with pytest.raises(ValueError, match="kind must be one of"):
        make_outlier(np.random.default_rng(0), kind="cats", size=(8, 8))


def test_folder_is_a_label_folder_of_background_and_is_reused(tmp_path):
    out = write_outlier_folder(tmp_path / "o", n=6, seed=1, size_range=(32, 48))
    samples = find_samples(out)
    assert len(samples) == 6
    for s in samples:
        img = cv2.imread(str(s.image))
        lab = read_labels(s.labels, PRESETS["starter"])
        assert lab.shape == img.shape[:2] and not lab.any()
    stamp = (out / "prepared.json").stat().st_mtime_ns
    write_outlier_folder(tmp_path / "o", n=6, seed=1, size_range=(32, 48))
    assert (out / "prepared.json").stat().st_mtime_ns == stamp
