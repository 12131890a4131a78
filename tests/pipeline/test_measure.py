from __future__ import annotations

import numpy as np
import pytest

from pipeline.measure import measure_labels


class PerspectiveMeter:
    """Per-pixel area that grows linearly down the image (a tilted camera)."""

    def __init__(self, shape):
        h, w = shape
        self.area = np.repeat(np.linspace(0.01, 0.03, h)[:, None], w, axis=1)

    def area_mm2(self, mask):
        return float(self.area[mask].sum())


def test_areas_are_weighted_per_pixel_not_counted():
    lab = np.zeros((100, 50), np.uint8)
    lab[:50] = 1   # top half: small pixels
    lab[50:] = 2   # bottom half: large pixels
    m = measure_labels(lab, meter=PerspectiveMeter(lab.shape))
    assert m.raw_area_mm2 > m.epithelialized_area_mm2  # same pixel counts, larger pixels
    assert m.donor_site_area_mm2 == pytest.approx(m.raw_area_mm2 + m.epithelialized_area_mm2)
    expected = 100 * m.epithelialized_area_mm2 / m.donor_site_area_mm2
    assert m.healed_percent == pytest.approx(expected)
    assert m.healed_percent < 50


def test_no_site_gives_no_percentage():
    m = measure_labels(np.zeros((5, 5), np.uint8), meter=PerspectiveMeter((5, 5)))
    assert m.healed_percent is None and m.donor_site_area_mm2 == 0


def test_bad_labels():
    with pytest.raises(ValueError, match=r"values \[7\]"):
        measure_labels(np.full((3, 3), 7, np.uint8), meter=PerspectiveMeter((3, 3)))
    with pytest.raises(ValueError, match="2-D"):
        measure_labels(np.zeros((3, 3, 1), np.uint8), meter=PerspectiveMeter((3, 3)))


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int32, np.int64])
def test_bad_labels_found_whatever_the_dtype(dtype):
    lab = np.zeros((4, 4), dtype)
    lab[1, 1] = 3
    with pytest.raises(ValueError, match=r"values \[3\]"):
        measure_labels(lab, meter=PerspectiveMeter(lab.shape))
    if np.issubdtype(dtype, np.signedinteger):
        lab[1, 1] = -1
        with pytest.raises(ValueError, match=r"values \[-1\]"):
            measure_labels(lab, meter=PerspectiveMeter(lab.shape))
    lab[1, 1] = 2
    assert measure_labels(lab, meter=PerspectiveMeter(lab.shape)).healed_percent == 0.0
