"""Effect sizes between two arms, each with a confidence interval.

* :func:`cox_hazard_ratio` — Cox proportional hazards on visit days (lifelines'
  ``CoxPHFitter``: Efron's ties, the default of R's ``survival::coxph``), the hazard of
  healing in ``arm`` relative to ``reference``, Wald interval ``exp(beta ± z se)``.
* :func:`cox_interval_midpoint` — a clearly labelled *approximation* for the interval-censored
  outcome: the same Cox model with each event dated at the middle of its interval
  ``(lower, upper]``. It is not a semi-parametric interval-censored model.
* :func:`median_difference` — difference of the Kaplan–Meier medians (arm − reference) with a
  percentile bootstrap CI, resampling donor sites within each arm.
* :func:`mean_difference_by_visit` — per visit day, the difference of mean healed % (arm −
  reference) with Welch's t interval.

A ratio above 1 means faster healing in ``arm``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

__all__ = ["HazardRatio", "MedianDifference", "cox_hazard_ratio", "cox_interval_midpoint",
           "km_median", "median_difference", "mean_difference_by_visit", "reference_arm"]


@dataclass(frozen=True)
class HazardRatio:
    """A Cox hazard ratio of ``arm`` vs ``reference``."""

    arm: str
    reference: str
    hr: float
    ci: tuple[float, float]
    p_value: float
    log_hr: float
    se: float
    n: int
    n_events: int
    method: str


@dataclass(frozen=True)
class MedianDifference:
    """Difference of Kaplan–Meier medians (``arm`` − ``reference``), days."""

    arm: str
    reference: str
    difference: float
    ci: tuple[float, float]
    n_bootstrap: int
    n_defined: int


def reference_arm(arms: list[str]) -> str:
    """The comparator: an arm named like ``control``/``placebo``/``standard``, else the first
    in sorted order.

    Examples
    --------
    >>> reference_arm(["msc", "control"]), reference_arm(["b", "a"])
    ('control', 'a')
    """
    for a in sorted(arms):
        if a.lower() in {"control", "placebo", "standard", "standard of care", "soc"}:
            return a
    return sorted(arms)[0]


def cox_hazard_ratio(durations: np.ndarray, events: np.ndarray, arms: np.ndarray, *,
                     reference: str, alpha: float = 0.05,
                     method: str = "Cox PH on visit days (Efron ties)") -> HazardRatio:
    """Hazard ratio of healing, the other arm vs ``reference`` (exactly two arms).

    Examples
    --------
    >>> hr = cox_hazard_ratio(np.array([3., 5, 7, 7, 10, 14, 14, 21]),
    ...                       np.array([1, 1, 1, 1, 1, 1, 0, 0]),
    ...                       np.array(["t"] * 4 + ["c"] * 4), reference="c")
    >>> hr.arm, hr.hr > 1
    ('t', True)
    """
    from lifelines import CoxPHFitter

    g = np.asarray(arms).astype(str)
    others = sorted(set(g.tolist()) - {reference})
    if reference not in set(g.tolist()) or len(others) != 1:
        raise ValueError(f"need exactly two arms including {reference!r}, got {sorted(set(g))}")
    df = pd.DataFrame({"T": np.asarray(durations, float), "E": np.asarray(events, int),
                       "x": (g == others[0]).astype(float)})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cph = CoxPHFitter(alpha=alpha).fit(df, "T", "E")
    b = float(cph.params_["x"])
    se = float(cph.standard_errors_["x"])
    z = float(stats.norm.ppf(1 - alpha / 2))
    with np.errstate(over="ignore"):  # complete separation: the ratio runs off to inf
        hr, lo, hi = np.exp([b, b - z * se, b + z * se])
    return HazardRatio(others[0], reference, float(hr), (float(lo), float(hi)),
                       float(cph.summary.loc["x", "p"]), b, se, int(len(df)),
                       int(df["E"].sum()), method)


def cox_interval_midpoint(lower: np.ndarray, upper: np.ndarray, arms: np.ndarray, *,
                          reference: str, alpha: float = 0.05) -> HazardRatio:
    """Approximate hazard ratio for interval-censored healing: events at interval midpoints,
    censored sites at their last visit (``upper = inf``)."""
    lo, hi = np.asarray(lower, float), np.asarray(upper, float)
    event = np.isfinite(hi)
    t = np.where(event, (lo + np.where(event, hi, lo)) / 2, lo)
    return cox_hazard_ratio(t, event.astype(int), arms, reference=reference, alpha=alpha,
                            method="APPROXIMATION: Cox PH with each interval-censored event "
                                   "at its interval midpoint (Efron ties)")


def km_median(d: np.ndarray, e: np.ndarray) -> float:
    """Smallest time where the KM estimate is <= 0.5 (inf when never)."""
    s = 1.0
    for t in np.unique(d[e.astype(bool)]):
        at_risk = int((d >= t).sum())
        s *= 1 - int(((d == t) & e.astype(bool)).sum()) / at_risk
        if s <= 0.5 + 1e-12:
            return float(t)
    return float("inf")


def median_difference(durations: np.ndarray, events: np.ndarray, arms: np.ndarray, *,
                      reference: str, alpha: float = 0.05, bootstrap: int = 300,
                      seed: int = 0) -> MedianDifference:
    """KM median (arm − reference) with a percentile bootstrap CI (sites resampled within
    each arm). Resamples where either median is not reached are left out of the interval
    (``n_defined`` counts the rest); the CI is NaN when fewer than 80 % are defined.

    Examples
    --------
    >>> md = median_difference(np.array([3., 3, 5, 7, 7, 10]), np.array([1] * 6),
    ...                        np.array(["t"] * 3 + ["c"] * 3), reference="c", bootstrap=50)
    >>> md.difference
    -4.0
    """
    d, e = np.asarray(durations, float), np.asarray(events, int)
    g = np.asarray(arms).astype(str)
    arm = sorted(set(g.tolist()) - {reference})[0]
    ia, ir = np.nonzero(g == arm)[0], np.nonzero(g == reference)[0]
    diff = km_median(d[ia], e[ia]) - km_median(d[ir], e[ir])
    rng = np.random.default_rng(seed)
    boots = []
    for _ in range(bootstrap):
        a, r = rng.choice(ia, ia.size), rng.choice(ir, ir.size)
        v = km_median(d[a], e[a]) - km_median(d[r], e[r])
        if np.isfinite(v):
            boots.append(v)
    ci = (float("nan"), float("nan"))
    if bootstrap and len(boots) >= 0.8 * bootstrap:
        ci = (float(np.quantile(boots, alpha / 2)), float(np.quantile(boots, 1 - alpha / 2)))
    return MedianDifference(arm, reference, float(diff) if np.isfinite(diff) else float("nan"),
                            ci, int(bootstrap), len(boots))


def mean_difference_by_visit(visits: pd.DataFrame, *, reference: str,
                             alpha: float = 0.05) -> pd.DataFrame:
    """Per visit day: mean healed % per arm, the difference (arm − reference) and Welch's
    (1 − alpha) interval. Visits without a usable measurement are left out."""
    v = visits.dropna(subset=["healed_percent"])
    arm = sorted(set(v["arm"]) - {reference})[0]
    rows = []
    for day, g in v.groupby("visit_day", sort=True):
        a = g[g["arm"] == arm]["healed_percent"].to_numpy(float)
        r = g[g["arm"] == reference]["healed_percent"].to_numpy(float)
        row = {"visit_day": int(day), "n_arm": int(a.size), "mean_arm": _m(a),
               "n_reference": int(r.size), "mean_reference": _m(r),
               "difference": _m(a) - _m(r), "ci_low": np.nan, "ci_high": np.nan}
        if a.size > 1 and r.size > 1:
            va, vr = a.var(ddof=1) / a.size, r.var(ddof=1) / r.size
            se = np.sqrt(va + vr)
            if se > 0:
                df = (va + vr) ** 2 / (va ** 2 / (a.size - 1) + vr ** 2 / (r.size - 1))
                h = float(stats.t.ppf(1 - alpha / 2, df) * se)
            else:
                h = 0.0
            row["ci_low"], row["ci_high"] = row["difference"] - h, row["difference"] + h
        rows.append(row)
    out = pd.DataFrame(rows)
    return out.rename(columns={"n_arm": f"n_{arm}", "mean_arm": f"mean_{arm}",
                               "n_reference": f"n_{reference}",
                               "mean_reference": f"mean_{reference}"})


def _m(x: np.ndarray) -> float:
    return float(x.mean()) if x.size else float("nan")
