"""Tables written after every batch: ``measurements.csv`` (+ Parquet), one row per photo, and
``visits.csv`` (+ Parquet), one row per subject visit and site with the spread when a visit
has several photos. Written atomically from the store (the store is the truth; these are
views of it).
"""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd

from pipeline.stages import atomic_write_bytes
from pipeline.store import Store

__all__ = ["measurements_frame", "visits_frame", "export_tables", "MEASUREMENT_COLUMNS"]

MEASUREMENT_COLUMNS = [
    "photo_id", "subject_id", "visit_day", "site", "file", "status", "error_code",
    "donor_site_area_cm2", "epithelialized_area_cm2", "raw_area_cm2", "healed_percent",
    "healed_percent_low", "healed_percent_high", "confidence", "ood_score",
    "raw_area_vs_baseline_percent", "mm_per_px", "tilt_deg", "delta_e00_before",
    "delta_e00_after", "qc_flags", "mask_file", "overlay_file", "model_sha256",
]


def measurements_frame(store: Store) -> pd.DataFrame:
    """One row per current photo version with its current result."""
    rows = [dict(r) for r in store.current_results()]
    df = pd.DataFrame(rows)
    if df.empty:
        return pd.DataFrame(columns=MEASUREMENT_COLUMNS)
    df["status"] = df["status"].fillna("pending")
    df["file"] = df["source_name"]
    for a in ("donor_site", "epithelialized", "raw"):
        df[f"{a}_area_cm2"] = df[f"{a}_area_mm2"] / 100.0
    ok = df["status"] == "ok"
    baseline = (df[ok & (df["visit_day"] == 0)].groupby(["subject_id", "site"])
                ["donor_site_area_cm2"].mean().rename("baseline_cm2"))
    df = df.join(baseline, on=["subject_id", "site"])
    df["raw_area_vs_baseline_percent"] = 100.0 * df["raw_area_cm2"] / df["baseline_cm2"]
    df["qc_flags"] = [";".join(sorted({f for f in (str(a or "").replace(",", ";").split(";")
                                                    + str(b or "").split(";")) if f}))
                      for a, b in zip(df["photo_flags"], df["qc_flags"], strict=True)]
    return df[MEASUREMENT_COLUMNS].reset_index(drop=True)


def visits_frame(measurements: pd.DataFrame) -> pd.DataFrame:
    """Per subject, visit and site: number of photos and mean, sd, min, max of healed %."""
    ok = measurements[measurements["status"] == "ok"]
    if ok.empty:
        return pd.DataFrame(columns=["subject_id", "visit_day", "site", "n_photos"])
    g = ok.groupby(["subject_id", "visit_day", "site"])
    out = g.agg(n_photos=("photo_id", "count"),
                healed_percent=("healed_percent", "mean"),
                healed_percent_sd=("healed_percent", "std"),
                healed_percent_min=("healed_percent", "min"),
                healed_percent_max=("healed_percent", "max"),
                donor_site_area_cm2=("donor_site_area_cm2", "mean"),
                epithelialized_area_cm2=("epithelialized_area_cm2", "mean"),
                raw_area_cm2=("raw_area_cm2", "mean"),
                raw_area_vs_baseline_percent=("raw_area_vs_baseline_percent", "mean"))
    return out.reset_index()


def _write_frame(df: pd.DataFrame, path_csv: Path) -> None:
    atomic_write_bytes(path_csv, df.to_csv(index=False, float_format="%.4f").encode())
    buf = io.BytesIO()
    df.to_parquet(buf, index=False)
    atomic_write_bytes(path_csv.with_suffix(".parquet"), buf.getvalue())


def export_tables(store: Store, out_dir: Path) -> dict[str, Path]:
    """Write measurements and visits tables (CSV and Parquet) into ``out_dir``."""
    m = measurements_frame(store)
    _write_frame(m, out_dir / "measurements.csv")
    _write_frame(visits_frame(m), out_dir / "visits.csv")
    return {"measurements": out_dir / "measurements.csv", "visits": out_dir / "visits.csv"}
