"""The report's survival and agreement numbers against R (survival, psych) on the same
ADTTE file. Skipped, with a message, only where ``Rscript`` is not installed."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline.report.adam import adtte, populations
from pipeline.report.agreement import icc_2_1
from pipeline.report.effects import cox_hazard_ratio, reference_arm
from pipeline.report.survival import kaplan_meier, logrank

pytestmark = pytest.mark.r_crosscheck
SCRIPT = Path(__file__).parent / "r" / "crosscheck.R"
DAYS = [0, 3, 7, 10, 14, 21]


def _study(seed: int = 7) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Visits-like and healing-times-like tables: 2 arms x 20 sites, ties on visit days."""
    rng = np.random.default_rng(seed)
    times, visits = [], []
    for i in range(40):
        arm = "control" if i % 2 else "msc"
        heal = rng.choice(DAYS[1:] + [99], p=[.05, .2, .3, .2, .1, .15] if arm == "msc"
                          else [.02, .1, .2, .3, .2, .18])
        last = DAYS[-1] if rng.random() > 0.15 else DAYS[rng.integers(2, 5)]
        event = heal <= last
        day = heal if event else last
        prev = max([d for d in DAYS if d < day], default=0)
        times.append({"subject_id": f"S{i:02d}", "arm": arm, "site": "thigh", "event": event,
                      "day": float(day), "lower": float(prev) if event else float(day),
                      "upper": float(day) if event else np.inf, "n_visits": 3, "note": ""})
        visits += [{"subject_id": f"S{i:02d}", "site": "thigh", "visit_day": d,
                    "qc_state": "ok"} for d in DAYS if d <= last]
    return pd.DataFrame(visits), pd.DataFrame(times)


def _r(*args: Path | str) -> dict[str, float]:
    if shutil.which("Rscript") is None:
        pytest.skip("Rscript is not installed: the R cross-check cannot run here (CI installs "
                    "r-base-core and r-cran-survival in .ci/run)")
    res = subprocess.run(["Rscript", str(SCRIPT), *map(str, args)], capture_output=True,
                         text=True, timeout=120)
    if res.returncode != 0 and "there is no package called" in res.stderr:
        pytest.skip(f"R lacks a package: {res.stderr.strip()[-200:]}")
    assert res.returncode == 0, res.stderr
    return {k: float(v) for k, v in (line.rsplit(",", 1) for line in res.stdout.splitlines())}


@pytest.fixture(scope="module")
def crosscheck(tmp_path_factory):
    d = tmp_path_factory.mktemp("rcheck")
    visits, times = _study()
    tte = adtte(times, populations(visits, times), study="rcheck", threshold=95)
    tte.to_csv(d / "adtte.csv", index=False)
    ratings = np.random.default_rng(1).normal(50, 10, (12, 1)) + np.random.default_rng(
        2).normal(0, 6, (12, 3))
    np.savetxt(d / "ratings.csv", ratings, delimiter=",")
    back = pd.read_csv(d / "adtte.csv")
    back = back[back["PARAMCD"] == "TTHEAL"]
    ref = reference_arm(sorted(set(back["TRT01P"])))
    return back, ref, ratings, _r(d / "adtte.csv", ref, d / "ratings.csv")


def test_kaplan_meier_and_its_band_at_every_event_time(crosscheck):
    tte, _ref, _ratings, r = crosscheck
    checked = 0
    for arm, g in tte.groupby("TRT01P"):
        km = kaplan_meier(g["AVAL"].to_numpy(float), (1 - g["CNSR"]).to_numpy(), label=arm)
        tl = np.asarray(km.timeline)
        for t in np.unique(g.loc[g["CNSR"] == 0, "AVAL"]):
            i = int(np.nonzero(tl == t)[0][0])
            assert km.survival[i] == pytest.approx(r[f"km|{arm}|{t:g}|surv"], abs=1e-6)
            if km.survival[i] > 0:  # R leaves the band empty where S = 0
                assert km.ci_lower[i] == pytest.approx(r[f"km|{arm}|{t:g}|lower"], abs=1e-6)
                assert km.ci_upper[i] == pytest.approx(r[f"km|{arm}|{t:g}|upper"], abs=1e-6)
            checked += 1
    assert checked >= 8


def test_logrank_statistic_and_p(crosscheck):
    tte, _ref, _ratings, r = crosscheck
    lr = logrank(tte["AVAL"].to_numpy(float), (1 - tte["CNSR"]).to_numpy(),
                 tte["TRT01P"].to_numpy())
    assert lr.statistic == pytest.approx(r["logrank|chisq"], abs=1e-6)
    assert lr.p_value == pytest.approx(r["logrank|p"], abs=1e-6)


def test_cox_hazard_ratio_and_interval(crosscheck):
    tte, ref, _ratings, r = crosscheck
    hr = cox_hazard_ratio(tte["AVAL"].to_numpy(float), (1 - tte["CNSR"]).to_numpy(),
                          tte["TRT01P"].to_numpy(), reference=ref)
    assert hr.hr == pytest.approx(r["cox|hr"], rel=1e-6)
    assert hr.ci[0] == pytest.approx(r["cox|lower"], rel=1e-6)
    assert hr.ci[1] == pytest.approx(r["cox|upper"], rel=1e-6)
    assert hr.p_value == pytest.approx(r["cox|p"], abs=1e-6)


def test_icc_against_psych(crosscheck):
    _tte, _ref, ratings, r = crosscheck
    if "icc|value" not in r:
        pytest.skip("R package psych is not installed (Debian: r-cran-psych)")
    icc = icc_2_1(ratings)
    assert icc.value == pytest.approx(r["icc|value"], abs=1e-8)
    assert icc.ci_untruncated[0] == pytest.approx(r["icc|lower"], abs=1e-8)
    assert icc.ci_untruncated[1] == pytest.approx(r["icc|upper"], abs=1e-8)
