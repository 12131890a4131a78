"""Agreement statistics as pure functions: Bland–Altman, ICC(2,1), repeatability, Dice.

* :func:`bland_altman` — bias (mean of ``a - b``), its t confidence interval, and the 95 %
  limits of agreement ``bias ± 1.96 sd`` (Bland & Altman 1986).
* :func:`icc_2_1` — two-way random effects, absolute agreement, single rater (Shrout & Fleiss
  1979 "ICC(2,1)"; McGraw & Wong 1996 "ICC(A,1)") from the two-way ANOVA mean squares, with
  the F-based confidence interval of McGraw & Wong (identical to R's ``psych::ICC``, checked
  to 1e-8 by the R cross-check test). That interval can leave the range an ICC(A,1) can take
  (its lower end falls below -1 with few targets and a negative estimate), so ``ICC.ci`` is
  that interval truncated to [-1, 1] and ``ICC.ci_untruncated`` keeps the F-based bounds.
* :func:`repeatability` — within-rater agreement of repeated reads: Bland–Altman of the pairs,
  the within-subject SD and the repeatability coefficient ``1.96 * sqrt(2) * sw``.
* :func:`dice` — overlap of two label masks for one class or for the whole donor site.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

__all__ = ["BlandAltman", "ICC", "Repeatability", "bland_altman", "icc_2_1", "repeatability",
           "dice", "resample_nearest"]


@dataclass(frozen=True)
class BlandAltman:
    """Bland–Altman summary of ``a - b``."""

    n: int
    bias: float
    sd: float
    bias_ci: tuple[float, float]
    loa_lower: float
    loa_upper: float


@dataclass(frozen=True)
class ICC:
    """An intraclass correlation with its confidence interval and the ANOVA mean squares."""

    value: float
    ci: tuple[float, float]
    n_targets: int
    n_raters: int
    ms_rows: float
    ms_cols: float
    ms_error: float
    form: str = "ICC(2,1)"
    ci_untruncated: tuple[float, float] = (float("nan"), float("nan"))


@dataclass(frozen=True)
class Repeatability:
    """Agreement of repeated reads by one rater."""

    bland_altman: BlandAltman
    within_sd: float
    coefficient: float


def bland_altman(a: np.ndarray, b: np.ndarray, *, alpha: float = 0.05) -> BlandAltman:
    """Bland–Altman bias and limits of agreement of paired measurements.

    Pairs with a NaN are dropped. With fewer than two pairs the spread is NaN.

    Examples
    --------
    >>> ba = bland_altman(np.array([10., 20, 30, 40]), np.array([8., 21, 27, 40]))
    >>> ba.bias, round(ba.sd, 4), round(ba.loa_upper, 3)
    (1.0, 1.8257, 4.578)
    """
    a = np.asarray(a, float)
    b = np.asarray(b, float)
    if a.shape != b.shape:
        raise ValueError(f"a and b differ in shape: {a.shape} vs {b.shape}")
    ok = np.isfinite(a) & np.isfinite(b)
    d = a[ok] - b[ok]
    n = int(d.size)
    if n == 0:
        nan = float("nan")
        return BlandAltman(0, nan, nan, (nan, nan), nan, nan)
    bias = float(d.mean())
    sd = float(d.std(ddof=1)) if n > 1 else float("nan")
    z = float(stats.norm.ppf(1 - alpha / 2))
    half = float(stats.t.ppf(1 - alpha / 2, n - 1) * sd / np.sqrt(n)) if n > 1 else float("nan")
    return BlandAltman(n, bias, sd, (bias - half, bias + half), bias - z * sd, bias + z * sd)


def icc_2_1(ratings: np.ndarray, *, alpha: float = 0.05) -> ICC:
    """ICC(2,1): two-way random effects, absolute agreement, single rater.

    Parameters
    ----------
    ratings : ndarray, shape (n_targets, n_raters)
        Complete cases only (rows with a NaN are dropped).

    Examples
    --------
    Shrout & Fleiss (1979), Table 2: 6 targets rated by 4 judges.

    >>> x = np.array([[9, 2, 5, 8], [6, 1, 3, 2], [8, 4, 6, 8],
    ...               [7, 1, 2, 6], [10, 5, 6, 9], [6, 2, 4, 7]], float)
    >>> round(icc_2_1(x).value, 2)
    0.29
    """
    x = np.asarray(ratings, float)
    if x.ndim != 2:
        raise ValueError(f"ratings must be 2-D (targets, raters), got shape {x.shape}")
    x = x[np.all(np.isfinite(x), axis=1)]
    n, k = x.shape
    if n < 2 or k < 2:
        nan = float("nan")
        return ICC(nan, (nan, nan), int(n), int(k), nan, nan, nan)
    grand = x.mean()
    ss_rows = k * ((x.mean(axis=1) - grand) ** 2).sum()
    ss_cols = n * ((x.mean(axis=0) - grand) ** 2).sum()
    ss_err = ((x - grand) ** 2).sum() - ss_rows - ss_cols
    msr = ss_rows / (n - 1)
    msc = ss_cols / (k - 1)
    mse = ss_err / ((n - 1) * (k - 1))
    denom = msr + (k - 1) * mse + k * (msc - mse) / n
    icc = float((msr - mse) / denom) if denom > 0 else float("nan")
    raw = _icc_ci(icc, msr, msc, mse, n, k, alpha)
    ci = tuple(float(np.clip(v, -1.0, 1.0)) if np.isfinite(v) else v for v in raw)
    return ICC(icc, ci, int(n), int(k), float(msr), float(msc), float(mse),
               ci_untruncated=raw)


def repeatability(first: np.ndarray, second: np.ndarray, *,
                  alpha: float = 0.05) -> Repeatability:
    """Within-rater agreement from pairs of reads of the same photos.

    ``within_sd`` is ``sqrt(mean(d**2) / 2)`` of the pair differences ``d``; the repeatability
    coefficient is ``1.96 * sqrt(2) * within_sd`` (Bland & Altman 1999).

    Examples
    --------
    >>> r = repeatability(np.array([50., 60, 70]), np.array([52., 58, 70]))
    >>> round(r.within_sd, 4), round(r.coefficient, 3)
    (1.1547, 3.201)
    """
    ba = bland_altman(first, second, alpha=alpha)
    a, b = np.asarray(first, float), np.asarray(second, float)
    ok = np.isfinite(a) & np.isfinite(b)
    d = a[ok] - b[ok]
    sw = float(np.sqrt(np.mean(d ** 2) / 2)) if d.size else float("nan")
    return Repeatability(ba, sw, float(stats.norm.ppf(1 - alpha / 2) * np.sqrt(2) * sw))


def dice(a: np.ndarray, b: np.ndarray, *, label: int | None = None) -> float:
    """Dice coefficient ``2|A∩B| / (|A|+|B|)`` of two label masks.

    Parameters
    ----------
    a, b : ndarray of int, same shape
        Label masks (0 background, 1 epithelialized, 2 raw).
    label : int or None
        The class compared; None compares the whole donor site (labels > 0).

    Returns
    -------
    float
        NaN when both masks lack the class.

    Examples
    --------
    >>> a = np.array([[1, 1, 2, 0]]); b = np.array([[1, 2, 2, 0]])
    >>> dice(a, b, label=1), round(dice(a, b, label=2), 3), dice(a, b)
    (0.6666666666666666, 0.667, 1.0)
    """
    a = np.asarray(a)
    b = np.asarray(b)
    if a.shape != b.shape:
        raise ValueError(f"masks differ in shape: {a.shape} vs {b.shape}")
    ma = a > 0 if label is None else a == label
    mb = b > 0 if label is None else b == label
    total = int(ma.sum()) + int(mb.sum())
    return float("nan") if total == 0 else 2.0 * int((ma & mb).sum()) / total


def resample_nearest(mask: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Resize a label mask to ``shape`` (H, W) by nearest neighbour (pixel centres).

    Examples
    --------
    >>> resample_nearest(np.array([[1, 2], [0, 1]]), (4, 4))[0].tolist()
    [1, 1, 2, 2]
    """
    m = np.asarray(mask)
    h, w = shape
    if m.shape[:2] == (h, w):
        return m
    rows = np.minimum(((np.arange(h) + 0.5) * m.shape[0] / h).astype(int), m.shape[0] - 1)
    cols = np.minimum(((np.arange(w) + 0.5) * m.shape[1] / w).astype(int), m.shape[1] - 1)
    return m[rows[:, None], cols[None, :]]


def _icc_ci(icc: float, msr: float, msc: float, mse: float, n: int, k: int,
            alpha: float) -> tuple[float, float]:
    """McGraw & Wong (1996) F-based interval for ICC(A,1) with Satterthwaite's df."""
    if not np.isfinite(icc) or mse <= 0:
        return (float("nan"), float("nan"))
    fj = msc / mse
    vn = (k - 1) * (n - 1) * (k * icc * fj + n * (1 + (k - 1) * icc) - k * icc) ** 2
    vd = (n - 1) * k ** 2 * icc ** 2 * fj ** 2 + (n * (1 + (k - 1) * icc) - k * icc) ** 2
    v = vn / vd
    f_u = stats.f.ppf(1 - alpha / 2, n - 1, v)
    f_l = stats.f.ppf(1 - alpha / 2, v, n - 1)
    lo = n * (msr - f_u * mse) / (f_u * (k * msc + (k * n - k - n) * mse) + n * msr)
    hi = n * (f_l * msr - mse) / (k * msc + (k * n - k - n) * mse + n * f_l * msr)
    return (float(lo), float(hi))
