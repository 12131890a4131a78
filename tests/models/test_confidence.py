"""Per-photo certainty from class probabilities."""

import numpy as np
import pytest

from models.confidence import PhotoConfidence, is_low_confidence, photo_confidence
from models.errors import InputShapeError


def _proba(bg: np.ndarray, epi: np.ndarray) -> np.ndarray:
    """Probabilities from a background probability and the epithelialized share of tissue."""
    tissue = 1.0 - bg
    return np.stack([bg, tissue * epi, tissue * (1.0 - epi)]).astype(np.float32)


def test_certain_photo_has_a_narrow_interval_around_the_hard_answer():
    bg = np.ones((20, 20))
    bg[5:15, 5:15] = 0.02
    epi = np.zeros((20, 20))
    epi[5:15, 5:10] = 0.97
    epi[5:15, 10:15] = 0.03
    c = photo_confidence(_proba(bg, epi))
    assert c.site_pixels == 100
    assert c.confidence > 0.9
    assert c.healed_low == pytest.approx(50.0, abs=0.5)
    assert c.healed_high == pytest.approx(50.0, abs=0.5)
    assert not is_low_confidence(c)


def test_ambiguous_tissue_widens_the_interval_by_its_area_share():
    bg = np.ones((20, 20))
    bg[:, :10] = 0.0
    epi = np.zeros((20, 20))
    epi[:, :5] = 0.5  # half the site could be either
    c = photo_confidence(_proba(bg, epi))
    assert c.healed_low == pytest.approx(0.0, abs=1e-6)
    assert c.healed_high == pytest.approx(50.0, abs=1e-6)
    assert c.interval == pytest.approx(50.0, abs=1e-6)
    assert is_low_confidence(c)


def test_pixel_areas_weight_the_interval():
    bg = np.zeros((10, 10))
    epi = np.zeros((10, 10))
    epi[:, :5] = 0.5
    area = np.ones((10, 10))
    area[:, :5] = 3.0  # the ambiguous half covers 3x the skin
    c = photo_confidence(_proba(bg, epi), pixel_area=area)
    assert c.interval == pytest.approx(75.0, abs=1e-4)


def test_no_site_gives_no_figures_and_no_low_confidence_flag():
    c = photo_confidence(_proba(np.ones((8, 8)), np.zeros((8, 8))))
    assert c == PhotoConfidence(None, None, None, None, 0)
    assert not is_low_confidence(c)


def test_uncertain_outline_is_measured():
    bg = np.ones((10, 10))
    bg[2:8, 2:8] = 0.0
    bg[2:8, 2] = 0.45  # a doubtful column
    c = photo_confidence(_proba(bg, np.full((10, 10), 0.9)))
    # 6 px of tissue probability 0.55 among 30 certain px: 3.3 / 33.3 of the site's area
    assert c.ambiguous_site_share == pytest.approx(3.3 / 33.3, rel=1e-4)


def test_thresholds_come_from_the_caller():
    c = PhotoConfidence(0.9, 40.0, 46.0, 0.0, 10)
    assert not is_low_confidence(c, {"min_confidence": 0.8, "max_interval": 10})
    assert is_low_confidence(c, {"min_confidence": 0.95})
    assert is_low_confidence(c, {"max_interval": 5})


@pytest.mark.parametrize("shape", [(3, 4), (2, 4, 4), (3, 4, 4, 1)])
def test_bad_shapes_are_refused_with_the_shape(shape):
    with pytest.raises(InputShapeError, match="proba must be"):
        photo_confidence(np.zeros(shape, np.float32))


def test_pixel_area_must_match():
    with pytest.raises(InputShapeError, match="pixel_area"):
        photo_confidence(np.zeros((3, 4, 4), np.float32), pixel_area=np.ones((3, 3)))
