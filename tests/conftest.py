"""Fixtures shared by all test packages: small photo files in every supported format."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest


def make_jpeg(rgb: np.ndarray, *, exif: dict[int, object] | None = None, quality: int = 90
              ) -> bytes:
    from PIL import Image

    img = Image.fromarray(rgb)
    buf = io.BytesIO()
    kwargs: dict[str, object] = {"quality": quality}
    if exif:
        ex = Image.Exif()
        for k, v in exif.items():
            ex[k] = v
        kwargs["exif"] = ex.tobytes()
    img.save(buf, "JPEG", **kwargs)
    return buf.getvalue()


def make_dicom(rgb: np.ndarray, *, compressed: bool = False, sop: str = "vl_photo",
               patient_id: str = "S01", trial_subject: str | None = None,
               acquired: str = "20260301101500", patient_name: str = "Doe^Jane",
               pixel_data: bool = True, rows: int | None = None) -> bytes:
    """A small DICOM photograph made with pydicom (VL Photographic Image or SC)."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.encaps import encapsulate
    from pydicom.uid import (
        ExplicitVRLittleEndian,
        JPEGBaseline8Bit,
        SecondaryCaptureImageStorage,
        VLPhotographicImageStorage,
        generate_uid,
    )

    sop_uid = VLPhotographicImageStorage if sop == "vl_photo" else SecondaryCaptureImageStorage
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_uid
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = JPEGBaseline8Bit if compressed else ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = sop_uid
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality = "XC"
    ds.PatientName = patient_name
    ds.PatientID = patient_id
    ds.PatientBirthDate = "19700101"
    ds.InstitutionName = "Secret Hospital"
    if trial_subject:
        ds.ClinicalTrialSubjectID = trial_subject
    ds.AcquisitionDateTime = acquired
    h, w = rgb.shape[:2]
    ds.Rows, ds.Columns = rows if rows is not None else h, w
    ds.SamplesPerPixel = 3
    ds.PlanarConfiguration = 0
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    if pixel_data:
        if compressed:
            ds.PhotometricInterpretation = "YBR_FULL_422"
            ds.PixelData = encapsulate([make_jpeg(rgb, quality=95)])
            ds["PixelData"].VR = "OB"
        else:
            ds.PhotometricInterpretation = "RGB"
            ds.PixelData = np.ascontiguousarray(rgb, dtype=np.uint8).tobytes()
    else:
        ds.PhotometricInterpretation = "RGB"
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


@pytest.fixture
def rgb_small() -> np.ndarray:
    rng = np.random.default_rng(0)
    img = np.zeros((48, 64, 3), np.uint8)
    img[..., 0] = np.linspace(0, 255, 64, dtype=np.uint8)[None, :]
    img[..., 1] = np.linspace(0, 255, 48, dtype=np.uint8)[:, None]
    img[..., 2] = rng.integers(0, 255, (48, 64), dtype=np.uint8)
    return img


@pytest.fixture
def photo_maker(tmp_path: Path):
    """Write a named photo file into tmp_path and return its path."""

    def _make(name: str, data: bytes) -> Path:
        p = tmp_path / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
        return p

    return _make
