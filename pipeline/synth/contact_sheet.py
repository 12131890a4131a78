"""A contact sheet of a synthetic study: a grid of photos labelled with skin type, day, tilt.

Usage: ``python -m pipeline.synth.contact_sheet STUDY OUT.jpg [--n 12] [--columns 4]
[--masks]``. The photos are chosen greedily to cover as many skin types, visit days, tilts
and subjects as the study has; ``--masks`` outlines the true epithelialized (green) and raw
(magenta) regions.
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np

__all__ = ["choose_photos", "contact_sheet", "main"]

_ROMAN = {1: "I", 2: "II", 3: "III", 4: "IV", 5: "V", 6: "VI"}


def choose_photos(rows: list[dict[str, str]], n: int = 12) -> list[dict[str, str]]:
    """Pick ``n`` rows of ``truth/photos.csv`` that cover skin types, days, tilts, subjects.

    Examples
    --------
    >>> rows = [{"skin_type": str(t), "visit_day": str(d), "tilt_deg": "5", "subject_id": "S1"}
    ...         for t in (1, 2) for d in (0, 7)]
    >>> sorted((r["skin_type"], r["visit_day"]) for r in choose_photos(rows, 2))
    [('1', '0'), ('2', '7')]
    """
    def tilt(r: dict[str, str]) -> int:
        return min(int(float(r["tilt_deg"]) // 12), 2)

    chosen: list[dict[str, str]] = []
    left = list(rows)
    while left and len(chosen) < n:
        def score(r: dict[str, str]) -> float:
            # reward what is not shown yet, penalise what is shown often already
            s = 0.0
            for key, weight in (("skin_type", 2.0), ("visit_day", 1.5), ("subject_id", 1.0)):
                count = sum(c[key] == r[key] for c in chosen)
                s += weight * (count == 0) - 0.4 * weight * count
            count = sum(tilt(c) == tilt(r) for c in chosen)
            return s + 1.0 * (count == 0) - 0.2 * count
        best = max(range(len(left)), key=lambda i: (score(left[i]), -i))
        chosen.append(left.pop(best))
    return chosen


def contact_sheet(study: str | Path, out: str | Path, *, n: int = 12, columns: int = 4,
                  cell_width: int = 480, masks: bool = False, quality: int = 85) -> Path:
    """Write a JPEG grid of ``n`` photos of ``study`` to ``out`` and return its path."""
    from PIL import Image, ImageDraw, ImageFont, ImageOps

    study, out = Path(study), Path(out)
    with (study / "truth" / "photos.csv").open(newline="", encoding="utf-8") as fh:
        rows = choose_photos(list(csv.DictReader(fh)), n)
    if not rows:
        raise ValueError(f"{study}: the study has no photos")
    rows.sort(key=lambda r: (int(r["skin_type"]), int(r["visit_day"])))
    font = ImageFont.load_default(size=max(11, cell_width // 26))
    label_h = max(16, cell_width // 16)
    cells = []
    for r in rows:
        with Image.open(study / r["file"]) as im:
            photo = ImageOps.exif_transpose(im).convert("RGB")
        if masks:
            photo = _outline(photo, study / r["mask_file"])
        photo.thumbnail((cell_width, cell_width * 4))
        cell = Image.new("RGB", (photo.width, photo.height + label_h), "white")
        cell.paste(photo, (0, 0))
        text = (f"{r['subject_id']}  type {_ROMAN.get(int(r['skin_type']), r['skin_type'])}  "
                f"day {r['visit_day']}  tilt {float(r['tilt_deg']):.0f}°  "
                f"healed {float(r['healed_percent']):.0f}%")
        ImageDraw.Draw(cell).text((4, photo.height + 2), text, fill="black", font=font)
        cells.append(cell)
    cw, ch = max(c.width for c in cells), max(c.height for c in cells)
    rows_n = -(-len(cells) // columns)
    sheet = Image.new("RGB", (columns * cw + (columns + 1) * 4, rows_n * ch + (rows_n + 1) * 4),
                      (235, 235, 235))
    for i, cell in enumerate(cells):
        sheet.paste(cell, (4 + (i % columns) * (cw + 4), 4 + (i // columns) * (ch + 4)))
    out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(out, format="JPEG", quality=quality, optimize=True)
    return out


def _outline(photo, mask_path: Path):
    """Draw the true region outlines onto the photo (epithelialized green, raw magenta)."""
    import cv2
    from PIL import Image

    labels = cv2.imread(str(mask_path), cv2.IMREAD_UNCHANGED)
    rgb = np.array(photo)
    thick = max(1, rgb.shape[1] // 400)
    for value, colour in ((1, (0, 255, 0)), (2, (255, 0, 255))):
        contours, _ = cv2.findContours((labels == value).astype(np.uint8), cv2.RETR_LIST,
                                       cv2.CHAIN_APPROX_SIMPLE)
        cv2.drawContours(rgb, contours, -1, colour, thick)
    return Image.fromarray(rgb)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipeline.synth.contact_sheet",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("study", type=Path, help="a study folder made by `donorsite synth`")
    parser.add_argument("out", type=Path, help="the JPEG to write")
    parser.add_argument("--n", type=int, default=12, help="number of photos (default 12)")
    parser.add_argument("--columns", type=int, default=4, help="photos per row (default 4)")
    parser.add_argument("--cell-width", type=int, default=480, help="thumbnail width in px")
    parser.add_argument("--masks", action="store_true", help="outline the true regions")
    args = parser.parse_args(argv)
    path = contact_sheet(args.study, args.out, n=args.n, columns=args.columns,
                         cell_width=args.cell_width, masks=args.masks)
    print(f"contact sheet: {path} ({path.stat().st_size / 1e6:.2f} MB)")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
