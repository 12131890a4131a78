"""The validated sticker description: markers, patches, ruler (built by ``sticker_parse``).

Only data and the geometry derived from it live here; reading and checking a description
file is :mod:`calibration.sticker_parse`, drawing it :mod:`calibration.sticker` and
:mod:`calibration.svg`. Every length is in card millimetres (origin at the card's top-left
corner, x to the right, y down).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np

__all__ = ["ARUCO_DICTIONARIES", "ARUCO_DICTIONARY_SIZES", "canonical_dictionary", "Marker",
           "Reference", "Patch", "Ruler", "StickerSpec", "DEFAULT_TICK_EVERY_MM",
           "DEFAULT_TICK_LENGTHS_MM"]

#: Every predefined ArUco dictionary of OpenCV (4.7+): name -> OpenCV's constant.
ARUCO_DICTIONARIES: dict[str, int] = {
    "DICT_4X4_50": 0, "DICT_4X4_100": 1, "DICT_4X4_250": 2, "DICT_4X4_1000": 3,
    "DICT_5X5_50": 4, "DICT_5X5_100": 5, "DICT_5X5_250": 6, "DICT_5X5_1000": 7,
    "DICT_6X6_50": 8, "DICT_6X6_100": 9, "DICT_6X6_250": 10, "DICT_6X6_1000": 11,
    "DICT_7X7_50": 12, "DICT_7X7_100": 13, "DICT_7X7_250": 14, "DICT_7X7_1000": 15,
    "DICT_ARUCO_ORIGINAL": 16, "DICT_APRILTAG_16h5": 17, "DICT_APRILTAG_25h9": 18,
    "DICT_APRILTAG_36h10": 19, "DICT_APRILTAG_36h11": 20, "DICT_ARUCO_MIP_36h12": 21,
}
#: Number of markers in each dictionary (valid ids are 0 .. size - 1).
ARUCO_DICTIONARY_SIZES: dict[str, int] = {
    **{n: int(n.rsplit("_", 1)[1]) for n in ARUCO_DICTIONARIES if n[5].isdigit()},
    "DICT_ARUCO_ORIGINAL": 1024, "DICT_APRILTAG_16h5": 30, "DICT_APRILTAG_25h9": 35,
    "DICT_APRILTAG_36h10": 2320, "DICT_APRILTAG_36h11": 587, "DICT_ARUCO_MIP_36h12": 250,
}
#: The ruler's default tick classes (DS-CAL-1): every 1, 5 and 10 mm, 1.5, 2.5, 3.5 mm long.
DEFAULT_TICK_EVERY_MM = (1.0, 5.0, 10.0)
DEFAULT_TICK_LENGTHS_MM = (1.5, 2.5, 3.5)


def canonical_dictionary(name: str) -> str | None:
    """OpenCV's spelling of a dictionary name (case-insensitive), or None if unknown.

    >>> canonical_dictionary("dict_apriltag_36H11")
    'DICT_APRILTAG_36h11'
    """
    for known in ARUCO_DICTIONARIES:
        if known.upper() == str(name).upper():
            return known
    return None


@dataclass(frozen=True)
class Marker:
    """One ArUco marker: id, outer top-left corner and side on the card, and its rotation.

    ``rotation_deg`` (0, 90, 180 or 270) turns the dictionary's marker image clockwise (as
    seen on the card) before it is printed: the marker's own corner ``k`` (OpenCV's order
    TL, TR, BR, BL of the unrotated image) lands on the card square's corner
    ``(k + rotation_deg / 90) % 4``; so its own top-left is at the card's top-left for 0,
    at the top-right for 90, bottom-right for 180 and bottom-left for 270.
    """

    id: int
    x_mm: float
    y_mm: float
    size_mm: float
    rotation_deg: int = 0

    @property
    def quarter_turns(self) -> int:
        """Clockwise quarter turns of the printed marker (0..3)."""
        return (int(self.rotation_deg) // 90) % 4

    def square_mm(self) -> np.ndarray:
        """The printed square's corners (4, 2) on the card: TL, TR, BR, BL."""
        x, y, s = self.x_mm, self.y_mm, self.size_mm
        return np.array([[x, y], [x + s, y], [x + s, y + s], [x, y + s]], dtype=np.float64)

    def corners_mm(self) -> np.ndarray:
        """The marker's own four corners (4, 2) in OpenCV's detection order, on the card.

        For ``rotation_deg = 0`` these are TL, TR, BR, BL of the square.

        >>> Marker(0, 0.0, 0.0, 8.0, rotation_deg=90).corners_mm()[0].tolist()
        [8.0, 0.0]
        """
        return np.roll(self.square_mm(), -self.quarter_turns, axis=0)

    @property
    def centre_mm(self) -> tuple[float, float]:
        return (self.x_mm + self.size_mm / 2, self.y_mm + self.size_mm / 2)


@dataclass(frozen=True)
class Reference:
    """A patch's reference colour as the description gave it (kept for provenance).

    ``kind`` is ``'lab_d50'``, ``'lab'`` (with ``illuminant`` and ``observer``), ``'srgb'``
    (floats in [0, 1]) or ``'srgb8'`` (integers 0..255); see :mod:`calibration.reference`.
    """

    kind: str
    values: tuple[float, float, float]
    illuminant: str = "D50"
    observer: str = "2"

    def to_dict(self) -> dict[str, Any]:
        vals: list[float] | list[int] = (
            [int(v) for v in self.values] if self.kind == "srgb8" else list(self.values))
        d: dict[str, Any] = {self.kind: vals}
        if self.kind == "lab":
            d.update(illuminant=self.illuminant, observer=self.observer)
        return d


@dataclass(frozen=True)
class Patch:
    """A rectangular colour patch: top-left corner, width, height (mm), reference L*a*b* D50.

    ``lab_d50`` is the reference the colour fit uses (CIE L*a*b*, D50, 2° observer),
    converted from what the description gave (``reference``; ``None`` when it gave
    ``lab_d50`` itself).
    """

    name: str
    x_mm: float
    y_mm: float
    width_mm: float
    height_mm: float
    lab_d50: tuple[float, float, float]
    reference: Reference | None = None

    @property
    def size_mm(self) -> float:
        """The side of a square patch (the shorter side of a rectangular one)."""
        return min(self.width_mm, self.height_mm)

    @property
    def is_square(self) -> bool:
        return self.width_mm == self.height_mm

    @property
    def centre_mm(self) -> tuple[float, float]:
        return (self.x_mm + self.width_mm / 2, self.y_mm + self.height_mm / 2)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"name": self.name, "x_mm": self.x_mm, "y_mm": self.y_mm}
        if self.is_square:
            d["size_mm"] = self.width_mm
        else:
            d.update(width_mm=self.width_mm, height_mm=self.height_mm)
        if self.reference is None:
            d["lab_d50"] = list(self.lab_d50)
        else:
            d.update(self.reference.to_dict())
        return d


@dataclass(frozen=True)
class Ruler:
    """A horizontal millimetre ruler: baseline from ``x0_mm`` to ``x1_mm`` at ``y_mm``.

    Ticks stand on the baseline, pointing ``direction`` ('up': towards smaller y, or 'down'),
    on every multiple of the finest class's spacing from ``x0_mm``. A tick at distance d
    from ``x0_mm`` has the length of the coarsest class whose spacing divides d:
    ``tick_every_mm[i]`` <-> ``tick_lengths_mm[i]`` (DS-CAL-1: every 1, 5, 10 mm, 1.5, 2.5,
    3.5 mm long). The coarsest class (the longest ticks) is the one the ruler check measures.
    """

    x0_mm: float
    x1_mm: float
    y_mm: float
    tick_every_mm: tuple[float, ...] = DEFAULT_TICK_EVERY_MM
    tick_lengths_mm: tuple[float, ...] = DEFAULT_TICK_LENGTHS_MM
    direction: str = "up"
    labels: bool = True

    @property
    def length_mm(self) -> float:
        return self.x1_mm - self.x0_mm

    @property
    def tick_mm(self) -> float:
        """Spacing of the finest ticks."""
        return self.tick_every_mm[0]

    @property
    def major_mm(self) -> float:
        """Spacing of the coarsest (longest) ticks."""
        return self.tick_every_mm[-1]

    @property
    def sign(self) -> float:
        """-1 when the ticks point up (towards smaller y), +1 when down."""
        return -1.0 if self.direction == "up" else 1.0

    def ticks(self) -> list[tuple[float, int]]:
        """(distance from ``x0_mm``, class index) of every tick along the ruler.

        >>> [c for _, c in Ruler(0.0, 10.0, 5.0).ticks()]
        [2, 0, 0, 0, 0, 1, 0, 0, 0, 0, 2]
        """
        out = []
        n = int(round(self.length_mm / self.tick_mm))
        for k in range(n + 1):
            mm = k * self.tick_mm
            cls = 0
            for i, every in enumerate(self.tick_every_mm):
                if abs(mm / every - round(mm / every)) < 1e-9:
                    cls = i
            out.append((mm, cls))
        return out

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"x0_mm": self.x0_mm, "x1_mm": self.x1_mm, "y_mm": self.y_mm,
                             "tick_mm": self.tick_mm,
                             "tick_lengths_mm": list(self.tick_lengths_mm)}
        if self.tick_every_mm != DEFAULT_TICK_EVERY_MM:
            d["tick_every_mm"] = list(self.tick_every_mm)
        if self.direction != "up":
            d["direction"] = self.direction
        if not self.labels:
            d["labels"] = False
        return d


@dataclass(frozen=True)
class StickerSpec:
    """A validated sticker description. Build it with :func:`calibration.load_sticker`."""

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
        """Reference L*a*b* (D50, 2°) of the patches, shape (n_patches, 3)."""
        return np.array([p.lab_d50 for p in self.patches], dtype=np.float64).reshape(-1, 3)

    @cached_property
    def reference_rgb_linear(self) -> np.ndarray:
        """Reference colours as linear sRGB (D65, Bradford-adapted from D50), (n, 3).

        Values may fall slightly outside [0, 1] for saturated patches (out of the sRGB gamut);
        they are kept unclipped so that colour fits see the true targets. A reference given
        as sRGB is its decoded value itself (IEC 61966-2-1's rounded matrices make the
        round trip through L*a*b* off by up to ~5e-5).
        """
        from calibration.reference import lab_d50_to_rgb_linear, srgb_decode

        if not self.patches:
            return np.zeros((0, 3))
        rgb = lab_d50_to_rgb_linear(self.reference_lab_d50)
        for i, p in enumerate(self.patches):
            if p.reference is not None and p.reference.kind in ("srgb", "srgb8"):
                scale = 255.0 if p.reference.kind == "srgb8" else 1.0
                rgb[i] = srgb_decode(np.asarray(p.reference.values) / scale)
        return rgb

    def to_dict(self) -> dict[str, Any]:
        """A plain, JSON-able form (stored as provenance with every calibration).

        :func:`calibration.sticker.sticker_from_dict` reads it back to an equal spec.
        """
        d: dict[str, Any] = {
            "name": self.name,
            "card_width_mm": self.card_width_mm,
            "card_height_mm": self.card_height_mm,
            "dictionary": self.dictionary,
            "marker_size_mm": self.markers[0].size_mm if self.markers else None,
            "markers": [{"id": m.id, "x_mm": m.x_mm, "y_mm": m.y_mm, "size_mm": m.size_mm,
                         **({"rotation_deg": m.rotation_deg} if m.rotation_deg else {})}
                        for m in self.markers],
            "patches": [p.to_dict() for p in self.patches],
        }
        if self.ruler is not None:
            d["ruler"] = self.ruler.to_dict()
        return d
