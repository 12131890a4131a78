"""The report's agreement section: Bland-Altman / ICC rows, the Dice table, the figure and
its JSON, from an :class:`~pipeline.report.assessors.AgreementSummary`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipeline.report.assessors import AgreementSummary
from pipeline.report.figures import FigureFiles, plot_bland_altman, save_figure

__all__ = ["tables", "figures", "as_json"]


def tables(a: AgreementSummary) -> list[tuple[str, pd.DataFrame]]:
    if not a.available:
        return []
    out = []
    rows = []
    if a.algorithm_vs_mean is not None:
        rows.append(_ba_row("algorithm vs mean of assessors", a.algorithm_vs_mean,
                            a.algorithm_vs_mean_icc))
    if a.algorithm_vs_adjudicated is not None:
        rows.append(_ba_row("algorithm vs adjudicated consensus", *a.algorithm_vs_adjudicated))
    rows += [_ba_row(f"algorithm vs {name} (per-assessor bias)", ba, icc)
             for name, ba, icc in a.algorithm_vs_each]
    if rows:
        out.append(("Algorithm vs assessors (healed %, algorithm − assessor)", pd.DataFrame(rows)))
    rows = [_ba_row(f"{x} vs {y}", ba, icc) for x, y, ba, icc in a.between]
    if rows:
        out.append(("Between assessors (first reads)", pd.DataFrame(rows)))
    rows = [_ba_row(name, r.bland_altman, icc) | {"within_sd": r.within_sd,
                                                  "repeatability_coefficient": r.coefficient}
            for name, r, icc in a.within]
    if rows:
        out.append(("Within assessors (hidden repeats)", pd.DataFrame(rows)))
    if not a.dice.empty:
        names = {"dice_site": "whole donor site", "dice_epithelialized": "healed area",
                 "dice_raw": "raw area"}
        d = pd.DataFrame([{"dice": name, "n": int(a.dice[c].notna().sum()),
                           "mean": a.dice[c].mean(), "median": a.dice[c].median(),
                           "min": a.dice[c].min()} for c, name in names.items()])
        out.append(("Dice: algorithm mask vs corrected masks", d))
    return out


def _ba_row(name: str, ba: Any, icc: Any) -> dict[str, Any]:
    return {"comparison": name, "n": ba.n, "bias": ba.bias, "bias_ci_low": ba.bias_ci[0],
            "bias_ci_high": ba.bias_ci[1], "loa_low": ba.loa_lower, "loa_high": ba.loa_upper,
            "icc_2_1": icc.value if icc else np.nan, "icc_ci_low": icc.ci[0] if icc else np.nan,
            "icc_ci_high": icc.ci[1] if icc else np.nan}


def figures(a: AgreementSummary, d: Path) -> list[FigureFiles]:
    if not a.available or a.algorithm_vs_mean is None:
        return []
    p = a.pairs
    fig = plot_bland_altman(p["algorithm"].values, p["assessors"].values, a.algorithm_vs_mean,
                            xlabel="mean of algorithm and assessors (healed %)",
                            ylabel="algorithm − assessors (points)")
    return [save_figure(fig, "agreement_bland_altman", d, title="Bland–Altman: algorithm vs "
                        "the mean of the assessors' reads, with 95 % limits of agreement.")]


def as_json(a: AgreementSummary, tables: list[tuple[str, pd.DataFrame]]) -> dict:
    return {"available": a.available, "message": a.message, "n_reads": a.n_reads,
            "n_assessors": a.n_assessors, "n_photos": a.n_photos,
            "verdicts": dict(a.verdicts),
            "tables": {t: df.to_dict(orient="records") for t, df in tables}}
