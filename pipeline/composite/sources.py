"""What gets composited: FUSeg photos with their wound masks, ``skimage.data`` scenes, and
intact-skin crops of FUSeg photos (regions away from the wound).

The FUSeg split is the project's fixed one (:mod:`models.fuseg`): ``held_out`` photos score a
finished model, ``development`` photos may be used for anything.
"""

from __future__ import annotations

import hashlib
import math
from pathlib import Path

import cv2
import numpy as np

from models.fuseg import NOMINAL_PX_PER_MM, fuseg_stems
from pipeline.composite.errors import CompositeError

__all__ = ["read_fuseg", "fuseg_photos", "skin_crop", "scene", "SCENES",
           "FUSEG_PHOTO_PX_PER_MM", "stem_seed", "trim_padding"]

#: Scale a FUSeg photo is assumed to have without ``varied`` (512 px ≈ 10 cm of foot; the
#: challenge publishes none). ``varied`` draws it log-uniformly from
#: :data:`models.fuseg.NOMINAL_PX_PER_MM`.
FUSEG_PHOTO_PX_PER_MM = 5.0
#: ``skimage.data`` scenes shipped with scikit-image (no download).
SCENES = ("astronaut", "coffee", "chelsea", "rocket", "hubble_deep_field",
          "immunohistochemistry", "camera", "coins", "moon", "brick", "grass", "gravel",
          "colorwheel", "logo", "cell", "clock")


def stem_seed(stem: str) -> int:
    """A stable integer for a photo stem."""
    return int(stem) if stem.isdigit() else int(hashlib.sha256(stem.encode()).hexdigest()[:8], 16)


def read_fuseg(src: Path, stem: str) -> tuple[np.ndarray, np.ndarray]:
    """The 8-bit RGB photo and the boolean wound mask of FUSeg photo ``stem``."""
    img, lab = src / "images" / f"{stem}.jpg", src / "labels" / f"{stem}.png"
    bgr = cv2.imread(str(img), cv2.IMREAD_COLOR)
    mask = cv2.imread(str(lab), cv2.IMREAD_GRAYSCALE)
    if bgr is None:
        raise CompositeError(f"{img}: not a readable image")
    if mask is None:
        raise CompositeError(f"{lab}: not a readable mask")
    if mask.shape != bgr.shape[:2]:
        raise CompositeError(f"{lab}: mask {mask.shape} does not match the photo "
                             f"{bgr.shape[:2]}")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), mask > 127


def fuseg_photos(src: str | Path, part: str, *, limit: int | None = None) -> list[str]:
    """Stems of the FUSeg photos of ``part`` (``held_out`` or ``development``), the first
    ``limit`` of them (sorted) when given."""
    try:
        stems = fuseg_stems(src, part)
    except (ValueError, FileNotFoundError) as exc:
        raise CompositeError(str(exc)) from exc
    if not stems:
        raise CompositeError(f"{src}: no labelled FUSeg photos of part {part!r}")
    return stems[:limit] if limit else stems


def photo_scale(rng: np.random.Generator, varied: bool) -> float:
    """The scale assumed for a FUSeg photo (px/mm)."""
    if not varied:
        return FUSEG_PHOTO_PX_PER_MM
    lo, hi = (math.log(v) for v in NOMINAL_PX_PER_MM)
    return float(math.exp(rng.uniform(lo, hi)))


def skin_crop(rgb: np.ndarray, wound: np.ndarray, *, min_side: int = 128, max_side: int = 320,
              clearance: int = 24) -> np.ndarray | None:
    """The largest square of skin-coloured pixels of ``rgb`` (side ``min_side``-``max_side``)
    at least ``clearance`` px away from the wound, or None when none fits.

    Skin-coloured: red above green and blue and not dark (smoothed, so hair and creases do not
    break a region); the black padding of FUSeg photos, sheets and floors are left out.
    """
    r, g, b = (rgb[..., i].astype(np.int16) for i in range(3))
    skin = ((r > g + 8) & (r > b + 8) & (r > 60)).astype(np.uint8)
    skin = cv2.medianBlur(skin * 255, 15) > 127
    blocked = cv2.dilate(wound.astype(np.uint8), np.ones((2 * clearance + 1,) * 2, np.uint8))
    free = np.pad((skin & (blocked == 0)).astype(np.uint8), 1)  # the photo's edge blocks too
    dist = cv2.distanceTransform(free, cv2.DIST_C, 3)[1:-1, 1:-1]
    d = float(dist.max())
    side = min(int(2 * d - 1), max_side)
    if side < min_side:
        return None
    y, x = np.unravel_index(int(np.argmax(dist)), dist.shape)
    h = side // 2
    return np.ascontiguousarray(rgb[y - h:y - h + side, x - h:x - h + side])


def trim_padding(rgb: np.ndarray, labels: np.ndarray, *, dark: int = 8
                 ) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """Cut away the black rows and columns FUSeg pads its photos with (box x0, y0, x1, y1)."""
    lit = rgb.max(axis=2) > dark
    rows, cols = np.flatnonzero(lit.mean(axis=1) > 0.02), np.flatnonzero(lit.mean(axis=0) > 0.02)
    if rows.size == 0 or cols.size == 0:
        raise CompositeError("the photo is black")
    y0, y1, x0, x1 = int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1
    return (np.ascontiguousarray(rgb[y0:y1, x0:x1]), np.ascontiguousarray(labels[y0:y1, x0:x1]),
            [x0, y0, x1, y1])


def scene(name: str) -> np.ndarray:
    """An 8-bit RGB ``skimage.data`` scene (grey and RGBA made RGB)."""
    import skimage.data

    try:
        img = np.asarray(getattr(skimage.data, name)())
    except Exception as exc:  # noqa: BLE001 - any failure to load is the same problem here
        raise CompositeError(f"skimage.data.{name}: cannot be loaded ({exc})") from exc
    if img.dtype == bool:
        img = img.astype(np.uint8) * 255
    if img.dtype != np.uint8:
        img = (255 * (img - img.min()) / max(float(np.ptp(img)), 1e-9)).astype(np.uint8)
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    if img.shape[2] == 4:
        a = img[..., 3:4].astype(np.float32) / 255
        img = (img[..., :3] * a + 255 * (1 - a)).astype(np.uint8)
    return np.ascontiguousarray(img)
