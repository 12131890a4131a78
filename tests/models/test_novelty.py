"""The per-photo out-of-distribution score."""

import numpy as np
import pytest

from models.errors import InputShapeError
from models.novelty import DESCRIPTOR_NAMES, NoveltyReference, photo_descriptor

D = len(DESCRIPTOR_NAMES)


def _scene(site_rgb, skin_rgb, *, size=60, site=(20, 40)):
    img = np.empty((size, size, 3), np.float32)
    img[:] = skin_rgb
    a, b = site
    img[a:b, a:b] = site_rgb
    p = np.zeros((3, size, size), np.float32)
    p[0] = 1.0
    p[:, a:b, a:b] = np.array([0.0, 0.3, 0.7])[:, None, None]
    return img, p


def test_descriptor_reads_the_site_and_its_surround():
    img, p = _scene((0.7, 0.15, 0.15), (0.85, 0.65, 0.55))
    d = dict(zip(DESCRIPTOR_NAMES, photo_descriptor(img, p, px_per_mm=3.0, confidence=0.9,
                                                    healed_interval=4.0), strict=True))
    assert d["site_a"] > 40 and d["ring_skin_share"] == 1.0
    assert d["log_site_area_mm2"] == pytest.approx(np.log(400 / 9 + 1), rel=1e-6)
    assert d["log_components"] == pytest.approx(np.log(2.0))
    assert d["confidence"] == 0.9 and d["healed_interval"] == 4.0
    blue = dict(zip(DESCRIPTOR_NAMES, photo_descriptor(*_scene((0.7, 0.15, 0.15),
                                                               (0.2, 0.3, 0.9)), px_per_mm=3.0),
                    strict=True))
    assert blue["ring_skin_share"] == 0.0  # a blue surround is not skin


def test_no_site_has_no_descriptor():
    img, p = _scene((0.7, 0.1, 0.1), (0.8, 0.6, 0.5))
    p[0] = 1.0
    p[1:] = 0.0
    assert photo_descriptor(img, p, px_per_mm=3.0) is None


def test_mismatched_shapes_are_refused():
    with pytest.raises(InputShapeError, match="same size"):
        photo_descriptor(np.zeros((10, 10, 3)), np.zeros((3, 8, 8)), px_per_mm=3.0)


def test_reference_scores_familiar_low_and_strange_high_and_round_trips():
    rng = np.random.default_rng(1)
    base = np.array([45, 45, 30, 60, 10, 20, 0.8, 7.5, 0.7, 0.97, 3, 15], np.float64)
    spread = np.array([6, 6, 4, 10, 3, 4, 0.1, 0.5, 0.3, 0.01, 1.5, 4])
    ref = NoveltyReference.fit(base + rng.normal(0, 1, (300, D)) * spread, k=5)
    familiar = [ref.score(base + rng.normal(0, 1, D) * spread) for _ in range(200)]
    assert np.mean(np.array(familiar) > 1) < 0.08  # ~2.5 % by construction, sampling noise
    strange = base.copy()
    strange[[3, 4, 5, 6]] = (30, -20, -30, 0.0)  # a blue-green surround, no skin
    assert ref.score(strange) > 2
    again = NoveltyReference.from_dict(ref.to_dict())
    assert again.score(strange) == pytest.approx(ref.score(strange), rel=1e-3)
    assert ref.score(None) is None


def test_reference_of_another_descriptor_version_is_refused():
    rng = np.random.default_rng(0)
    d = NoveltyReference.fit(rng.normal(size=(20, D)), k=3).to_dict()
    d["descriptor"] = d["descriptor"][:-1]
    with pytest.raises(InputShapeError, match="refit"):
        NoveltyReference.from_dict(d)
    with pytest.raises(InputShapeError, match="descriptors must be"):
        NoveltyReference.fit(np.zeros((3, D)), k=5)
