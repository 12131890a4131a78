"""CONSORT-style flow and missing visits, per group (arm, or the pooled group when blinded).

* :func:`consort_flow` — randomized donor sites → photographed per visit → photos measured →
  photos excluded from the endpoints (one row per reason, held-for-read photos counted) →
  sites analysed (ITT: every randomized site; PP) → healed / censored.
* :func:`missing_visits` — per group and scheduled visit day: sites expected, visits with a
  usable photo, missed (no photo at all), all photos excluded, and the share usable.

How missing visits enter each analysis is stated in :data:`CENSORING_RULES`.
"""

from __future__ import annotations

import pandas as pd

__all__ = ["consort_flow", "missing_visits", "CENSORING_RULES"]

CENSORING_RULES = (
    "Missing visits are not imputed. Time to healing (visit days): a missed or wholly "
    "excluded visit is skipped, so the event is dated at the next usable visit at or above "
    "the threshold; a site not healed is right-censored at its last usable visit, and a site "
    "with no usable visit at day 0. Interval-censored version: a skipped visit widens the "
    "interval (lower end = the last usable visit below the threshold). Per-visit means and "
    "differences use the sites with a usable photo at that visit (available cases). PP "
    "drops every site with a missed, excluded, flagged or held visit before its event or "
    "censoring.")


def consort_flow(photos: pd.DataFrame, visits: pd.DataFrame, times: pd.DataFrame,
                 pops: pd.DataFrame, group_of: dict[str, str]) -> pd.DataFrame:
    """Rows ``stage``, ``detail`` and one count column per group.

    Parameters
    ----------
    photos : photo table (``excluded``, ``exclusion_reason``, ``status``)
    visits, times : per-visit and time-to-healing tables
    pops : population flags per site (:func:`pipeline.report.adam.populations`)
    group_of : subject -> group label
    """
    groups = sorted(set(group_of.values()))

    def count(df: pd.DataFrame, key: str = "subject_id") -> dict[str, int]:
        g = df[key].map(group_of) if len(df) else pd.Series(dtype=str)
        return {x: int((g == x).sum()) for x in groups}

    rows = [("randomized donor sites", "", count(pops))]
    for day in sorted(visits["visit_day"].unique()):
        v = visits[visits["visit_day"] == day]
        rows.append(("photographed", f"day {day:g}", count(v)))
    rows.append(("photos", "all current versions", count(photos)))
    measured = photos[photos["status"] == "ok"]
    rows.append(("photos measured", "processing succeeded", count(measured)))
    ex = photos[photos["excluded"]]
    kinds = ex["exclusion_reason"].str.split(":").str[0]
    for reason in sorted(set(ex["exclusion_reason"])):
        rows.append(("photos excluded", reason, count(ex[ex["exclusion_reason"] == reason])))
    held = ex[kinds == "held for read"]
    rows.append(("photos held for read", "low confidence / out of distribution, no accepting "
                 "read", count(held)))
    rows.append(("photos used", "", count(photos[~photos["excluded"]])))
    rows.append(("analysed, ITT", "donor sites", count(pops[pops["ITTFL"] == "Y"])))
    rows.append(("analysed, PP", "donor sites", count(pops[pops["PPROTFL"] == "Y"])))
    rows.append(("healed", "ITT, visit days", count(times[times["event"].astype(bool)])))
    rows.append(("censored", "ITT, not healed by the last usable visit or no usable visit",
                 {g: a - b for (g, a), b in zip(
                     count(pops).items(), count(times[times["event"].astype(bool)]).values(),
                     strict=True)}))
    return pd.DataFrame([{"stage": s, "detail": d} | c for s, d, c in rows])


def missing_visits(visits: pd.DataFrame, pops: pd.DataFrame,
                   group_of: dict[str, str]) -> pd.DataFrame:
    """Per group and scheduled visit day: expected, usable, all photos excluded, missed."""
    rows = []
    sites = pops.assign(group=pops["subject_id"].map(group_of))
    v = visits.assign(group=visits["subject_id"].map(group_of))
    for g in sorted(set(group_of.values())):
        expected = int((sites["group"] == g).sum())
        for day in sorted(visits["visit_day"].unique()):
            here = v[(v["group"] == g) & (v["visit_day"] == day)]
            usable = int((here["qc_state"] != "excluded").sum())
            excluded = int((here["qc_state"] == "excluded").sum())
            rows.append({"group": g, "visit_day": int(day), "expected": expected,
                         "usable": usable, "all_photos_excluded": excluded,
                         "missed": expected - usable - excluded,
                         "usable_percent": 100.0 * usable / expected if expected else
                         float("nan")})
    return pd.DataFrame(rows)
