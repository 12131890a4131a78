"""Statistics of the report against hand-computed small cases."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from pipeline.report.agreement import (
    bland_altman,
    dice,
    icc_2_1,
    repeatability,
    resample_nearest,
)
from pipeline.report.assessors import NO_READS_MESSAGE, agreement_summary
from pipeline.report.healing import healing_times, time_to_healing
from pipeline.report.options import ReportError, ReportOptions
from pipeline.report.survival import kaplan_meier, logrank, turnbull


# ----------------------------------------------------------------------- time to healing
def test_first_visit_at_threshold_and_interval():
    t = time_to_healing([0, 3, 5, 7, 10], [0, 50, 96, 80, 97], threshold=95)
    assert (t.event, t.day, t.lower, t.upper, t.n_visits) == (True, 5.0, 3.0, 5.0, 5)


def test_confirmation_skips_an_unconfirmed_visit():
    t = time_to_healing([0, 3, 5, 7, 10, 14], [0, 50, 96, 80, 97, 99], confirm=True)
    assert (t.event, t.day, t.lower, t.upper) == (True, 10.0, 7.0, 10.0)


def test_threshold_only_at_last_visit_is_unconfirmed_and_censored():
    t = time_to_healing([0, 3, 5, 7, 10], [0, 50, 96, 80, 97], confirm=True)
    assert (t.event, t.day, t.lower, t.upper) == (False, 10.0, 10.0, math.inf)
    assert t.note == "unconfirmed at last visit"
    # without confirmation the same site heals at day 5
    assert time_to_healing([0, 3, 5, 7, 10], [0, 50, 96, 80, 97]).day == 5.0


def test_not_healed_is_right_censored_at_last_usable_visit():
    t = time_to_healing([0, 3, 5, 7, 21], [0, 20, 40, 60, np.nan])
    assert (t.event, t.day, t.lower, t.upper, t.n_visits) == (False, 7.0, 7.0, math.inf, 4)


def test_excluded_visit_widens_the_interval_and_order_does_not_matter():
    t = time_to_healing([7, 0, 5, 3], [96, 0, np.nan, 40])
    assert (t.event, t.day, t.lower, t.upper) == (True, 7.0, 3.0, 7.0)


def test_threshold_choice_and_no_usable_visit():
    days, h = [0, 3, 5, 7], [0, 91, 96, 100]
    assert time_to_healing(days, h, threshold=90).day == 3.0
    assert time_to_healing(days, h, threshold=100).day == 7.0
    assert time_to_healing([0, 3], [np.nan, np.nan]) is None
    with pytest.raises(ValueError, match="differ in shape"):
        time_to_healing([0, 3], [1.0])


def test_healing_times_per_site_keeps_arm():
    v = pd.DataFrame({"subject_id": ["A"] * 3 + ["B"] * 3, "arm": ["x"] * 3 + ["y"] * 3,
                      "site": "thigh", "visit_day": [0, 5, 10] * 2,
                      "healed_percent": [0, 97, 99, 0, 50, 80]})
    t = healing_times(v, threshold=95)
    assert list(t.columns[:3]) == ["subject_id", "arm", "site"]
    assert t["event"].tolist() == [True, False] and t["day"].tolist() == [5.0, 10.0]


def test_options_are_validated():
    with pytest.raises(ReportError, match="threshold must be in"):
        ReportOptions(threshold=150)
    with pytest.raises(ReportError, match="'abc'"):
        ReportOptions(threshold="abc")
    with pytest.raises(ReportError, match="bootstrap"):
        ReportOptions(bootstrap=-1)


# -------------------------------------------------------------------------------- survival
def test_kaplan_meier_with_censoring_by_hand():
    # t: 3 5 5+ 7 10 21+   at risk 6,5,3,2: S = 5/6, 5/6*4/5, *2/3, *1/2
    km = kaplan_meier(np.array([3, 5, 5, 7, 10, 21]), np.array([1, 1, 0, 1, 1, 0]))
    expected = {0: 1.0, 3: 5 / 6, 5: 4 / 6, 7: 4 / 9, 10: 2 / 9, 21: 2 / 9}
    for t, s in expected.items():
        assert km.at(t) == pytest.approx(s)
    assert km.at(4.9) == pytest.approx(5 / 6)
    assert km.median == 7.0 and km.n == 6 and km.n_events == 4
    lo, hi = km.median_ci
    assert lo <= 7.0 <= hi


def test_median_not_reached_is_infinite():
    km = kaplan_meier(np.array([3, 21, 21, 21]), np.array([1, 0, 0, 0]))
    assert math.isinf(km.median)


def test_turnbull_interval_censoring_by_hand():
    # (0,3] (0,3] (0,5] (3,5] (5,inf): innermost intervals (0,3], (3,5], (5,inf).
    # q(5,inf) = 1/5; p1 + p2 = 4/5 maximizing p1^2 p2 -> p1 = 8/15, p2 = 4/15.
    tb = turnbull(np.array([0., 0, 0, 3, 5]), np.array([3., 3, 5, 5, np.inf]), bootstrap=0)
    assert tb.at(3) == pytest.approx(7 / 15, abs=2e-3)
    assert tb.at(5) == pytest.approx(1 / 5, abs=2e-3)
    assert tb.at(1.5) == pytest.approx(1 - 4 / 15, abs=2e-3)  # mass spread across (0, 3]
    # S reaches 0.5 where (8/15) t / 3 = 1/2
    assert tb.median_interval == (0.0, 3.0) and tb.median == pytest.approx(2.8125, abs=0.02)
    assert tb.n == 5 and tb.n_events == 4


def test_turnbull_disjoint_intervals_and_bootstrap_ci():
    lo = np.array([0., 3, 5, 7, 21])
    hi = np.array([3., 5, 7, 10, np.inf])
    tb = turnbull(lo, hi, bootstrap=50, seed=1)
    assert [round(tb.at(t), 3) for t in (3, 5, 7, 10)] == [0.8, 0.6, 0.4, 0.2]
    assert tb.median_interval == (5.0, 7.0) and tb.median == pytest.approx(6.0)
    assert tb.median_ci[0] <= 6.0 <= tb.median_ci[1]
    again = turnbull(lo, hi, bootstrap=50, seed=1)
    assert again.median_ci == tb.median_ci
    with pytest.raises(ValueError, match="lower <= upper"):
        turnbull(np.array([5.0]), np.array([3.0]))


def test_logrank_by_hand():
    # a: 1, 2; b: 3, 4 (all events). O_a - E_a = 2 - (1/2 + 1/3); V = 1/4 + 2/9
    r = logrank(np.array([1, 2, 3, 4]), np.array([1, 1, 1, 1]), np.array(["a", "a", "b", "b"]))
    chi2 = (2 - 5 / 6) ** 2 / (1 / 4 + 2 / 9)
    assert r.statistic == pytest.approx(chi2)
    assert r.p_value == pytest.approx(0.0896, abs=5e-4)
    assert r.groups == ("a", "b") and r.df == 1


# ------------------------------------------------------------------------------- agreement
def test_bland_altman_by_hand():
    # d = 2, -1, 3, 0: mean 1, sd sqrt(10/3)
    ba = bland_altman(np.array([10., 20, 30, 40, np.nan]), np.array([8., 21, 27, 40, 5]))
    sd = math.sqrt(10 / 3)
    assert ba.n == 4 and ba.bias == 1.0 and ba.sd == pytest.approx(sd)
    assert ba.loa_lower == pytest.approx(1 - 1.959964 * sd, abs=1e-5)
    assert ba.loa_upper == pytest.approx(1 + 1.959964 * sd, abs=1e-5)
    half = 3.182446 * sd / 2  # t(0.975, 3) sd / sqrt(4)
    assert ba.bias_ci == pytest.approx((1 - half, 1 + half), abs=1e-5)


def test_icc_2_1_shrout_fleiss_1979():
    x = np.array([[9, 2, 5, 8], [6, 1, 3, 2], [8, 4, 6, 8],
                  [7, 1, 2, 6], [10, 5, 6, 9], [6, 2, 4, 7]], float)
    icc = icc_2_1(x)
    assert round(icc.value, 2) == 0.29
    # Table 3 of Shrout & Fleiss: BMS 11.24, JMS 32.49, EMS 1.02
    assert (round(icc.ms_rows, 2), round(icc.ms_cols, 2), round(icc.ms_error, 2)) == (
        11.24, 32.49, 1.02)
    assert icc.ci[0] == pytest.approx(0.019, abs=2e-3) and icc.ci[1] == pytest.approx(
        0.761, abs=2e-3)
    perfect = icc_2_1(np.array([[1., 1], [5, 5], [9, 9]]))
    assert perfect.value == pytest.approx(1.0)
    shifted = icc_2_1(np.array([[1., 11], [5, 15], [9, 19]]))  # consistent, not absolute
    assert shifted.value < 0.6


def test_repeatability_by_hand():
    r = repeatability(np.array([50., 60, 70]), np.array([52., 58, 70]))
    assert r.within_sd == pytest.approx(math.sqrt(4 / 3))
    assert r.coefficient == pytest.approx(1.959964 * math.sqrt(2) * math.sqrt(4 / 3), 1e-5)
    assert r.bland_altman.bias == pytest.approx(0.0)


def test_dice_by_hand_and_resampling():
    a = np.array([[1, 1, 2, 0], [0, 0, 0, 0]])
    b = np.array([[1, 2, 2, 0], [0, 0, 1, 0]])
    assert dice(a, b, label=1) == pytest.approx(2 * 1 / (2 + 2))
    assert dice(a, b, label=2) == pytest.approx(2 * 1 / (1 + 2))
    assert dice(a, b) == pytest.approx(2 * 3 / (3 + 4))
    assert math.isnan(dice(np.zeros((2, 2)), np.zeros((2, 2)), label=1))
    with pytest.raises(ValueError, match="differ in shape"):
        dice(a, b[:1])
    big = resample_nearest(b, (4, 8))
    assert big.shape == (4, 8) and dice(resample_nearest(big, (2, 4)), b) == 1.0


def test_agreement_summary_on_hand_made_reads():
    masks = {"alg/p1.png": np.array([[1, 1, 2, 2]]), "cor/p1.png": np.array([[1, 1, 1, 2]])}
    algo = {"p1": 50.0, "p2": 60.0, "p3": 70.0, "p4": 80.0}
    rows = []
    for p, v in algo.items():
        rows.append(("A", p, v + 2, "accept", None, False))
        rows.append(("B", p, v - 2, "accept", None, False))
    rows += [("A", "p1", 53.0, "accept", None, True), ("A", "p2", 61.0, "accept", None, True),
             ("A", "p3", 72.0, "accept", None, True),
             ("B", "p1", None, "needs_correction", "cor/p1.png", False),
             ("B", "p4", 10.0, "unassessable", None, True)]
    reads = pd.DataFrame(rows, columns=["assessor", "photo_id", "estimate_percent", "verdict",
                                        "corrected_mask_file", "is_repeat"])
    reads["algorithm_percent"] = reads["photo_id"].map(algo)
    reads["algorithm_mask_file"] = "alg/p1.png"
    s = agreement_summary(reads, load_mask=masks.get)
    assert s.available and s.n_assessors == 2 and s.n_photos == 4
    # algorithm vs the assessors' mean: every difference is 0
    assert s.algorithm_vs_mean.n == 4 and s.algorithm_vs_mean.bias == pytest.approx(0.0)
    (a, ba_a, _), (b, ba_b, _) = s.algorithm_vs_each
    assert (a, ba_a.bias, b, ba_b.bias) == ("A", -2.0, "B", 2.0)
    (x, y, ba_ab, icc_ab), = s.between
    assert (x, y, ba_ab.bias, ba_ab.sd) == ("A", "B", 4.0, 0.0)
    assert 0.9 < icc_ab.value < 1.0
    (name, rep, _), = s.within  # A: first 52, 62, 72 vs repeats 53, 61, 72
    assert name == "A" and rep.bland_altman.n == 3
    assert rep.within_sd == pytest.approx(math.sqrt((1 + 1 + 0) / 3 / 2))
    d = s.dice.iloc[0]
    assert d["dice_epithelialized"] == pytest.approx(2 * 2 / 5)
    assert d["dice_raw"] == pytest.approx(2 * 1 / 3) and d["dice_site"] == 1.0
    assert dict(s.verdicts) == {"accept": 11, "needs_correction": 1, "unassessable": 1}
    assert s.algorithm_vs_adjudicated is None
    # the adjudicated consensus, 3 points below the algorithm (an unassessable one left out)
    adj = pd.DataFrame({"photo_id": list(algo) + ["p1"],
                        "estimate_percent": [algo[p] - 3 for p in algo] + [None],
                        "verdict": ["accept"] * len(algo) + ["unassessable"]})
    adj = adj.iloc[:-1]
    ba, _icc = agreement_summary(reads, adjudications=adj).algorithm_vs_adjudicated
    assert ba.n == len(algo) and ba.bias == pytest.approx(3.0)


def test_agreement_without_reads_says_so():
    for reads in (None, pd.DataFrame(columns=["assessor"])):
        s = agreement_summary(reads)
        assert not s.available and s.message == NO_READS_MESSAGE


def test_icc_interval_stays_in_range_and_keeps_the_f_bounds():
    # 5 targets, 2 raters, a negative ICC: the McGraw & Wong lower bound is -1.55 (psych::ICC
    # gives -1.551225613 for the same data); the reported interval is truncated to [-1, 1].
    x = np.array([[0.3, 1.2], [-0.9, 0.1], [1.1, -0.6], [-0.2, 0.4], [0.8, -1.3]])
    icc = icc_2_1(x)
    assert icc.value < 0
    assert -1.0 <= icc.ci[0] <= icc.ci[1] <= 1.0
    assert icc.ci_untruncated[0] < -1.0
    assert icc.ci[0] == -1.0 and icc.ci[1] == pytest.approx(icc.ci_untruncated[1])
