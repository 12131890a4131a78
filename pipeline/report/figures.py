"""The report's figures (matplotlib, object API — no pyplot state), saved as PNG and SVG.

Each ``plot_*`` function returns a :class:`matplotlib.figure.Figure`; :func:`save_figure`
writes it as ``<stem>.png`` and ``<stem>.svg`` and returns the SVG text for inlining. SVG text
is kept as text (``svg.fonttype='none'``) and ids are salted so the output is reproducible.
Groups are given as a mapping label -> rows; a blinded report passes one pooled group.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from scipy import stats

from pipeline.report.agreement import BlandAltman
from pipeline.report.survival import KMSummary, TurnbullSummary
from pipeline.stages import atomic_write_bytes

__all__ = ["FigureFiles", "save_figure", "plot_subject_curves", "plot_mean_curves",
           "plot_time_to_healing", "plot_bland_altman", "mean_band"]

_PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b")
_RC = {"svg.fonttype": "none", "svg.hashsalt": "donorsite-report", "font.size": 9}


@dataclass(frozen=True)
class FigureFiles:
    """One saved figure."""

    stem: str
    title: str
    png: Path
    svg: Path
    svg_text: str


def save_figure(fig: Figure, stem: str, out_dir: Path, *, title: str) -> FigureFiles:
    """Write ``fig`` as PNG (150 dpi) and SVG; return the paths and the inline SVG text."""
    out_dir = Path(out_dir)
    with matplotlib.rc_context(_RC):
        png, svg = io.BytesIO(), io.BytesIO()
        fig.savefig(png, format="png", dpi=150, metadata={"Software": None})
        fig.savefig(svg, format="svg", metadata={"Date": None, "Creator": None})
    atomic_write_bytes(out_dir / f"{stem}.png", png.getvalue())
    atomic_write_bytes(out_dir / f"{stem}.svg", svg.getvalue())
    text = svg.getvalue().decode()
    inline = text[text.index("<svg"):]  # drop the XML declaration and DOCTYPE
    return FigureFiles(stem, title, out_dir / f"{stem}.png", out_dir / f"{stem}.svg", inline)


def mean_band(values: pd.Series, *, alpha: float = 0.05) -> tuple[float, float, float, int]:
    """Mean with a t confidence interval (clipped to [0, 100]): (mean, low, high, n)."""
    v = pd.to_numeric(values, errors="coerce").dropna().to_numpy(float)
    n = int(v.size)
    if n == 0:
        return (np.nan, np.nan, np.nan, 0)
    m = float(v.mean())
    if n < 2:
        return (m, np.nan, np.nan, n)
    half = float(stats.t.ppf(1 - alpha / 2, n - 1) * v.std(ddof=1) / np.sqrt(n))
    return (m, max(0.0, m - half), min(100.0, m + half), n)


def plot_subject_curves(groups: Mapping[str, pd.DataFrame], *, threshold: float) -> Figure:
    """Healed % by day, one line per donor site, one panel per group."""
    fig = Figure(figsize=(4.2 * len(groups) + 0.6, 3.6), layout="constrained")
    axes = fig.subplots(1, len(groups), sharey=True, squeeze=False)[0]
    for i, (ax, (label, df)) in enumerate(zip(axes, groups.items(), strict=True)):
        colour = _PALETTE[i % len(_PALETTE)]
        for _, g in df.dropna(subset=["healed_percent"]).groupby(["subject_id", "site"]):
            g = g.sort_values("visit_day")
            ax.plot(g["visit_day"], g["healed_percent"], "-o", color=colour, lw=0.9, ms=2.5,
                    alpha=0.6)
        ax.axhline(threshold, color="0.4", ls="--", lw=0.8)
        n = df.groupby(["subject_id", "site"]).ngroups
        ax.set_title(f"{label} (n = {n})")
        ax.set_xlabel("day after harvest")
        ax.set_ylim(-2, 102)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("healed (% epithelialized)")
    return fig


def plot_mean_curves(groups: Mapping[str, pd.DataFrame], *, threshold: float,
                     alpha: float = 0.05) -> Figure:
    """Mean healed % by day per group with its (1 - alpha) confidence band."""
    fig = Figure(figsize=(5.6, 3.8), layout="constrained")
    ax = fig.subplots()
    for i, (label, df) in enumerate(groups.items()):
        colour = _PALETTE[i % len(_PALETTE)]
        rows = [(day, *mean_band(g["healed_percent"], alpha=alpha))
                for day, g in df.groupby("visit_day", sort=True)]
        t = pd.DataFrame(rows, columns=["day", "mean", "low", "high", "n"]).dropna(
            subset=["mean"])
        ax.plot(t["day"], t["mean"], "-o", color=colour, ms=3, label=label)
        ax.fill_between(t["day"], t["low"], t["high"], color=colour, alpha=0.2, lw=0)
    ax.axhline(threshold, color="0.4", ls="--", lw=0.8)
    ax.set_xlabel("day after harvest")
    ax.set_ylabel("mean healed (%), 95 % CI")
    ax.set_ylim(-2, 102)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    return fig


def plot_time_to_healing(km: Mapping[str, KMSummary], tb: Mapping[str, TurnbullSummary], *,
                         threshold: float, horizon: float, last_visit: float | None = None,
                         censored: Mapping[str, np.ndarray] | None = None) -> Figure:
    """Fraction not yet healed: Kaplan–Meier on visit days (solid, CI band, ``+`` at each
    censored site) and the interval-censored Turnbull estimate (dashed, linear within
    innermost intervals). The axis runs to ``horizon`` (past the last visit, dotted), so a
    drop at the last visit is not drawn on the frame."""
    fig = Figure(figsize=(5.6, 3.8), layout="constrained")
    ax = fig.subplots()
    for i, label in enumerate(km):
        colour = _PALETTE[i % len(_PALETTE)]
        k = km[label]
        t = np.append(np.asarray(k.timeline), horizon)
        ax.step(t, np.append(k.survival, k.survival[-1]), where="post", color=colour,
                label=f"{label}: visit days")
        ax.fill_between(t, np.append(k.ci_lower, k.ci_lower[-1]),
                        np.append(k.ci_upper, k.ci_upper[-1]), step="post", color=colour,
                        alpha=0.15, lw=0)
        c = np.asarray((censored or {}).get(label, ()), float)
        if c.size:
            ax.plot(c, [k.at(v) for v in c], "+", color=colour, ms=7, mew=1.2,
                    label=f"{label}: censored" if i == 0 else None)
        if label in tb:  # linear within innermost intervals (mass spread uniformly)
            b = tb[label]
            tt = np.asarray(b.timeline)
            keep = np.isfinite(tt)
            tt = np.append(np.insert(tt[keep], 0, 0.0), horizon)
            s = np.asarray(b.survival)[keep]
            s = np.append(np.insert(s, 0, 1.0), s[-1] if s.size else 1.0)
            ax.plot(tt, s, color=colour, ls="--", lw=1, label=f"{label}: interval-censored")
    if last_visit is not None:
        ax.axvline(last_visit, color="0.5", ls=":", lw=0.8)
    ax.set_xlim(0, horizon)
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("day after harvest")
    ax.set_ylabel(f"fraction not yet healed (< {threshold:g} %)")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper right", fontsize=7)
    return fig


def plot_bland_altman(a: np.ndarray, b: np.ndarray, ba: BlandAltman, *, xlabel: str,
                      ylabel: str) -> Figure:
    """Bland–Altman plot: difference against mean, bias and limits of agreement."""
    fig = Figure(figsize=(5.0, 3.6), layout="constrained")
    ax = fig.subplots()
    a, b = np.asarray(a, float), np.asarray(b, float)
    ax.scatter((a + b) / 2, a - b, s=12, color=_PALETTE[0], alpha=0.7)
    for y, style, text in ((ba.bias, "-", "bias"), (ba.loa_lower, "--", "lower limit"),
                           (ba.loa_upper, "--", "upper limit")):
        if np.isfinite(y):
            ax.axhline(y, color="0.3", ls=style, lw=0.9)
            ax.annotate(f"{text} {y:+.1f}", (1.0, y), xycoords=("axes fraction", "data"),
                        ha="right", va="bottom", fontsize=7)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    return fig
