"""End-to-end accuracy of a processed synthetic study against its truth.

``python -m pipeline.evaluate STUDY OUT [--json FILE]`` compares ``OUT/measurements.csv``
(what ``donorsite process STUDY --out OUT`` wrote) with ``STUDY/truth/photos.csv``: areas in
cm² and ``healed_percent``, per photo, summarised as median / 95th percentile of the absolute
errors, overall, by tilt and by Fitzpatrick group.

Composite studies (``donorsite composite fuseg|ood``; ``study.json`` ``"kind"``
``fuseg_composite`` or ``ood_composite``) are scored by :mod:`pipeline.evaluate_composite`
instead, printed as a markdown table followed by the JSON.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipeline.qc import HOLD_FOR_READ_FLAGS

__all__ = ["compare", "summarise", "study_kind", "evaluate"]

FITZPATRICK_GROUPS = {1: "I-II", 2: "I-II", 3: "III-IV", 4: "III-IV", 5: "V-VI", 6: "V-VI"}


def compare(study: Path, out: Path) -> pd.DataFrame:
    """One row per photo with measured and true values and their errors."""
    m = pd.read_csv(out / "measurements.csv")
    t = pd.read_csv(study / "truth" / "photos.csv")
    df = m.merge(t, on="file", how="right", suffixes=("", "_true"), indicator=True)
    df["processed"] = (df["_merge"] == "both") & (df["status"] == "ok")
    df["true_donor_cm2"] = df["donor_area_mm2"] / 100.0
    df["true_epi_cm2"] = df["epithelialized_area_mm2"] / 100.0
    df["true_raw_cm2"] = df["raw_area_mm2"] / 100.0
    df["healed_err"] = df["healed_percent"] - df["healed_percent_true"]
    df["donor_rel_err_pct"] = 100 * (df["donor_site_area_cm2"] / df["true_donor_cm2"] - 1)
    df["epi_err_cm2"] = df["epithelialized_area_cm2"] - df["true_epi_cm2"]
    df["raw_err_cm2"] = df["raw_area_cm2"] - df["true_raw_cm2"]
    skin = df["skin_type"]
    if skin.dtype == object:  # Roman numerals in the truth file
        skin = skin.map({"I": 1, "II": 2, "III": 3, "IV": 4, "V": 5, "VI": 6}).fillna(skin)
    df["fitzpatrick_group"] = pd.to_numeric(skin, errors="coerce").map(FITZPATRICK_GROUPS)
    flags = df["qc_flags"] if "qc_flags" in df else pd.Series("", index=df.index)
    df["held_for_read"] = [bool(set(str(f).split(";")) & HOLD_FOR_READ_FLAGS)
                           if isinstance(f, str) else False for f in flags]
    # what the endpoints use by default: measured, and not held for a read
    df["used"] = df["processed"] & ~df["held_for_read"]
    return df


def _stats(d: pd.DataFrame) -> dict[str, Any]:
    ok = d[d["processed"]]
    ae = ok["healed_err"].abs()
    rel = ok["donor_rel_err_pct"].abs()

    def q(s: pd.Series, p: float) -> float | None:
        return float(np.nanpercentile(s, p)) if s.notna().any() else None

    return {
        "photos": int(len(d)), "processed_ok": int(len(ok)),
        "healed_abs_err_median": q(ae, 50), "healed_abs_err_p95": q(ae, 95),
        "healed_err_mean_signed": float(ok["healed_err"].mean()) if len(ok) else None,
        "donor_area_abs_rel_err_pct_median": q(rel, 50),
        "donor_area_abs_rel_err_pct_p95": q(rel, 95),
        "epi_area_abs_err_cm2_median": q(ok["epi_err_cm2"].abs(), 50),
        "raw_area_abs_err_cm2_median": q(ok["raw_err_cm2"].abs(), 50),
    }


def summarise(df: pd.DataFrame) -> dict[str, Any]:
    """Error statistics overall, on the photos the endpoints use (not held for a read), by
    tilt and by Fitzpatrick group, and the mean signed healed % error by visit day."""
    out: dict[str, Any] = {"all": _stats(df)}
    used = df[df["used"]] if "used" in df else df
    out["endpoints"] = {**_stats(used), "used_share": (round(float(len(used)) / len(df), 4)
                                                       if len(df) else None)}
    out["fitzpatrick_endpoints"] = {g: _stats(d) for g, d in used.groupby("fitzpatrick_group")}
    day = "visit_day_true" if "visit_day_true" in df else "visit_day"
    if day in df:
        ok = used[used["processed"]]
        out["healed_err_mean_signed_by_day"] = {
            str(int(k)): round(float(v), 3) for k, v in ok.groupby(day)["healed_err"].mean()
            .items() if pd.notna(k)}
    out["tilt<=15"] = _stats(df[df["tilt_deg_true"] <= 15])
    out["15<tilt<=35"] = _stats(df[df["tilt_deg_true"] > 15])
    out["fitzpatrick"] = {g: _stats(d) for g, d in df.groupby("fitzpatrick_group")}
    return out


def study_kind(study: Path) -> str:
    """``study.json``'s ``"kind"`` (``"synth"`` when it has none, as ``donorsite synth``
    writes it, or when there is no study.json)."""
    p = study / "study.json"
    if not p.is_file():
        return "synth"
    try:
        return str(json.loads(p.read_text(encoding="utf-8")).get("kind", "synth"))
    except (json.JSONDecodeError, AttributeError) as exc:
        raise ValueError(f"{p}: not a JSON object ({exc})") from exc


def evaluate(study: Path, out: Path) -> tuple[dict[str, Any], str | None]:
    """The summary of ``study`` processed into ``out`` for its kind, and a markdown table
    (None for a synthetic study)."""
    kind = study_kind(study)
    if kind == "synth":
        return summarise(compare(study, out)), None
    from pipeline import evaluate_composite as ec

    if kind == "fuseg_composite":
        summary, _ = ec.score_fuseg(study, out)
    elif kind == "ood_composite":
        summary, _ = ec.score_ood(study, out)
    else:
        raise ValueError(f"{study / 'study.json'}: unknown study kind {kind!r}")
    return summary, ec.markdown(summary)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m pipeline.evaluate", description=__doc__)
    ap.add_argument("study", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument("--json", type=Path)
    a = ap.parse_args(argv)
    summary, table = evaluate(a.study, a.out)
    text = json.dumps(summary, indent=2)
    if a.json:
        a.json.write_text(text)
    if table:
        print(table + "\n")
    print(text)


if __name__ == "__main__":
    main()
