"""Validate a parsed sticker description (a dict from TOML or JSON) into a StickerSpec.

The format is documented in :mod:`calibration.sticker`. Every error is a
:class:`~calibration.errors.StickerSpecError` whose message names the file, the field
(``patch_grids[0].srgb8[5]``) and the bad value. Unknown keys are errors too, so that a
misspelt field cannot be silently ignored.
"""

from __future__ import annotations

from typing import Any, NoReturn

import numpy as np

from calibration.errors import StickerSpecError
from calibration.sticker_types import (
    ARUCO_DICTIONARIES,
    ARUCO_DICTIONARY_SIZES,
    DEFAULT_TICK_EVERY_MM,
    DEFAULT_TICK_LENGTHS_MM,
    Marker,
    Patch,
    Reference,
    Ruler,
    StickerSpec,
    canonical_dictionary,
)

__all__ = ["sticker_from_dict", "MIN_DESCRIBED_MARKERS"]

#: Fewest markers a description may have (a homography needs 4 points; markers give 4 each,
#: but a photo must still calibrate when one is hidden).
MIN_DESCRIBED_MARKERS = 4
_TOP_KEYS = {"name", "card_width_mm", "card_height_mm", "dictionary", "marker_size_mm",
             "markers", "patches", "patch_grids", "ruler"}
_MARKER_KEYS = {"id", "x_mm", "y_mm", "size_mm", "rotation_deg"}
_REF_KEYS = {"lab_d50", "lab", "srgb", "srgb8"}
_PATCH_KEYS = {"name", "x_mm", "y_mm", "size_mm", "width_mm", "height_mm", "illuminant",
               "observer"} | _REF_KEYS
_GRID_KEYS = {"x_mm", "y_mm", "rows", "columns", "size_mm", "width_mm", "height_mm",
              "pitch_mm", "pitch_x_mm", "pitch_y_mm", "names", "illuminant",
              "observer"} | _REF_KEYS
_RULER_KEYS = {"x0_mm", "x1_mm", "y_mm", "tick_mm", "tick_every_mm", "tick_lengths_mm",
               "direction", "labels"}


def sticker_from_dict(raw: dict[str, Any], *, source: str = "<dict>") -> StickerSpec:
    """Validate a description already parsed into a dict (see :func:`load_sticker`).

    Examples
    --------
    >>> spec = sticker_from_dict({
    ...     "name": "T", "card_width_mm": 40, "card_height_mm": 40, "dictionary": "DICT_4X4_50",
    ...     "marker_size_mm": 6,
    ...     "markers": [{"id": i, "x_mm": x, "y_mm": y} for i, (x, y) in
    ...                 enumerate([(2, 2), (32, 2), (32, 32), (2, 32)])],
    ...     "patches": [{"x_mm": 12, "y_mm": 15, "width_mm": 16, "height_mm": 4,
    ...                  "srgb8": [243, 243, 242]}]})
    >>> spec.patches[0].width_mm, [round(v, 1) for v in spec.patches[0].lab_d50]
    (16.0, [95.8, -0.1, 0.5])
    >>> sticker_from_dict({"name": "T"}, source="t.toml")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    calibration.errors.StickerSpecError: t.toml: field 'card_width_mm': missing
    """
    v = _Validator(source)
    if not isinstance(raw, dict):
        v.fail("(top level)", f"expected a table, got {type(raw).__name__}")
    v.known_keys(raw, _TOP_KEYS, None)
    name = v.string(raw, "name")
    card_w = v.positive(raw, "card_width_mm")
    card_h = v.positive(raw, "card_height_mm")
    dictionary = _dictionary(v, raw)
    markers = _markers(v, raw, dictionary, card_w, card_h)
    patches = _patches(v, raw, card_w, card_h)
    ruler = _ruler(v, raw["ruler"], card_w, card_h) if "ruler" in raw else None
    _no_overlaps(v, markers, patches)
    return StickerSpec(name, card_w, card_h, dictionary, tuple(markers), tuple(patches), ruler,
                       source=source)


def _dictionary(v: _Validator, raw: dict[str, Any]) -> str:
    given = v.string(raw, "dictionary")
    name = canonical_dictionary(given)
    if name is None:
        v.fail("dictionary", f"unknown ArUco dictionary {given!r}; expected one of "
                             f"{list(ARUCO_DICTIONARIES)}")
    return name


def _markers(v: _Validator, raw: dict[str, Any], dictionary: str, card_w: float,
             card_h: float) -> list[Marker]:
    size_default = v.positive(raw, "marker_size_mm") if raw.get("marker_size_mm") is not None \
        else None
    n_ids = ARUCO_DICTIONARY_SIZES[dictionary]
    markers = []
    for i, m in enumerate(v.table_list(raw, "markers")):
        key = f"markers[{i}]"
        v.known_keys(m, _MARKER_KEYS, key)
        mid = v.integer(m, "id", key)
        if not 0 <= mid < n_ids:
            v.fail(f"{key}.id", f"id {mid} is outside {dictionary} (0..{n_ids - 1})")
        if "size_mm" in m:
            size = v.positive(m, "size_mm", key)
        elif size_default is None:
            v.fail(f"{key}.size_mm", "missing (and no top-level marker_size_mm)")
        else:
            size = size_default
        rot = v.integer(m, "rotation_deg", key) if "rotation_deg" in m else 0
        if rot not in (0, 90, 180, 270):
            v.fail(f"{key}.rotation_deg", f"must be 0, 90, 180 or 270 (clockwise), got {rot!r}")
        marker = Marker(mid, v.number(m, "x_mm", key), v.number(m, "y_mm", key), size, rot)
        v.inside_card(marker.x_mm, marker.y_mm, size, size, card_w, card_h, key)
        markers.append(marker)
    if len(markers) < MIN_DESCRIBED_MARKERS:
        v.fail("markers", f"{len(markers)} markers given; at least {MIN_DESCRIBED_MARKERS} "
                          f"are needed")
    ids = [m.id for m in markers]
    if len(set(ids)) != len(ids):
        dup = sorted({i for i in ids if ids.count(i) > 1})
        v.fail("markers", f"duplicate marker ids {dup}")
    return markers


def _patches(v: _Validator, raw: dict[str, Any], card_w: float, card_h: float
             ) -> list[Patch]:
    patches = []
    for i, pt in enumerate(v.table_list(raw, "patches") if "patches" in raw else []):
        key = f"patches[{i}]"
        v.known_keys(pt, _PATCH_KEYS, key)
        w, h = _rect_size(v, pt, key)
        name = v.string(pt, "name", key) if "name" in pt else f"patch {i + 1}"
        ref = _reference(v, pt, key, None)
        patch = Patch(name, v.number(pt, "x_mm", key), v.number(pt, "y_mm", key), w, h,
                      *ref)
        v.inside_card(patch.x_mm, patch.y_mm, w, h, card_w, card_h, key)
        patches.append(patch)
    for g, grid in enumerate(v.table_list(raw, "patch_grids") if "patch_grids" in raw else []):
        patches.extend(_grid(v, grid, f"patch_grids[{g}]", g, card_w, card_h))
    names = [p.name for p in patches]
    if len(set(names)) != len(names):
        v.fail("patches", f"duplicate patch names "
                          f"{sorted({n for n in names if names.count(n) > 1})}")
    return patches


def _grid(v: _Validator, grid: dict[str, Any], key: str, g: int, card_w: float,
          card_h: float) -> list[Patch]:
    v.known_keys(grid, _GRID_KEYS, key)
    rows, cols = v.integer(grid, "rows", key), v.integer(grid, "columns", key)
    for name, val in (("rows", rows), ("columns", cols)):
        if val < 1:
            v.fail(f"{key}.{name}", f"must be >= 1, got {val}")
    w, h = _rect_size(v, grid, key)
    if "pitch_mm" in grid:
        if "pitch_x_mm" in grid or "pitch_y_mm" in grid:
            v.fail(f"{key}.pitch_mm", "give pitch_mm or pitch_x_mm and pitch_y_mm, not both")
        px = py = v.positive(grid, "pitch_mm", key)
    else:
        px = v.positive(grid, "pitch_x_mm", key) if cols > 1 else w
        py = v.positive(grid, "pitch_y_mm", key) if rows > 1 else h
    if px < w or py < h:
        v.fail(f"{key}.pitch_mm", f"a pitch ({px} x {py} mm) smaller than the patch "
                                  f"({w} x {h} mm) makes patches overlap")
    x0, y0 = v.number(grid, "x_mm", key), v.number(grid, "y_mm", key)
    n = rows * cols
    names = [f"grid {g + 1} r{r + 1} c{c + 1}" for r in range(rows) for c in range(cols)]
    if "names" in grid:
        given = grid["names"]
        if not isinstance(given, list) or len(given) != n or not all(
                isinstance(s, str) and s for s in given):
            v.fail(f"{key}.names", f"expected {n} non-empty strings (rows x columns, row by "
                                   f"row), got {given!r}")
        names = list(given)
    refs = _reference(v, grid, key, n)
    out = []
    for k in range(n):
        r, c = divmod(k, cols)
        p = Patch(names[k], x0 + c * px, y0 + r * py, w, h, *refs[k])
        v.inside_card(p.x_mm, p.y_mm, w, h, card_w, card_h, f"{key} patch r{r + 1} c{c + 1}")
        out.append(p)
    return out


def _rect_size(v: _Validator, d: dict[str, Any], key: str) -> tuple[float, float]:
    if "size_mm" in d:
        if "width_mm" in d or "height_mm" in d:
            v.fail(f"{key}.size_mm", "give size_mm (a square) or width_mm and height_mm, "
                                     "not both")
        s = v.positive(d, "size_mm", key)
        return s, s
    if "width_mm" not in d and "height_mm" not in d:
        v.fail(f"{key}.size_mm", "missing (or width_mm and height_mm)")
    return v.positive(d, "width_mm", key), v.positive(d, "height_mm", key)


def _reference(v: _Validator, d: dict[str, Any], key: str, n: int | None
               ) -> Any:
    """(lab_d50, Reference | None) for one patch, or a list of n of them for a grid."""
    from calibration.reference import lab_to_lab_d50, srgb_to_lab_d50

    kinds = sorted(_REF_KEYS.intersection(d))
    if len(kinds) != 1:
        v.fail(f"{key}.lab_d50", f"give exactly one reference colour: one of "
                                 f"{sorted(_REF_KEYS)}, got {kinds or 'none'}")
    kind = kinds[0]
    if kind != "lab" and ("illuminant" in d or "observer" in d):
        v.fail(f"{key}.illuminant", f"only 'lab' values take an illuminant and observer "
                                    f"({kind} values are defined by their own standard)")
    illuminant = v.string(d, "illuminant", key) if "illuminant" in d else "D50"
    obs = d.get("observer", "2")
    observer = str(int(obs)) if isinstance(obs, float) and obs.is_integer() else str(obs)
    if kind == "lab":
        from calibration.reference import illuminant_xy

        if observer.endswith("°"):
            observer = observer[:-1]
        try:
            illuminant_xy(illuminant, observer)
        except KeyError as exc:
            v.fail(f"{key}.illuminant" if observer in ("2", "10") else f"{key}.observer",
                   f"unknown {exc.args[0]}")
    values = d[kind]
    field = f"{key}.{kind}"
    triples = [values] if n is None else values
    if n is not None and (not isinstance(values, list) or len(values) != n):
        v.fail(field, f"expected {n} colours (rows x columns, row by row), got "
                      f"{len(values) if isinstance(values, list) else values!r}")
    out = []
    for j, t in enumerate(triples):
        f = field if n is None else f"{field}[{j}]"
        trip = v.triple(t, f, integers=kind == "srgb8")
        if kind in ("lab_d50", "lab") and not 0.0 <= trip[0] <= 100.0:
            v.fail(f, f"L* must be within 0..100, got {trip[0]!r}")
        if kind == "srgb" and not all(0.0 <= x <= 1.0 for x in trip):
            v.fail(f, f"sRGB floats must be within 0..1 (use srgb8 for 0..255), got {t!r}")
        if kind == "srgb8" and not all(0 <= x <= 255 for x in trip):
            v.fail(f, f"8-bit sRGB values must be within 0..255, got {t!r}")
        if kind == "lab_d50":
            out.append((trip, None))
            continue
        if kind == "lab":
            lab = lab_to_lab_d50(np.array(trip), illuminant, observer)
        else:
            lab = srgb_to_lab_d50(np.array(trip) / (255.0 if kind == "srgb8" else 1.0))
        ref = Reference(kind, trip, illuminant if kind == "lab" else "D65",
                        observer if kind == "lab" else "2")
        out.append((tuple(float(x) for x in lab), ref))
    return out[0] if n is None else out


def _ruler(v: _Validator, r: Any, card_w: float, card_h: float) -> Ruler:
    if not isinstance(r, dict):
        v.fail("ruler", f"expected a table, got {r!r}")
    v.known_keys(r, _RULER_KEYS, "ruler")
    x0, x1, y = (v.number(r, k, "ruler") for k in ("x0_mm", "x1_mm", "y_mm"))
    if x1 <= x0:
        v.fail("ruler.x1_mm", f"must exceed x0_mm ({x0}), got {x1}")
    if "tick_every_mm" in r:
        every = v.positive_list(r, "tick_every_mm", "ruler")
        if "tick_mm" in r and v.positive(r, "tick_mm", "ruler") != every[0]:
            v.fail("ruler.tick_mm", f"{r['tick_mm']!r} differs from tick_every_mm[0] "
                                    f"({every[0]})")
    elif "tick_mm" in r:
        tick = v.positive(r, "tick_mm", "ruler")
        every = (tick,) + DEFAULT_TICK_EVERY_MM[1:]
    else:
        every = DEFAULT_TICK_EVERY_MM
    if "tick_lengths_mm" in r:
        lengths = v.positive_list(r, "tick_lengths_mm", "ruler")
    elif len(every) == len(DEFAULT_TICK_LENGTHS_MM):
        lengths = DEFAULT_TICK_LENGTHS_MM
    else:
        v.fail("ruler.tick_lengths_mm", f"missing: one length per tick class {list(every)}")
    if len(lengths) != len(every):
        v.fail("ruler.tick_lengths_mm", f"{list(lengths)} has {len(lengths)} lengths for "
                                        f"{len(every)} tick classes {list(every)}")
    if any(b <= a for a, b in zip(every, every[1:], strict=False)):
        v.fail("ruler.tick_every_mm", f"must increase, got {list(every)}")
    if any(abs(e / every[0] - round(e / every[0])) > 1e-9 for e in every):
        v.fail("ruler.tick_every_mm", f"every class must be a multiple of the finest "
                                      f"({every[0]} mm), got {list(every)}")
    if any(b <= a for a, b in zip(lengths, lengths[1:], strict=False)):
        v.fail("ruler.tick_lengths_mm", f"must increase with the tick class (the longest "
                                        f"ticks are measured), got {list(lengths)}")
    if x1 - x0 < every[-1] - 1e-9:
        v.fail("ruler.x1_mm", f"the ruler ({x1 - x0} mm) is shorter than its coarsest tick "
                              f"spacing ({every[-1]} mm)")
    direction = r.get("direction", "up")
    if direction not in ("up", "down"):
        v.fail("ruler.direction", f"expected 'up' or 'down', got {direction!r}")
    labels = r.get("labels", True)
    if not isinstance(labels, bool):
        v.fail("ruler.labels", f"expected true or false, got {labels!r}")
    ruler = Ruler(x0, x1, y, tuple(every), tuple(lengths), direction, labels)
    v.inside_card(x0, y, x1 - x0, 0.0, card_w, card_h, "ruler")
    tip = y + ruler.sign * lengths[-1]
    if not 0.0 <= tip <= card_h + 1e-9:
        v.fail("ruler.tick_lengths_mm", f"the longest ticks ({lengths[-1]} mm, pointing "
                                        f"{direction} from y = {y}) leave the card")
    return ruler


def _no_overlaps(v: _Validator, markers: list[Marker], patches: list[Patch]) -> None:
    items = [(f"marker {m.id}", m.x_mm, m.y_mm, m.size_mm, m.size_mm) for m in markers]
    items += [(f"patch {p.name!r}", p.x_mm, p.y_mm, p.width_mm, p.height_mm) for p in patches]
    boxes = np.array([it[1:] for it in items], dtype=np.float64).reshape(-1, 4)
    x0, y0 = boxes[:, 0], boxes[:, 1]
    x1, y1 = x0 + boxes[:, 2], y0 + boxes[:, 3]
    ox = np.minimum(x1[:, None], x1[None]) - np.maximum(x0[:, None], x0[None])
    oy = np.minimum(y1[:, None], y1[None]) - np.maximum(y0[:, None], y0[None])
    hit = np.triu((ox > 1e-9) & (oy > 1e-9), 1)
    if hit.any():
        i, j = np.argwhere(hit)[0]
        v.fail("markers" if j < len(markers) else "patches",
               f"{items[i][0]} and {items[j][0]} overlap")


class _Validator:
    """Field checks whose errors name the source file, the field and the bad value."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, field_name: str, problem: str) -> NoReturn:
        raise StickerSpecError(f"{self.source}: field '{field_name}': {problem}")

    def known_keys(self, d: dict[str, Any], allowed: set[str], parent: str | None) -> None:
        unknown = sorted(set(d) - allowed)
        if unknown:
            name = f"{parent}.{unknown[0]}" if parent else unknown[0]
            self.fail(name, f"unknown field (allowed: {sorted(allowed)})")

    def _get(self, d: dict[str, Any], key: str, parent: str | None) -> tuple[Any, str]:
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

    def positive_list(self, d: dict[str, Any], key: str, parent: str) -> tuple[float, ...]:
        val, name = self._get(d, key, parent)
        if (not isinstance(val, list) or not val or not all(
                isinstance(x, int | float) and not isinstance(x, bool) and np.isfinite(x)
                and x > 0 for x in val)):
            self.fail(name, f"expected a list of numbers > 0, got {val!r}")
        return tuple(float(x) for x in val)

    def triple(self, val: Any, name: str, *, integers: bool = False
               ) -> tuple[float, float, float]:
        kind = int if integers else int | float
        if (not isinstance(val, list | tuple) or len(val) != 3 or not all(
                isinstance(x, kind) and not isinstance(x, bool) and np.isfinite(x)
                for x in val)):
            what = "three integers" if integers else "three numbers"
            self.fail(name, f"expected {what}, got {val!r}")
        return (float(val[0]), float(val[1]), float(val[2]))

    def table_list(self, d: dict[str, Any], key: str) -> list[dict[str, Any]]:
        val, name = self._get(d, key, None)
        if not isinstance(val, list) or not all(isinstance(x, dict) for x in val):
            self.fail(name, f"expected a list of tables, got {val!r}")
        return val

    def inside_card(self, x: float, y: float, w: float, h: float, card_w: float, card_h: float,
                    name: str) -> None:
        if x < 0 or y < 0 or x + w > card_w + 1e-9 or y + h > card_h + 1e-9:
            self.fail(name, f"extends outside the {card_w} x {card_h} mm card "
                            f"(x={x}, y={y}, w={w}, h={h})")
