"""Scores of processed composite studies (``study.json`` kinds ``fuseg_composite`` and
``ood_composite``; issue 15), called by ``python -m pipeline.evaluate STUDY OUT``.

FUSeg composites (truth: raw = the expert wound mask, no epithelium): pooled raw Dice against
the wound mask over the whole frame, the share of the frame called epithelialized per photo,
the photos with more than 1 % of the frame epithelialized that are *not* flagged, and the
flagged share. Out-of-distribution composites (truth: no donor site): the share of photos
flagged, found to have no donor site, or not measured at all (target >= 95 %).

A photo is *flagged* when its ``qc_flags`` (or ``flags``) in ``measurements.csv`` hold one of
:data:`pipeline.qc.HOLD_FOR_READ_FLAGS`; ``confidence`` and ``ood_score`` are summarised when
the columns are there.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pandas as pd

from pipeline.qc import HOLD_FOR_READ_FLAGS

__all__ = ["COMPOSITE_KINDS", "score_fuseg", "score_ood", "flag_sets", "markdown",
           "EPI_FRAME_LIMIT"]

COMPOSITE_KINDS = ("fuseg_composite", "ood_composite")
#: Share of the frame a FUSeg composite may call epithelialized without being flagged.
EPI_FRAME_LIMIT = 0.01
NO_SITE = "no_donor_site_found"
RAW, EPI = 2, 1


class EvaluateError(Exception):
    """A processed folder or study cannot be scored."""


def flag_sets(m: pd.DataFrame) -> list[set[str]]:
    """The QC flags of each row of a measurements table (``qc_flags`` and/or ``flags``,
    separated by ``;`` or ``,``)."""
    out: list[set[str]] = [set() for _ in range(len(m))]
    for col in ("qc_flags", "flags"):
        if col in m.columns:
            for i, v in enumerate(m[col].tolist()):
                if isinstance(v, str):
                    out[i] |= {f.strip() for f in v.replace(",", ";").split(";") if f.strip()}
    return out


def _merge(study: Path, out: Path) -> pd.DataFrame:
    mpath, tpath = out / "measurements.csv", study / "truth" / "photos.csv"
    for p in (mpath, tpath):
        if not p.is_file():
            raise EvaluateError(f"{p}: missing")
    m = pd.read_csv(mpath)
    t = pd.read_csv(tpath)
    m = m[m["file"].isin(t["file"])]
    df = t.merge(m, on="file", how="left", suffixes=("_true", ""), indicator=True)
    df["processed"] = (df["_merge"] == "both") & (df["status"] == "ok")
    flags = flag_sets(df)
    df["flags_set"] = flags
    df["flagged"] = [bool(f & HOLD_FOR_READ_FLAGS) for f in flags]
    df["no_site"] = [NO_SITE in f for f in flags]
    return df


def _opt_stats(df: pd.DataFrame) -> dict[str, Any]:
    s: dict[str, Any] = {}
    for col in ("confidence", "ood_score"):
        if col in df.columns and pd.to_numeric(df[col], errors="coerce").notna().any():
            v = pd.to_numeric(df[col], errors="coerce").dropna()
            s[f"{col}_median"] = float(v.median())
            s[f"{col}_min"] = float(v.min())
            s[f"{col}_max"] = float(v.max())
    return s


def _scale_stats(ok: pd.DataFrame) -> dict[str, Any]:
    """How far the calibration's scale is from the composite's (``mm_per_px`` measured vs
    ``px_per_mm`` of the truth, in %); untilted composites only, since under a perspective
    the scale differs across the frame (the truth's is at the picture's centre)."""
    if "mm_per_px" not in ok.columns or "px_per_mm" not in ok.columns:
        return {}
    if "tilt_deg_true" in ok.columns:
        ok = ok[pd.to_numeric(ok["tilt_deg_true"], errors="coerce") == 0]
    if ok.empty:
        return {}
    err = (100 * (pd.to_numeric(ok["mm_per_px"], errors="coerce") * ok["px_per_mm"] - 1)).abs()
    return {"scale_abs_rel_err_pct_median": float(err.median()),
            "scale_abs_rel_err_pct_max": float(err.max())}


def _read_labels(path: Path, what: str) -> np.ndarray:
    lab = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if lab is None:
        raise EvaluateError(f"{path}: the {what} mask cannot be read")
    return lab


def score_fuseg(study: Path, out: Path) -> tuple[dict[str, Any], pd.DataFrame]:
    """Pooled raw Dice, epithelialized share of the frame and flags of a FUSeg composite
    study processed into ``out``; returns the summary and the per-photo table."""
    df = _merge(study, out)
    inter = pred_raw = true_raw = 0
    epi_share, dice = [], []
    for r in df.itertuples():
        if not r.processed:
            epi_share.append(np.nan)
            dice.append(np.nan)
            continue
        truth = _read_labels(study / r.mask_file_true, "truth") == RAW
        pred = _read_labels(out / r.mask_file, "predicted")
        if pred.shape != truth.shape:
            raise EvaluateError(f"{out / r.mask_file}: mask {pred.shape} does not match the "
                                f"truth {truth.shape}")
        p = pred == RAW
        i, sp, st = int((p & truth).sum()), int(p.sum()), int(truth.sum())
        inter, pred_raw, true_raw = inter + i, pred_raw + sp, true_raw + st
        dice.append(2 * i / (sp + st) if sp + st else 1.0)
        epi_share.append(float((pred == EPI).mean()))
    df["raw_dice"] = dice
    df["epi_frame_share"] = epi_share
    ok = df[df["processed"]]
    over = ok["epi_frame_share"] > EPI_FRAME_LIMIT
    healed = pd.to_numeric(ok["healed_percent"], errors="coerce")
    summary = {
        "kind": "fuseg_composite", "photos": int(len(df)), "processed_ok": int(len(ok)),
        "not_processed": int(len(df) - len(ok)),
        "raw_dice_pooled": 2 * inter / (pred_raw + true_raw) if pred_raw + true_raw else None,
        "raw_dice_median": float(ok["raw_dice"].median()) if len(ok) else None,
        "epi_frame_share_median": float(ok["epi_frame_share"].median()) if len(ok) else None,
        "epi_frame_share_p95": (float(np.percentile(ok["epi_frame_share"], 95))
                                if len(ok) else None),
        "photos_epi_over_1pct": int(over.sum()),
        "photos_epi_over_1pct_not_flagged": int((over & ~ok["flagged"]).sum()),
        "flagged_share": float(ok["flagged"].mean()) if len(ok) else None,
        "no_site_share": float(ok["no_site"].mean()) if len(ok) else None,
        "healed_percent_median": float(healed.median()) if healed.notna().any() else None,
        **_scale_stats(ok),
        "targets": {"raw_dice_pooled": ">= 0.85",
                    "photos_epi_over_1pct_not_flagged": "0"},
        **_opt_stats(ok)}
    return summary, df


def score_ood(study: Path, out: Path) -> tuple[dict[str, Any], pd.DataFrame]:
    """Share of an out-of-distribution study's photos that are flagged, found to have no
    donor site, or not measured, overall and by source kind."""
    df = _merge(study, out)
    df["caught"] = df["flagged"] | df["no_site"] | ~df["processed"]

    def part(d: pd.DataFrame) -> dict[str, Any]:
        return {"photos": int(len(d)), "processed_ok": int(d["processed"].sum()),
                "flagged": int((d["processed"] & d["flagged"]).sum()),
                "no_site": int((d["processed"] & d["no_site"]).sum()),
                "not_processed": int((~d["processed"]).sum()),
                "caught_share": float(d["caught"].mean()) if len(d) else None}

    summary = {"kind": "ood_composite", **part(df), "target": "caught_share >= 0.95",
               "by_source": {k: part(d) for k, d in df.groupby("source_kind")},
               **_opt_stats(df[df["processed"]])}
    return summary, df


def markdown(summary: dict[str, Any]) -> str:
    """A markdown table of a composite summary (flat figures; groups as their own rows)."""
    def f(v: Any) -> str:
        return f"{v:.4g}" if isinstance(v, float) else str(v)

    lines = [f"**{summary['kind']}**", "", "| figure | value |", "|---|---|"]
    for k, v in summary.items():
        if k in ("kind",):
            continue
        if isinstance(v, dict):
            for k2, v2 in v.items():
                txt = ", ".join(f"{a} {f(b)}" for a, b in v2.items()) if isinstance(v2, dict) \
                    else f(v2)
                lines.append(f"| {k}: {k2} | {txt} |")
        else:
            lines.append(f"| {k} | {f(v)} |")
    return "\n".join(lines)
