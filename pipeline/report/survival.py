"""Kaplan–Meier, Turnbull (interval-censored) and log-rank, through lifelines.

* Observed-visit times: :func:`kaplan_meier` (``lifelines.KaplanMeierFitter.fit``; the
  median's confidence interval from the exponential Greenwood band,
  ``lifelines.utils.median_survival_times``) and :func:`logrank`
  (``lifelines.statistics.multivariate_logrank_test``; for two groups it equals
  ``logrank_test``).
* Interval-censored times: :func:`turnbull` (``KaplanMeierFitter.fit_interval_censoring``,
  lifelines' Turnbull NPMLE). lifelines takes *closed* intervals; a visit interval
  ``(lower, upper]`` is passed as ``[lower + 1e-6, upper]``, as its documentation suggests.
  The NPMLE puts mass on innermost intervals without saying where inside them; the curve is
  drawn, and the median read, with each innermost interval's mass spread uniformly across it
  (linear between consecutive interval end points). The median's innermost interval is
  reported beside it, and its confidence interval is a seeded percentile bootstrap over sites.

Here a "survival" curve is the fraction of donor sites *not yet healed*.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

__all__ = ["KMSummary", "TurnbullSummary", "LogRank", "kaplan_meier", "turnbull", "logrank",
           "OPEN_EPS"]

#: Shift that turns lifelines' closed intervals into the visits' half-open ones.
OPEN_EPS = 1e-6


@dataclass(frozen=True)
class KMSummary:
    """A Kaplan–Meier estimate (fraction not yet healed) and its median."""

    label: str
    n: int
    n_events: int
    median: float
    median_ci: tuple[float, float]
    timeline: tuple[float, ...]
    survival: tuple[float, ...]
    ci_lower: tuple[float, ...]
    ci_upper: tuple[float, ...]

    def at(self, t: float) -> float:
        """S(t): the step function's value at time ``t``."""
        idx = np.searchsorted(np.asarray(self.timeline), t, side="right") - 1
        return float(self.survival[idx]) if idx >= 0 else 1.0


@dataclass(frozen=True)
class TurnbullSummary:
    """Turnbull NPMLE of the fraction not yet healed, from interval-censored times."""

    label: str
    n: int
    n_events: int
    median: float
    median_interval: tuple[float, float]
    median_ci: tuple[float, float]
    timeline: tuple[float, ...]
    survival: tuple[float, ...]
    n_bootstrap: int

    def at(self, t: float) -> float:
        """S(t) at an interval end point ``t`` (the mass of every innermost interval ending at
        or before ``t`` spent); between end points the curve is linear."""
        tl, sv = np.asarray(self.timeline), np.asarray(self.survival)
        keep = np.isfinite(tl)
        return float(np.interp(t, np.insert(tl[keep], 0, 0.0), np.insert(sv[keep], 0, 1.0)))


@dataclass(frozen=True)
class LogRank:
    """A log-rank test between groups."""

    statistic: float
    p_value: float
    df: int
    groups: tuple[str, ...]


def kaplan_meier(durations: np.ndarray, events: np.ndarray, *, label: str = "all",
                 alpha: float = 0.05) -> KMSummary:
    """Kaplan–Meier estimate with its median and the median's confidence interval.

    Examples
    --------
    >>> km = kaplan_meier(np.array([3, 5, 5, 7]), np.array([1, 1, 0, 1]))
    >>> round(km.at(5), 3), km.median
    (0.5, 5.0)
    """
    from lifelines import KaplanMeierFitter
    from lifelines.utils import median_survival_times

    d = np.asarray(durations, dtype=float)
    e = np.asarray(events, dtype=bool)
    kmf = KaplanMeierFitter(alpha=alpha)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        kmf.fit(d, e, label=label)
        ci = median_survival_times(kmf.confidence_interval_)
    sf = kmf.survival_function_.iloc[:, 0]
    band = kmf.confidence_interval_
    return KMSummary(
        label=label, n=int(d.size), n_events=int(e.sum()),
        median=float(kmf.median_survival_time_),
        median_ci=(float(ci.iloc[0, 0]), float(ci.iloc[0, 1])),
        timeline=tuple(float(t) for t in sf.index), survival=tuple(float(v) for v in sf),
        ci_lower=tuple(float(v) for v in band.iloc[:, 0]),
        ci_upper=tuple(float(v) for v in band.iloc[:, 1]))


def turnbull(lower: np.ndarray, upper: np.ndarray, *, label: str = "all", alpha: float = 0.05,
             bootstrap: int = 300, seed: int = 0) -> TurnbullSummary:
    """Turnbull NPMLE for healing in ``(lower, upper]`` (``upper=inf``: right-censored).

    Examples
    --------
    >>> tb = turnbull(np.array([0., 0, 0, 3, 5]), np.array([3., 3, 5, 5, np.inf]), bootstrap=0)
    >>> round(tb.at(3), 2), round(tb.at(5), 2), tb.median_interval, round(tb.median, 2)
    (0.47, 0.2, (0.0, 3.0), 2.81)
    """
    lo = np.asarray(lower, dtype=float)
    hi = np.asarray(upper, dtype=float)
    if lo.shape != hi.shape or np.any(lo > hi):
        raise ValueError("lower and upper must have the same shape and lower <= upper")
    times, surv = _npmle(lo, hi)
    median, (med_lo, med_hi) = _median(times, surv)
    ci = (np.nan, np.nan)
    if bootstrap and lo.size > 1:
        rng = np.random.default_rng(seed)
        meds = []
        for _ in range(bootstrap):
            i = rng.integers(0, lo.size, lo.size)
            meds.append(_median(*_npmle(lo[i], hi[i]))[0])
        m = np.sort(np.asarray(meds))
        ci = (float(np.quantile(m, alpha / 2, method="inverted_cdf")),
              float(np.quantile(m, 1 - alpha / 2, method="inverted_cdf")))
    return TurnbullSummary(
        label=label, n=int(lo.size), n_events=int(np.isfinite(hi).sum()), median=median,
        median_interval=(med_lo, med_hi), median_ci=ci,
        timeline=tuple(times.tolist()), survival=tuple(surv.tolist()),
        n_bootstrap=int(bootstrap))


def logrank(durations: np.ndarray, events: np.ndarray, groups: np.ndarray) -> LogRank:
    """Log-rank test of equal healing-time distributions between groups.

    Examples
    --------
    >>> r = logrank(np.array([3, 5, 7, 10, 14, 21]), np.array([1, 1, 1, 1, 1, 0]),
    ...             np.array(["a", "a", "a", "b", "b", "b"]))
    >>> r.p_value < 0.05
    True
    """
    from lifelines.statistics import multivariate_logrank_test

    g = np.asarray(groups).astype(str)
    res = multivariate_logrank_test(np.asarray(durations, float), g,
                                    np.asarray(events, bool))
    return LogRank(float(res.test_statistic), float(res.p_value),
                   int(res.degrees_of_freedom), tuple(sorted(set(g.tolist()))))


# ------------------------------------------------------------------------------ internals
def _npmle(lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(times, S): the distinct interval end points (shift removed) and the NPMLE at each,
    with the mass of every innermost interval ending at or before it spent.

    lifelines reports left limits: row i of its "upper" column is 1 - the mass of innermost
    intervals whose right end is < t_i, so the value at a time v is that column's value at the
    first row after v (after the eps shift is rounded away).
    """
    from lifelines import KaplanMeierFitter

    shifted = np.where(lo < hi, lo + OPEN_EPS, lo)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        kmf = KaplanMeierFitter().fit_interval_censoring(shifted, hi)
    sf = kmf.survival_function_
    raw = sf.index.to_numpy(float)
    up = sf[[c for c in sf.columns if c.endswith("upper")][0]].to_numpy(float)
    rounded = np.round(raw, 4)
    times = np.unique(rounded)
    surv = []
    for v in times:
        nxt = np.nonzero(raw > raw[rounded == v].max())[0]
        surv.append(up[nxt[0]] if nxt.size else 0.0)
    return times, np.asarray(surv)


def _median(times: np.ndarray, surv: np.ndarray) -> tuple[float, tuple[float, float]]:
    """Where the linear-within-innermost-intervals curve reaches 0.5, and that innermost
    interval ``(lo, hi]`` (consecutive end points); ``inf`` when it never does."""
    t = np.insert(times, 0, 0.0) if times[0] > 0 else times
    s = np.insert(surv, 0, 1.0) if times[0] > 0 else surv
    hit = np.nonzero(s <= 0.5)[0]
    if not hit.size or not np.isfinite(t[hit[0]]):
        last = float(t[hit[0] - 1]) if hit.size else float(t[-1])
        return float("inf"), (last, float("inf"))
    i = int(hit[0])
    if i == 0:
        return float(t[0]), (float(t[0]), float(t[0]))
    t0, t1, s0, s1 = float(t[i - 1]), float(t[i]), float(s[i - 1]), float(s[i])
    return t0 + (s0 - 0.5) / (s0 - s1) * (t1 - t0), (t0, t1)
