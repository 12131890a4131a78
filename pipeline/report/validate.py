"""Time to healing from the report against a synthetic study's truth.

``python -m pipeline.report.validate STUDY OUT [--threshold 95] [--confirm] [--csv FILE]``

STUDY is a folder made by ``donorsite synth`` (``manifest.csv``, ``allocation.csv``,
``truth/subjects.csv`` with ``t95_day``), OUT the folder ``donorsite process`` wrote. For each
subject the reported time to healing (first usable visit at or above the threshold, or
censored) is compared with the ideal observation of the truth: the first *scheduled* visit on
or after the true ``t95_day`` (censored when that is after the last visit). "Within one visit
interval" means the two differ by at most one position in the subject's visit schedule. The
faster arm is the one with the smaller Kaplan–Meier median (ties broken by the mean of the
observed days). The truth's faster arm is the one whose subjects have the smaller median
true t95 (this realization); the design's is the one the generator was told to make faster
(``<arm>_t95_days`` in ``study.json``) — with 10 subjects per arm the two can differ.

Thresholds 95 (truth ``t95_day``) and 100 (truth ``t100_day``) only. With ``--confirm`` a
site first reaching the threshold at the last visit is censored, which the truth has no
notion of.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.report.healing import healing_times
from pipeline.report.options import ReportError, ReportOptions
from pipeline.report.survival import kaplan_meier, turnbull
from pipeline.report.tables import read_allocation, visit_table

__all__ = ["Validation", "compare_with_truth", "validate_study", "main"]


@dataclass(frozen=True)
class Validation:
    """Agreement of the report's time to healing with the truth."""

    n_subjects: int
    within_one_visit: float
    same_visit: float
    truth_in_interval: float
    mean_visit_offset: float
    faster_arm_report: str
    faster_arm_truth: str
    faster_arm_design: str | None
    medians_report: dict[str, float]
    medians_report_interval: dict[str, float]
    medians_truth: dict[str, float]


def compare_with_truth(times: pd.DataFrame, truth: pd.DataFrame,
                       schedule: dict[str, list[float]], *,
                       truth_column: str = "t95_day") -> pd.DataFrame:
    """Per subject: reported and ideal visit positions and whether truth is in the interval.

    Parameters
    ----------
    times : DataFrame
        :func:`~pipeline.report.healing.healing_times` rows (``subject_id``, ``event``,
        ``day``, ``lower``, ``upper``; ``arm`` optional).
    truth : DataFrame
        ``subject_id`` and ``truth_column`` (continuous true day).
    schedule : dict
        Each subject's scheduled visit days.

    Examples
    --------
    >>> t = pd.DataFrame({"subject_id": ["A"], "event": [True], "day": [7.0], "lower": [5.0],
    ...                   "upper": [7.0]})
    >>> tr = pd.DataFrame({"subject_id": ["A"], "t95_day": [8.2]})
    >>> r = compare_with_truth(t, tr, {"A": [0, 3, 5, 7, 10]}).iloc[0]
    >>> int(r.reported_index), int(r.truth_index), bool(r.within_one_visit)
    (3, 4, True)
    """
    truth_by = truth.set_index("subject_id")[truth_column]
    rows = []
    for r in times.itertuples(index=False):
        days = np.asarray(sorted(schedule[r.subject_id]), float)
        t_true = float(truth_by[r.subject_id])
        i_true = int(np.searchsorted(days, t_true, side="left"))  # len(days): censored
        i_rep = int(np.searchsorted(days, r.day, side="left")) if r.event else len(days)
        rows.append({"subject_id": r.subject_id, **({"arm": r.arm} if hasattr(r, "arm") else {}),
                     "true_day": t_true, "reported_event": bool(r.event),
                     "reported_day": float(r.day), "lower": float(r.lower),
                     "upper": float(r.upper), "reported_index": i_rep, "truth_index": i_true,
                     "visit_offset": i_rep - i_true,
                     "within_one_visit": abs(i_rep - i_true) <= 1,
                     "truth_in_interval": bool(r.lower < t_true <= r.upper)})
    return pd.DataFrame(rows)


def validate_study(study: Path, out: Path, *, options: ReportOptions | None = None
                   ) -> tuple[Validation, pd.DataFrame]:
    """Compare the processed study in ``out`` with the truth of ``study``."""
    options = options or ReportOptions()
    if options.threshold not in (95.0, 100.0):
        raise ReportError(f"the truth gives t95_day and t100_day only; threshold "
                          f"{options.threshold:g} cannot be validated (use 95 or 100)")
    study = Path(study)
    allocation = read_allocation(study / "allocation.csv")
    visits = visit_table(out, allocation=allocation, options=options)
    times = healing_times(visits, threshold=options.threshold, confirm=options.confirm)
    truth = pd.read_csv(study / "truth" / "subjects.csv", dtype={"subject_id": str})
    col = "t100_day" if options.threshold >= 100 else "t95_day"
    manifest = pd.read_csv(study / "manifest.csv", dtype={"subject_id": str})
    schedule = {s: sorted(set(g["visit_day"].astype(float)))
                for s, g in manifest.groupby("subject_id")}
    cmp = compare_with_truth(times, truth, schedule, truth_column=col)
    truth = truth.assign(arm=truth["subject_id"].map(allocation))
    med_truth = {a: float(g[col].median()) for a, g in truth.groupby("arm")}
    med_rep, med_int, mean_rep = {}, {}, {}
    for a, g in times.groupby("arm"):
        med_rep[a] = kaplan_meier(g["day"].to_numpy(), g["event"].to_numpy()).median
        med_int[a] = turnbull(g["lower"].to_numpy(), g["upper"].to_numpy(), bootstrap=0).median
        mean_rep[a] = float(g["day"].mean())
    faster_rep = min(med_rep, key=lambda a: (med_rep[a], mean_rep[a]))
    v = Validation(
        n_subjects=int(len(cmp)), within_one_visit=float(cmp["within_one_visit"].mean()),
        same_visit=float((cmp["visit_offset"] == 0).mean()),
        truth_in_interval=float(cmp["truth_in_interval"].mean()),
        mean_visit_offset=float(cmp["visit_offset"].mean()),
        faster_arm_report=faster_rep, faster_arm_truth=min(med_truth, key=med_truth.get),
        faster_arm_design=_design_faster(study, set(med_truth)),
        medians_report=med_rep, medians_report_interval=med_int, medians_truth=med_truth)
    return v, cmp


def _design_faster(study: Path, arms: set[str]) -> str | None:
    """The arm with the smallest configured median t95 in ``study.json`` (None if unknown)."""
    try:
        cfg = json.loads((study / "study.json").read_text()).get("config", {})
    except (OSError, ValueError):
        return None
    design = {a: float(cfg[f"{a}_t95_days"]) for a in arms if f"{a}_t95_days" in cfg}
    return min(design, key=design.get) if len(design) == len(arms) else None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m pipeline.report.validate",
                                 description=__doc__.split("\n\n")[0])
    ap.add_argument("study", type=Path, help="synthetic study folder (with truth/)")
    ap.add_argument("out", type=Path, help="processing output folder (study.sqlite)")
    ap.add_argument("--threshold", type=float, default=95.0)
    ap.add_argument("--confirm", action="store_true")
    ap.add_argument("--include-failed-qc", action="store_true")
    ap.add_argument("--csv", type=Path, help="write the per-subject comparison here")
    args = ap.parse_args(argv)
    try:
        options = ReportOptions(threshold=args.threshold, confirm=args.confirm,
                                include_failed_qc=args.include_failed_qc, bootstrap=0)
        v, cmp = validate_study(args.study, args.out, options=options)
    except (ReportError, OSError, KeyError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    with pd.option_context("display.width", 160, "display.max_rows", 500):
        print(cmp.to_string(index=False, float_format=lambda x: f"{x:.2f}"))
    print(json.dumps(asdict(v), indent=2, default=str))
    if args.csv:
        cmp.to_csv(args.csv, index=False)
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
