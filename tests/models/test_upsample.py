"""The border-only label upsampling against the full bilinear reference."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from models.tiling import upsample_argmax
from models.upsample import axis_weights, upsample_labels, upsample_labels_torch


def _smooth_proba(shape, k=3, seed=0, sigma=3.0):
    rng = np.random.default_rng(seed)
    p = np.stack([cv2.GaussianBlur(rng.random(shape).astype(np.float32), (0, 0), sigma)
                  for _ in range(k)])
    return p / p.sum(0)


@pytest.mark.parametrize("src,dst", [((40, 60), (40, 60)), ((40, 60), (123, 251)),
                                     ((7, 5), (64, 31)), ((50, 80), (30, 45)),
                                     ((1, 9), (4, 40))])
def test_same_labels_as_full_bilinear(src, dst):
    p = _smooth_proba(src, sigma=1.5)
    ref = upsample_argmax(p, dst)
    out = upsample_labels(p, dst)
    assert out.shape == dst and out.dtype == np.uint8
    assert (out == ref).mean() >= 0.9999


def test_exact_on_clear_regions_and_borders_are_interpolated():
    # two classes split by a vertical edge: the full-resolution edge must fall between the
    # working pixels (interpolated), not on a block boundary (nearest neighbour would)
    p = np.zeros((2, 4, 4), np.float32)
    p[0, :, :2], p[1, :, 2:] = 1.0, 1.0
    out = upsample_labels(p, (4, 40))
    ref = upsample_argmax(p, (4, 40))
    assert (out == ref).all()
    assert (out[:, :20] == 0).all() and (out[:, 20:] == 1).all()


def test_torch_version_agrees():
    p = _smooth_proba((60, 90))
    ref = upsample_argmax(p, (300, 410))
    out = upsample_labels_torch(torch.from_numpy(p), (300, 410)).numpy()
    assert (out == ref).mean() >= 0.9999


def test_axis_weights_half_pixel_and_clamped():
    i0, i1, a = axis_weights(3, 6)
    assert i0.min() == 0 and i1.max() == 2
    assert a[0] == 0 and a[-1] == 0  # clamped at both ends


def test_bad_input_raises():
    with pytest.raises(ValueError, match="proba"):
        upsample_labels(np.zeros((4, 4), np.float32), (8, 8))
    with pytest.raises(ValueError, match="out_shape"):
        upsample_labels(np.zeros((2, 4, 4), np.float32), (0, 8))
