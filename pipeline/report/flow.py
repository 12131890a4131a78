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


def baseline_table(visits: pd.DataFrame, group_of: dict[str, str], *,
                   extra: dict[str, dict[str, str]] | None = None) -> pd.DataFrame:
    """Baseline characteristics per group: donor sites, day-0 donor-site area (mean ± SD,
    median [IQR]), day-0 healed %, sites by location, and ``extra`` subject characteristics
    (e.g. skin type, thickness group) when the study carries them — otherwise a row says they
    were not recorded."""
    v = visits.assign(group=visits["subject_id"].map(group_of))
    groups = sorted(set(group_of.values()))
    sites = v.drop_duplicates(["subject_id", "site"])
    day0 = v[v["visit_day"] == 0]

    def stat(col: str, g: str) -> tuple[str, str]:
        x = pd.to_numeric(day0.loc[day0["group"] == g, col], errors="coerce").dropna()
        if x.empty:
            return "–", "–"
        q1, med, q3 = x.quantile([.25, .5, .75])
        sd = f" ± {x.std():.2f}" if len(x) > 1 else ""
        return f"{x.mean():.2f}{sd} (n = {len(x)})", f"{med:.2f} [{q1:.2f}, {q3:.2f}]"

    rows = [{"characteristic": "donor sites"} | {
        g: str(int((sites["group"] == g).sum())) for g in groups}]
    for col, name in (("donor_site_area_cm2", "donor-site area at day 0, cm²"),
                      ("healed_percent", "healed % at day 0")):
        s = {g: stat(col, g) for g in groups}
        rows.append({"characteristic": f"{name}, mean ± SD"} | {g: s[g][0] for g in groups})
        rows.append({"characteristic": f"{name}, median [IQR]"} | {g: s[g][1] for g in groups})
    for loc in sorted(set(sites["site"])):
        rows.append({"characteristic": f"site: {loc}"} | {
            g: str(int(((sites["group"] == g) & (sites["site"] == loc)).sum()))
            for g in groups})
    for name, by_subject in (extra or {}).items():
        for level in sorted(set(by_subject.values())):
            rows.append({"characteristic": f"{name}: {level}"} | {
                g: str(sum(1 for s, x in by_subject.items()
                           if x == level and group_of.get(s) == g)) for g in groups})
    if not extra:
        rows.append({"characteristic": "skin type, thickness group (0.2–0.3 / 0.3–0.5 mm)"} |
                    {g: "not recorded in the manifest" for g in groups})
    return pd.DataFrame(rows)
