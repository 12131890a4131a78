"""CDISC-ADaM-style datasets beside the report, and the analysis populations.

Populations (stated in the report):

* **ITT** (intention to treat): every randomized donor site — every site of every allocated
  subject in the store (blinded: every subject). A site without any usable visit is censored
  at day 0.
* **PP** (per protocol): ITT sites with a usable photo that passed QC without any flag (QC
  state ``ok``) at every scheduled visit (the study's visit days) up to the site's event or
  censoring day. Missed, excluded, flagged or held visits take a site out of PP.

Datasets (one file each as CSV, and Parquet; :data:`DICTIONARY` describes the variables):

* ``adtte`` — one record per donor site: ``PARAMCD='TTHEAL'`` (time to healing on visit days,
  ``AVAL`` days, ``CNSR`` 0 event / 1 censored) and ``PARAMCD='TTHEALIC'`` (interval-censored:
  ``AVAL`` the upper end, ``ALOWDY``/``AUPPDY`` the interval, ``AUPPDY`` empty when censored).
* ``adbds`` — one record per donor site, visit and parameter (``HEALPCT``, ``DSAREA``,
  ``EPIAREA``, ``RAWAREA``) with ``AVISIT``, ``AVISITN``, ``ABLFL``, ``BASE`` and ``CHG``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["populations", "adtte", "adbds", "DICTIONARY", "PARAMS"]

#: BDS parameters: PARAMCD -> (per-visit column, PARAM).
PARAMS = {"HEALPCT": ("healed_percent", "Healed area (% of donor site)"),
          "DSAREA": ("donor_site_area_cm2", "Donor-site area (cm2)"),
          "EPIAREA": ("epithelialized_area_cm2", "Epithelialized area (cm2)"),
          "RAWAREA": ("raw_area_cm2", "Raw (not healed) area (cm2)")}

#: The data dictionary: (dataset, variable, label, type, note).
DICTIONARY: list[tuple[str, str, str, str, str]] = [
    ("adtte,adbds", "STUDYID", "Study identifier", "text", "the store's folder name"),
    ("adtte,adbds", "USUBJID", "Subject identifier", "text", "subject_id of the manifest"),
    ("adtte,adbds", "SITE", "Donor site", "text", "site of the manifest"),
    ("adtte,adbds", "TRT01P", "Planned arm", "text", "unblinded datasets only"),
    ("adtte,adbds", "ITTFL", "Intention-to-treat population flag", "Y/N",
     "every randomized donor site"),
    ("adtte,adbds", "PPROTFL", "Per-protocol population flag", "Y/N",
     "QC state ok at every scheduled visit up to the site's event or censoring"),
    ("adtte,adbds", "PARAMCD", "Parameter code", "text", "TTHEAL, TTHEALIC; HEALPCT, DSAREA, "
     "EPIAREA, RAWAREA"),
    ("adtte,adbds", "PARAM", "Parameter", "text", ""),
    ("adtte", "AVAL", "Analysis value (days after harvest)", "number",
     "TTHEAL: event or censoring visit day; TTHEALIC: interval upper end, or last visit when "
     "censored"),
    ("adtte", "CNSR", "Censoring", "0/1", "0 healed, 1 censored"),
    ("adtte", "STARTDY", "Time origin (day)", "number", "0: the day of harvest"),
    ("adtte", "ADY", "Analysis day", "number", "= AVAL"),
    ("adtte", "ALOWDY", "Interval lower end (day)", "number",
     "last usable visit below the threshold (0 if healed at the first)"),
    ("adtte", "AUPPDY", "Interval upper end (day)", "number", "empty when censored"),
    ("adtte", "EVNTDESC", "Event or censoring description", "text", ""),
    ("adtte", "NVISITS", "Usable visits", "number", ""),
    ("adbds", "AVAL", "Analysis value", "number", "units in PARAM; empty when no usable photo"),
    ("adbds", "AVISIT", "Analysis visit", "text", "Day N"),
    ("adbds", "AVISITN", "Analysis visit (day)", "number", ""),
    ("adbds", "ABLFL", "Baseline record flag", "Y/empty", "the day-0 visit"),
    ("adbds", "BASE", "Baseline value", "number", ""),
    ("adbds", "CHG", "Change from baseline", "number", "AVAL - BASE"),
    ("adbds", "QCSTATE", "QC state of the visit", "text", "ok, flagged, excluded"),
]


def populations(visits: pd.DataFrame, times: pd.DataFrame) -> pd.DataFrame:
    """ITT and PP flags per donor site (``subject_id``, ``site``, ``ITTFL``, ``PPROTFL``).

    Examples
    --------
    >>> v = pd.DataFrame({"subject_id": ["S1"] * 2 + ["S2"] * 2, "site": "thigh",
    ...                   "visit_day": [0, 7] * 2, "qc_state": ["ok", "ok", "ok", "excluded"]})
    >>> t = pd.DataFrame({"subject_id": ["S1", "S2"], "site": "thigh", "day": [7, 7]})
    >>> populations(v, t)["PPROTFL"].tolist()
    ['Y', 'N']
    """
    schedule = sorted(visits["visit_day"].unique())
    end = {(s, site): d for s, site, d in zip(times["subject_id"], times["site"], times["day"],
                                              strict=True)}
    rows = []
    for (s, site), g in visits.groupby(["subject_id", "site"], sort=True):
        ok = set(g.loc[g["qc_state"] == "ok", "visit_day"])
        last = end.get((s, site))
        due = [d for d in schedule if last is not None and d <= last]
        pp = last is not None and bool(due) and all(d in ok for d in due)
        rows.append({"subject_id": s, "site": site, "ITTFL": "Y", "PPROTFL": "Y" if pp else "N"})
    return pd.DataFrame(rows, columns=["subject_id", "site", "ITTFL", "PPROTFL"])


def adtte(times: pd.DataFrame, pops: pd.DataFrame, *, study: str,
          threshold: float) -> pd.DataFrame:
    """ADTTE-like dataset from :func:`pipeline.report.healing.healing_times` rows; ITT sites
    without a usable visit are censored at day 0."""
    t = pops.merge(times, on=["subject_id", "site"], how="left")
    if "arm" in times.columns:
        arm = times.drop_duplicates("subject_id").set_index("subject_id")["arm"]
        t["arm"] = t["subject_id"].map(arm)
    rows = []
    for r in t.itertuples(index=False):
        base = {"STUDYID": study, "USUBJID": r.subject_id, "SITE": r.site}
        if "arm" in t.columns:
            base["TRT01P"] = r.arm
        base |= {"ITTFL": r.ITTFL, "PPROTFL": r.PPROTFL}
        no_visit = r.event != r.event  # NaN: no usable visit
        ev = (not no_visit) and bool(r.event)
        day = 0.0 if no_visit else float(r.day)
        if no_visit:
            desc = "censored at day 0: no usable visit"
        elif ev:
            desc = f"healed (healed % >= {threshold:g}) at the visit"
        else:
            desc = "censored at the last usable visit" + (f" ({r.note})" if r.note else "")
        common = {"STARTDY": 0.0, "EVNTDESC": desc,
                  "NVISITS": 0 if no_visit else int(r.n_visits)}
        rows.append(base | {"PARAMCD": "TTHEAL", "PARAM": f"Time to healing (>= {threshold:g} "
                            "%), visit days", "AVAL": day, "CNSR": 0 if ev else 1,
                            "ADY": day, "ALOWDY": np.nan, "AUPPDY": np.nan} | common)
        lo = 0.0 if no_visit else float(r.lower)
        hi = float(r.upper) if ev else np.nan
        rows.append(base | {"PARAMCD": "TTHEALIC", "PARAM": f"Time to healing (>= "
                            f"{threshold:g} %), interval-censored",
                            "AVAL": hi if ev else lo, "CNSR": 0 if ev else 1,
                            "ADY": hi if ev else lo, "ALOWDY": lo, "AUPPDY": hi} | common)
    return pd.DataFrame(rows)


def adbds(visits: pd.DataFrame, pops: pd.DataFrame, *, study: str) -> pd.DataFrame:
    """BDS-like dataset: one record per donor site, visit and parameter of :data:`PARAMS`."""
    v = visits.merge(pops, on=["subject_id", "site"], how="left")
    rows = []
    for (s, site), g in v.groupby(["subject_id", "site"], sort=True):
        g = g.sort_values("visit_day")
        for code, (col, param) in PARAMS.items():
            b = g.loc[g["visit_day"] == 0, col]
            base = float(b.iloc[0]) if len(b) and np.isfinite(b.iloc[0]) else np.nan
            for r in g.itertuples(index=False):
                aval = float(getattr(r, col))
                row = {"STUDYID": study, "USUBJID": s, "SITE": site}
                if "arm" in g.columns:
                    row["TRT01P"] = r.arm
                rows.append(row | {
                    "ITTFL": r.ITTFL, "PPROTFL": r.PPROTFL, "PARAMCD": code, "PARAM": param,
                    "AVAL": aval, "AVISIT": f"Day {int(r.visit_day)}",
                    "AVISITN": int(r.visit_day), "ABLFL": "Y" if r.visit_day == 0 else "",
                    "BASE": base, "CHG": aval - base, "QCSTATE": r.qc_state})
    return pd.DataFrame(rows)
