"""Sticker descriptions: load, validate and render a fiducial calibration sticker.

A sticker is described in a TOML (or JSON) file; the trial's DS-CAL-1 ships as the default
(``calibration/stickers/ds-cal-1.toml``) and another sticker is described by another file,
with no code changes (``calibration/stickers/astro-aruco-46.toml`` is a second example).
The same description is read by the synthetic study generator (to draw the sticker), the
printable-sticker writer and the calibration (to find and measure it), so they cannot drift
apart.

The format
----------
Millimetres, origin at the card's top-left corner, x right, y down. Unknown keys are errors.

Top level: ``name``, ``card_width_mm``, ``card_height_mm``, ``dictionary`` (any predefined
OpenCV ArUco dictionary: ``DICT_4X4_50`` .. ``DICT_7X7_1000``, ``DICT_ARUCO_ORIGINAL``,
``DICT_APRILTAG_16h5/25h9/36h10/36h11``, ``DICT_ARUCO_MIP_36h12``; case-insensitive),
``marker_size_mm`` (default side of the markers).

``[[markers]]`` (at least 4): ``id``, ``x_mm``, ``y_mm`` (outer top-left corner of the black
border), optional ``size_mm``, optional ``rotation_deg`` = 0 | 90 | 180 | 270: the
dictionary's marker image turned clockwise on the card; the marker's own top-left corner
(OpenCV's first corner) is then the card square's top-left (0), top-right (90),
bottom-right (180) or bottom-left (270) corner.

``[[patches]]`` (any number, 0 included): optional ``name``, ``x_mm``, ``y_mm``, and either
``size_mm`` (a square) or ``width_mm`` and ``height_mm``; and exactly one reference colour:

- ``lab_d50 = [L, a, b]``: CIE L*a*b*, D50, 2° observer (used as given);
- ``lab = [L, a, b]`` with ``illuminant = "D65"`` (any CIE illuminant colour-science names;
  default ``"D50"``) and ``observer = 2 | 10`` (default 2): adapted to D50 2° (Bradford);
- ``srgb = [r, g, b]`` floats in 0..1, or ``srgb8 = [r, g, b]`` integers 0..255: sRGB (IEC
  61966-2-1, white D65), decoded to linear and taken to L*a*b* D50 by Bradford adaptation,
  the path the photo's colours take (see :mod:`calibration.reference`).

``[[patch_grids]]``: a grid of equal patches, appended after ``[[patches]]`` in order, row
by row: ``x_mm``, ``y_mm`` (top-left of the first patch), ``rows``, ``columns``, ``size_mm``
or ``width_mm`` + ``height_mm``, ``pitch_mm`` or ``pitch_x_mm`` + ``pitch_y_mm`` (distance
between neighbouring patches' corners), optional ``names`` (rows x columns strings), and one
reference key as above holding rows x columns colours (``srgb8 = [[115, 82, 68], ...]``).

``[ruler]`` (optional): a horizontal baseline ``x0_mm`` .. ``x1_mm`` at ``y_mm``; tick
classes ``tick_every_mm`` (default ``[1, 5, 10]``; each a multiple of the first) with
``tick_lengths_mm`` (default ``[1.5, 2.5, 3.5]``; increasing: the longest ticks are the ones
measured), ``direction`` = ``"up"`` (default) or ``"down"``, ``labels`` = true (default).

Patches and markers must lie on the card and not overlap. A colour correction needs enough
patches: with fewer than the asked method needs, :mod:`calibration.colour` falls back to
what they support (3x3 matrix: 3 patches of independent colours; per-channel gains: 1) and
with none the photo is flagged ``colour_uncorrected``.
"""

from __future__ import annotations

import json
import tomllib
from importlib import resources
from pathlib import Path

import numpy as np

from calibration.errors import StickerSpecError
from calibration.sticker_parse import sticker_from_dict
from calibration.sticker_types import (
    ARUCO_DICTIONARIES,
    ARUCO_DICTIONARY_SIZES,
    Marker,
    Patch,
    Reference,
    Ruler,
    StickerSpec,
)

__all__ = [
    "Marker",
    "Patch",
    "Reference",
    "Ruler",
    "StickerSpec",
    "load_sticker",
    "sticker_from_dict",
    "default_sticker_path",
    "marker_cells",
    "render_sticker",
    "ARUCO_DICTIONARIES",
    "ARUCO_DICTIONARY_SIZES",
]


def default_sticker_path() -> Path:
    """Path of the shipped DS-CAL-1 description."""
    return Path(str(resources.files("calibration") / "stickers" / "ds-cal-1.toml"))


def load_sticker(path: str | Path | None = None) -> StickerSpec:
    """Load and validate a sticker description (TOML or JSON).

    Parameters
    ----------
    path : str or Path, optional
        The description file. ``None`` loads the trial's DS-CAL-1.

    Returns
    -------
    StickerSpec

    Raises
    ------
    StickerSpecError
        The file is missing or unreadable, or a field is missing or invalid; the message
        names the file, the field and the bad value.

    Examples
    --------
    >>> spec = load_sticker()
    >>> spec.name, len(spec.markers), len(spec.patches)
    ('DS-CAL-1', 4, 24)
    """
    p = Path(path) if path is not None else default_sticker_path()
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise StickerSpecError(f"{p}: cannot read sticker description ({exc.strerror})") from exc
    except UnicodeDecodeError as exc:
        raise StickerSpecError(f"{p}: not a UTF-8 text file ({exc.reason})") from exc
    try:
        raw = json.loads(text) if p.suffix.lower() == ".json" else tomllib.loads(text)
    except (ValueError, tomllib.TOMLDecodeError) as exc:
        raise StickerSpecError(f"{p}: not valid {p.suffix.lstrip('.').upper() or 'TOML'}: {exc}"
                               ) from exc
    return sticker_from_dict(raw, source=str(p))


def marker_cells(spec: StickerSpec, marker: Marker) -> np.ndarray:
    """The marker as printed: (cells, cells) bool, True = black, rotated as described.

    ``cells`` is the dictionary's bit count plus a one-cell black border on each side.

    Examples
    --------
    >>> spec = load_sticker()
    >>> cells = marker_cells(spec, spec.markers[0])
    >>> cells.shape, bool(cells[0].all() and cells[:, 0].all())
    ((6, 6), True)
    """
    import cv2

    dictionary = cv2.aruco.getPredefinedDictionary(spec.aruco_dictionary_id)
    n = dictionary.markerSize + 2
    bits = cv2.aruco.generateImageMarker(dictionary, marker.id, n, borderBits=1) < 128
    return np.rot90(bits, -marker.quarter_turns)


def render_sticker(spec: StickerSpec, *, px_per_mm: float = 20.0) -> np.ndarray:
    """Draw the sticker as a linear-sRGB reflectance image at ``px_per_mm``.

    Pixel (i, j) covers card coordinates [j, j+1) x [i, i+1) divided by ``px_per_mm``, so
    card point (x, y) mm sits at pixel coordinate (x * px_per_mm, y * px_per_mm) with
    pixel centres at half-integers.

    Parameters
    ----------
    spec : StickerSpec
    px_per_mm : float, optional
        Resolution of the drawing.

    Returns
    -------
    ndarray of float32, shape (H, W, 3)
        Linear sRGB reflectances in [0, 1] (the card's matte white is 0.85).

    Examples
    --------
    >>> img = render_sticker(load_sticker(), px_per_mm=4)
    >>> img.shape
    (200, 280, 3)
    """
    import cv2

    if px_per_mm <= 0:
        raise ValueError(f"px_per_mm must be > 0, got {px_per_mm!r}")
    s = float(px_per_mm)
    h, w = int(round(spec.card_height_mm * s)), int(round(spec.card_width_mm * s))
    white, black = 0.85, 0.03
    img = np.full((h, w, 3), white, dtype=np.float32)
    dictionary = cv2.aruco.getPredefinedDictionary(spec.aruco_dictionary_id)
    for m in spec.markers:
        side = int(round(m.size_mm * s))
        bits = cv2.aruco.generateImageMarker(dictionary, m.id, side, borderBits=1)
        bits = np.rot90(bits, -m.quarter_turns)
        x0, y0 = int(round(m.x_mm * s)), int(round(m.y_mm * s))
        img[y0:y0 + side, x0:x0 + side] = np.where(bits[..., None] > 127, white, black)
    for p, rgb in zip(spec.patches, np.clip(spec.reference_rgb_linear, 0.0, 1.0), strict=True):
        x0, y0 = int(round(p.x_mm * s)), int(round(p.y_mm * s))
        img[y0:y0 + int(round(p.height_mm * s)), x0:x0 + int(round(p.width_mm * s))] = rgb
    if spec.ruler is not None:
        _draw_ruler(img, spec.ruler, s, black)
    return img


def _draw_ruler(img: np.ndarray, ruler: Ruler, s: float, ink: float) -> None:
    import cv2

    line_w = max(1, int(round(0.2 * s)))
    y = int(round(ruler.y_mm * s))
    cv2.line(img, (int(round(ruler.x0_mm * s)), y), (int(round(ruler.x1_mm * s)), y),
             (ink, ink, ink), line_w)
    for mm, cls in ruler.ticks():
        x = int(round((ruler.x0_mm + mm) * s))
        tip = ruler.y_mm + ruler.sign * ruler.tick_lengths_mm[cls]
        cv2.line(img, (x, y), (x, int(round(tip * s))), (ink, ink, ink), line_w)

