"""Pictures for the viewer, all served from bytes we control: no metadata, opaque names.

- The review picture: the colour-corrected photo without classes, written by processing as
  ``review/<code>-rN.jpg`` beside ``overlays/<code>-rN.jpg``. Before serving, every JPEG
  APPn segment except JFIF (APP0) and every comment is dropped, losslessly, so no EXIF or
  other metadata can reach a browser even if a file carried some. Results processed before
  the review picture existed fall back to the overlay (classes already drawn in).
- Masks for the browser: the full-resolution label mask (0/1/2) downscaled (nearest label)
  to the review picture's size and coded as grey levels 0/100/200 (robust to any colour
  handling), cached under ``review/cache/``. The browser draws fills and outlines itself.
- Corrected masks come back from the browser in the same grey coding at the review
  picture's resolution and are stored as 0/1/2 label PNGs (``review/corrections/``).
"""

from __future__ import annotations

import struct
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from pipeline.review.errors import ReviewImageError
from pipeline.stages import atomic_write_bytes

__all__ = ["review_picture_file", "review_picture", "picture_size", "browser_mask",
           "labels_to_browser_png", "decode_browser_mask", "encode_labels_png",
           "read_labels", "strip_jpeg_metadata", "BROWSER_GREY"]

#: Grey level per class in masks exchanged with the browser (class k -> k * BROWSER_GREY).
BROWSER_GREY = 100
_MAX_SIDE = 8000


def review_picture_file(overlay_file: str) -> str:
    """``overlays/<code>-rN.jpg`` -> ``review/<code>-rN.jpg`` (relative to the output folder).

    Examples
    --------
    >>> review_picture_file("overlays/PABC-r2.jpg")
    'review/PABC-r2.jpg'
    """
    return "review/" + Path(overlay_file).name


def _inside(out_dir: Path, rel: str) -> Path:
    p = (out_dir / rel).resolve()
    if not p.is_relative_to(out_dir.resolve()):
        raise ReviewImageError("a stored picture path leaves the output folder")
    return p


def review_picture(out_dir: Path, overlay_file: str) -> tuple[Path, bool]:
    """The review picture's path and whether it is the plain one (False: overlay fallback)."""
    plain = _inside(out_dir, review_picture_file(overlay_file))
    if plain.is_file():
        return plain, True
    fallback = _inside(out_dir, overlay_file)
    if fallback.is_file():
        return fallback, False
    raise ReviewImageError("the review picture of this photo is missing")


def picture_size(path: Path) -> tuple[int, int]:
    """``(width, height)`` from the file header."""
    try:
        with Image.open(path) as im:
            return im.size
    except OSError as exc:
        raise ReviewImageError("a review picture is unreadable") from exc


def strip_jpeg_metadata(data: bytes) -> bytes:
    """Drop APP1-APP15 and COM segments of a JPEG (lossless; the scan is untouched).

    Examples
    --------
    >>> ok, jpg = cv2.imencode(".jpg", np.zeros((8, 8, 3), np.uint8))
    >>> strip_jpeg_metadata(jpg.tobytes())[:2] == b"\\xff\\xd8"
    True
    """
    if data[:2] != b"\xff\xd8":
        raise ReviewImageError("not a JPEG review picture")
    out = bytearray(data[:2])
    i = 2
    while i + 4 <= len(data):
        if data[i] != 0xFF:
            raise ReviewImageError("malformed JPEG review picture")
        marker = data[i + 1]
        if marker == 0xDA:  # start of scan: the rest is image data
            out += data[i:]
            return bytes(out)
        (length,) = struct.unpack(">H", data[i + 2:i + 4])
        segment = data[i:i + 2 + length]
        if not (0xE1 <= marker <= 0xEF or marker == 0xFE):
            out += segment
        i += 2 + length
    raise ReviewImageError("truncated JPEG review picture")


def read_labels(path: Path) -> np.ndarray:
    """A uint8 label PNG (0/1/2)."""
    labels = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if labels is None or labels.ndim != 2:
        raise ReviewImageError("a label mask is missing or unreadable")
    return labels


def encode_labels_png(labels: np.ndarray) -> bytes:
    """PNG bytes of a uint8 label map (values kept as they are, no metadata)."""
    ok, png = cv2.imencode(".png", np.ascontiguousarray(labels, np.uint8),
                           [cv2.IMWRITE_PNG_COMPRESSION, 6])
    if not ok:
        raise ReviewImageError("PNG encoding of a mask failed")
    return png.tobytes()


def labels_to_browser_png(labels: np.ndarray) -> bytes:
    """Grey-coded PNG (class k -> k * 100) for the viewer."""
    return encode_labels_png(np.minimum(labels, 2).astype(np.uint8) * BROWSER_GREY)


def browser_mask(out_dir: Path, mask_file: str, size: tuple[int, int]) -> bytes:
    """The model's label mask at the review picture's ``size`` (w, h), grey-coded; cached."""
    w, h = size
    src = _inside(out_dir, mask_file)
    cache = out_dir / "review" / "cache" / f"{src.stem}-{w}x{h}.png"
    if cache.is_file():
        return cache.read_bytes()
    labels = read_labels(src)
    small = cv2.resize(labels, (w, h), interpolation=cv2.INTER_NEAREST_EXACT)
    data = labels_to_browser_png(small)
    atomic_write_bytes(cache, data)
    return data


def _png_size(data: bytes) -> tuple[int, int]:
    if data[:8] != b"\x89PNG\r\n\x1a\n" or data[12:16] != b"IHDR":
        raise ReviewImageError("the corrected mask is not a PNG")
    w, h = struct.unpack(">II", data[16:24])
    return w, h


def decode_browser_mask(data: bytes, size: tuple[int, int]) -> np.ndarray:
    """Labels (0/1/2, uint8, (h, w)) from a grey-coded PNG sent by the viewer.

    The size is checked in the header before decoding; grey levels are rounded to the
    nearest class (any channel of an RGB/RGBA PNG).

    Examples
    --------
    >>> lab = np.array([[0, 1], [2, 1]], np.uint8)
    >>> decode_browser_mask(labels_to_browser_png(lab), (2, 2)).tolist()
    [[0, 1], [2, 1]]
    """
    w, h = _png_size(data)
    if (w, h) != tuple(size) or w > _MAX_SIDE or h > _MAX_SIDE:
        raise ReviewImageError(f"the corrected mask is {w}x{h}, expected {size[0]}x{size[1]}")
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise ReviewImageError("the corrected mask PNG is unreadable")
    grey = img if img.ndim == 2 else img[..., 0]
    if grey.dtype != np.uint8:
        grey = (grey >> 8).astype(np.uint8)
    return np.clip((grey.astype(np.int16) + BROWSER_GREY // 2) // BROWSER_GREY, 0, 2).astype(
        np.uint8)
