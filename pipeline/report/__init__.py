"""Analysts' report: healing curves, time to healing, agreement (issue 6).

Python API for notebooks::

    from pipeline.report import visit_table, build_report
    visits = visit_table("data/processed")                      # blinded, pooled
    visits = visit_table("data/processed", allocation="data/raw/demo/allocation.csv")
    build_report("data/processed", "data/processed/report")     # blinded report

Modules: :mod:`~pipeline.report.tables` (per-visit table, QC exclusion, allocation),
:mod:`~pipeline.report.healing` (time to healing), :mod:`~pipeline.report.survival`
(Kaplan–Meier, Turnbull, log-rank via lifelines), :mod:`~pipeline.report.agreement` (pure
agreement statistics), :mod:`~pipeline.report.assessors` (review reads -> agreement),
:mod:`~pipeline.report.figures`, :mod:`~pipeline.report.build` (files, HTML, JSON),
:mod:`~pipeline.report.validate` (time to healing vs a synthetic study's truth).
"""

from pipeline.report.agreement import bland_altman, dice, icc_2_1, repeatability
from pipeline.report.build import ReportResult, build_report
from pipeline.report.healing import HealingTime, healing_times, time_to_healing
from pipeline.report.options import (
    DEFAULT_QC_EXCLUDE,
    AllocationError,
    ReportError,
    ReportOptions,
)
from pipeline.report.tables import read_allocation, visit_table

__all__ = ["visit_table", "build_report", "ReportResult", "ReportOptions", "ReportError",
           "AllocationError", "DEFAULT_QC_EXCLUDE", "read_allocation", "HealingTime",
           "time_to_healing", "healing_times", "bland_altman", "icc_2_1", "repeatability",
           "dice"]
