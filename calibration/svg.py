"""Printable sticker: draw a sticker description at true size as SVG (mm units) or PDF.

The drawing is a list of primitives (rectangles, lines, texts, in card millimetres) made once
from the description, then written as SVG (by hand: it is a few lines of XML) or as PDF with
matplotlib's vector backend. Markers are drawn cell by cell from OpenCV's dictionary bits,
turned by their described rotation; patches are rectangles filled with the sRGB of their
reference L*a*b* (D50 -> D65 Bradford, clipped to the sRGB gamut; a reference given as sRGB
comes back as itself); the ruler's ticks have their class's length. Print at 100 % scale
("actual size"), then check the ruler.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape

import numpy as np

from calibration.errors import CalibrationError
from calibration.sticker import Ruler, StickerSpec, marker_cells

__all__ = ["sticker_svg", "write_sticker", "sticker_primitives", "StickerOutputError"]

_MM_PER_PT = 25.4 / 72.0


class StickerOutputError(CalibrationError, ValueError):
    """The printable sticker cannot be written (unknown suffix, unwritable path)."""


@dataclass(frozen=True)
class _Rect:
    x: float
    y: float
    w: float
    h: float
    fill: str
    group: str
    id: str = ""


@dataclass(frozen=True)
class _Line:
    x0: float
    y0: float
    x1: float
    y1: float
    width: float


@dataclass(frozen=True)
class _Text:
    x: float
    y: float
    text: str
    size: float
    anchor: str  # 'start' | 'middle'


def _hex(rgb_srgb: np.ndarray) -> str:
    v = np.clip(np.round(np.asarray(rgb_srgb) * 255), 0, 255).astype(int)
    return "#{:02x}{:02x}{:02x}".format(*v)


def sticker_primitives(spec: StickerSpec) -> list[_Rect | _Line | _Text]:
    """The sticker as drawing primitives in card mm (markers, patches, ruler).

    Markers are drawn as described, turned by their ``rotation_deg``; patches as their
    rectangles; the ruler's ticks at their class's length, on the described side.
    """
    from calibration.colour import linear_to_srgb

    prims: list[_Rect | _Line | _Text] = []
    for m in spec.markers:
        black = marker_cells(spec, m)
        cells = black.shape[0]
        c = m.size_mm / cells
        for r in range(cells):
            row = black[r]
            k = 0
            while k < cells:  # merge horizontal runs of black cells
                if row[k]:
                    e = k
                    while e + 1 < cells and row[e + 1]:
                        e += 1
                    prims.append(_Rect(m.x_mm + k * c, m.y_mm + r * c, (e - k + 1) * c, c,
                                       "#000000", f"marker-{m.id}"))
                    k = e + 1
                else:
                    k += 1
    srgb = linear_to_srgb(np.clip(spec.reference_rgb_linear, 0.0, 1.0))
    for i, (p, rgb) in enumerate(zip(spec.patches, srgb, strict=True)):
        prims.append(_Rect(p.x_mm, p.y_mm, p.width_mm, p.height_mm, _hex(rgb), "patches",
                           f"patch-{i + 1}"))
    if spec.ruler is not None:
        prims.extend(_ruler_primitives(spec.ruler, spec.card_height_mm))
    return prims


def _ruler_primitives(r: Ruler, card_h: float) -> list[_Line | _Text]:
    lw = 0.2
    out: list[_Line | _Text] = [_Line(r.x0_mm, r.y_mm, r.x1_mm, r.y_mm, lw)]
    in_cm = abs(r.major_mm / 10 - round(r.major_mm / 10)) < 1e-9
    size = 2.2
    # Labels on the other side of the baseline from the ticks.
    if r.direction == "up":
        text_y, fits = r.y_mm + 0.6 + 0.8 * size, r.y_mm + 0.6 + size <= card_h
    else:
        text_y, fits = r.y_mm - 0.6 - 0.2 * size, r.y_mm - 0.6 - size >= 0.0
    major = len(r.tick_every_mm) - 1
    for k, (mm, cls) in enumerate(r.ticks()):
        x = r.x0_mm + mm
        out.append(_Line(x, r.y_mm, x, r.y_mm + r.sign * r.tick_lengths_mm[cls], lw))
        if cls == major and r.labels and fits:
            out.append(_Text(x, text_y, f"{mm / 10 if in_cm else mm:g}", size, "middle"))
            if k == 0:
                out.append(_Text(x + 1.0, text_y, "cm" if in_cm else "mm", 0.7 * size,
                                 "start"))
    return out


def sticker_svg(spec: StickerSpec) -> str:
    """The sticker as an SVG document at true size (``width="70mm"`` etc.).

    Examples
    --------
    >>> from calibration.sticker import load_sticker
    >>> svg = sticker_svg(load_sticker())
    >>> 'width="70mm"' in svg and 'viewBox="0 0 70 50"' in svg
    True
    """
    w, h = spec.card_width_mm, spec.card_height_mm
    out = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        f'<svg xmlns="http://www.w3.org/2000/svg" version="1.1" width="{w:g}mm" '
        f'height="{h:g}mm" viewBox="0 0 {w:g} {h:g}">',
        f"<title>{escape(spec.name)} calibration sticker (print at 100 %)</title>",
        f'<rect id="card" x="0" y="0" width="{w:g}" height="{h:g}" fill="#ffffff" '
        f'stroke="#c8c8c8" stroke-width="0.1"/>',
    ]
    prims = sticker_primitives(spec)
    groups: dict[str, list[str]] = {}
    for p in prims:
        if isinstance(p, _Rect):
            rid = f' id="{p.id}"' if p.id else ""
            groups.setdefault(p.group, []).append(
                f'<rect{rid} x="{p.x:.4f}" y="{p.y:.4f}" width="{p.w:.4f}" height="{p.h:.4f}" '
                f'fill="{p.fill}"/>')
        elif isinstance(p, _Line):
            groups.setdefault("ruler", []).append(
                f'<line x1="{p.x0:.4f}" y1="{p.y0:.4f}" x2="{p.x1:.4f}" y2="{p.y1:.4f}"/>')
        else:
            groups.setdefault("ruler-labels", []).append(
                f'<text x="{p.x:.4f}" y="{p.y:.4f}" font-size="{p.size:g}" '
                f'text-anchor="{p.anchor}">{escape(p.text)}</text>')
    for name, items in groups.items():
        if name.startswith("marker-"):
            attrs = ' shape-rendering="crispEdges"'
        elif name == "ruler":
            attrs = ' stroke="#000000" stroke-width="0.2" stroke-linecap="butt"'
        elif name == "ruler-labels":
            attrs = ' font-family="Helvetica, Arial, sans-serif" fill="#000000"'
        else:
            attrs = ""
        out.append(f'<g id="{name}"{attrs}>')
        out.extend(items)
        out.append("</g>")
    out.append("</svg>")
    return "\n".join(out) + "\n"


def _write_pdf(spec: StickerSpec, path: Path) -> None:
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle

    w, h = spec.card_width_mm, spec.card_height_mm
    fig = Figure(figsize=(w / 25.4, h / 25.4))
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, w)
    ax.set_ylim(h, 0)
    ax.set_axis_off()
    ax.add_patch(Rectangle((0, 0), w, h, facecolor="white", edgecolor="#c8c8c8",
                           linewidth=0.1 / _MM_PER_PT))
    for p in sticker_primitives(spec):
        if isinstance(p, _Rect):
            ax.add_patch(Rectangle((p.x, p.y), p.w, p.h, facecolor=p.fill, edgecolor="none",
                                   linewidth=0, antialiased=False))
        elif isinstance(p, _Line):
            ax.plot([p.x0, p.x1], [p.y0, p.y1], color="black", linewidth=p.width / _MM_PER_PT,
                    solid_capstyle="butt")
        else:
            ax.text(p.x, p.y, p.text, fontsize=p.size / _MM_PER_PT, ha="center"
                    if p.anchor == "middle" else "left", va="baseline",
                    family="sans-serif")
    fig.savefig(path, format="pdf")


def write_sticker(spec: StickerSpec, path: str | Path) -> Path:
    """Write the printable sticker to ``path`` (``.svg`` or ``.pdf``) at true size.

    Raises
    ------
    StickerOutputError
        Unknown suffix or unwritable path.

    Examples
    --------
    >>> import tempfile
    >>> from calibration.sticker import load_sticker
    >>> p = write_sticker(load_sticker(), Path(tempfile.mkdtemp()) / "ds-cal-1.svg")
    >>> p.read_text().startswith("<?xml")
    True
    """
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix not in (".svg", ".pdf"):
        raise StickerOutputError(f"{p}: unknown output type {p.suffix!r}; expected .svg or .pdf")
    try:
        if suffix == ".svg":
            p.write_text(sticker_svg(spec), encoding="utf-8")
        else:
            _write_pdf(spec, p)
    except OSError as exc:
        raise StickerOutputError(f"{p}: cannot write the sticker ({exc.strerror})") from exc
    return p
