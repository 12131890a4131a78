"""``build_report``: the per-visit table, healing curves, time to healing, agreement — written
as CSV/Parquet tables, PNG/SVG figures, one self-contained HTML page and a summary JSON.

Without an allocation the report is blinded: one pooled group, and no arm in any table,
figure, page, JSON or file name. The report folder is written whole into a temporary sibling
and swapped in, so it always holds exactly one report (a blinded report never inherits files
of an earlier unblinded one).
"""

from __future__ import annotations

import io
import json
import math
import shutil
import tempfile
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2
import numpy as np
import pandas as pd

from pipeline.provenance import git_commit, software_version
from pipeline.report import agreement_view
from pipeline.report.adam import DICTIONARY, adbds, adtte, populations
from pipeline.report.assessors import (
    AgreementSummary,
    agreement_summary,
    load_adjudications,
    load_reads,
    mask_loader,
)
from pipeline.report.compare import arm_effects
from pipeline.report.figures import (
    FigureFiles,
    plot_mean_curves,
    plot_subject_curves,
    plot_time_to_healing,
    save_figure,
)
from pipeline.report.flow import CENSORING_RULES, baseline_table, consort_flow, missing_visits
from pipeline.report.healing import healing_times
from pipeline.report.options import ReportError, ReportOptions
from pipeline.report.present import html_table, numbers_at_risk
from pipeline.report.sensitivity import sensitivity_table
from pipeline.report.survival import kaplan_meier, logrank, turnbull
from pipeline.report.tables import (
    AllocationSource,
    StoreSource,
    aggregate_visits,
    area_outliers,
    opened_store,
    photo_table,
    read_allocation,
)
from pipeline.stages import atomic_write_bytes
from pipeline.store import utc_now

__all__ = ["ReportResult", "build_report", "POOLED"]

#: The one group of a blinded report.
POOLED = "all subjects"
_MARKER = "donorsite healing report"
_EXCLUDED_COLUMNS = ["photo_id", "subject_id", "visit_day", "site", "status",
                     "exclusion_reason", "qc_flags"]


@dataclass(frozen=True)
class ReportResult:
    """What :func:`build_report` wrote."""

    out_dir: Path
    html: Path
    summary: Path
    files: tuple[Path, ...]
    blinded: bool
    n_excluded: int


def build_report(source: StoreSource, out_dir: str | Path, *,
                 allocation: AllocationSource = None,
                 options: ReportOptions | None = None) -> ReportResult:
    """Write the report for a study store into ``out_dir`` (replacing an earlier report).

    Parameters
    ----------
    source : Store, processing output folder, or ``study.sqlite`` path
    out_dir : path
        The report folder; an existing folder must be empty or hold an earlier report.
    allocation : path of ``allocation.csv``, mapping or DataFrame, optional
        Without it the report is blinded.
    options : ReportOptions, optional

    Returns
    -------
    ReportResult
    """
    options = options or ReportOptions()
    out_dir = Path(out_dir)
    _check_target(out_dir)
    alloc = read_allocation(allocation)
    blinded = alloc is None
    with opened_store(source) as store:
        photos = photo_table(store, options=options)
        photo_sets = {
            "default": photos,
            "+QC-flagged": photo_table(store, options=replace(options, include_failed_qc=True)),
            "+QC-flagged +held": photo_table(store, options=replace(
                options, include_failed_qc=True, include_held=True))}
        reads = load_reads(store)
        adjudications = load_adjudications(store)
        root = store.path.parent
        from pipeline.finetune import models_used  # which model produced which numbers

        models = models_used(store)
    if photos.empty or not (~photos["excluded"]).any():
        raise ReportError(f"{root}: no usable processed photo in the study store")
    visits = aggregate_visits(photos, allocation=alloc)
    times = healing_times(visits, threshold=options.threshold, confirm=options.confirm)
    agreement = agreement_summary(reads, load_mask=mask_loader(root), alpha=options.alpha,
                                  adjudications=adjudications)

    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    tmp.chmod(out_dir.parent.stat().st_mode & 0o777)  # mkdtemp's 0700 -> like its parent
    try:
        sens = sensitivity_table(photo_sets, allocation=alloc, pooled=POOLED,
                                 alpha=options.alpha)
        _table(sens, tmp / "sensitivity.csv")
        ctx = _write_contents(tmp, photos, visits, times, agreement, alloc, options,
                              allocation_name=_name(allocation), study=root.name,
                              sens=sens, models=models)
        _swap_in(tmp, out_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    files = tuple(sorted(out_dir / p.name for p in ctx))
    return ReportResult(out_dir, out_dir / "report.html", out_dir / "summary.json", files,
                        blinded, int(photos["excluded"].sum()))


# ------------------------------------------------------------------------------- contents
def _write_contents(d: Path, photos: pd.DataFrame, visits: pd.DataFrame, times: pd.DataFrame,
                    agreement: AgreementSummary, alloc: dict[str, str] | None,
                    options: ReportOptions, *, allocation_name: str,
                    study: str, sens: pd.DataFrame,
                    models: list[dict] | None = None) -> list[Path]:
    blinded = alloc is None
    label_of = (lambda df: pd.Series(POOLED, index=df.index)) if blinded else (
        lambda df: df["arm"])
    labels = [POOLED] if blinded else sorted(set(alloc.values()) & set(visits["arm"]))
    by_group = {g: visits[label_of(visits) == g] for g in labels}
    excluded = photos[photos["excluded"]][_EXCLUDED_COLUMNS].reset_index(drop=True)
    _table(visits, d / "visits.csv")
    _table(times, d / "time_to_healing.csv")
    _table(excluded, d / "excluded_photos.csv")
    outlier_cols = ["subject_id", "site", "visit_day", "donor_site_area_cm2",
                    "donor_area_vs_site_median_percent", "healed_percent"]
    outliers = area_outliers(visits)[outlier_cols].reset_index(drop=True)

    km, tb, groups = {}, {}, []
    for g in labels:
        t = times[label_of(times) == g]
        if t.empty:
            continue
        km[g] = kaplan_meier(t["day"].to_numpy(), t["event"].to_numpy(), label=g,
                             alpha=options.alpha)
        tb[g] = turnbull(t["lower"].to_numpy(), t["upper"].to_numpy(), label=g,
                         alpha=options.alpha, bootstrap=options.bootstrap, seed=options.seed)
        groups.append({"label": g, "n": km[g].n, "n_healed": km[g].n_events,
                       "km_median_day": km[g].median, "km_median_ci": km[g].median_ci,
                       "turnbull_median_day": tb[g].median,
                       "turnbull_median_interval": tb[g].median_interval,
                       "turnbull_median_ci": tb[g].median_ci,
                       "turnbull_bootstrap": tb[g].n_bootstrap})
    lr = None
    if not blinded and len(km) >= 2:
        lr = logrank(times["day"].to_numpy(), times["event"].to_numpy(), times["arm"].to_numpy())
    pops = populations(visits, times)
    tte = adtte(times, pops, study=study, threshold=options.threshold)
    _table(tte, d / "adtte.csv")
    _table(adbds(visits, pops, study=study), d / "adbds.csv")
    _table(pd.DataFrame([r for r in DICTIONARY if not (blinded and r[1] == "TRT01P")],
                        columns=["datasets", "variable", "label", "type", "note"]),
           d / "data_dictionary.csv")
    subjects = sorted(set(photos["subject_id"]))
    group_of = {x: POOLED if blinded else alloc.get(x, "unallocated") for x in subjects}
    flow = consort_flow(photos, visits, times, pops, group_of)
    missing = missing_visits(visits, pops, group_of)
    baseline = baseline_table(visits, group_of)
    _table(baseline, d / "baseline.csv")
    _table(flow, d / "consort_flow.csv")
    _table(missing, d / "missing_visits.csv")
    effects = None if blinded or len(km) != 2 else arm_effects(visits, times, pops, options)
    if effects is not None:
        _table(effects["by_visit"], d / "difference_by_visit.csv")

    last_visit = float(visits["visit_day"].max()) if len(visits) else 1.0
    horizon = last_visit + max(2.0, 0.1 * last_visit)
    censored = {g: times[(label_of(times) == g) & ~times["event"].astype(bool)]["day"]
                .to_numpy(float) for g in km}
    visit_days = sorted(float(v) for v in visits["visit_day"].unique())
    at_risk = numbers_at_risk({g: times[label_of(times) == g]["day"].to_numpy(float)
                               for g in km}, visit_days)
    _table(at_risk, d / "numbers_at_risk.csv")
    figs = {"curves": [
        save_figure(plot_subject_curves(by_group, threshold=options.threshold),
                    "healing_curves_subjects", d, title="Healed % by day, one line per donor "
                    "site (dashed: threshold)."),
        save_figure(plot_mean_curves(by_group, threshold=options.threshold,
                                     alpha=options.alpha),
                    "healing_curves_mean", d, title="Mean healed % by day with its 95 % "
                    "confidence band.")],
        "survival": [save_figure(
            plot_time_to_healing(km, tb, threshold=options.threshold, horizon=horizon,
                                 last_visit=last_visit, censored=censored),
            "time_to_healing", d, title="Fraction of donor sites not yet healed: "
            "Kaplan–Meier on visit days (solid, 95 % band; + a censored site) and Turnbull "
            "interval-censored estimate (dashed; each innermost interval's mass spread across "
            f"it). Dotted: the last visit (day {last_visit:g}); no site is followed beyond "
            "it.")],
        "agreement": agreement_view.figures(agreement, d)}
    agreement_tables = agreement_view.tables(agreement)
    for i, (_title, table) in enumerate(agreement_tables):
        _table(table, d / f"agreement_{i + 1}.csv")

    generated = utc_now()
    counts = {"subjects": int(visits["subject_id"].nunique()),
              "donor_sites": int(visits.groupby(["subject_id", "site"]).ngroups),
              "visits": int(len(visits)), "photos": int(len(photos)),
              "photos_used": int((~photos["excluded"]).sum()),
              "photos_excluded": int(photos["excluded"].sum())}
    summary: dict[str, Any] = {
        "report": _MARKER, "blinded": blinded, "generated_utc": generated,
        "software_version": software_version(), "git_commit": git_commit(),
        "options": {"threshold_percent": options.threshold, "confirm": options.confirm,
                    "include_failed_qc": options.include_failed_qc,
                    "qc_exclude": sorted(options.qc_exclude), "alpha": options.alpha,
                    "bootstrap": options.bootstrap, "seed": options.seed},
        "methods": {"observed": "Kaplan-Meier on visit days (lifelines KaplanMeierFitter); "
                                "median CI from the exponential Greenwood band",
                    "interval_censored": "Turnbull NPMLE (lifelines KaplanMeierFitter."
                                         "fit_interval_censoring); median where S, linear "
                                         "within innermost intervals, reaches 0.5; percentile "
                                         "bootstrap CI over donor sites",
                    "test": None if blinded else "log-rank on visit days (lifelines)"},
        "counts": counts, "groups": [dict(g) for g in groups],
        "time_to_healing": times.to_dict(orient="records"),
        "agreement": agreement_view.as_json(agreement, agreement_tables),
        "excluded_photos": excluded.to_dict(orient="records"),
        "area_outliers": outliers.to_dict(orient="records"),
        "models_used": models or [],
        "populations": {"ITT": int((pops["ITTFL"] == "Y").sum()),
                        "PP": int((pops["PPROTFL"] == "Y").sum()),
                        "definition": POPULATIONS},
    }
    if effects is not None:
        summary["effects"] = {"reference": effects["reference"],
                              "estimates": effects["table"].to_dict(orient="records"),
                              "difference_by_visit": effects["by_visit"].to_dict(
                                  orient="records")}
    if not blinded:
        summary["logrank"] = None if lr is None else {
            "statistic": lr.statistic, "p_value": lr.p_value, "df": lr.df}
        for g in summary["groups"]:
            g["arm"] = g.pop("label")
    html = _render(blinded=blinded, allocation_name=allocation_name, generated=generated,
                   options=options, counts=counts, figs=figs, groups=groups, lr=lr,
                   times=times, agreement=agreement, agreement_tables=agreement_tables,
                   excluded=excluded, outliers=outliers, visits=visits, at_risk=at_risk,
                   pops=pops, effects=effects, flow=flow, missing=missing, sens=sens,
                   baseline=baseline, models=models or [],
                   files=sorted(p.name for p in d.iterdir()
                                if p.suffix in {".csv", ".parquet"}))
    atomic_write_bytes(d / "report.html", html.encode())
    written = sorted(p for p in d.iterdir() if p.is_file())
    summary["files"] = sorted([p.name for p in written] + ["summary.json"])
    atomic_write_bytes(d / "summary.json",
                       json.dumps(_jsonable(summary), indent=2, allow_nan=False).encode())
    return sorted(p for p in d.iterdir() if p.is_file())


POPULATIONS = ("ITT (intention to treat): every randomized donor site; a site without a usable "
               "visit is censored at day 0. PP (per protocol): ITT sites with a usable photo "
               "that passed QC without any flag at every scheduled visit up to the site's "
               "event or censoring day. The primary analysis is ITT.")
_RULES = ("A donor site counts as healed at the first usable visit with healed % at or above "
          "the threshold{confirm}. Visit-day version: the event is dated at that visit. "
          "Interval-censored version: healing happened between the last usable visit below "
          "and that visit. Sites not healed by their last usable visit are right-censored there"
          "{unconfirmed}. A visit whose photos were all excluded is skipped.")


def _render(*, blinded: bool, allocation_name: str, generated: str, options: ReportOptions,
            counts: dict[str, int], figs: dict[str, list[FigureFiles]], groups: list[dict],
            lr: Any, times: pd.DataFrame, agreement: AgreementSummary,
            agreement_tables: list[tuple[str, pd.DataFrame]], excluded: pd.DataFrame,
            outliers: pd.DataFrame, visits: pd.DataFrame, at_risk: pd.DataFrame,
            pops: pd.DataFrame, effects: dict | None, flow: pd.DataFrame,
            missing: pd.DataFrame, sens: pd.DataFrame, baseline: pd.DataFrame,
            files: list[str], models: list[dict]) -> str:
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined,
                             trim_blocks=True, lstrip_blocks=True)
    text = resources.files("pipeline.report").joinpath("templates/report.html.j2").read_text()
    rules = _RULES.format(
        confirm=", confirmed by the next usable visit" if options.confirm else "",
        unconfirmed=" (a threshold reached only at the last visit is unconfirmed and censored)"
        if options.confirm else "")
    rows = [{"label": g["label"], "n": g["n"], "n_healed": g["n_healed"],
             "km_median": _day(g["km_median_day"]), "km_ci": _ci(g["km_median_ci"]),
             "tb_median": _day(g["turnbull_median_day"]),
             "tb_interval": _interval(g["turnbull_median_interval"]),
             "tb_ci": _ci(g["turnbull_median_ci"])} for g in groups]
    return env.from_string(text).render(
        blinded=blinded, allocation_name=allocation_name, generated_utc=generated,
        software_version=software_version(), git_commit=git_commit(), models_used=models,
        threshold=f"{options.threshold:g}", confirm=options.confirm,
        include_failed_qc=options.include_failed_qc,
        include_held=options.include_held, qc_exclude=sorted(options.qc_exclude),
        counts=counts, figures=figs, rules=rules, groups=rows,
        logrank=None if lr is None else {"statistic": f"{lr.statistic:.2f}", "df": lr.df,
                                         "p_value": f"{lr.p_value:.3g}"},
        times=times, times_html=html_table(times, csv="time_to_healing.csv"),
        excluded=excluded, excluded_html=html_table(excluded, csv="excluded_photos.csv"),
        outliers=outliers, outliers_html=html_table(outliers), visits=visits,
        visits_html=html_table(visits, csv="visits.csv"),
        at_risk_html=html_table(at_risk.rename(columns={"group": "group" if blinded
                                                        else "arm"}),
                                caption="Donor sites at risk (not yet healed, still followed)",
                                csv="numbers_at_risk.csv"),
        files=files, populations=POPULATIONS, censoring_rules=CENSORING_RULES,
        flow_html=html_table(flow, csv="consort_flow.csv"),
        missing_html=html_table(missing, csv="missing_visits.csv"),
        sens_html=html_table(sens, csv="sensitivity.csv"),
        baseline_html=html_table(baseline, csv="baseline.csv"),
        n_itt=int((pops["ITTFL"] == "Y").sum()), n_pp=int((pops["PPROTFL"] == "Y").sum()),
        effects=None if effects is None else {
            "reference": effects["reference"],
            "table": html_table(effects["table"], csv=None),
            "by_visit": html_table(effects["by_visit"], csv="difference_by_visit.csv")},
        agreement={"available": agreement.available, "message": agreement.message,
                   "verdicts": agreement.verdicts,
                   "tables": [(t, html_table(df, csv=f"agreement_{i + 1}.csv"))
                              for i, (t, df) in enumerate(agreement_tables)]})


# ------------------------------------------------------------------------------ agreement
# -------------------------------------------------------------------------------- helpers
def _check_target(out_dir: Path) -> None:
    if out_dir.exists() and (not out_dir.is_dir() or (any(out_dir.iterdir())
                                                      and not _is_report(out_dir))):
        raise ReportError(f"{out_dir}: exists and is not an earlier report folder; "
                          "choose an empty or new folder")


def _is_report(d: Path) -> bool:
    try:
        return json.loads((d / "summary.json").read_text()).get("report") == _MARKER
    except (OSError, ValueError, AttributeError):
        return False


def _swap_in(tmp: Path, out_dir: Path) -> None:
    old = None
    if out_dir.exists():
        old = out_dir.with_name(f".{out_dir.name}.old-{tmp.name[-8:]}")
        out_dir.rename(old)
    tmp.rename(out_dir)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _table(df: pd.DataFrame, path_csv: Path) -> None:
    atomic_write_bytes(path_csv, df.to_csv(index=False, float_format="%.4f").encode())
    buf = io.BytesIO()
    df.to_parquet(buf, index=False)
    atomic_write_bytes(path_csv.with_suffix(".parquet"), buf.getvalue())


def _name(allocation: AllocationSource) -> str:
    if isinstance(allocation, str | Path):
        return Path(allocation).name
    return "the given allocation"


def _day(v: float) -> str:
    if not math.isfinite(v):
        return "not reached"
    return f"{v:.0f}" if abs(v - round(v)) < 1e-9 else f"{v:.1f}"


def _ci(ci: tuple[float, float]) -> str:
    if any(math.isnan(v) for v in ci):
        return "–"
    return f"{_day(ci[0])} to {_day(ci[1])}"


def _interval(iv: tuple[float, float]) -> str:
    return f"({iv[0]:g}, {_day(iv[1])}]"


def _jsonable(x: Any) -> Any:
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_jsonable(v) for v in x]
    if isinstance(x, np.generic):
        x = x.item()
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if x is pd.NA or x is pd.NaT:
        return None
    return x
