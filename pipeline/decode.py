"""Decode photo uploads into oriented RGB pixels plus an allow-list of metadata.

Formats: JPEG, PNG, TIFF, HEIC/HEIF (Pillow, pillow-heif) and DICOM photographs (pydicom;
VL Photographic Image and Secondary Capture: uncompressed, RLE, JPEG, JPEG-LS and JPEG 2000
including YBR_RCT/YBR_ICT via pylibjpeg-openjpeg; 8, 16 or 32 bits per sample, scaled to 8).
Every size is checked against a pixel limit *before* decoding, so a decompression bomb or an
absurd DICOM header is refused without allocating its pixels. EXIF orientation is applied
first, so everything downstream sees the photo the way the photographer framed it. An embedded
ICC profile other than sRGB (Display P3 from phones, Adobe RGB from cameras) is converted to
sRGB with Pillow's ImageCms; the profile's name and the conversion are kept in the metadata
(``icc_profile``, ``icc_converted``), which the store keeps with each result.

Odd inputs are decoded and flagged (``Photo.flags``, stored as QC flags): ``grayscale_photo``
(a photo without colour — the colour calibration and the tissue classes cannot be trusted;
held for a read, see :mod:`pipeline.qc`), ``multi_page_tiff`` (the first page is used),
``icc_unconverted`` (an embedded profile that could not be applied). 16-bit grayscale PNG/TIFF
are scaled to 8 bits. Multi-frame DICOM is refused (which frame is the photo is not ours to
guess), and a DICOM header's patient identifiers are never read (:mod:`pipeline.identity`).

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
    NotRegularFileError,
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
    ``subject_id`` is a DICOM header's ClinicalTrialSubjectID when present and well formed
    (never PatientID), ``acquired`` its date; ``flags`` the decoding's QC flags.
    """

    rgb: np.ndarray
    sha256: str
    size_bytes: int
    format: str
    metadata: dict[str, Any] = field(default_factory=dict)
    subject_id: str | None = None
    acquired: dt.datetime | None = None
    flags: tuple[str, ...] = ()

    @property
    def shape(self) -> tuple[int, int]:
        return (int(self.rgb.shape[0]), int(self.rgb.shape[1]))


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def read_bytes(path: Path) -> bytes:
    """The file's bytes; a missing, empty or special file (folder, FIFO) is a named error."""
    import stat

    try:
        mode = Path(path).stat().st_mode
        if not stat.S_ISREG(mode):
            kind = "a folder" if stat.S_ISDIR(mode) else "a FIFO (named pipe)" if \
                stat.S_ISFIFO(mode) else "a device or socket"
            raise NotRegularFileError(f"{path}: not a regular file ({kind})")
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

    heif = _register_heif()
    try:
        img = Image.open(io.BytesIO(data))
    except UnidentifiedImageError:
        raise NotAnImageError(f"{name}: not an image (JPEG, PNG, TIFF, HEIC or DICOM expected)"
                              ) from None
    except Image.DecompressionBombError as exc:
        raise ImageTooLargeError(f"{name}: {exc}") from None
    except (OSError, ValueError, SyntaxError) as exc:
        raise CorruptImageError(f"{name}: unreadable image header ({exc})") from None
    fmt = (img.format or "").upper()
    if fmt not in ("JPEG", "PNG", "TIFF", "MPO") + (("HEIF",) if heif else ()):
        raise NotAnImageError(f"{name}: unsupported image format {fmt or 'unknown'!r}")
    w, h = img.size
    if w * h > max_pixels:
        raise ImageTooLargeError(f"{name}: {w}x{h} = {w * h} pixels exceeds the limit of "
                                 f"{max_pixels} (refused before decoding)")
    flags: list[str] = []
    try:
        exif = img.getexif()
    except Exception:  # a damaged EXIF block is not worth refusing the photo for
        exif = {}
    meta: dict[str, Any] = {"format": fmt, "width": w, "height": h}
    for key, tag in KEPT_EXIF.items():
        if tag in exif:
            meta[key.lower()] = _plain(exif[tag])
    pages = int(getattr(img, "n_frames", 1) or 1)
    if fmt == "TIFF" and pages > 1:
        flags.append("multi_page_tiff")
        meta["pages"] = pages
        meta["note"] = f"multi-page TIFF ({pages} pages): the first page is used"
    try:
        if reduce > 1 and fmt == "JPEG":
            img.draft("RGB", (max(1, w // reduce), max(1, h // reduce)))
        img.load()
        icc = img.info.get("icc_profile")
        img = ImageOps.exif_transpose(img)
        gray = img.mode in ("1", "L", "LA", "P") and _palette_is_gray(img) or img.mode in (
            "I", "I;16", "I;16B", "I;16L", "I;16N", "F")
        if img.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
            rgb = _wide_gray_to_rgb(np.asarray(img), name=name)
        else:
            img = _to_srgb(img, icc, meta, flags)
            rgb = np.asarray(img.convert("RGB"), dtype=np.uint8)
    except Image.DecompressionBombError as exc:
        raise ImageTooLargeError(f"{name}: {exc}") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise CorruptImageError(f"{name}: cannot decode {fmt} ({exc})") from None
    if gray or _looks_gray(rgb):
        flags.append("grayscale_photo")
    return Photo(np.ascontiguousarray(rgb), digest, len(data), fmt, meta,
                 flags=tuple(flags))


def _register_heif() -> bool:
    """Let Pillow open HEIC/HEIF (pillow-heif); False when it is not installed."""
    try:
        import pillow_heif
    except ImportError:
        return False
    pillow_heif.register_heif_opener()
    return True


def _palette_is_gray(img: Any) -> bool:
    if img.mode != "P":
        return True
    pal = np.asarray(img.convert("RGB"))[::8, ::8].astype(np.int16)
    return _looks_gray(pal)


def _looks_gray(rgb: np.ndarray) -> bool:
    """True when every sampled pixel has (nearly) equal R, G and B."""
    sample = rgb[::7, ::7].astype(np.int16)
    return bool(sample.size) and int(np.abs(sample - sample[..., :1]).max()) <= 2


def _wide_gray_to_rgb(arr: np.ndarray, *, name: str) -> np.ndarray:
    """16-bit (or 32-bit integer / float) grayscale to 8-bit RGB by scaling, not clipping."""
    if arr.dtype.kind == "f":
        top = 1.0 if float(np.nanmax(arr)) <= 1.0 else float(np.nanmax(arr))
    else:
        top = 65535.0 if int(arr.max(initial=0)) <= 65535 else float(arr.max())
    if int(np.min(arr, initial=0)) < 0:
        raise CorruptImageError(f"{name}: signed grayscale pixels are not a photo")
    g = np.clip(np.nan_to_num(arr.astype(np.float64)) * (255.0 / top) + 0.5, 0, 255)
    return np.repeat(g.astype(np.uint8)[..., None], 3, axis=2)


def _to_srgb(img: Any, icc: bytes | None, meta: dict[str, Any], flags: list[str]) -> Any:
    """Convert an RGB or CMYK image with an embedded non-sRGB profile to sRGB (ImageCms)."""
    if not icc or img.mode not in ("RGB", "RGBA", "CMYK"):
        return img
    from PIL import ImageCms

    try:
        src = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        desc = (ImageCms.getProfileDescription(src) or "").strip()
    except (OSError, ImageCms.PyCMSError) as exc:
        meta["icc_profile"] = "unreadable"
        meta["note"] = f"embedded ICC profile unreadable ({exc}); treated as sRGB"
        flags.append("icc_unconverted")
        return img
    meta["icc_profile"] = desc[:80]
    if "srgb" in desc.lower().replace(" ", "") and img.mode != "CMYK":
        meta["icc_converted"] = False
        return img
    try:
        if img.mode == "RGBA":
            img = img.convert("RGB")
        out = ImageCms.profileToProfile(img, src, ImageCms.createProfile("sRGB"),
                                        renderingIntent=ImageCms.Intent.RELATIVE_COLORIMETRIC,
                                        outputMode="RGB")
    except (OSError, ImageCms.PyCMSError, ValueError) as exc:
        meta["note"] = f"embedded ICC profile {desc!r} could not be applied ({exc})"
        flags.append("icc_unconverted")
        return img
    meta["icc_converted"] = True
    return out


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
    bits = int(ds.get("BitsAllocated", 8) or 8)
    stored = int(ds.get("BitsStored", bits) or bits)
    if spp not in (1, 3) or bits not in (8, 16, 32) or not 1 <= stored <= bits:
        raise DicomError(f"{name}: unsupported pixel layout (SamplesPerPixel={spp}, "
                         f"BitsAllocated={ds.get('BitsAllocated')}, BitsStored={stored})")
    if int(ds.get("PixelRepresentation", 0) or 0) != 0:
        raise DicomError(f"{name}: signed pixel values (PixelRepresentation=1) are not a "
                         "photograph")
    if frames > 1:
        raise DicomError(f"{name}: multi-frame DICOM ({frames} frames); one photo per file is "
                         "expected (export each frame as its own file)")
    try:
        arr = ds.pixel_array
    except Exception as exc:
        raise CorruptImageError(f"{name}: cannot decode DICOM pixel data "
                                f"({type(exc).__name__}: {exc})") from None
    if arr.dtype != np.uint8 or stored != 8:
        top = float(2 ** stored - 1)
        arr = np.clip(arr.astype(np.float64) * (255.0 / top) + 0.5, 0, 255).astype(np.uint8)
    gray = arr.ndim == 2
    if gray:
        arr = np.repeat(arr[..., None], 3, axis=2)
    if arr.shape[:2] != (rows, cols):
        raise CorruptImageError(f"{name}: decoded {arr.shape[:2]} != header {rows}x{cols}")
    meta: dict[str, Any] = {"format": "DICOM", "width": cols, "height": rows,
                            "transfer_syntax": str(ds.file_meta.get("TransferSyntaxUID", ""))}
    for key in KEPT_DICOM:
        if key in ds:
            meta[key.lower()] = _plain(ds.get(key))
    if bits != 8 or stored != 8:
        meta["scaled_from_bits"] = stored
    from pipeline.identity import dicom_datetime
    from pipeline.manifest import valid_id

    trial = str(ds.get("ClinicalTrialSubjectID", "") or "").strip()
    flags = ("grayscale_photo",) if gray or _looks_gray(arr) else ()
    return Photo(np.ascontiguousarray(arr.astype(np.uint8)), digest, len(data), "DICOM", meta,
                 subject_id=trial if valid_id(trial) else None,
                 acquired=dicom_datetime(ds)[0], flags=flags)


def _plain(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("ascii", "replace").strip("\x00 ")
    if isinstance(value, int | float | str | bool) or value is None:
        return value
    return str(value)
