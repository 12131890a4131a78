"""Deep zoom: the full-resolution photo as a pyramid of JPEG tiles, made on first request.

Assessors judge thin new epithelium, which needs the original pixels, not the review
picture's (long side 1600). On the first request for a photo's tiles the server decodes the
original (checking that its sha256 is still the registered one), colour-corrects it at full
resolution with the photo's own fitted correction (from the calibration record), and cuts
the levels finer than the review picture into 256-pixel tiles under
``review/tiles/<photo>-<result>/`` (server-side names; the browser sees only the task's
opaque code, a level and a tile position). Encoders write no metadata.

Level 0 is full resolution; level k is 1/2^k of it; only levels with more pixels than the
review picture are made (the viewer shows the review picture below them).
"""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from pipeline.review.errors import ReviewImageError
from pipeline.stages import atomic_write_bytes

__all__ = ["TILE", "Pyramid", "pyramid_levels", "ensure_pyramid", "tile_path"]

TILE = 256
#: Quality 92 without chroma subsampling (4:4:4): fine colour detail is the point of tiles.
_JPEG_PARAMS = [cv2.IMWRITE_JPEG_QUALITY, 92,
                cv2.IMWRITE_JPEG_SAMPLING_FACTOR, cv2.IMWRITE_JPEG_SAMPLING_FACTOR_444]
_LOCKS: dict[str, threading.Lock] = {}
_LOCKS_GUARD = threading.Lock()


@dataclass(frozen=True)
class Pyramid:
    """A photo's tile pyramid: the full size and the number of levels."""

    width: int
    height: int
    levels: int


def pyramid_levels(full_width: int, review_width: int) -> int:
    """Levels with more pixels across than the review picture (0 when it is the original).

    Examples
    --------
    >>> pyramid_levels(4000, 1600), pyramid_levels(1600, 1600), pyramid_levels(320, 160)
    (2, 0, 1)
    """
    n = 0
    while full_width / 2 ** n > review_width * 1.01:
        n += 1
    return n


def _lock(key: str) -> threading.Lock:
    with _LOCKS_GUARD:
        return _LOCKS.setdefault(key, threading.Lock())


def _folder(out_dir: Path, photo_id: str, result_id: int) -> Path:
    return out_dir / "review" / "tiles" / f"{photo_id}-{result_id}"


def tile_path(out_dir: Path, photo_id: str, result_id: int, level: int, tx: int,
              ty: int) -> Path:
    return _folder(out_dir, photo_id, result_id) / str(level) / f"{tx}_{ty}.jpg"


def _corrected(original: Path, sha256: str, record_json: str | None) -> np.ndarray:
    """The original photo, oriented and colour-corrected as processing did (uint8 RGB)."""
    from calibration.colour import ColourCorrection
    from pipeline.decode import decode_photo

    try:
        data = original.read_bytes()
    except OSError as exc:
        raise ReviewImageError("the original photo is not readable") from exc
    if hashlib.sha256(data).hexdigest() != sha256:
        raise ReviewImageError("the original photo changed since it was processed")
    rgb = decode_photo(data, name=original.name).rgb
    try:
        colour = (json.loads(record_json) if record_json else {}).get("colour") or {}
    except ValueError:
        colour = {}
    if colour.get("method") in (None, "none") or not colour.get("matrix"):
        return rgb
    cc = ColourCorrection(colour["method"], int(colour.get("degree", 1)),
                          np.asarray(colour["matrix"], np.float64), np.ones(0, bool),
                          np.zeros(0), np.zeros(0), np.zeros(0))
    out = np.empty_like(rgb)
    for y in range(0, rgb.shape[0], TILE):   # in stripes: bounded float memory
        stripe = cc.apply(rgb[y:y + TILE])
        out[y:y + TILE] = (np.clip(stripe, 0, 1) * 255 + 0.5).astype(np.uint8)
    return out


def ensure_pyramid(out_dir: Path, *, photo_id: str, result_id: int, original: Path,
                   sha256: str, record_json: str | None, review_width: int) -> Pyramid:
    """Make the photo's tiles unless they exist (one maker at a time per photo)."""
    folder = _folder(out_dir, photo_id, result_id)
    done = folder / "pyramid.json"
    if done.is_file():
        return Pyramid(**json.loads(done.read_text()))
    with _lock(str(folder)):
        if done.is_file():
            return Pyramid(**json.loads(done.read_text()))
        rgb = _corrected(original, sha256, record_json)
        h, w = rgb.shape[:2]
        levels = pyramid_levels(w, review_width)
        bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
        for level in range(levels):
            img = bgr if level == 0 else cv2.resize(
                bgr, (max(1, round(w / 2 ** level)), max(1, round(h / 2 ** level))),
                interpolation=cv2.INTER_AREA)
            for ty in range(0, img.shape[0], TILE):
                for tx in range(0, img.shape[1], TILE):
                    ok, jpg = cv2.imencode(".jpg", img[ty:ty + TILE, tx:tx + TILE],
                                           _JPEG_PARAMS)
                    if not ok:
                        raise ReviewImageError("JPEG encoding of a tile failed")
                    atomic_write_bytes(tile_path(out_dir, photo_id, result_id, level,
                                                 tx // TILE, ty // TILE), jpg.tobytes())
        pyramid = Pyramid(w, h, levels)
        atomic_write_bytes(done, json.dumps(pyramid.__dict__).encode())
        return pyramid
