from __future__ import annotations

import cv2
import numpy as np

from pipeline.stages import PNG_LABEL_PARAMS, REVIEW_LONG_SIDE, review_picture


class Gain:
    """A stand-in calibration whose colour correction brightens by 10 %."""

    def correct(self, image):
        img = np.asarray(image)
        img = img.astype(np.float32) / 255 if img.dtype == np.uint8 else img
        return img * 1.1


def test_label_png_is_lossless():
    rng = np.random.default_rng(0)
    lab = np.zeros((300, 400), np.uint8)
    lab[50:250, 60:300] = 2
    lab[100:200, 100:200] = 1
    lab[rng.random(lab.shape) < 0.01] = 1  # speckle: not only long runs
    ok, png = cv2.imencode(".png", lab, PNG_LABEL_PARAMS)
    assert ok
    back = cv2.imdecode(png, cv2.IMREAD_UNCHANGED)
    assert back.dtype == np.uint8 and np.array_equal(back, lab)


def test_review_picture_matches_the_float_path_within_a_level():
    rng = np.random.default_rng(1)
    rgb = cv2.GaussianBlur(rng.integers(0, 256, (900, 1200, 3), dtype=np.uint8), (0, 0), 3)
    pic = review_picture(rgb, Gain(), long_side=400)
    assert pic.shape == (300, 400, 3) and pic.dtype == np.uint8
    small = cv2.resize(rgb.astype(np.float32) / 255, (400, 300), interpolation=cv2.INTER_AREA)
    ref = (np.clip(small * 1.1, 0, 1) * 255 + 0.5).astype(np.uint8)
    assert np.abs(pic.astype(int) - ref).max() <= 1


def test_small_photos_are_not_enlarged():
    rgb = np.full((100, 80, 3), 100, np.uint8)
    assert review_picture(rgb, Gain()).shape == (100, 80, 3)
    assert REVIEW_LONG_SIDE > 100
