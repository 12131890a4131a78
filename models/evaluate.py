"""Accuracy on a synthetic study, at full photo resolution: ``python -m models.evaluate``.

For every photo: decode (EXIF orientation applied), calibrate, build the working image
(:func:`models.preprocess.working_image`), segment with the U-Net at full photo resolution
(``output_shape``) and with the Lab-threshold baseline, and compare with the truth mask:

* Dice of the donor site (label > 0), epithelialized (1) and raw (2) — per photo, and pooled
  over all photos (sum of overlaps / sum of sizes);
* healed % = epithelialized / (epithelialized + raw) areas measured in the skin plane through
  the calibration's per-pixel area, against the generator's true healed %: absolute error,
  median and 95th percentile;
* the same per Fitzpatrick group (I–II, III–IV, V–VI);
* per photo, the network's own certainty and novelty and the flags they raise
  (:mod:`models.assess`, thresholds from the model card), and the figures again on the photos
  it does not flag (``unet_used``: the photos the endpoints use).
"""

from __future__ import annotations

import argparse
import csv
import json
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from models.errors import DatasetError
from models.prepare import decode_photo, is_synth_study
from models.preprocess import working_image
from models.tiling import upsample_argmax

__all__ = ["PhotoScore", "score_labels", "evaluate_study", "summarise", "fitzpatrick_group",
           "metrics_markdown", "main"]

#: ``unet_used``: the U-Net on the photos it does not flag (low_confidence,
#: out_of_distribution), i.e. the photos the endpoints use.
METHODS = ("unet", "unet_used", "baseline_lab")
_ROMAN = {"I": 1, "II": 2, "III": 3, "IV": 4, "V": 5, "VI": 6}


def fitzpatrick_group(skin_type: Any) -> str:
    """``'I-II'``, ``'III-IV'`` or ``'V-VI'`` for a skin type given as 1..6 or I..VI.

    Examples
    --------
    >>> fitzpatrick_group("IV"), fitzpatrick_group(6), fitzpatrick_group("2")
    ('III-IV', 'V-VI', 'I-II')
    """
    s = str(skin_type).strip().upper()
    n = _ROMAN.get(s) or (int(float(s)) if s.replace(".", "", 1).isdigit() else 0)
    if not 1 <= n <= 6:
        return "unknown"
    return ("I-II", "III-IV", "V-VI")[(n - 1) // 2]


@dataclass(frozen=True)
class PhotoScore:
    """One photo, one method: Dice per region, overlap counts, healed %."""

    file: str
    method: str
    group: str
    dice_donor: float
    dice_epithelialized: float
    dice_raw: float
    counts: tuple[int, ...]       # (inter, sum) for donor, epi, raw
    healed_true: float
    healed_pred: float
    day: float = float("nan")

    @property
    def healed_abs_error(self) -> float:
        return abs(self.healed_pred - self.healed_true)


def _dice(t: np.ndarray, p: np.ndarray) -> tuple[float, int, int]:
    inter = int(np.count_nonzero(t & p))
    total = int(np.count_nonzero(t)) + int(np.count_nonzero(p))
    return (2 * inter / total if total else float("nan")), inter, total


def score_labels(truth: np.ndarray, pred: np.ndarray, *, pixel_area: np.ndarray | None,
                 healed_true: float, file: str = "", method: str = "", group: str = "",
                 day: float = float("nan")) -> PhotoScore:
    """Compare a predicted label map with the truth at the same (full) resolution.

    ``pixel_area`` (mm² per pixel) weights the healed-% areas; ``None`` counts pixels.
    A region absent from both maps has Dice NaN (left out of per-photo means).

    Examples
    --------
    >>> t = np.zeros((4, 4), np.uint8); t[:, :2] = 1; t[:, 2:] = 2
    >>> s = score_labels(t, t, pixel_area=None, healed_true=50.0)
    >>> s.dice_donor, s.dice_raw, s.healed_pred
    (1.0, 1.0, 50.0)
    """
    if truth.shape != pred.shape:
        raise DatasetError(f"{file}: prediction {pred.shape} and truth {truth.shape} differ")
    dd, di, dt = _dice(truth > 0, pred > 0)
    de, ei, et = _dice(truth == 1, pred == 1)
    dr, ri, rt = _dice(truth == 2, pred == 2)
    if pixel_area is None:
        epi, raw = float(np.count_nonzero(pred == 1)), float(np.count_nonzero(pred == 2))
    else:
        epi = float(pixel_area[pred == 1].sum())
        raw = float(pixel_area[pred == 2].sum())
    healed = 100.0 * epi / (epi + raw) if epi + raw > 0 else float("nan")
    return PhotoScore(file, method, group, dd, de, dr, (di, dt, ei, et, ri, rt),
                      float(healed_true), healed, float(day))


def summarise(scores: Sequence[PhotoScore]) -> dict[str, Any]:
    """Pooled and per-photo Dice, healed-% absolute error median / p95, photo count."""
    if not scores:
        return {"n_photos": 0}
    c = np.array([s.counts for s in scores], np.float64).sum(0)
    out: dict[str, Any] = {"n_photos": len(scores)}
    for i, name in enumerate(("donor", "epithelialized", "raw")):
        vals = np.array([getattr(s, f"dice_{name}") for s in scores])
        vals = vals[np.isfinite(vals)]
        out[f"dice_{name}_pooled"] = round(2 * c[2 * i] / c[2 * i + 1], 4) if c[2 * i + 1] \
            else None
        out[f"dice_{name}_photo_mean"] = round(float(vals.mean()), 4) if len(vals) else None
        out[f"dice_{name}_photo_median"] = round(float(np.median(vals)), 4) if len(vals) \
            else None
    err = np.array([s.healed_abs_error for s in scores])
    ok = np.isfinite(err)
    out["healed_abs_error_median"] = round(float(np.median(err[ok])), 3) if ok.any() else None
    out["healed_abs_error_p95"] = round(float(np.percentile(err[ok], 95)), 3) if ok.any() \
        else None
    out["healed_abs_error_max"] = round(float(err[ok].max()), 3) if ok.any() else None
    out["healed_undefined"] = int((~ok).sum())
    signed = np.array([s.healed_pred - s.healed_true for s in scores])
    days = np.array([s.day for s in scores])
    by_day = {}
    for d in sorted(set(days[ok & np.isfinite(days)].tolist())):
        sel = ok & (days == d)
        by_day[f"{d:g}"] = round(float(signed[sel].mean()), 3)
    out["healed_signed_error_mean"] = round(float(signed[ok].mean()), 3) if ok.any() else None
    out["healed_signed_error_by_day"] = by_day
    return out


def evaluate_study(study_dir: str | Path, predictor: Any, *, baseline: Any = None,
                   sticker: Any = None, limit: int | None = None,
                   progress: bool = False) -> dict[str, Any]:
    """Evaluate ``predictor`` (and ``baseline``) on every photo of a synthetic study.

    Returns a JSON-able dict: ``summary[method]['all' | group]`` and ``photos`` (per-photo
    rows), ``failed`` (photos whose calibration failed: not scored).
    """
    from calibration import CalibrationError, calibrate, load_sticker

    study = Path(study_dir)
    if not is_synth_study(study):
        raise DatasetError(f"{study} is not a synthetic study (manifest.csv + truth/)")
    sticker = sticker or load_sticker()
    with open(study / "truth" / "photos.csv", newline="") as f:
        rows = list(csv.DictReader(f))[:limit]
    scores: list[PhotoScore] = []
    failed: list[dict[str, str]] = []
    confidence: dict[str, dict[str, Any]] = {}
    flagged: set[str] = set()
    assessor = None
    if hasattr(predictor, "predict_proba"):
        from models.assess import PhotoAssessor

        assessor = PhotoAssessor.for_predictor(predictor)
    it: Any = rows
    if progress:
        from tqdm import tqdm

        it = tqdm(rows, desc=f"evaluate {study.name}", unit="photo")
    t0 = time.time()
    for row in it:
        file = row["file"]
        photo = decode_photo(study / file)
        truth = cv2.imread(str(study / row["mask_file"]), cv2.IMREAD_UNCHANGED)
        try:
            cal = calibrate(photo, sticker, source=file)
        except CalibrationError as exc:
            failed.append({"file": file, "reason": f"{type(exc).__name__}: {exc}"})
            continue
        work, _ = working_image(photo, cal, config=predictor.config)
        area = cal.pixel_area_mm2(truth.shape)
        group = fitzpatrick_group(row.get("skin_type", ""))
        kw = dict(pixel_area=area, healed_true=float(row["healed_percent"]), file=file,
                  group=group, day=float(row.get("visit_day") or "nan"))
        if hasattr(predictor, "predict_proba"):  # a network: its certainty too
            proba = predictor.predict_proba(work)
            pred = upsample_argmax(proba, truth.shape)
            if assessor is not None:
                a = assessor.assess(work, proba, pixel_area=cal.pixel_area_mm2(proba.shape[1:]))
                confidence[file] = {**a.confidence.as_dict(), "ood_score": a.novelty,
                                    "flags": list(a.flags)}
                if a.flags:
                    flagged.add(file)
        else:
            pred = predictor.predict(work, output_shape=truth.shape)
        scores.append(score_labels(truth, pred, method="unet", **kw))
        if baseline is not None:
            small = baseline.predict(work)
            full = cv2.resize(small, truth.shape[::-1], interpolation=cv2.INTER_NEAREST)
            scores.append(score_labels(truth, full, method="baseline_lab", **kw))
    summary: dict[str, Any] = {}
    # the photos the endpoints use: the network's, without a hold-for-read flag
    used = [replace(s, method="unet_used") for s in scores
            if s.method == "unet" and s.file not in flagged]
    for m in METHODS:
        ms = [s for s in scores if s.method == m] if m != "unet_used" else used
        if not ms:
            continue
        summary[m] = {"all": summarise(ms)}
        for g in ("I-II", "III-IV", "V-VI", "unknown"):
            gs = [s for s in ms if s.group == g]
            if gs:
                summary[m][g] = summarise(gs)
    photos = [{**{k: v for k, v in asdict(s).items() if k != "counts"},
               "healed_abs_error": s.healed_abs_error,
               **({"confidence": confidence.get(s.file)} if s.method == "unet" else {})}
              for s in scores]
    return {"study": str(study), "n_photos": len(rows), "n_failed": len(failed),
            "failed": failed, "n_flagged": len(flagged), "summary": summary, "photos": photos,
            "seconds": round(time.time() - t0, 1)}


def metrics_markdown(result: dict[str, Any]) -> str:
    """Markdown tables of :func:`evaluate_study`'s summary (for the model card)."""
    lines = ["| method | group | photos | Dice donor | Dice epithelialized | Dice raw | "
             "healed % abs err median | p95 |", "|---|---|---|---|---|---|---|---|"]

    def f(v: Any) -> str:
        return "–" if v is None else (f"{v:.3f}" if isinstance(v, float) else str(v))

    for m, groups in result["summary"].items():
        for g, s in groups.items():
            lines.append(f"| {m} | {g} | {s['n_photos']} | {f(s['dice_donor_pooled'])} | "
                         f"{f(s['dice_epithelialized_pooled'])} | {f(s['dice_raw_pooled'])} | "
                         f"{f(s['healed_abs_error_median'])} | {f(s['healed_abs_error_p95'])} |")
    used = result["summary"].get("unet_used", {}).get("all")
    if used and used.get("healed_signed_error_by_day"):
        days = ", ".join(f"day {d}: {v:+.2f}" for d, v in
                         used["healed_signed_error_by_day"].items())
        lines += ["", f"Mean signed healed % error (prediction − truth) by visit day, photos the "
                      f"endpoints use: {days}. Flagged (held for a read): "
                      f"{result.get('n_flagged', 0)} of {result['n_photos']} photos."]
    lines += ["", "Dice is pooled over photos (sum of overlaps / sum of sizes) at full photo "
              "resolution; per-photo means and medians are in the JSON. Photos whose "
              f"calibration failed: {result['n_failed']} of {result['n_photos']} (not scored)."]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """``python -m models.evaluate --model NAME STUDY_DIR [--baseline JSON] [--out JSON]``."""
    from models.baseline import LabBaseline
    from models.predictor import Predictor

    ap = argparse.ArgumentParser(prog="python -m models.evaluate", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("study", type=Path, help="a study made by `donorsite synth`")
    ap.add_argument("--model", default="starter", help="registered name or .safetensors path")
    ap.add_argument("--baseline", type=Path, default=None,
                    help="Lab-threshold baseline JSON (default: models/weights/baseline-lab.json "
                         "when present)")
    ap.add_argument("--out", type=Path, default=None, help="JSON file to write")
    ap.add_argument("--limit", type=int, default=None, help="only the first N photos")
    ap.add_argument("--device", default="auto")
    a = ap.parse_args(argv)
    predictor = Predictor.from_registry(a.model, device=a.device)
    bl_path = a.baseline or Path(__file__).resolve().parent / "weights" / "baseline-lab.json"
    baseline = LabBaseline.from_json(bl_path) if bl_path.is_file() else None
    res = evaluate_study(a.study, predictor, baseline=baseline, limit=a.limit, progress=True)
    res["model"] = {"name": str(a.model), "sha256": predictor.card.get("sha256")}
    text = json.dumps(res, indent=2)
    if a.out:
        a.out.parent.mkdir(parents=True, exist_ok=True)
        a.out.write_text(text + "\n")
    print(metrics_markdown(res))
    return res


if __name__ == "__main__":  # pragma: no cover
    main()
