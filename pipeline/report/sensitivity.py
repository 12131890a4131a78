"""Sensitivity of time to healing to the endpoint's definition, in one compact table.

Each row re-derives the endpoint with one combination of: threshold 90/95/100 %, with or
without confirmation at the next visit, and which photos count (``default``: excluding QC
flags and unaccepted holds out; ``+QC-flagged``: photos with excluding QC flags in;
``+held``: photos held for a read in too). Per group: sites healed and the Kaplan–Meier
median; with two arms also the Cox hazard ratio and its 95 % CI.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from pipeline.report.effects import cox_hazard_ratio, km_median, reference_arm
from pipeline.report.healing import healing_times
from pipeline.report.tables import aggregate_visits

__all__ = ["sensitivity_table", "THRESHOLDS"]

THRESHOLDS = (90.0, 95.0, 100.0)


def sensitivity_table(photo_sets: Mapping[str, pd.DataFrame], *,
                      allocation: Mapping[str, str] | None, pooled: str,
                      alpha: float = 0.05) -> pd.DataFrame:
    """One row per photo set, threshold and confirmation.

    Parameters
    ----------
    photo_sets : mapping name -> photo table (:func:`pipeline.report.tables.photo_table`
        with the options of that set)
    allocation : subject -> arm, or None (blinded: one pooled group named ``pooled``)
    """
    rows = []
    for name, photos in photo_sets.items():
        visits = aggregate_visits(photos, allocation=allocation)
        for thr in THRESHOLDS:
            for confirm in (False, True):
                t = healing_times(visits, threshold=thr, confirm=confirm)
                g = t["arm"] if allocation is not None else pd.Series(pooled, index=t.index)
                row = {"photos": name, "threshold_percent": thr,
                       "confirmed": confirm}
                for label in sorted(set(g)):
                    s = t[g == label]
                    med = km_median(s["day"].to_numpy(float), s["event"].to_numpy(int))
                    key = "" if allocation is None else f"_{label}"
                    row[f"healed{key}"] = f"{int(s['event'].sum())}/{len(s)}"
                    row[f"median_days{key}"] = med if np.isfinite(med) else np.nan
                if allocation is not None and t["arm"].nunique() == 2:
                    ref = reference_arm(sorted(set(t["arm"])))
                    hr = cox_hazard_ratio(t["day"].to_numpy(float), t["event"].to_numpy(int),
                                          t["arm"].to_numpy(), reference=ref, alpha=alpha)
                    row |= {"hazard_ratio": hr.hr, "hr_ci_low": hr.ci[0],
                            "hr_ci_high": hr.ci[1]}
                rows.append(row)
    return pd.DataFrame(rows)
