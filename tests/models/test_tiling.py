import cv2
import numpy as np
import pytest

from models.tiling import (
    gaussian_importance,
    plan_tiles,
    tile_starts,
    upsample_argmax,
    upsample_proba,
)


@pytest.mark.parametrize("length, tile, overlap", [(64, 64, 0.25), (65, 64, 0.25),
                                                   (500, 64, 0.5), (1000, 384, 0.25)])
def test_tiles_cover_the_axis_with_the_overlap(length, tile, overlap):
    starts = tile_starts(length, tile, overlap)
    assert starts[0] == 0 and starts[-1] == length - tile
    pairs = list(zip(starts, starts[1:], strict=False))
    assert all(b > a for a, b in pairs)
    # neighbours share at least `overlap` of a tile, and nothing is left uncovered
    assert all(a + tile - b >= int(overlap * tile) for a, b in pairs)


def test_short_axes_are_padded_to_the_stride():
    p = plan_tiles((50, 33), tile=64, overlap=0.25, stride=32)
    assert p.pad == (14, 31) and p.tile_shape == (64, 64) and p.starts == ((0, 0),)
    p = plan_tiles((40, 300), tile=128, overlap=0.25, stride=16)
    assert p.tile_shape == (48, 128) and p.padded_shape == (48, 300)


def test_gaussian_is_centred_and_floored():
    w = gaussian_importance((64, 48))
    assert w.max() == 1.0 and w.min() >= 1e-3
    assert np.allclose(w, w[::-1, ::-1])


@pytest.mark.parametrize("src, dst", [((3, 37, 53), (301, 411)), ((2, 40, 40), (17, 23)),
                                      ((3, 10, 20), (10, 20))])
def test_chunked_upsampling_equals_cv2_resize(src, dst):
    p = np.random.default_rng(0).random(src, dtype=np.float32)
    ref = np.stack([cv2.resize(c, dst[::-1], interpolation=cv2.INTER_LINEAR) for c in p])
    assert np.abs(upsample_proba(p, dst) - ref).max() < 1e-5
    labels = upsample_argmax(p, dst)
    assert labels.dtype == np.uint8 and labels.shape == dst
    assert np.mean(labels == ref.argmax(0)) > 0.999
