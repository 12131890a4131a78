"""The formats clinics send (issue 14): DICOM colour variants (pydicom's own test files),
HEIC/HEIF with EXIF orientation, embedded ICC profiles converted to sRGB, 16-bit grayscale,
multi-page TIFF and grayscale photos flagged."""

from __future__ import annotations

import csv
import io

import numpy as np
import pytest
from PIL import Image

from pipeline.decode import decode_photo
from pipeline.errors import DicomError
from pipeline.qc import GRAYSCALE_PHOTO, HOLD_FOR_READ_FLAGS
from tests.pipeline.iccprofiles import adobe_rgb, display_p3

RED_FIRST = ["SC_rgb_rle.dcm", "SC_rgb_rle_16bit.dcm", "SC_rgb_rle_32bit.dcm",
             "SC_rgb_jpeg_gdcm.dcm", "SC_rgb_jpeg_dcmtk.dcm", "SC_rgb_dcmtk_+eb+cy+np.dcm",
             "SC_rgb_gdcm_KY.dcm", "SC_ybr_full_422_uncompressed.dcm",
             "SC_rgb_dcmtk_+eb+cr.dcm", "SC_rgb_jpeg_lossy_gdcm.dcm"]


def _testdata(name: str) -> bytes:
    from pydicom.data import get_testdata_file

    path = get_testdata_file(name, download=False)
    if path is None:
        pytest.skip(f"pydicom does not bundle {name} here")
    with open(path, "rb") as fh:
        return fh.read()


@pytest.mark.parametrize("name", RED_FIRST)
def test_pydicom_colour_test_files_decode_to_rgb(name):
    photo = decode_photo(_testdata(name), name=name)
    assert photo.rgb.dtype == np.uint8 and photo.rgb.shape == (100, 100, 3)
    # the files show red, green, blue, ... bands: the top-left pixel is red
    assert photo.rgb[0, 0, 0] >= 240 and photo.rgb[0, 0, 1:].max() <= 15, photo.rgb[0, 0]
    assert photo.rgb.max() == 255 and GRAYSCALE_PHOTO not in photo.flags


def test_jpeg2000_ybr_rct_and_16_bit_scaling():
    decode_photo(_testdata("SC_rgb_jpeg.dcm"), name="SC_rgb_jpeg.dcm")  # 256x256, decodes
    photo = decode_photo(_testdata("GDCMJ2K_TextGBR.dcm"), name="GDCMJ2K_TextGBR.dcm")
    assert photo.shape == (400, 400) and len(np.unique(photo.rgb.reshape(-1, 3), axis=0)) > 2
    p16 = decode_photo(_testdata("SC_rgb_rle_16bit.dcm"), name="x.dcm")
    p8 = decode_photo(_testdata("SC_rgb_rle.dcm"), name="y.dcm")
    assert np.abs(p16.rgb.astype(int) - p8.rgb.astype(int)).max() <= 1
    assert p16.metadata["scaled_from_bits"] == 16


def test_multi_frame_dicom_is_refused():
    with pytest.raises(DicomError, match=r"multi-frame DICOM \(2 frames\)"):
        decode_photo(_testdata("SC_rgb_rle_2frame.dcm"), name="two.dcm")


def _save(img: Image.Image, fmt: str, **kw) -> bytes:
    if fmt == "HEIF":
        import pillow_heif

        pillow_heif.register_heif_opener()
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def test_16_bit_grayscale_png_is_scaled_not_white():
    ramp = np.linspace(0, 65535, 64 * 48).reshape(48, 64).astype(np.uint16)
    photo = decode_photo(_save(Image.fromarray(ramp), "PNG"), name="g16.png")
    expected = np.round(ramp / 257).astype(int)
    assert np.abs(photo.rgb[..., 1].astype(int) - expected).max() <= 1
    assert GRAYSCALE_PHOTO in photo.flags


def test_multi_page_tiff_and_grayscale_jpeg_are_flagged():
    pages = [Image.new("RGB", (64, 48), (200, 30, 30)), Image.new("RGB", (32, 24))]
    photo = decode_photo(_save(pages[0], "TIFF", save_all=True, append_images=pages[1:]),
                         name="m.tif")
    assert photo.flags == ("multi_page_tiff",) and "first page" in photo.metadata["note"]
    gray = decode_photo(_save(Image.new("L", (64, 48), 90), "JPEG"), name="g.jpg")
    rgb_gray = decode_photo(_save(Image.new("RGB", (64, 48), (90, 90, 90)), "JPEG"), name="h.jpg")
    assert GRAYSCALE_PHOTO in gray.flags and GRAYSCALE_PHOTO in rgb_gray.flags
    assert GRAYSCALE_PHOTO in HOLD_FOR_READ_FLAGS  # held for a read, not an endpoint


def test_heic_with_exif_orientation_is_upright():
    rgb = np.zeros((48, 64, 3), np.uint8)
    rgb[:12] = 255
    rgb[..., 1] = np.linspace(0, 255, 64)[None]
    exif = Image.Exif()
    exif[0x0112] = 6
    stored = Image.fromarray(np.ascontiguousarray(np.rot90(rgb, 1)))
    photo = decode_photo(_save(stored, "HEIF", exif=exif.tobytes(), quality=-1), name="a.heic")
    assert photo.format == "HEIF" and photo.shape == (48, 64)
    assert np.abs(photo.rgb.astype(int) - rgb).mean() < 3


def _encode_in(rgb: np.ndarray, colourspace: str) -> np.ndarray:
    import colour

    out = colour.RGB_to_RGB(rgb / 255.0, "sRGB", colourspace, apply_cctf_decoding=True,
                            apply_cctf_encoding=True)
    return np.clip(np.round(np.nan_to_num(out) * 255), 0, 255).astype(np.uint8)


def test_wide_gamut_photos_measure_like_the_srgb_photo(small_study):
    """A Display-P3 JPEG, an Adobe RGB PNG and a Display-P3 HEIC of one photo measure within
    0.5 % of the same photo as sRGB JPEG (scale and the true donor site's area through the
    calibration), and their colours match it once converted."""
    from calibration import calibrate, load_sticker
    from pipeline.measure import measure_labels

    row = next(csv.DictReader((small_study / "manifest.csv").open()))
    rgb = np.asarray(Image.open(small_study / row["file"]).convert("RGB"))
    stem = row["file"].rsplit("/", 1)[-1].rsplit(".", 1)[0]
    labels = np.asarray(Image.open(small_study / "truth" / "masks" / f"{stem}.png"))
    spec = load_sticker()
    p3, adobe = _encode_in(rgb, "Display P3"), _encode_in(rgb, "Adobe RGB (1998)")
    files = {
        "srgb.jpg": _save(Image.fromarray(rgb), "JPEG", quality=95),
        "p3.jpg": _save(Image.fromarray(p3), "JPEG", quality=95, icc_profile=display_p3()),
        "adobe.png": _save(Image.fromarray(adobe), "PNG", icc_profile=adobe_rgb()),
        "p3.heic": _save(Image.fromarray(p3), "HEIF", quality=95, icc_profile=display_p3()),
    }
    results = {}
    for name, data in files.items():
        photo = decode_photo(data, name=name)
        cal = calibrate(photo.rgb, spec)
        area = measure_labels(labels, meter=cal).donor_site_area_mm2
        results[name] = (photo, cal.mm_per_px, area)
    ref, ref_scale, ref_area = results["srgb.jpg"]
    for name in ("p3.jpg", "adobe.png", "p3.heic"):
        photo, scale, area = results[name]
        assert photo.metadata["icc_converted"] is True
        assert abs(scale / ref_scale - 1) < 0.005 and abs(area / ref_area - 1) < 0.005, name
        assert np.abs(photo.rgb.astype(int) - ref.rgb.astype(int)).mean() < 2.0, name
    # without the conversion the P3 pixels would be off by far more
    assert np.abs(p3.astype(int) - rgb.astype(int)).mean() > 2.0
