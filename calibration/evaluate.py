"""Evaluate the calibration on a synthetic study with ground truth.

``python -m calibration.evaluate STUDY_DIR --out report.json``

Reads the study's truth files only (``truth/photos.csv``, ``truth/masks``,
``truth/photos/<stem>.json``); does not import ``pipeline``. For every photo: decode it
(EXIF orientation applied), calibrate it (timed on one thread, decode excluded), measure the
true donor-site mask (label > 0) through the calibration and compare with the true
``donor_area_mm2``; the same mask measured through the *true* homography is reported too,
so that calibration error and mask rasterization are told apart. Colour: mean CIEDE2000 over
patches before and after correction, for both methods, over *all* sampled patches (the
ones the fit left out, e.g. clipped, included); the mean over the fitted patches only is
reported beside it.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from calibration.calibrate import CalibrationOptions, calibrate, refit_colour
from calibration.debug import load_image_rgb
from calibration.errors import CalibrationError
from calibration.geometry import PlaneGeometry
from calibration.sticker import StickerSpec, load_sticker

__all__ = ["evaluate_photo", "evaluate_study", "summarize", "main"]

METHODS = ("linear", "root-polynomial")
TILT_BUCKETS = (("tilt<=15", 0.0, 15.0), ("15<tilt<=35", 15.0, 35.0), ("tilt<=35", 0.0, 35.0),
                ("all", 0.0, 180.0))


def _read_mask(path: Path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as im:
        return np.asarray(im) > 0


def evaluate_photo(study: Path, row: dict[str, str], sticker: StickerSpec) -> dict[str, Any]:
    """One photo's record (see the module docstring)."""
    rec: dict[str, Any] = {"file": row["file"], "tilt_deg_true": float(row["tilt_deg"]),
                           "donor_area_mm2_true": float(row["donor_area_mm2"]),
                           "skin_type": row.get("skin_type"),
                           "px_per_mm_true": float(row.get("px_per_mm") or "nan")}
    rgb = load_image_rgb(study / row["file"])
    t0 = time.perf_counter()
    try:
        cal = calibrate(rgb, sticker, options=CalibrationOptions(method=METHODS[0]),
                        source=row["file"])
    except CalibrationError as exc:
        rec.update(found=False, error=type(exc).__name__, message=str(exc))
        return rec
    rec["calibration_ms"] = (time.perf_counter() - t0) * 1e3
    rec.update(found=True, image_shape=list(rgb.shape[:2]), markers=list(cal.markers_found),
               tilt_deg=cal.tilt_deg, mm_per_px=cal.mm_per_px,
               reprojection_error_px=cal.reprojection_error_px,
               ruler_length_mm=cal.ruler_length_mm, qc_flags=list(cal.qc_flags))
    mask_path = study / "truth" / "masks" / (Path(row["file"]).stem + ".png")
    if row.get("mask_file"):  # relative to the study, or to truth/masks
        mask_path = next((p for p in (study / row["mask_file"],
                                      study / "truth" / "masks" / row["mask_file"])
                          if p.exists()), mask_path)
    mask = _read_mask(mask_path)
    if mask.shape != rgb.shape[:2]:
        rec["mask_shape_mismatch"] = [list(mask.shape), list(rgb.shape[:2])]
    area = cal.area_mm2(mask)
    rec["area_mm2"] = area
    rec["area_rel_error"] = area / rec["donor_area_mm2_true"] - 1.0
    truth_json = study / "truth" / "photos" / (Path(row["file"]).stem + ".json")
    if truth_json.exists():
        t = json.loads(truth_json.read_text())
        h_true = np.asarray(t["homography_plane_to_image"], dtype=np.float64)
        geo_true = PlaneGeometry(np.linalg.inv(h_true), rgb.shape[:2])
        rec["area_mm2_true_homography"] = geo_true.area_mm2(mask)
        rec["mask_rasterization_rel_error"] = (rec["area_mm2_true_homography"]
                                               / rec["donor_area_mm2_true"] - 1.0)
        rec["area_rel_error_vs_true_homography"] = area / rec["area_mm2_true_homography"] - 1.0
        # Scale at the sticker centre, measured vs true.
        c = np.array([[sticker.card_width_mm / 2, sticker.card_height_mm / 2]])
        xy = geo_true.plane_to_image(c)[0]
        rec["mm_per_px_true"] = geo_true.mm_per_px_at(*xy)
    for method in METHODS:
        cc = cal.colour if method == METHODS[0] else refit_colour(
            cal.patches, sticker, CalibrationOptions(method=method))[0]
        rec[f"delta_e_before_{method}"] = cc.mean_before_all
        rec[f"delta_e_after_{method}"] = cc.mean_after_all
        rec[f"delta_e_after_fitted_{method}"] = cc.mean_after
        rec[f"patches_fitted_{method}"] = int(cc.used.sum())
        rec[f"delta_e_max_after_{method}"] = cc.max_after
        rec[f"delta_e_loo_{method}"] = cc.mean_loo
    return rec


def _q(v: list[float], q: float) -> float | None:
    v = [x for x in v if x is not None and np.isfinite(x)]
    return float(np.percentile(v, q)) if v else None


def summarize(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Aggregate figures over the photos' records."""
    n = len(records)
    ok = [r for r in records if r.get("found")]
    out: dict[str, Any] = {"photos": n, "found": len(ok),
                           "detection_rate": len(ok) / n if n else None,
                           "failures": [{"file": r["file"], "error": r["error"],
                                         "message": r["message"]}
                                        for r in records if not r.get("found")]}
    area: dict[str, Any] = {}
    for name, lo, hi in TILT_BUCKETS:
        sel = [r for r in ok if "area_rel_error" in r and (
            (lo < r["tilt_deg_true"] <= hi) if lo > 0 else r["tilt_deg_true"] <= hi)]
        errs = [abs(r["area_rel_error"]) * 100 for r in sel]
        signed = [r["area_rel_error"] * 100 for r in sel]
        cal_only = [abs(r["area_rel_error_vs_true_homography"]) * 100 for r in sel
                    if "area_rel_error_vs_true_homography" in r]
        raster = [abs(r["mask_rasterization_rel_error"]) * 100 for r in sel
                  if "mask_rasterization_rel_error" in r]
        area[name] = {"photos": len(sel),
                      "abs_rel_error_pct_median": _q(errs, 50),
                      "abs_rel_error_pct_p95": _q(errs, 95),
                      "abs_rel_error_pct_max": _q(errs, 100),
                      "signed_rel_error_pct_median": _q(signed, 50),
                      "vs_true_homography_abs_pct_median": _q(cal_only, 50),
                      "vs_true_homography_abs_pct_p95": _q(cal_only, 95),
                      "truth_mask_vs_true_area_abs_pct_median": _q(raster, 50),
                      "truth_mask_vs_true_area_abs_pct_p95": _q(raster, 95)}
    out["area"] = area
    colour: dict[str, Any] = {}
    for method in METHODS:
        before = [r[f"delta_e_before_{method}"] for r in ok]
        after = [r[f"delta_e_after_{method}"] for r in ok]
        hard = [r[f"delta_e_after_{method}"] for r in ok
                if r[f"delta_e_before_{method}"] >= 10]
        colour[method] = {"median_mean_de00_before": _q(before, 50),
                          "median_mean_de00_after": _q(after, 50),
                          "p95_mean_de00_after": _q(after, 95),
                          "photos_before_ge_10": len(hard),
                          "median_mean_de00_after_where_before_ge_10": _q(hard, 50),
                          "median_mean_de00_after_fitted_patches": _q(
                              [r[f"delta_e_after_fitted_{method}"] for r in ok], 50),
                          "median_patches_fitted": _q(
                              [r[f"patches_fitted_{method}"] for r in ok], 50),
                          "median_mean_de00_leave_one_out": _q(
                              [r[f"delta_e_loo_{method}"] for r in ok], 50)}
    out["colour"] = colour
    ms = [r["calibration_ms"] for r in ok]
    shapes = sorted({tuple(r["image_shape"]) for r in ok})
    out["time"] = {"image_shapes": [list(s) for s in shapes], "threads": 1,
                   "decode_excluded": True, "median_ms": _q(ms, 50), "p95_ms": _q(ms, 95),
                   "max_ms": _q(ms, 100)}
    tilt_err = [abs(r["tilt_deg"] - r["tilt_deg_true"]) for r in ok]
    scale_err = [abs(r["mm_per_px"] / r["mm_per_px_true"] - 1) * 100 for r in ok
                 if "mm_per_px_true" in r]
    out["geometry"] = {"tilt_abs_error_deg_median": _q(tilt_err, 50),
                       "tilt_abs_error_deg_p95": _q(tilt_err, 95),
                       "mm_per_px_abs_rel_error_pct_median": _q(scale_err, 50),
                       "reprojection_error_px_median": _q(
                           [r["reprojection_error_px"] for r in ok], 50)}
    flags: dict[str, int] = {}
    for r in ok:
        for f in r["qc_flags"]:
            flags[f] = flags.get(f, 0) + 1
    out["qc_flag_counts"] = flags
    return out


def evaluate_study(study: str | Path, *, sticker: StickerSpec | None = None,
                   limit: int | None = None, progress: bool = False) -> dict[str, Any]:
    """Evaluate every photo of ``study``; returns ``{"summary": ..., "photos": [...]}``."""
    study = Path(study)
    truth = study / "truth" / "photos.csv"
    if not truth.exists():
        raise FileNotFoundError(f"{truth}: no truth table (is {study} a synthetic study?)")
    with truth.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    if limit is not None:
        rows = rows[:limit]
    spec = sticker if sticker is not None else load_sticker()
    before = cv2.getNumThreads()
    cv2.setNumThreads(1)
    records = []
    try:
        # Warm-up, so that the first photo's time does not include imports.
        from calibration.synthetic import render_scene

        calibrate(render_scene(spec, size=(640, 480), px_per_mm=5.0).image_rgb, spec)
        for i, row in enumerate(rows):
            records.append(evaluate_photo(study, row, spec))
            if progress:
                r = records[-1]
                msg = (f"area {r['area_rel_error'] * 100:+.2f}% tilt {r['tilt_deg_true']:.0f} "
                       f"dE {r['delta_e_before_linear']:.1f}->{r['delta_e_after_linear']:.2f} "
                       f"{r['calibration_ms']:.0f} ms {','.join(r['qc_flags'])}"
                       if r.get("found") else f"FAILED {r['error']}")
                print(f"[{i + 1}/{len(rows)}] {row['file']}: {msg}", file=sys.stderr)
    finally:
        cv2.setNumThreads(before)
    return {"study": str(study), "sticker": spec.name, "summary": summarize(records),
            "photos": records}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m calibration.evaluate",
                                 description="Evaluate the calibration on a synthetic study.")
    ap.add_argument("study", type=Path)
    ap.add_argument("--out", type=Path, required=True, help="JSON report")
    ap.add_argument("--sticker", type=Path, default=None)
    ap.add_argument("--limit", type=int, default=None, help="First N photos only")
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args(argv)
    report = evaluate_study(args.study, sticker=load_sticker(args.sticker), limit=args.limit,
                            progress=not args.quiet)
    args.out.write_text(json.dumps(report, indent=2, default=float))
    print(json.dumps(report["summary"], indent=2, default=float))
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
