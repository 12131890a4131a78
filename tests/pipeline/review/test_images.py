"""Pictures served to browsers: metadata stripped, masks resized and grey-coded."""

from __future__ import annotations

import io

import cv2
import numpy as np
import pytest
from PIL import Image

from pipeline.review.errors import ReviewImageError
from pipeline.review.images import (
    browser_mask,
    decode_browser_mask,
    labels_to_browser_png,
    review_picture,
    strip_jpeg_metadata,
)


def test_strip_jpeg_metadata_drops_exif_and_comments_losslessly():
    rgb = np.random.default_rng(0).integers(0, 255, (40, 60, 3), np.uint8)
    ex = Image.Exif()
    ex[0x010E] = "S-SECRET-01 msc"
    ex[0x0132] = "2026:03:01 10:15:00"
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "JPEG", exif=ex.tobytes(), comment=b"2026-03-01 secret")
    data = buf.getvalue()
    assert b"S-SECRET-01" in data and b"2026-03-01" in data
    clean = strip_jpeg_metadata(data)
    assert b"S-SECRET-01" not in clean and b"2026" not in clean and b"Exif" not in clean
    a = np.asarray(Image.open(io.BytesIO(data)))
    b = np.asarray(Image.open(io.BytesIO(clean)))
    np.testing.assert_array_equal(a, b)
    with pytest.raises(ReviewImageError):
        strip_jpeg_metadata(b"\x89PNG....")


def test_browser_mask_is_resized_nearest_grey_coded_and_cached(tmp_path):
    lab = np.zeros((240, 320), np.uint8)
    lab[:, 160:] = 1
    lab[100:140, :80] = 2
    (tmp_path / "masks").mkdir()
    cv2.imwrite(str(tmp_path / "masks" / "P1-r1.png"), lab)
    data = browser_mask(tmp_path, "masks/P1-r1.png", (160, 120))
    grey = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    assert grey.shape == (120, 160) and set(np.unique(grey)) == {0, 100, 200}
    assert (grey[:, 80:] == 100).all() and (grey[50:70, :40] == 200).all()
    cached = list((tmp_path / "review" / "cache").iterdir())
    assert [p.name for p in cached] == ["P1-r1-160x120.png"]
    np.testing.assert_array_equal(decode_browser_mask(data, (160, 120)),
                                  cv2.resize(lab, (160, 120),
                                             interpolation=cv2.INTER_NEAREST_EXACT))


def test_decode_browser_mask_checks_size_before_decoding_and_rounds_levels():
    rgba = np.zeros((4, 6, 4), np.uint8)
    rgba[..., 3] = 255
    rgba[0, 0, :3] = 97    # close to 100 -> class 1
    rgba[1, 1, :3] = 205   # close to 200 -> class 2
    ok, png = cv2.imencode(".png", rgba)
    lab = decode_browser_mask(png.tobytes(), (6, 4))
    assert lab[0, 0] == 1 and lab[1, 1] == 2 and lab.sum() == 3
    with pytest.raises(ReviewImageError, match="expected 8x4"):
        decode_browser_mask(png.tobytes(), (8, 4))
    with pytest.raises(ReviewImageError, match="not a PNG"):
        decode_browser_mask(b"GIF89a" + b"\0" * 30, (6, 4))
    big = labels_to_browser_png(np.zeros((1, 9000), np.uint8))
    with pytest.raises(ReviewImageError):
        decode_browser_mask(big, (9000, 1))


def test_review_picture_prefers_the_plain_picture_and_refuses_escapes(tmp_path):
    (tmp_path / "overlays").mkdir()
    (tmp_path / "overlays" / "P1-r1.jpg").write_bytes(b"x")
    assert review_picture(tmp_path, "overlays/P1-r1.jpg") == (
        (tmp_path / "overlays" / "P1-r1.jpg").resolve(), False)
    (tmp_path / "review").mkdir()
    (tmp_path / "review" / "P1-r1.jpg").write_bytes(b"x")
    assert review_picture(tmp_path, "overlays/P1-r1.jpg")[1] is True
    with pytest.raises(ReviewImageError):
        review_picture(tmp_path, "../../etc/passwd")
    with pytest.raises(ReviewImageError, match="missing"):
        review_picture(tmp_path, "overlays/P2-r1.jpg")
