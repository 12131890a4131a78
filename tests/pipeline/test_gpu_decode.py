"""Batched torchvision decoding (the GPU path's logic, run on the CPU): EXIF orientation is
applied exactly as on the Pillow path, reduced sizes match libjpeg's scaled decoding."""

from __future__ import annotations

import io
import warnings

import numpy as np
import pytest
import torch
from PIL import Image

from pipeline.decode import decode_photo
from pipeline.errors import ImageTooLargeError, NotAnImageError
from pipeline.gpu_decode import decode_jpegs, orient, read_jpeg_header
from tests.conftest import make_jpeg


def _picture(h=48, w=80):
    """Asymmetric content: every flip and rotation gives a different picture."""
    y, x = np.mgrid[0:h, 0:w]
    rgb = np.stack([x * 255 // w, y * 255 // h, ((x // 8 + y // 8) % 2) * 200], -1)
    rgb[:10, :20] = (250, 20, 20)
    return rgb.astype(np.uint8)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_orientation_matches_pillow_path(orientation):
    data = make_jpeg(_picture(), exif={0x0112: orientation}, quality=95)
    pil = decode_photo(data, name="x.jpg").rgb
    head = read_jpeg_header(data, name="x.jpg")
    assert head.orientation == orientation and head.oriented_shape == pil.shape[:2]
    ours = decode_jpegs([data], [head.orientation], device="cpu")[0]
    assert ours.shape == pil.shape
    assert np.abs(ours.astype(int) - pil.astype(int)).mean() < 1.0
    # and exactly what torchvision's own (CPU-only) EXIF handling gives
    from torchvision.io import ImageReadMode, decode_jpeg

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torchvision's image-io deprecation notice
        tv = decode_jpeg(torch.frombuffer(bytearray(data), dtype=torch.uint8),
                         mode=ImageReadMode.RGB, apply_exif_orientation=True)
    assert np.array_equal(ours, tv.permute(1, 2, 0).numpy())


def _smooth(h, w):
    y, x = np.mgrid[0:h, 0:w]
    rgb = np.stack([128 + 100 * np.sin(x / 9.0), 128 + 100 * np.cos(y / 7.0),
                    128 + 60 * np.sin((x + y) / 11.0)], -1)
    return rgb.astype(np.uint8)


def test_batch_and_reduce_match_scaled_decoding():
    a = make_jpeg(_smooth(64, 96), exif={0x0112: 6}, quality=95)
    b = make_jpeg(_smooth(50, 70), quality=95)
    out = decode_jpegs([a, b], [6, 1], device="cpu", reduce=2)
    for data, got in zip((a, b), out, strict=True):
        ref = decode_photo(data, name="x.jpg", reduce=2).rgb
        assert got.shape == ref.shape
        assert np.abs(got.astype(int) - ref.astype(int)).mean() < 2.0


def test_orient_rejects_unknown_value():
    with pytest.raises(ValueError, match="orientation"):
        orient(torch.zeros(3, 2, 2), 9)


def test_header_checks_before_decoding():
    buf = io.BytesIO()
    Image.new("RGB", (10, 10)).save(buf, "PNG")
    with pytest.raises(NotAnImageError, match="x.png"):
        read_jpeg_header(buf.getvalue(), name="x.png")
    data = make_jpeg(np.zeros((40, 50, 3), np.uint8))
    with pytest.raises(ImageTooLargeError, match="big.jpg"):
        read_jpeg_header(data, name="big.jpg", max_pixels=1000)
    with pytest.raises(NotAnImageError):
        read_jpeg_header(b"garbage", name="g.jpg")
    head = read_jpeg_header(make_jpeg(np.zeros((40, 50, 3), np.uint8), exif={0x0110: "Cam"}),
                            name="m.jpg")
    assert head.metadata["model"] == "Cam" and "0x8825" not in head.metadata
