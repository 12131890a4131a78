from __future__ import annotations

import numpy as np
import pytest

from pipeline.overlay import CLASS_COLOURS, nice_scale_bar_mm, render_overlay


def test_overlay_tints_classes_and_keeps_background():
    img = np.full((200, 300, 3), 0.5, np.float32)
    lab = np.zeros((100, 150), np.uint8)  # half resolution: resized inside
    lab[20:60, 20:60] = 1
    lab[20:60, 90:130] = 2
    out = render_overlay(img, lab, mm_per_px=0.25, opacity=0.5)
    assert out.shape == (200, 300, 3) and out.dtype == np.uint8
    grey = 128
    centre_epi, centre_raw = out[80, 80].astype(int), out[80, 220].astype(int)
    for centre, cls in ((centre_epi, 1), (centre_raw, 2)):
        expected = 0.5 * grey + 0.5 * np.array(CLASS_COLOURS[cls])
        assert np.abs(centre - expected).max() <= 2
    assert tuple(out[10, 290]) == (grey, grey, grey)


@pytest.mark.parametrize("width,mm_per_px,expected", [(1000, 0.1, 20), (1000, 1.0, 200),
                                                       (400, 0.25, 20)])
def test_scale_bar_is_round(width, mm_per_px, expected):
    assert nice_scale_bar_mm(width, mm_per_px) == expected


def test_bad_options():
    img = np.zeros((10, 10, 3), np.uint8)
    lab = np.zeros((10, 10), np.uint8)
    with pytest.raises(ValueError, match="opacity"):
        render_overlay(img, lab, mm_per_px=1, opacity=1.5)
    with pytest.raises(ValueError, match="mm_per_px"):
        render_overlay(img, lab, mm_per_px=0)
