"""Assessor reads from the review app and their agreement with the algorithm and each other.

:func:`load_reads` is the one place that knows the review app's schema (``review_reads``,
written by :mod:`pipeline.review`): the current version of every read, joined with the
algorithm result the assessor was shown. :func:`agreement_summary` is pure given the reads
frame (and a way to load masks), so tests feed it hand-made frames.

What is computed (reads with an estimate; ``unassessable`` verdicts left out):

* algorithm vs assessors — Bland–Altman of algorithm − assessor (each assessor, and the mean
  of the assessors' first reads per photo) and ICC(2,1) of [algorithm, assessor];
* between assessors — Bland–Altman and ICC(2,1) for every pair of assessors on the photos
  both read (first reads);
* within assessors — hidden repeats paired with the same assessor's first read: repeatability
  (Bland–Altman, within-SD, coefficient) and ICC(2,1);
* Dice between the algorithm's mask and each corrected mask (whole site, epithelialized,
  raw), the algorithm mask resampled to the corrected mask's size by nearest neighbour.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.report.agreement import (
    ICC,
    BlandAltman,
    Repeatability,
    bland_altman,
    dice,
    icc_2_1,
    repeatability,
    resample_nearest,
)
from pipeline.store import Store

__all__ = ["READ_COLUMNS", "AgreementSummary", "load_reads", "agreement_summary",
           "load_adjudications",
           "NO_READS_MESSAGE", "mask_loader"]

READ_COLUMNS = ["assessor", "photo_id", "estimate_percent", "verdict", "corrected_mask_file",
                "is_repeat", "algorithm_percent", "algorithm_mask_file"]

NO_READS_MESSAGE = "No assessor reads exist yet: agreement statistics are not available."

#: Fewest paired photos for an agreement statistic.
MIN_PAIRS = 3

_READS_SQL = """
SELECT r.assessor, r.photo_id, r.estimate_percent, r.verdict, r.corrected_mask_file,
       r.is_repeat, m.healed_percent AS algorithm_percent, s.mask_file AS algorithm_mask_file
FROM review_reads r
LEFT JOIN measurements m ON m.result_id = r.result_id
LEFT JOIN segmentations s ON s.result_id = r.result_id
WHERE r.version = (SELECT MAX(version) FROM review_reads q WHERE q.task_code = r.task_code)
ORDER BY r.assessor, r.photo_id, r.is_repeat, r.read_id
"""


def load_reads(store: Store) -> pd.DataFrame | None:
    """Current assessor reads (:data:`READ_COLUMNS`), or None when the store has no review.

    The algorithm's values are those of the result the assessor was shown, falling back to
    the photo's current result.
    """
    tables = {r[0] for r in store.conn.execute(
        "SELECT name FROM sqlite_master WHERE type='table'")}
    if "review_reads" not in tables:
        return None
    df = pd.DataFrame([dict(r) for r in store.conn.execute(_READS_SQL)], columns=READ_COLUMNS)
    if df.empty:
        return df
    current = {r["photo_id"]: r for r in store.current_results()}
    for col, key in (("algorithm_percent", "healed_percent"),
                     ("algorithm_mask_file", "mask_file")):
        fill = [current[p][key] if p in current else None for p in df["photo_id"]]
        df[col] = df[col].where(df[col].notna(), pd.Series(fill, index=df.index, dtype=object))
    df["is_repeat"] = df["is_repeat"].astype(bool)
    return df


@dataclass(frozen=True)
class AgreementSummary:
    """Agreement results; ``available`` is False (with ``message``) when there are no reads."""

    available: bool
    message: str
    n_reads: int = 0
    n_assessors: int = 0
    n_photos: int = 0
    verdicts: tuple[tuple[str, int], ...] = ()
    algorithm_vs_mean: BlandAltman | None = None
    algorithm_vs_mean_icc: ICC | None = None
    algorithm_vs_each: tuple[tuple[str, BlandAltman, ICC], ...] = ()
    between: tuple[tuple[str, str, BlandAltman, ICC], ...] = ()
    within: tuple[tuple[str, Repeatability, ICC], ...] = ()
    dice: pd.DataFrame = field(default_factory=pd.DataFrame)
    pairs: pd.DataFrame = field(default_factory=pd.DataFrame)
    algorithm_vs_adjudicated: tuple[BlandAltman, ICC] | None = None


def load_adjudications(store: Store) -> pd.DataFrame:
    """The latest adjudicated estimate per photo (``photo_id``, ``estimate_percent``,
    ``verdict``); empty when the store has no adjudication."""
    tables = {r[0] for r in store.conn.execute(
        "SELECT name FROM sqlite_master WHERE type='table'")}
    cols = ["photo_id", "estimate_percent", "verdict"]
    if "review_adjudications" not in tables:
        return pd.DataFrame(columns=cols)
    rows = store.conn.execute(
        "SELECT a.photo_id, a.estimate_percent, a.verdict FROM review_adjudications a "
        "WHERE a.version = (SELECT MAX(version) FROM review_adjudications b "
        "WHERE b.photo_id = a.photo_id)").fetchall()
    return pd.DataFrame([tuple(r) for r in rows], columns=cols)


def agreement_summary(reads: pd.DataFrame | None, *,
                      load_mask: Callable[[str], np.ndarray | None] | None = None,
                      alpha: float = 0.05,
                      adjudications: pd.DataFrame | None = None) -> AgreementSummary:
    """Agreement statistics from a reads frame (see :func:`load_reads`).

    ``load_mask(path)`` returns a label mask (or None when unreadable); without it no Dice
    is computed. ``pairs`` holds the algorithm-vs-assessor-mean points of the Bland–Altman plot
    (``photo_id``, ``algorithm``, ``assessors``). ``adjudications`` (see
    :func:`load_adjudications`) adds the algorithm against the adjudicated consensus.
    """
    if reads is None or reads.empty:
        return AgreementSummary(False, NO_READS_MESSAGE)
    n_all = int(len(reads))
    verdicts = tuple(sorted(reads["verdict"].value_counts().items()))
    est = reads[(reads["verdict"] != "unassessable") & reads["estimate_percent"].notna()].copy()
    est["estimate_percent"] = est["estimate_percent"].astype(float)
    est["algorithm_percent"] = pd.to_numeric(est["algorithm_percent"], errors="coerce")
    first = est[~est["is_repeat"]].drop_duplicates(["assessor", "photo_id"])
    assessors = sorted(first["assessor"].unique())
    wide = first.pivot(index="photo_id", columns="assessor", values="estimate_percent")
    algo = first.groupby("photo_id")["algorithm_percent"].first()

    mean_assessor = wide.mean(axis=1)
    pairs = pd.DataFrame({"photo_id": wide.index, "algorithm": algo.reindex(wide.index).values,
                          "assessors": mean_assessor.values}).dropna()
    ba_mean = icc_mean = None
    if len(pairs) >= MIN_PAIRS:
        ba_mean = bland_altman(pairs["algorithm"].values, pairs["assessors"].values, alpha=alpha)
        icc_mean = icc_2_1(pairs[["algorithm", "assessors"]].values, alpha=alpha)

    each = []
    for a in assessors:
        col = wide[a].dropna()
        x = np.column_stack([algo.reindex(col.index).values, col.values])
        x = x[np.all(np.isfinite(x), axis=1)]
        if len(x) >= MIN_PAIRS:
            each.append((a, bland_altman(x[:, 0], x[:, 1], alpha=alpha),
                         icc_2_1(x, alpha=alpha)))

    between = []
    for a, b in itertools.combinations(assessors, 2):
        x = wide[[a, b]].dropna().values
        if len(x) >= MIN_PAIRS:
            between.append((a, b, bland_altman(x[:, 0], x[:, 1], alpha=alpha),
                            icc_2_1(x, alpha=alpha)))

    within = []
    rep = est[est["is_repeat"]]
    for a, g in rep.groupby("assessor", sort=True):
        orig = first[first["assessor"] == a].set_index("photo_id")["estimate_percent"]
        r = g.drop_duplicates("photo_id").set_index("photo_id")["estimate_percent"]
        common = r.index.intersection(orig.index)
        if len(common) >= MIN_PAIRS:
            x = np.column_stack([orig[common].values, r[common].values])
            within.append((a, repeatability(x[:, 0], x[:, 1], alpha=alpha),
                           icc_2_1(x, alpha=alpha)))

    dice_rows = []
    if load_mask is not None:
        corrected = reads[reads["corrected_mask_file"].notna()
                          & reads["algorithm_mask_file"].notna()]
        for row in corrected.itertuples(index=False):
            ref = load_mask(str(row.corrected_mask_file))
            alg = load_mask(str(row.algorithm_mask_file))
            if ref is None or alg is None:
                continue
            alg = resample_nearest(alg, ref.shape[:2])
            dice_rows.append({"assessor": row.assessor, "photo_id": row.photo_id,
                              "dice_site": dice(alg, ref), "dice_epithelialized":
                              dice(alg, ref, label=1), "dice_raw": dice(alg, ref, label=2)})
    adj = None
    if adjudications is not None and len(adjudications):
        a = adjudications[adjudications["verdict"] != "unassessable"].dropna(
            subset=["estimate_percent"]).drop_duplicates("photo_id", keep="last")
        x = np.column_stack([algo.reindex(a["photo_id"]).to_numpy(float),
                             a["estimate_percent"].to_numpy(float)])
        x = x[np.all(np.isfinite(x), axis=1)]
        if len(x) >= MIN_PAIRS:
            adj = (bland_altman(x[:, 0], x[:, 1], alpha=alpha), icc_2_1(x, alpha=alpha))
    return AgreementSummary(
        True, f"{n_all} read(s) by {reads['assessor'].nunique()} assessor(s) of "
              f"{reads['photo_id'].nunique()} photo(s).",
        n_reads=n_all, n_assessors=int(reads["assessor"].nunique()),
        n_photos=int(reads["photo_id"].nunique()), verdicts=verdicts,
        algorithm_vs_mean=ba_mean, algorithm_vs_mean_icc=icc_mean,
        algorithm_vs_each=tuple(each), between=tuple(between), within=tuple(within),
        dice=pd.DataFrame(dice_rows, columns=["assessor", "photo_id", "dice_site",
                                              "dice_epithelialized", "dice_raw"]),
        pairs=pairs.reset_index(drop=True), algorithm_vs_adjudicated=adj)


def mask_loader(root: Path) -> Callable[[str], np.ndarray | None]:
    """A ``load_mask`` for :func:`agreement_summary`: PNG label masks relative to ``root``."""
    from PIL import Image

    root = Path(root).resolve()

    def load(rel: str) -> np.ndarray | None:
        p = (root / rel).resolve()
        if root not in p.parents or not p.is_file():
            return None
        try:
            with Image.open(p) as im:
                return np.asarray(im.convert("L") if im.mode not in ("L", "P") else im)
        except OSError:
            return None
    return load
