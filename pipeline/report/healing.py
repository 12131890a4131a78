"""Time to healing from the visits of one donor site.

Rules (stated in the report too):

* Only usable visits count (a visit whose photos were all excluded is skipped, so the
  interval around an event simply widens).
* The event is the first usable visit with healed % >= ``threshold``. With ``confirm`` it
  must be followed by a usable visit that is also >= ``threshold``; the event is then dated
  at the first visit of the pair. A threshold reached only at the last visit cannot be
  confirmed: the site is right-censored at that visit (``note='unconfirmed at last visit'``).
* Observed-visit version: ``day`` is the event visit's day (or, when censored, the last
  usable visit's day) and ``event`` says which.
* Interval-censored version: healing happened in ``(lower, upper]`` — ``lower`` is the last
  usable visit before the event visit (0 when the event is at the first visit), ``upper`` the
  event visit; a censored site has ``(last visit, inf)``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

__all__ = ["HealingTime", "time_to_healing", "healing_times"]


@dataclass(frozen=True)
class HealingTime:
    """Time to healing of one donor site, observed-visit and interval-censored versions."""

    event: bool
    day: float
    lower: float
    upper: float
    n_visits: int
    note: str = ""


def time_to_healing(days: np.ndarray | list[float], healed_percent: np.ndarray | list[float],
                    *, threshold: float = 95.0, confirm: bool = False) -> HealingTime | None:
    """Time to healing of one donor site from its visits.

    Parameters
    ----------
    days, healed_percent : array_like
        Visit days and healed % (NaN: no usable measurement, skipped); any order.
    threshold : float
        Healed % that counts as healed.
    confirm : bool
        Require confirmation at the next usable visit.

    Returns
    -------
    HealingTime or None
        None when the site has no usable visit.

    Examples
    --------
    >>> t = time_to_healing([0, 3, 7, 10], [0, 60, 96, 99])
    >>> t.event, t.day, t.lower, t.upper
    (True, 7.0, 3.0, 7.0)
    >>> time_to_healing([0, 3, 7, 10], [0, 60, 96, 90], confirm=True).event
    False
    """
    d = np.asarray(days, dtype=float)
    h = np.asarray(healed_percent, dtype=float)
    if d.shape != h.shape:
        raise ValueError(f"days and healed_percent differ in shape: {d.shape} vs {h.shape}")
    keep = np.isfinite(d) & np.isfinite(h)
    order = np.argsort(d[keep], kind="stable")
    d, h = d[keep][order], h[keep][order]
    if d.size == 0:
        return None
    above = h >= threshold
    note = ""
    for k in range(d.size):
        if not above[k]:
            continue
        if confirm:
            if k + 1 == d.size:
                note = "unconfirmed at last visit"
                break
            if not above[k + 1]:
                continue
        lower = float(d[k - 1]) if k > 0 else 0.0
        return HealingTime(True, float(d[k]), min(lower, float(d[k])), float(d[k]), int(d.size))
    last = float(d[-1])
    return HealingTime(False, last, last, float("inf"), int(d.size), note)


def healing_times(visits: pd.DataFrame, *, threshold: float = 95.0,
                  confirm: bool = False) -> pd.DataFrame:
    """Time to healing of every donor site in a per-visit table.

    Parameters
    ----------
    visits : DataFrame
        Per-visit table (``subject_id``, ``site``, ``visit_day``, ``healed_percent``, and
        ``arm`` when unblinded).

    Returns
    -------
    DataFrame
        One row per subject and site: ``subject_id``, (``arm``), ``site``, ``event``, ``day``,
        ``lower``, ``upper``, ``n_visits``, ``note``. Sites without a usable visit are left out.
    """
    keys = ["subject_id"] + (["arm"] if "arm" in visits.columns else []) + ["site"]
    rows = []
    for key, g in visits.groupby(keys, sort=True):
        t = time_to_healing(g["visit_day"].to_numpy(float),
                            pd.to_numeric(g["healed_percent"], errors="coerce").to_numpy(float),
                            threshold=threshold, confirm=confirm)
        if t is not None:
            rows.append(dict(zip(keys, key, strict=True)) | asdict(t))
    cols = keys + ["event", "day", "lower", "upper", "n_visits", "note"]
    return pd.DataFrame(rows, columns=cols)
