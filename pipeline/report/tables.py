"""The tidy tables behind the report: photos with their QC state, and one row per visit.

:func:`visit_table` is the notebook entry point: it opens the study store (read only, never
written), applies the QC exclusion and, when an allocation is given, adds the arm. The
allocation is read here and nowhere else; it is never written into the store.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.exports import measurements_frame
from pipeline.qc import HOLD_FOR_READ_FLAGS
from pipeline.report.options import AllocationError, ReportError, ReportOptions
from pipeline.store import Store

__all__ = ["visit_table", "photo_table", "aggregate_visits", "read_allocation", "opened_store",
           "area_outliers", "read_decisions",
           "VISIT_COLUMNS", "StoreSource", "AllocationSource"]

StoreSource = Store | str | Path
AllocationSource = str | Path | Mapping[str, str] | pd.DataFrame | None

#: Columns of the per-visit table (``arm`` only in an unblinded table, after subject_id).
VISIT_COLUMNS = [
    "subject_id", "site", "visit_day", "healed_percent", "healed_percent_sd",
    "healed_percent_low", "healed_percent_high", "confidence", "donor_site_area_cm2",
    "epithelialized_area_cm2", "raw_area_cm2",
    "raw_area_vs_day0_percent", "donor_area_vs_site_median_percent", "qc_state", "qc_flags",
    "n_photos", "n_photos_excluded", "n_photos_held",
]


@contextmanager
def opened_store(source: StoreSource) -> Iterator[Store]:
    """Yield a :class:`Store` for a store, a processing output folder or a ``.sqlite`` file.

    A folder without ``study.sqlite`` is an error (a report never creates a store).
    """
    if isinstance(source, Store):
        yield source
        return
    path = Path(source)
    if path.is_dir():
        path = path / "study.sqlite"
    if not path.is_file():
        raise ReportError(f"{path}: no study store (run `donorsite process` first)")
    store = Store.open(path)
    try:
        yield store
    finally:
        store.close()


def read_allocation(source: AllocationSource) -> dict[str, str] | None:
    """Read an allocation (``subject_id,arm``) from a CSV path, a mapping or a DataFrame.

    Examples
    --------
    >>> read_allocation({"S01": "msc", "S02": "control"})
    {'S01': 'msc', 'S02': 'control'}
    """
    if source is None:
        return None
    if isinstance(source, Mapping):
        alloc = {str(k): str(v) for k, v in source.items()}
        name = "<mapping>"
    else:
        name = "<DataFrame>"
        if not isinstance(source, pd.DataFrame):
            name = str(source)
            try:
                source = pd.read_csv(source, dtype=str, keep_default_na=False)
            except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError,
                    UnicodeDecodeError) as exc:
                raise AllocationError(f"{name}: cannot read the allocation ({exc})") from exc
        missing = {"subject_id", "arm"} - set(source.columns)
        if missing:
            raise AllocationError(f"{name}: allocation lacks column(s) {sorted(missing)}; "
                                  f"expected subject_id,arm, got {list(source.columns)}")
        dup = source["subject_id"][source["subject_id"].duplicated()].tolist()
        if dup:
            raise AllocationError(f"{name}: subject(s) allocated twice: {dup}")
        alloc = dict(zip(source["subject_id"].astype(str).str.strip(),
                         source["arm"].astype(str).str.strip(), strict=True))
    empty = [s for s, a in alloc.items() if not a or not s]
    if empty:
        raise AllocationError(f"{name}: empty subject or arm for {empty}")
    if not alloc:
        raise AllocationError(f"{name}: the allocation is empty")
    return alloc


def photo_table(store: Store, *, options: ReportOptions | None = None) -> pd.DataFrame:
    """Every current photo with its measurement and whether it counts for the endpoints.

    Adds ``excluded`` (bool) and ``exclusion_reason`` to the columns of ``measurements.csv``:
    ``failed: <code>`` (processing failed), ``pending`` (not processed), ``no measurement``,
    ``qc: <flags>`` (QC flags in ``options.qc_exclude``; only when not
    ``options.include_failed_qc``) or ``held for read: <flags>`` (flags of
    :data:`pipeline.qc.HOLD_FOR_READ_FLAGS` and no accepting read; only when not
    ``options.include_held``). ``held`` says whether a photo carries a hold flag without an
    accepting read, whatever the options.
    """
    options = options or ReportOptions()
    df = measurements_frame(store).copy()
    decisions = read_decisions(store)
    reasons: list[str] = []
    held: list[bool] = []
    for pid, status, code, healed, flags in zip(df["photo_id"], df["status"], df["error_code"],
                                                df["healed_percent"], df["qc_flags"],
                                                strict=True):
        hold = sorted(set(str(flags or "").split(";")) & HOLD_FOR_READ_FLAGS)
        held.append(bool(hold) and decisions.get(pid) != "accept")
        hit = sorted(set(str(flags or "").split(";")) & options.qc_exclude)
        if status == "failed":
            reasons.append(f"failed: {code or 'unknown'}")
        elif status != "ok":
            reasons.append(str(status))
        elif healed is None or not np.isfinite(float(healed)):
            reasons.append("no measurement")
        elif hit and not options.include_failed_qc:
            reasons.append("qc: " + ";".join(hit))
        elif held[-1] and not options.include_held:
            reasons.append("held for read: " + ";".join(hold))
        else:
            reasons.append("")
    df["held"] = held
    df["exclusion_reason"] = reasons
    df["excluded"] = df["exclusion_reason"] != ""
    return df


_DECISIONS_SQL = {
    "review_reads": "SELECT photo_id, verdict FROM review_reads ORDER BY created_utc, read_id",
    "review_adjudications": "SELECT photo_id, verdict FROM review_adjudications "
                            "ORDER BY version, adjudication_id",
}


def read_decisions(store: Store) -> dict[str, str]:
    """Per photo, the verdict that decides a hold: the latest adjudication, or else the
    latest read (empty when the store has no review tables)."""
    tables = {r[0] for r in store.conn.execute(
        "SELECT name FROM sqlite_master WHERE type='table'")}
    out: dict[str, str] = {}
    for table in ("review_reads", "review_adjudications"):  # adjudications override
        if table in tables:
            out |= {r[0]: r[1] for r in store.conn.execute(_DECISIONS_SQL[table])}
    return out


def aggregate_visits(photos: pd.DataFrame, *,
                     allocation: Mapping[str, str] | None = None) -> pd.DataFrame:
    """One row per subject, site and visit from :func:`photo_table`'s rows.

    Healed % and areas are the means over the visit's usable photos; a visit whose photos are
    all excluded stays in the table with ``qc_state='excluded'`` and no values.
    ``raw_area_vs_day0_percent`` relates the raw area to the subject's (and site's) day-0
    donor-site area from usable photos. ``donor_area_vs_site_median_percent`` relates the
    visit's donor-site area to the median over the site's visits: the donor site does not
    change size while it heals, so a large deviation points at a segmentation or calibration
    problem (see :func:`area_outliers`).
    """
    cols = VISIT_COLUMNS if allocation is None else VISIT_COLUMNS[:1] + ["arm"] + VISIT_COLUMNS[1:]
    if photos.empty:
        return pd.DataFrame(columns=cols)
    rows = []
    for (subject, site, day), g in photos.groupby(["subject_id", "site", "visit_day"], sort=True):
        use = g[~g["excluded"]]
        flags = sorted({f for text in g["qc_flags"] for f in str(text or "").split(";") if f})
        flagged = any(str(t or "") for t in use["qc_flags"])
        state = "excluded" if use.empty else ("flagged" if flagged else "ok")
        rows.append({
            "subject_id": subject, "site": site, "visit_day": int(day),
            "healed_percent": _mean(use["healed_percent"]),
            "healed_percent_sd": float(use["healed_percent"].std()) if len(use) > 1 else np.nan,
            "healed_percent_low": _mean(use.get("healed_percent_low", pd.Series(dtype=float))),
            "healed_percent_high": _mean(use.get("healed_percent_high",
                                                 pd.Series(dtype=float))),
            "confidence": _mean(use.get("confidence", pd.Series(dtype=float))),
            "donor_site_area_cm2": _mean(use["donor_site_area_cm2"]),
            "epithelialized_area_cm2": _mean(use["epithelialized_area_cm2"]),
            "raw_area_cm2": _mean(use["raw_area_cm2"]),
            "qc_state": state, "qc_flags": ";".join(flags),
            "n_photos": int(len(use)), "n_photos_excluded": int(len(g) - len(use)),
            "n_photos_held": int((g["held"] & g["excluded"]).sum()) if "held" in g else 0,
        })
    out = pd.DataFrame(rows)
    day0 = (out[out["visit_day"] == 0].set_index(["subject_id", "site"])["donor_site_area_cm2"])
    base = [day0.get((s, site), np.nan) for s, site in zip(out["subject_id"], out["site"],
                                                            strict=True)]
    out["raw_area_vs_day0_percent"] = 100.0 * out["raw_area_cm2"] / np.asarray(base, float)
    med = out.groupby(["subject_id", "site"])["donor_site_area_cm2"].transform("median")
    out["donor_area_vs_site_median_percent"] = 100.0 * out["donor_site_area_cm2"] / med
    if allocation is not None:
        unallocated = sorted(set(out["subject_id"]) - set(allocation))
        if unallocated:
            raise AllocationError(f"the allocation does not cover subject(s) {unallocated}")
        out["arm"] = [allocation[s] for s in out["subject_id"]]
    return out[cols].reset_index(drop=True)


def area_outliers(visits: pd.DataFrame, *, tolerance_percent: float = 25.0) -> pd.DataFrame:
    """Visits whose donor-site area differs from the site's median by more than
    ``tolerance_percent`` (listed in the report, not excluded).

    Examples
    --------
    >>> v = pd.DataFrame({"donor_area_vs_site_median_percent": [100.0, 190.0, 96.0]})
    >>> area_outliers(v).index.tolist()
    [1]
    """
    dev = (visits["donor_area_vs_site_median_percent"] - 100.0).abs()
    return visits[dev > tolerance_percent]


def visit_table(source: StoreSource, *, allocation: AllocationSource = None,
                include_failed_qc: bool = False,
                options: ReportOptions | None = None) -> pd.DataFrame:
    """The tidy per-visit table: one row per subject, site and visit day.

    Parameters
    ----------
    source : Store, path of a processing output folder, or path of ``study.sqlite``
    allocation : path of ``allocation.csv``, mapping or DataFrame, optional
        Without it the table is blinded (no ``arm`` column).
    include_failed_qc : bool
        Use photos with excluding QC flags too (overrides ``options.include_failed_qc``
        when True).
    options : ReportOptions, optional

    Returns
    -------
    pandas.DataFrame
        Columns :data:`VISIT_COLUMNS` (plus ``arm`` when unblinded).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from pipeline.store import Store
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> with Store.open(d / "study.sqlite") as s:
    ...     p = s.register_photo(manifest="m", source_name="a.jpg", sha256="x", size_bytes=1,
    ...                          subject_id="S01", visit_day=0, site="thigh")
    >>> list(visit_table(d)["qc_state"])
    ['excluded']
    """
    options = options or ReportOptions()
    if include_failed_qc and not options.include_failed_qc:
        options = replace(options, include_failed_qc=True)
    alloc = read_allocation(allocation)
    with opened_store(source) as store:
        photos = photo_table(store, options=options)
    return aggregate_visits(photos, allocation=alloc)


def _mean(values: pd.Series) -> float:
    v = pd.to_numeric(values, errors="coerce").dropna()
    return float(v.mean()) if len(v) else np.nan
