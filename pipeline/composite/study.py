"""Write composited photos as a study folder, exactly as ``donorsite synth`` lays one out.

``manifest.csv`` (what ``donorsite process`` reads), ``photos/``, ``truth/masks/`` (labels:
0 background, 1 epithelialized, 2 raw), ``truth/photos/<stem>.json`` (the sticker's
homography and the composite's settings), ``truth/photos.csv`` and ``study.json`` with its
``kind``. The study is written to a hidden sibling folder and moved into place at the end.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from pipeline.composite.canvas import Composite
from pipeline.synth.camera import write_jpeg
from pipeline.synth.scene import LABELS
from pipeline.synth.study import MANIFEST_COLUMNS, _check_target, _software, _write_csv

__all__ = ["TRUTH_COLUMNS", "write_study", "PhotoItem"]

TRUTH_COLUMNS = ("file", "subject_id", "visit_day", "photo_index", "mask_file", "source",
                 "source_kind", "donor_area_mm2", "epithelialized_area_mm2", "raw_area_mm2",
                 "healed_percent", "frame_px", "raw_px", "skin_type", "tilt_deg", "rotation_deg",
                 "px_per_mm", "jpeg_quality")

#: (subject_id, site, source name, source kind, the composite)
PhotoItem = tuple[str, str, str, str, Composite]


def _row(root: Path, subject: str, site: str, source: str, kind: str, comp: Composite
         ) -> tuple[dict[str, Any], dict[str, Any]]:
    file = f"photos/{subject}.jpg"
    mask_file = f"truth/masks/{subject}.png"
    write_jpeg(root / file, comp.image, quality=comp.meta["jpeg_quality"], orientation=1,
               software=_software())
    if not cv2.imwrite(str(root / mask_file), comp.labels, [cv2.IMWRITE_PNG_COMPRESSION, 3]):
        raise OSError(f"{root / mask_file}: could not write the mask")
    px = comp.meta["px_per_mm"]
    raw_px = int(np.count_nonzero(comp.labels == LABELS["raw"]))
    epi_px = int(np.count_nonzero(comp.labels == LABELS["epithelialized"]))
    raw, epi = raw_px / px**2, epi_px / px**2
    row = {"file": file, "subject_id": subject, "visit_day": 0, "photo_index": 1,
           "mask_file": mask_file, "source": source, "source_kind": kind,
           "donor_area_mm2": round(raw + epi, 3), "epithelialized_area_mm2": round(epi, 3),
           "raw_area_mm2": round(raw, 3),
           "healed_percent": round(100 * epi / (raw + epi), 4) if raw + epi > 0 else "",
           "frame_px": int(comp.labels.size), "raw_px": raw_px, "skin_type": "",
           "tilt_deg": round(comp.meta["tilt_deg"], 3),
           "rotation_deg": round(comp.meta["rotation_deg"], 3),
           "px_per_mm": round(px, 4), "jpeg_quality": comp.meta["jpeg_quality"]}
    record = {**row, **comp.meta, "site": site, "labels": LABELS,
              "homography_note": "sticker card mm (origin card top-left, x right, y down) -> "
                                 "image px, pixel centres at integer coordinates"}
    (root / "truth" / "photos" / f"{subject}.json").write_text(json.dumps(record, indent=1)
                                                               + "\n")
    return row, {"subject_id": subject, "visit_day": 0, "site": site, "file": file}


def write_study(out_dir: str | Path, items: Iterable[PhotoItem], *, study: dict[str, Any],
                force: bool = False) -> int:
    """Write ``items`` (made lazily, one at a time) as a study in ``out_dir``.

    Parameters
    ----------
    out_dir : str or Path
        The study folder (must not exist or be empty unless ``force``; never replaces a
        folder that is not a study).
    items : iterable of PhotoItem
    study : dict
        Written to ``study.json`` (must hold ``"kind"``), with the photo count, labels and
        generator added.
    force : bool, optional

    Returns
    -------
    int
        The number of photos written.
    """
    if "kind" not in study:
        raise ValueError("study.json needs a 'kind'")
    out = Path(out_dir)
    _check_target(out, force)
    partial = out.parent / f".{out.name}.partial"
    if partial.exists():
        shutil.rmtree(partial)
    for sub in ("photos", "truth/masks", "truth/photos"):
        (partial / sub).mkdir(parents=True)
    rows, manifest = [], []
    try:
        for subject, site, source, kind, comp in items:
            row, man = _row(partial, subject, site, source, kind, comp)
            rows.append(row)
            manifest.append(man)
        _write_csv(partial / "manifest.csv", MANIFEST_COLUMNS, manifest)
        _write_csv(partial / "truth" / "photos.csv", TRUTH_COLUMNS, rows)
        meta = {**study, "generator": _software(), "n_photos": len(rows), "labels": LABELS}
        (partial / "study.json").write_text(json.dumps(meta, indent=1, ensure_ascii=False)
                                            + "\n", encoding="utf-8")
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    if out.exists():
        shutil.rmtree(out)
    partial.rename(out)
    return len(rows)
