"""Sticker descriptions: load, validate and render a fiducial calibration sticker.

A sticker is described in a TOML (or JSON) file: its card size, its ArUco dictionary and
markers (id and top-left corner in mm), its colour patches (position, size, reference
CIE L*a*b* under D50) and an optional ruler. The trial's DS-CAL-1 ships as the default
(``calibration/stickers/ds-cal-1.toml``); another sticker of the same kind is described by
another file, with no code changes.

The same description is read by the synthetic study generator (to draw the sticker into
scenes) and by the calibration (to find and measure it), so the two cannot drift apart.
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass, field
from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from calibration.errors import StickerSpecError

__all__ = [
    "Marker",
    "Patch",
    "Ruler",
    "StickerSpec",
    "load_sticker",
    "default_sticker_path",
    "render_sticker",
    "ARUCO_DICTIONARIES",
]

#: ArUco dictionaries a description may name (OpenCV's predefined ones).
ARUCO_DICTIONARIES: dict[str, int] = {
    "DICT_4X4_50": 0, "DICT_4X4_100": 1, "DICT_4X4_250": 2, "DICT_4X4_1000": 3,
    "DICT_5X5_50": 4, "DICT_5X5_100": 5, "DICT_5X5_250": 6, "DICT_5X5_1000": 7,
    "DICT_6X6_50": 8, "DICT_6X6_100": 9, "DICT_6X6_250": 10, "DICT_6X6_1000": 11,
    "DICT_7X7_50": 12, "DICT_7X7_100": 13, "DICT_7X7_250": 14, "DICT_7X7_1000": 15,
    "DICT_ARUCO_ORIGINAL": 16,
}
_DICT_SIZES = {name: int(name.rsplit("_", 1)[1]) for name in ARUCO_DICTIONARIES
               if name[-1].isdigit()}
_DICT_SIZES["DICT_ARUCO_ORIGINAL"] = 1024


@dataclass(frozen=True)
class Marker:
    """One ArUco marker: its id and its outer top-left corner on the card, in mm."""

    id: int
    x_mm: float
    y_mm: float
    size_mm: float

    def corners_mm(self) -> np.ndarray:
        """The four outer corners (4, 2) in OpenCV's order: TL, TR, BR, BL."""
        x, y, s = self.x_mm, self.y_mm, self.size_mm
        return np.array([[x, y], [x + s, y], [x + s, y + s], [x, y + s]], dtype=np.float64)


@dataclass(frozen=True)
class Patch:
    """A colour patch: top-left corner and side in mm, reference L*a*b* (D50, 2°)."""

    name: str
    x_mm: float
    y_mm: float
    size_mm: float
    lab_d50: tuple[float, float, float]

    @property
    def centre_mm(self) -> tuple[float, float]:
        return (self.x_mm + self.size_mm / 2, self.y_mm + self.size_mm / 2)


@dataclass(frozen=True)
class Ruler:
    """A millimetre ruler: baseline from ``x0_mm`` to ``x1_mm`` at ``y_mm``, ticks upward."""

    x0_mm: float
    x1_mm: float
    y_mm: float
    tick_mm: float = 1.0
    tick_lengths_mm: tuple[float, float, float] = (1.5, 2.5, 3.5)  # 1 mm, 5 mm, 10 mm

    @property
    def length_mm(self) -> float:
        return self.x1_mm - self.x0_mm


@dataclass(frozen=True)
class StickerSpec:
    """A validated sticker description. Build it with :func:`load_sticker`."""

    name: str
    card_width_mm: float
    card_height_mm: float
    dictionary: str
    markers: tuple[Marker, ...]
    patches: tuple[Patch, ...]
    ruler: Ruler | None = None
    source: str = field(default="", compare=False)

    @property
    def marker_ids(self) -> tuple[int, ...]:
        return tuple(m.id for m in self.markers)

    @property
    def aruco_dictionary_id(self) -> int:
        """OpenCV's predefined-dictionary constant for :attr:`dictionary`."""
        return ARUCO_DICTIONARIES[self.dictionary]

    def marker(self, marker_id: int) -> Marker:
        for m in self.markers:
            if m.id == marker_id:
                return m
        raise KeyError(marker_id)

    @cached_property
    def reference_lab_d50(self) -> np.ndarray:
        """Reference L*a*b* (D50) of the patches, shape (n_patches, 3)."""
        return np.array([p.lab_d50 for p in self.patches], dtype=np.float64)

    @cached_property
    def reference_rgb_linear(self) -> np.ndarray:
        """Reference colours as linear sRGB (D65, Bradford-adapted from D50), (n, 3).

        Values may fall slightly outside [0, 1] for saturated patches (out of the sRGB gamut);
        they are kept unclipped so that colour fits see the true targets.
        """
        import colour  # heavy import kept local

        d50 = colour.CCS_ILLUMINANTS["CIE 1931 2 Degree Standard Observer"]["D50"]
        xyz = colour.Lab_to_XYZ(self.reference_lab_d50, d50)
        return np.asarray(
            colour.XYZ_to_RGB(
                xyz,
                colour.RGB_COLOURSPACES["sRGB"],
                illuminant=d50,
                chromatic_adaptation_transform="Bradford",
                apply_cctf_encoding=False,
            ),
            dtype=np.float64,
        )

    def to_dict(self) -> dict[str, Any]:
        """A plain, JSON-able form (stored as provenance with every calibration)."""
        d: dict[str, Any] = {
            "name": self.name,
            "card_width_mm": self.card_width_mm,
            "card_height_mm": self.card_height_mm,
            "dictionary": self.dictionary,
            "marker_size_mm": self.markers[0].size_mm if self.markers else None,
            "markers": [{"id": m.id, "x_mm": m.x_mm, "y_mm": m.y_mm, "size_mm": m.size_mm}
                        for m in self.markers],
            "patches": [{"name": p.name, "x_mm": p.x_mm, "y_mm": p.y_mm, "size_mm": p.size_mm,
                         "lab_d50": list(p.lab_d50)} for p in self.patches],
        }
        if self.ruler is not None:
            d["ruler"] = {"x0_mm": self.ruler.x0_mm, "x1_mm": self.ruler.x1_mm,
                          "y_mm": self.ruler.y_mm, "tick_mm": self.ruler.tick_mm,
                          "tick_lengths_mm": list(self.ruler.tick_lengths_mm)}
        return d


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
        names the file and the field.

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
    try:
        raw = json.loads(text) if p.suffix.lower() == ".json" else tomllib.loads(text)
    except (ValueError, tomllib.TOMLDecodeError) as exc:
        raise StickerSpecError(f"{p}: not valid {p.suffix.lstrip('.').upper() or 'TOML'}: {exc}"
                               ) from exc
    return sticker_from_dict(raw, source=str(p))


def sticker_from_dict(raw: dict[str, Any], *, source: str = "<dict>") -> StickerSpec:
    """Validate a description already parsed into a dict (see :func:`load_sticker`)."""
    v = _Validator(source)
    name = v.string(raw, "name")
    card_w = v.positive(raw, "card_width_mm")
    card_h = v.positive(raw, "card_height_mm")
    dictionary = v.string(raw, "dictionary")
    if dictionary not in ARUCO_DICTIONARIES:
        v.fail("dictionary", f"unknown ArUco dictionary {dictionary!r}; expected one of "
                             f"{sorted(ARUCO_DICTIONARIES)}")
    default_size = raw.get("marker_size_mm")
    markers = []
    for i, m in enumerate(v.table_list(raw, "markers")):
        key = f"markers[{i}]"
        mid = v.integer(m, "id", key)
        if not 0 <= mid < _DICT_SIZES[dictionary]:
            v.fail(f"{key}.id",
                   f"id {mid} is outside {dictionary} (0..{_DICT_SIZES[dictionary] - 1})")
        size = v.positive(m, "size_mm", key) if "size_mm" in m else None
        if size is None:
            if default_size is None:
                v.fail(f"{key}.size_mm", "missing (and no top-level marker_size_mm)")
            size = v.positive(raw, "marker_size_mm")
        marker = Marker(mid, v.number(m, "x_mm", key), v.number(m, "y_mm", key), size)
        v.inside_card(marker.x_mm, marker.y_mm, size, size, card_w, card_h, key)
        markers.append(marker)
    if len(markers) < 4:
        v.fail("markers", f"{len(markers)} markers given; a homography needs at least 4")
    ids = [m.id for m in markers]
    if len(set(ids)) != len(ids):
        v.fail("markers", f"duplicate marker ids {sorted(ids)}")
    patches = []
    for i, pt in enumerate(v.table_list(raw, "patches")):
        key = f"patches[{i}]"
        lab = pt.get("lab_d50")
        if (not isinstance(lab, list | tuple) or len(lab) != 3
                or not all(isinstance(x, int | float) and not isinstance(x, bool) for x in lab)):
            v.fail(f"{key}.lab_d50", f"expected three numbers [L, a, b], got {lab!r}")
        if not 0.0 <= float(lab[0]) <= 100.0:
            v.fail(f"{key}.lab_d50", f"L* must be within 0..100, got {lab[0]!r}")
        patch = Patch(str(pt.get("name", f"patch {i + 1}")), v.number(pt, "x_mm", key),
                      v.number(pt, "y_mm", key), v.positive(pt, "size_mm", key),
                      (float(lab[0]), float(lab[1]), float(lab[2])))
        v.inside_card(patch.x_mm, patch.y_mm, patch.size_mm, patch.size_mm, card_w, card_h, key)
        patches.append(patch)
    if len(patches) < 4:
        v.fail("patches", f"{len(patches)} patches given; a colour fit needs at least 4")
    ruler = None
    if "ruler" in raw:
        r = raw["ruler"]
        if not isinstance(r, dict):
            v.fail("ruler", "expected a table")
        ruler = Ruler(v.number(r, "x0_mm", "ruler"), v.number(r, "x1_mm", "ruler"),
                      v.number(r, "y_mm", "ruler"),
                      v.positive(r, "tick_mm", "ruler") if "tick_mm" in r else 1.0)
        if ruler.x1_mm <= ruler.x0_mm:
            v.fail("ruler.x1_mm", f"must exceed x0_mm ({ruler.x0_mm}), got {ruler.x1_mm}")
        v.inside_card(ruler.x0_mm, ruler.y_mm, ruler.length_mm, 0.0, card_w, card_h, "ruler")
    return StickerSpec(name, card_w, card_h, dictionary, tuple(markers), tuple(patches), ruler,
                       source=source)


class _Validator:
    """Field checks whose errors name the source file and the field."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, field_name: str, problem: str) -> None:
        raise StickerSpecError(f"{self.source}: field '{field_name}': {problem}")

    def _get(self, d: dict[str, Any], key: str, parent: str | None) -> Any:
        name = f"{parent}.{key}" if parent else key
        if not isinstance(d, dict) or key not in d:
            self.fail(name, "missing")
        return d[key], name

    def string(self, d: dict[str, Any], key: str, parent: str | None = None) -> str:
        val, name = self._get(d, key, parent)
        if not isinstance(val, str) or not val:
            self.fail(name, f"expected a non-empty string, got {val!r}")
        return val

    def number(self, d: dict[str, Any], key: str, parent: str | None = None) -> float:
        val, name = self._get(d, key, parent)
        if isinstance(val, bool) or not isinstance(val, int | float) or not np.isfinite(val):
            self.fail(name, f"expected a number, got {val!r}")
        return float(val)

    def positive(self, d: dict[str, Any], key: str, parent: str | None = None) -> float:
        val = self.number(d, key, parent)
        if val <= 0:
            self.fail(f"{parent}.{key}" if parent else key, f"must be > 0, got {val!r}")
        return val

    def integer(self, d: dict[str, Any], key: str, parent: str | None = None) -> int:
        val, name = self._get(d, key, parent)
        if isinstance(val, bool) or not isinstance(val, int):
            self.fail(name, f"expected an integer, got {val!r}")
        return int(val)

    def table_list(self, d: dict[str, Any], key: str) -> list[dict[str, Any]]:
        val, name = self._get(d, key, None)
        if not isinstance(val, list) or not all(isinstance(x, dict) for x in val):
            self.fail(name, "expected a list of tables")
        return val

    def inside_card(self, x: float, y: float, w: float, h: float, card_w: float, card_h: float,
                    name: str) -> None:
        if x < 0 or y < 0 or x + w > card_w + 1e-9 or y + h > card_h + 1e-9:
            self.fail(name, f"extends outside the {card_w} x {card_h} mm card "
                            f"(x={x}, y={y}, w={w}, h={h})")


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
        x0, y0 = int(round(m.x_mm * s)), int(round(m.y_mm * s))
        img[y0:y0 + side, x0:x0 + side] = np.where(bits[..., None] > 127, white, black)
    for p, rgb in zip(spec.patches, np.clip(spec.reference_rgb_linear, 0.0, 1.0), strict=True):
        x0, y0 = int(round(p.x_mm * s)), int(round(p.y_mm * s))
        side = int(round(p.size_mm * s))
        img[y0:y0 + side, x0:x0 + side] = rgb
    if spec.ruler is not None:
        _draw_ruler(img, spec.ruler, s, black)
    return img


def _draw_ruler(img: np.ndarray, ruler: Ruler, s: float, ink: float) -> None:
    import cv2

    line_w = max(1, int(round(0.2 * s)))
    y = int(round(ruler.y_mm * s))
    cv2.line(img, (int(round(ruler.x0_mm * s)), y), (int(round(ruler.x1_mm * s)), y),
             (ink, ink, ink), line_w)
    n = int(round(ruler.length_mm / ruler.tick_mm))
    for k in range(n + 1):
        x = int(round((ruler.x0_mm + k * ruler.tick_mm) * s))
        mm = k * ruler.tick_mm
        length = ruler.tick_lengths_mm[2 if mm % 10 == 0 else 1 if mm % 5 == 0 else 0]
        cv2.line(img, (x, y), (x, int(round((ruler.y_mm - length) * s))), (ink, ink, ink), line_w)
