from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from pipeline.decode import decode_photo
from pipeline.errors import (
    CorruptImageError,
    DicomError,
    EmptyFileError,
    ImageTooLargeError,
    NotAnImageError,
)
from tests.conftest import make_dicom, make_jpeg  # noqa: F401  (importlib mode: rootdir path)


def _png(rgb: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "PNG")
    return buf.getvalue()


def _tiff(rgb: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "TIFF")
    return buf.getvalue()


@pytest.mark.parametrize("encode", [_png, _tiff])
def test_lossless_formats_roundtrip(rgb_small, encode):
    photo = decode_photo(encode(rgb_small), name="x")
    np.testing.assert_array_equal(photo.rgb, rgb_small)
    assert photo.metadata["width"] == 64 and photo.metadata["height"] == 48


def test_jpeg_exif_orientation_applied_and_gps_dropped(rgb_small):
    # Orientation 6: stored pixels must be rotated 90° clockwise to display.
    data = make_jpeg(rgb_small, exif={0x0112: 6, 0x010F: "PhoneCo", 0xA431: "SERIAL-123",
                                      0x8825: {1: "N", 2: (52.0, 13.0, 7.5)}})
    photo = decode_photo(data, name="x.jpg")
    assert photo.shape == (64, 48)
    assert photo.metadata == {"format": "JPEG", "width": 64, "height": 48, "make": "PhoneCo",
                              "orientation": 6}
    assert "SERIAL-123" not in repr(photo.metadata)


def test_jpeg_reduced_decode(rgb_small):
    big = np.kron(rgb_small, np.ones((4, 4, 1), np.uint8))
    photo = decode_photo(make_jpeg(big), name="x.jpg", reduce=4)
    assert photo.shape == (48, 64)


def test_zero_byte_and_garbage():
    with pytest.raises(EmptyFileError, match="empty.jpg: zero-byte"):
        decode_photo(b"", name="empty.jpg")
    with pytest.raises(NotAnImageError, match="notes.jpg: not an image"):
        decode_photo(b"hello, this is text" * 10, name="notes.jpg")


def test_truncated_jpeg(rgb_small):
    data = make_jpeg(np.kron(rgb_small, np.ones((8, 8, 1), np.uint8)))
    with pytest.raises(CorruptImageError, match="cut.jpg"):
        decode_photo(data[: len(data) // 2], name="cut.jpg")


def test_pixel_limit_refused_before_decoding(rgb_small):
    with pytest.raises(ImageTooLargeError, match="exceeds the limit of 1000"):
        decode_photo(_png(rgb_small), name="big.png", max_pixels=1000)


@pytest.mark.parametrize("compressed", [False, True])
@pytest.mark.parametrize("sop", ["vl_photo", "secondary_capture"])
def test_dicom_photographs(rgb_small, compressed, sop):
    rgb = rgb_small.copy()
    rgb[..., 2] = 90  # smooth, so that JPEG's loss stays small
    photo = decode_photo(make_dicom(rgb, compressed=compressed, sop=sop,
                                    trial_subject="S07"), name="a.dcm")
    assert photo.format == "DICOM" and photo.shape == (48, 64)
    diff = np.abs(photo.rgb.astype(int) - rgb.astype(int))
    assert (diff.max() == 0) if not compressed else (diff.mean() < 2 and diff.max() < 10)
    assert photo.subject_id == "S07"
    assert photo.acquired is not None and photo.acquired.day == 1
    assert "Doe" not in repr(photo.metadata) and "19700101" not in repr(photo.metadata)


def test_dicom_patient_id_is_never_the_subject(rgb_small):
    assert decode_photo(make_dicom(rgb_small, patient_id="S03"), name="a.dcm").subject_id is None
    bad = make_dicom(rgb_small, trial_subject="=HYPERLINK(1)")
    assert decode_photo(bad, name="a.dcm").subject_id is None


def test_dicom_without_pixel_data(rgb_small):
    with pytest.raises(DicomError, match="without pixel data"):
        decode_photo(make_dicom(rgb_small, pixel_data=False), name="a.dcm")


def test_dicom_absurd_header_refused_before_decoding(rgb_small):
    data = make_dicom(rgb_small, rows=60000)
    with pytest.raises(ImageTooLargeError, match="refused before decoding"):
        decode_photo(data, name="huge.dcm", max_pixels=1_000_000)
