"""Decode photo uploads into oriented RGB pixels plus an allow-list of metadata.

Formats: JPEG, PNG, TIFF (Pillow) and DICOM photographs (pydicom; VL Photographic Image and
Secondary Capture, uncompressed or JPEG Baseline). Every size is checked against a pixel limit
*before* decoding, so a decompression bomb or an absurd DICOM header is refused without
allocating its pixels. EXIF orientation is applied first, so everything downstream sees the
photo the way the photographer framed it.

Only metadata on :data:`KEPT_EXIF` / :data:`KEPT_DICOM` survive decoding; everything else
(GPS, serial numbers, patient tags, original names) is dropped here and can reach nothing
downstream.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.errors import (
    CorruptImageError,
    DicomError,
    EmptyFileError,
    ImageTooLargeError,
    MissingFileError,
    NotAnImageError,
)

__all__ = ["Photo", "decode_photo", "read_bytes", "sha256_bytes", "DEFAULT_MAX_PIXELS",
           "KEPT_EXIF", "KEPT_DICOM"]

#: Refuse anything larger than this many pixels (a 12 MP phone photo is 12e6).
DEFAULT_MAX_PIXELS = 80_000_000
#: EXIF tags kept (name -> tag id); everything else is dropped.
KEPT_EXIF = {"Make": 0x010F, "Model": 0x0110, "Orientation": 0x0112}
#: DICOM attributes kept.
KEPT_DICOM = ("SOPClassUID", "Modality", "PhotometricInterpretation", "Rows", "Columns")
SUPPORTED_SOP_CLASSES = {
    "1.2.840.10008.5.1.4.1.1.77.1.4": "VL Photographic Image",
    "1.2.840.10008.5.1.4.1.1.7": "Secondary Capture",
}
_DICOM_SUFFIXES = (".dcm", ".dicom")


@dataclass(frozen=True)
class Photo:
    """A decoded, oriented photo.

    ``rgb`` is uint8 (H, W, 3) sRGB. ``metadata`` holds only allow-listed fields.
    ``subject_id`` / ``acquired`` come from the file itself (DICOM), when present.
    """

    rgb: np.ndarray
    sha256: str
    size_bytes: int
    format: str
    metadata: dict[str, Any] = field(default_factory=dict)
    subject_id: str | None = None
    acquired: dt.datetime | None = None

    @property
    def shape(self) -> tuple[int, int]:
        return (int(self.rgb.shape[0]), int(self.rgb.shape[1]))


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def read_bytes(path: Path) -> bytes:
    """The file's bytes; a missing or empty file is a named per-photo error."""
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise MissingFileError(f"{path}: file does not exist") from None
    except OSError as exc:
        raise MissingFileError(f"{path}: cannot read ({exc.strerror})") from exc
    if not data:
        raise EmptyFileError(f"{path}: zero-byte file")
    return data


def decode_photo(data: bytes, *, name: str, max_pixels: int = DEFAULT_MAX_PIXELS,
                 reduce: int = 1) -> Photo:
    """Decode one upload.

    Parameters
    ----------
    data : bytes
        The file's content.
    name : str
        The file's name, for messages (never stored in outputs).
    max_pixels : int, optional
        Refuse images whose header promises more pixels than this, before decoding.
    reduce : {1, 2, 4, 8}, optional
        JPEG only: decode at 1/reduce size with libjpeg's DCT scaling (Pillow draft mode).

    Returns
    -------
    Photo

    Raises
    ------
    EmptyFileError, NotAnImageError, CorruptImageError, ImageTooLargeError, DicomError

    Examples
    --------
    >>> from PIL import Image
    >>> buf = io.BytesIO(); Image.new("RGB", (8, 6), (200, 10, 10)).save(buf, "PNG")
    >>> decode_photo(buf.getvalue(), name="x.png").rgb.shape
    (6, 8, 3)
    """
    if not data:
        raise EmptyFileError(f"{name}: zero-byte file")
    if reduce not in (1, 2, 4, 8):
        raise ValueError(f"reduce must be one of 1, 2, 4, 8, got {reduce!r}")
    digest = sha256_bytes(data)
    if _looks_like_dicom(data, name):
        return _decode_dicom(data, name=name, max_pixels=max_pixels, digest=digest)
    return _decode_pillow(data, name=name, max_pixels=max_pixels, digest=digest, reduce=reduce)


def _looks_like_dicom(data: bytes, name: str) -> bool:
    return data[128:132] == b"DICM" or name.lower().endswith(_DICOM_SUFFIXES)


def _decode_pillow(data: bytes, *, name: str, max_pixels: int, digest: str,
                   reduce: int) -> Photo:
    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        img = Image.open(io.BytesIO(data))
    except UnidentifiedImageError:
        raise NotAnImageError(f"{name}: not an image (JPEG, PNG, TIFF or DICOM expected)"
                              ) from None
    except Image.DecompressionBombError as exc:
        raise ImageTooLargeError(f"{name}: {exc}") from None
    except OSError as exc:
        raise CorruptImageError(f"{name}: unreadable image header ({exc})") from None
    fmt = (img.format or "").upper()
    if fmt not in ("JPEG", "PNG", "TIFF", "MPO"):
        raise NotAnImageError(f"{name}: unsupported image format {fmt or 'unknown'!r}")
    w, h = img.size
    if w * h > max_pixels:
        raise ImageTooLargeError(f"{name}: {w}x{h} = {w * h} pixels exceeds the limit of "
                                 f"{max_pixels} (refused before decoding)")
    exif = img.getexif()
    meta: dict[str, Any] = {"format": fmt, "width": w, "height": h}
    for key, tag in KEPT_EXIF.items():
        if tag in exif:
            meta[key.lower()] = _plain(exif[tag])
    try:
        if reduce > 1 and fmt == "JPEG":
            img.draft("RGB", (max(1, w // reduce), max(1, h // reduce)))
        img.load()
        img = ImageOps.exif_transpose(img)
        rgb = np.asarray(img.convert("RGB"), dtype=np.uint8)
    except Image.DecompressionBombError as exc:
        raise ImageTooLargeError(f"{name}: {exc}") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise CorruptImageError(f"{name}: cannot decode {fmt} ({exc})") from None
    return Photo(np.ascontiguousarray(rgb), digest, len(data), fmt, meta)


def _decode_dicom(data: bytes, *, name: str, max_pixels: int, digest: str) -> Photo:
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        ds = pydicom.dcmread(io.BytesIO(data), force=False)
    except InvalidDicomError:
        raise NotAnImageError(f"{name}: not a DICOM file (no DICM preamble)") from None
    except Exception as exc:  # pydicom raises many kinds on damaged headers
        raise DicomError(f"{name}: unreadable DICOM header ({type(exc).__name__}: {exc})"
                         ) from None
    sop = str(ds.get("SOPClassUID", ""))
    if sop not in SUPPORTED_SOP_CLASSES:
        raise DicomError(f"{name}: SOP class {sop or 'missing'!r} is not a photograph "
                         f"(supported: {', '.join(SUPPORTED_SOP_CLASSES.values())})")
    if "PixelData" not in ds:
        raise DicomError(f"{name}: DICOM without pixel data")
    rows, cols = int(ds.get("Rows", 0) or 0), int(ds.get("Columns", 0) or 0)
    spp = int(ds.get("SamplesPerPixel", 1) or 1)
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    if rows <= 0 or cols <= 0:
        raise DicomError(f"{name}: DICOM header has no valid Rows/Columns ({rows}x{cols})")
    if rows * cols * frames > max_pixels:
        raise ImageTooLargeError(f"{name}: DICOM header promises {cols}x{rows}x{frames} "
                                 f"pixels, over the limit of {max_pixels} (refused before "
                                 "decoding)")
    if spp not in (1, 3) or int(ds.get("BitsAllocated", 8)) != 8:
        raise DicomError(f"{name}: unsupported pixel layout (SamplesPerPixel={spp}, "
                         f"BitsAllocated={ds.get('BitsAllocated')})")
    try:
        arr = ds.pixel_array
    except Exception as exc:
        raise CorruptImageError(f"{name}: cannot decode DICOM pixel data "
                                f"({type(exc).__name__}: {exc})") from None
    if frames > 1:
        arr = arr[0]
    if arr.ndim == 2:
        arr = np.repeat(arr[..., None], 3, axis=2)
    if arr.shape[:2] != (rows, cols):
        raise CorruptImageError(f"{name}: decoded {arr.shape[:2]} != header {rows}x{cols}")
    meta: dict[str, Any] = {"format": "DICOM", "width": cols, "height": rows,
                            "transfer_syntax": str(ds.file_meta.get("TransferSyntaxUID", ""))}
    for key in KEPT_DICOM:
        if key in ds:
            meta[key.lower()] = _plain(ds.get(key))
    subject = str(ds.get("ClinicalTrialSubjectID", "") or ds.get("PatientID", "") or "") or None
    return Photo(np.ascontiguousarray(arr.astype(np.uint8)), digest, len(data), "DICOM", meta,
                 subject_id=subject, acquired=_dicom_datetime(ds))


def _dicom_datetime(ds: Any) -> dt.datetime | None:
    text = str(ds.get("AcquisitionDateTime", "") or "")
    if not text and ds.get("AcquisitionDate"):
        text = str(ds.get("AcquisitionDate")) + str(ds.get("AcquisitionTime", "") or "")
    text = text.split("+")[0].split("-")[0]
    for fmt in ("%Y%m%d%H%M%S.%f", "%Y%m%d%H%M%S", "%Y%m%d%H%M", "%Y%m%d"):
        try:
            return dt.datetime.strptime(text, fmt)
        except ValueError:
            continue
    return None


def _plain(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("ascii", "replace").strip("\x00 ")
    if isinstance(value, int | float | str | bool) or value is None:
        return value
    return str(value)
