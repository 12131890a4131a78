"""Per-photo QC flags from certainty and novelty, and their fitting."""

import numpy as np
import pytest

from models.assess import LOW_CONFIDENCE, OUT_OF_DISTRIBUTION, PhotoAssessor, fit_assessment


def _photo(rng, *, skin=(0.8, 0.6, 0.5), tissue=(0.7, 0.2, 0.2), certainty=0.95):
    img = np.empty((48, 48, 3), np.float32)
    img[:] = np.array(skin) + rng.normal(0, 0.02, 3)
    a, b = sorted(rng.integers(8, 40, 2))
    b = max(b, a + 6)
    img[a:b, a:b] = np.array(tissue) + rng.normal(0, 0.02, 3)
    p = np.zeros((3, 48, 48), np.float32)
    p[0] = 1.0
    p[:, a:b, a:b] = np.array([0.0, certainty, 1 - certainty])[:, None, None]
    return img, p


def test_fitted_card_flags_strange_photos_and_few_familiar_ones():
    rng = np.random.default_rng(0)
    train = [_photo(rng, certainty=rng.uniform(0.85, 0.99)) for _ in range(120)]
    qc = fit_assessment(train, px_per_mm=3.0, k=5)
    assert qc["n_photos"] == 120
    assert 0.85 <= qc["thresholds"]["min_confidence"] < 0.9
    assessor = PhotoAssessor.from_card({"qc": qc}, px_per_mm=3.0)
    familiar = [assessor.assess(*_photo(rng, certainty=rng.uniform(0.85, 0.99)))
                for _ in range(80)]
    assert np.mean([bool(a.flags) for a in familiar]) < 0.15
    blue = assessor.assess(*_photo(rng, skin=(0.1, 0.3, 0.9), tissue=(0.1, 0.9, 0.2)))
    assert OUT_OF_DISTRIBUTION in blue.flags and blue.novelty > 1
    unsure = assessor.assess(*_photo(rng, certainty=0.5))
    assert LOW_CONFIDENCE in unsure.flags
    row = unsure.as_dict()
    assert row["healed_percent_low"] == 0.0 and row["healed_percent_high"] == 100.0


def test_without_a_reference_no_novelty_is_computed():
    a = PhotoAssessor.from_card({}, px_per_mm=3.0)
    res = a.assess(*_photo(np.random.default_rng(1)))
    assert res.novelty is None and OUT_OF_DISTRIBUTION not in res.flags


def test_fitting_needs_photos_with_a_site():
    img = np.zeros((8, 8, 3), np.float32)
    p = np.zeros((3, 8, 8), np.float32)
    p[0] = 1
    with pytest.raises(ValueError, match="more than 5 photos"):
        fit_assessment([(img, p)] * 10, px_per_mm=3.0)
