"""The arm comparison of an unblinded report: effect sizes in the ITT and PP populations.

Every estimate is (arm − reference) or (arm / reference), ``reference`` from
:func:`pipeline.report.effects.reference_arm`. See :mod:`pipeline.report.effects` for the
methods and :mod:`pipeline.report.adam` for the populations.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from pipeline.report.effects import (
    cox_hazard_ratio,
    cox_interval_midpoint,
    mean_difference_by_visit,
    median_difference,
    reference_arm,
)
from pipeline.report.options import ReportOptions

__all__ = ["arm_effects"]


def arm_effects(visits: pd.DataFrame, times: pd.DataFrame, pops: pd.DataFrame,
                options: ReportOptions) -> dict[str, Any]:
    """Effect sizes of a two-arm study: a table of (population, estimate, value, CI) rows and
    the per-visit difference in mean healed % (ITT)."""
    ref = reference_arm(sorted(set(times["arm"])))
    pp_sites = pops[pops["PPROTFL"] == "Y"][["subject_id", "site"]]
    rows = []
    for pop, t in (("ITT", times),
                   ("PP", times.merge(pp_sites, on=["subject_id", "site"]))):
        if t["arm"].nunique() < 2:
            rows.append({"population": pop, "estimate": "(one arm only in this population)",
                         "value": math.nan, "ci_low": math.nan, "ci_high": math.nan,
                         "p_value": math.nan, "n": len(t)})
            continue
        a = t["arm"].to_numpy()
        hr = cox_hazard_ratio(t["day"].to_numpy(float), t["event"].to_numpy(int), a,
                              reference=ref, alpha=options.alpha)
        ic = cox_interval_midpoint(t["lower"].to_numpy(float), t["upper"].to_numpy(float), a,
                                   reference=ref, alpha=options.alpha)
        md = median_difference(t["day"].to_numpy(float), t["event"].to_numpy(int), a,
                               reference=ref, alpha=options.alpha,
                               bootstrap=options.bootstrap, seed=options.seed)
        for name, h in ((f"hazard ratio of healing, {hr.arm} / {ref} ({hr.method})", hr),
                        (f"hazard ratio, {ic.arm} / {ref} ({ic.method})", ic)):
            if not (h.se < 10 and math.isfinite(h.ci[1])):  # a monotone likelihood
                name += " — NOT ESTIMABLE: monotone likelihood (complete separation), " \
                        "the ratio runs off to infinity"
            rows.append({"population": pop, "estimate": name, "value": h.hr,
                         "ci_low": h.ci[0], "ci_high": h.ci[1], "p_value": h.p_value,
                         "n": h.n})
        rows.append({"population": pop, "estimate": f"difference in KM median days to healing, "
                     f"{md.arm} − {ref} (percentile bootstrap over sites within arm, "
                     f"{md.n_defined}/{md.n_bootstrap} resamples with both medians reached)",
                     "value": md.difference, "ci_low": md.ci[0], "ci_high": md.ci[1],
                     "p_value": math.nan, "n": len(t)})
    by_visit = mean_difference_by_visit(visits, reference=ref, alpha=options.alpha)
    return {"reference": ref, "table": pd.DataFrame(rows), "by_visit": by_visit}
