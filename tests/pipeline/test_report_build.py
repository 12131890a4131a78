"""The report end to end on a small store made here: tables, blinding, HTML, exclusions."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from pipeline.report import (
    AllocationError,
    ReportError,
    ReportOptions,
    build_report,
    visit_table,
)
from pipeline.store import Store

ARMS = {"S01": "msc", "S02": "msc", "S03": "msc", "S04": "control", "S05": "control",
        "S06": "control"}
T95 = {"S01": 6.0, "S02": 8.0, "S03": 9.0, "S04": 12.0, "S05": 15.0, "S06": 40.0}
DAYS = (0, 3, 5, 7, 10, 14, 21)
QC_PHOTO = ("S02", 7)       # flagged poor_colour_fit: excluded by default
FAILED_PHOTO = ("S05", 10)  # processing failed
HELD_PHOTO = ("S04", 3)     # low model confidence, no read: held out of the endpoints
FAST = ReportOptions(bootstrap=10)


def _healed(subject: str, day: int) -> float:
    return float(min(100.0, 95.0 * day / T95[subject]))


def make_study(root: Path, *, big: tuple[str, int] | None = None
               ) -> dict[tuple[str, int], str]:
    """A processed store with 6 subjects x 7 visits; returns photo ids by (subject, day).
    The donor site measures 10 cm² (20 cm² at the visit ``big``)."""
    ids = {}
    with Store.open(root / "study.sqlite") as s:
        run = s.begin_run(software_version="t", git_commit="c", model_name="m",
                          model_sha256="h", sticker={"name": "X"}, params={}, reason=None,
                          command="test")
        for subject in ARMS:
            for day in DAYS:
                rec = s.register_photo(manifest="/m.csv", source_name=f"{subject}_{day}.jpg",
                                       sha256=f"{subject}{day}", size_bytes=1,
                                       subject_id=subject, visit_day=day, site="thigh-left")
                ids[(subject, day)] = rec.photo_id
                if (subject, day) == FAILED_PHOTO:
                    s.save_result(photo_id=rec.photo_id, run_id=run, version=1,
                                  status="failed", error_code="markers_not_found",
                                  error_message="no sticker")
                    continue
                h = _healed(subject, day)
                donor = 2000.0 if (subject, day) == big else 1000.0
                s.save_result(
                    photo_id=rec.photo_id, run_id=run, version=1, status="ok",
                    calibration={"mm_per_px": 0.1, "tilt_deg": 3.0, "markers": (0, 1, 2, 3)},
                    segmentation={"model_name": "m", "model_sha256": "h",
                                  "mask_file": f"masks/{rec.photo_id}.png",
                                  "overlay_file": "o.jpg"},
                    measurement={"donor_site_area_mm2": donor,
                                 "epithelialized_area_mm2": donor * h / 100,
                                 "raw_area_mm2": donor * (1 - h / 100), "healed_percent": h},
                    qc_flags=("poor_colour_fit",) if (subject, day) == QC_PHOTO else
                    ("low_confidence",) if (subject, day) == HELD_PHOTO else (),
                    assessment={"confidence": 0.3 if (subject, day) == HELD_PHOTO else 0.9,
                                "healed_percent_low": max(0.0, h - 4),
                                "healed_percent_high": min(100.0, h + 4),
                                "outline_ambiguity": 0.1, "ood_score": 0.2})
    return ids


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    root = tmp_path_factory.mktemp("processed")
    return root, make_study(root)


@pytest.fixture(scope="module")
def reports(study, tmp_path_factory):
    root, _ = study
    out = tmp_path_factory.mktemp("reports")
    blinded = build_report(root, out / "blinded", options=FAST)
    unblinded = build_report(root, out / "unblinded", allocation=ARMS, options=FAST)
    return blinded, unblinded


# ---------------------------------------------------------------------------- the table
def test_visit_table_blinded_and_unblinded(study, tmp_path):
    root, _ = study
    v = visit_table(root)
    assert "arm" not in v.columns and len(v) == 6 * len(DAYS)
    row = v[(v.subject_id == "S01") & (v.visit_day == 3)].iloc[0]
    assert row["healed_percent"] == pytest.approx(47.5)
    assert row["donor_site_area_cm2"] == pytest.approx(10.0)
    assert row["raw_area_cm2"] == pytest.approx(5.25)
    assert row["raw_area_vs_day0_percent"] == pytest.approx(52.5)
    assert (row["qc_state"], row["n_photos"]) == ("ok", 1)
    alloc = tmp_path / "allocation.csv"
    pd.DataFrame({"subject_id": list(ARMS), "arm": list(ARMS.values())}).to_csv(alloc,
                                                                               index=False)
    u = visit_table(root, allocation=alloc)
    assert list(u.columns[:2]) == ["subject_id", "arm"]
    assert dict(zip(u.subject_id, u.arm, strict=True)) == ARMS


def test_qc_excluded_visit_and_the_switch(study):
    root, _ = study
    v = visit_table(root).set_index(["subject_id", "visit_day"])
    assert v.loc[QC_PHOTO, "qc_state"] == "excluded" and np.isnan(v.loc[QC_PHOTO,
                                                                        "healed_percent"])
    assert v.loc[FAILED_PHOTO, "qc_state"] == "excluded"
    w = visit_table(root, include_failed_qc=True).set_index(["subject_id", "visit_day"])
    assert w.loc[QC_PHOTO, "qc_state"] == "flagged" and w.loc[QC_PHOTO, "n_photos"] == 1
    assert w.loc[FAILED_PHOTO, "qc_state"] == "excluded"  # no measurement to include


def test_allocation_problems_are_named(study, tmp_path):
    root, _ = study
    with pytest.raises(AllocationError, match=r"does not cover subject\(s\) \['S06'\]"):
        visit_table(root, allocation={k: v for k, v in ARMS.items() if k != "S06"})
    bad = tmp_path / "alloc.csv"
    bad.write_text("subject,group\nS01,msc\n")
    with pytest.raises(AllocationError, match="alloc.csv.*lacks column"):
        visit_table(root, allocation=bad)
    with pytest.raises(ReportError, match="no study store"):
        visit_table(tmp_path)


def test_donor_area_outliers_are_listed(tmp_path):
    make_study(tmp_path, big=("S03", 5))
    v = visit_table(tmp_path)
    row = v[(v.subject_id == "S03") & (v.visit_day == 5)].iloc[0]
    assert row["donor_area_vs_site_median_percent"] == pytest.approx(200.0)
    res = build_report(tmp_path, tmp_path / "report", options=FAST)
    out = json.loads(res.summary.read_text())["area_outliers"]
    assert [(o["subject_id"], o["visit_day"]) for o in out] == [("S03", 5)]
    assert "Donor-site area consistency (1)" in res.html.read_text()


# ---------------------------------------------------------------------- time to healing
def test_time_to_healing_in_the_report(reports):
    _, unblinded = reports
    t = pd.read_csv(unblinded.out_dir / "time_to_healing.csv").set_index("subject_id")
    # first visit at >= 95 %: S01 t95=6 -> day 7; S02's day 7 excluded -> day 10;
    # S05 t95=15 -> day 21 (day 10 failed, irrelevant); S06 never -> censored at 21
    assert t.loc["S01", "day"] == 7 and t.loc["S01", "lower"] == 5
    assert t.loc["S02", "day"] == 10 and t.loc["S02", "lower"] == 5
    assert t.loc["S05", "day"] == 21 and bool(t.loc["S05", "event"])
    assert not t.loc["S06", "event"] and t.loc["S06", "day"] == 21
    summary = json.loads(unblinded.summary.read_text())
    groups = {g["arm"]: g for g in summary["groups"]}
    assert groups["msc"]["km_median_day"] < groups["control"]["km_median_day"]
    assert groups["msc"]["n"] == 3 and groups["control"]["n_healed"] == 2
    assert 0 < summary["logrank"]["p_value"] < 1


def test_confirmation_option(study, tmp_path):
    root, _ = study
    res = build_report(root, tmp_path / "r", allocation=ARMS,
                       options=ReportOptions(confirm=True, bootstrap=0))
    t = pd.read_csv(res.out_dir / "time_to_healing.csv").set_index("subject_id")
    # S05 reaches 95 % only at the last visit: unconfirmed, censored
    assert not t.loc["S05", "event"] and t.loc["S05", "note"] == "unconfirmed at last visit"
    assert t.loc["S01", "day"] == 7 and bool(t.loc["S01", "event"])
    assert "confirmed by the next usable visit" in res.html.read_text()


# ---------------------------------------------------------------------------- blinding
def _readable_text(p: Path) -> bytes:
    """What a reader of the file can see: the text of text files, the metadata chunks of a
    PNG (its pixels are the SVG's twin, checked there), the schema, column names and cells
    of a Parquet file. Compressed bytes are not searched: they hold any 3 letters by chance."""
    data = p.read_bytes()
    if p.suffix == ".png":
        out, i = [], 8
        while i < len(data):
            n = int.from_bytes(data[i:i + 4], "big")
            kind = data[i + 4:i + 8]
            if kind in (b"tEXt", b"iTXt", b"zTXt"):
                out.append(data[i + 8:i + 8 + n])
            i += 12 + n
        return b"\n".join(out)
    if p.suffix == ".parquet":
        import pyarrow.parquet as pq

        table = pq.read_table(p)
        meta = b"".join(k + v for k, v in (table.schema.metadata or {}).items())
        cells = table.to_pandas().astype(str).to_csv(index=False).encode()
        return meta + b"\n" + cells
    return data


def _leaks(folder: Path) -> list[str]:
    found = []
    names = [a.encode() for a in set(ARMS.values())]
    for p in sorted(folder.rglob("*")):
        if not p.is_file():
            continue
        low = _readable_text(p).lower()
        if any(n in low for n in names):
            found.append(f"{p.name}: arm name")
        if b"arm" in low:
            found.append(f"{p.name}: the word arm")
        if any(w in p.name.lower() for w in ("arm", *ARMS.values())):
            found.append(f"{p.name}: file name")
    return found


def test_blinded_report_contains_no_arm_anywhere(reports):
    blinded, unblinded = reports
    assert blinded.blinded and not unblinded.blinded
    assert _leaks(blinded.out_dir) == []
    # the same check finds the arms in the unblinded report (it can fail)
    leaks = _leaks(unblinded.out_dir)
    for name in ("report.html", "summary.json", "visits.csv", "visits.parquet"):
        assert f"{name}: arm name" in leaks and f"{name}: the word arm" in leaks
    assert "healing_curves_mean.svg: arm name" in leaks  # the legend
    assert {p.suffix for p in blinded.files} >= {".csv", ".parquet", ".png", ".svg", ".html",
                                                 ".json"}


def test_the_allocation_never_reaches_the_store(study, reports):
    root, _ = study
    files = list(root.glob("study.sqlite*"))
    assert files
    for p in files:
        data = p.read_bytes().lower()
        assert b"msc" not in data and b"control" not in data, p.name


def test_a_blinded_report_replaces_an_unblinded_one_whole(study, tmp_path):
    root, _ = study
    target = tmp_path / "report"
    build_report(root, target, allocation=ARMS, options=FAST)
    (target / "extra_from_before.csv").write_text("arm\nmsc\n")
    build_report(root, target, options=FAST)
    assert _leaks(target) == []
    assert not (target / "extra_from_before.csv").exists()
    other = tmp_path / "not_a_report"
    other.mkdir()
    (other / "keep.txt").write_text("x")
    with pytest.raises(ReportError, match="not an earlier report folder"):
        build_report(root, other, options=FAST)
    assert (other / "keep.txt").exists()


# ------------------------------------------------------------------------------ the HTML
class _Figures(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.figures: list[str] = []
        self.img = 0
        self._depth = 0

    def handle_starttag(self, tag, attrs):
        if tag == "figure":
            self.figures.append(dict(attrs).get("id", ""))
        if tag == "img":
            self.img += 1


def _svgs(html: str) -> list[ET.Element]:
    return [ET.fromstring(m) for m in re.findall(r"<svg\b.*?</svg>", html, flags=re.S)]


@pytest.mark.parametrize("which", [0, 1])
def test_html_report_renders_with_its_figures(reports, which):
    res = reports[which]
    html = res.html.read_text()
    parser = _Figures()
    parser.feed(html)
    assert parser.figures == ["fig-healing_curves_subjects", "fig-healing_curves_mean",
                              "fig-time_to_healing"]
    svgs = _svgs(html)
    assert len(svgs) == len(parser.figures) and parser.img == 0  # self-contained, inline
    ns = "{http://www.w3.org/2000/svg}"
    for svg in svgs:
        drawn = [e for e in svg.iter() if e.tag in (f"{ns}path", f"{ns}use")]
        texts = " ".join(t.text or "" for t in svg.iter(f"{ns}text"))
        assert len(drawn) > 20 and "day after harvest" in texts
    for stem in ("healing_curves_subjects", "healing_curves_mean", "time_to_healing"):
        png = np.asarray(Image.open(res.out_dir / f"{stem}.png").convert("L"))
        assert png.shape[0] > 200 and png.std() > 5
        assert (res.out_dir / f"{stem}.svg").stat().st_size > 5000
    assert "No assessor reads exist yet" in html
    assert json.loads(res.summary.read_text())["agreement"]["available"] is False


def test_excluded_photos_are_listed(study, reports):
    _, ids = study
    blinded, _ = reports
    ex = pd.read_csv(blinded.out_dir / "excluded_photos.csv").set_index("photo_id")
    assert ex.loc[ids[QC_PHOTO], "exclusion_reason"] == "qc: poor_colour_fit"
    assert ex.loc[ids[FAILED_PHOTO], "exclusion_reason"] == "failed: markers_not_found"
    html = blinded.html.read_text()
    assert ids[QC_PHOTO] in html and ids[FAILED_PHOTO] in html
    summary = json.loads(blinded.summary.read_text())
    assert ex.loc[ids[HELD_PHOTO], "exclusion_reason"] == "held for read: low_confidence"
    assert summary["counts"]["photos_excluded"] == 3 == blinded.n_excluded
    assert sorted(summary["files"]) == sorted(p.name for p in blinded.files)


# ------------------------------------------------------------------------ assessor reads
def test_reads_from_the_review_tables_feed_agreement(tmp_path):
    ids = make_study(tmp_path)
    with Store.open(tmp_path / "study.sqlite") as s:
        tables = {r[0] for r in s.conn.execute("SELECT name FROM sqlite_master")}
        if "review_reads" not in tables:
            pytest.skip("the store has no review tables in this schema version")
        now = "2026-01-01T00:00:00Z"
        with s.transaction() as c:
            for name in ("ann", "bob"):
                c.execute("INSERT INTO review_users (name, role, password_hash, created_utc) "
                          "VALUES (?, 'assessor', 'x', ?)", (name, now))
            c.execute("INSERT INTO review_queue_builds VALUES (1, 0, 2, 0.05, 0, 'test', ?)",
                      (now,))
            n, diffs = 0, []
            for (subject, day), pid in ids.items():
                if (subject, day) == FAILED_PHOTO:
                    continue
                h = _healed(subject, day)
                rid = c.execute("SELECT result_id FROM results WHERE photo_id=?",
                                (pid,)).fetchone()[0]
                reads = [("ann", min(100.0, h + 3), 0), ("bob", max(0.0, h - 1), 0)]
                diffs.append(reads[0][1] - reads[1][1])
                if subject == "S01":
                    reads.append(("ann", min(100.0, h + 4), 1))
                for who, est, rep in reads:
                    n += 1
                    corrected = None
                    if (subject, day) == ("S03", 5) and who == "bob":
                        corrected = _write_masks(tmp_path, pid)
                    c.execute("INSERT INTO review_tasks VALUES (?,?,?,?,?,1,?)",
                              (f"T{n}", who, pid, n, rep, now))
                    c.execute("INSERT INTO review_reads (task_code, photo_id, assessor, "
                              "version, estimate_percent, verdict, is_repeat, result_id, "
                              "corrected_mask_file, created_utc) "
                              "VALUES (?,?,?,1,?,'accept',?,?,?,?)",
                              (f"T{n}", pid, who, est, rep, rid, corrected, now))
    res = build_report(tmp_path, tmp_path / "report", options=FAST)
    summary = json.loads(res.summary.read_text())["agreement"]
    assert summary["available"] and summary["n_assessors"] == 2
    rows = {r["comparison"]: r for t in summary["tables"].values() for r in t
            if "comparison" in r}
    assert rows["algorithm vs mean of assessors"]["n"] == 41
    assert rows["ann vs bob"]["bias"] == pytest.approx(np.mean(diffs))
    assert rows["ann vs bob"]["n"] == len(diffs) == 41
    assert rows["ann"]["n"] == len(DAYS)  # hidden repeats of S01
    html = res.html.read_text()
    assert "fig-agreement_bland_altman" in html and "No assessor reads" not in html
    dice = {r["dice"]: r for r in summary["tables"]["Dice: algorithm mask vs corrected masks"]}
    site = dice["whole donor site"]
    assert site["n"] == 1 and isinstance(site["n"], int) and site["mean"] == pytest.approx(1.0)
    assert "count 2.00" not in html and ">Dice of</th>" in html
    # algorithm (resampled to 4x8): 16 px epithelialized, 16 raw; the correction: 8 and 24
    assert dice["healed area"]["mean"] == pytest.approx(2 * 8 / (16 + 8))
    assert dice["raw area"]["mean"] == pytest.approx(2 * 16 / (16 + 24))


def _write_masks(root: Path, photo_id: str) -> str:
    """Algorithm mask (full size, 8x16) and a corrected mask at half size; returns the
    corrected mask's path relative to the store's folder."""
    alg = np.zeros((8, 16), np.uint8)
    alg[:, :8] = 1
    alg[:, 8:] = 2
    (root / "masks").mkdir(exist_ok=True)
    Image.fromarray(alg).save(root / "masks" / f"{photo_id}.png")
    cor = np.zeros((4, 8), np.uint8)
    cor[:, :2] = 1
    cor[:, 2:] = 2
    (root / "review" / "corrections").mkdir(parents=True, exist_ok=True)
    Image.fromarray(cor).save(root / "review" / "corrections" / "T1-v1.png")
    return "review/corrections/T1-v1.png"


# ---------------------------------------------------------------------------- validation
def test_validate_against_truth(study, tmp_path, capsys):
    from pipeline.report.validate import main, validate_study

    root, _ = study
    (tmp_path / "truth").mkdir()
    pd.DataFrame([(s, d, "thigh-left", f"photos/{s}_{d}.jpg") for s in ARMS for d in DAYS],
                 columns=["subject_id", "visit_day", "site", "file"]).to_csv(
        tmp_path / "manifest.csv", index=False)
    pd.DataFrame({"subject_id": list(ARMS), "arm": list(ARMS.values())}).to_csv(
        tmp_path / "allocation.csv", index=False)
    truth = {**T95, "S04": 4.0}  # S04 reported at day 14, truth's first visit after is day 5
    pd.DataFrame({"subject_id": list(truth), "t95_day": list(truth.values()),
                  "t100_day": [t * 1.2 for t in truth.values()]}).to_csv(
        tmp_path / "truth" / "subjects.csv", index=False)
    v, cmp = validate_study(tmp_path, root)
    assert v.n_subjects == 6 and v.within_one_visit == pytest.approx(5 / 6)
    assert v.same_visit == pytest.approx(5 / 6)
    row = cmp.set_index("subject_id").loc["S04"]
    assert (row["reported_index"], row["truth_index"], row["visit_offset"]) == (5, 2, 3)
    assert v.faster_arm_report == "msc" == v.faster_arm_truth
    assert v.faster_arm_design is None  # no study.json here
    (tmp_path / "study.json").write_text(json.dumps(
        {"config": {"control_t95_days": 12.0, "msc_t95_days": 9.5}}))
    assert validate_study(tmp_path, root)[0].faster_arm_design == "msc"
    assert main([str(tmp_path), str(root), "--csv", str(tmp_path / "cmp.csv")]) == 0
    assert '"within_one_visit": 0.8333' in capsys.readouterr().out
    assert len(pd.read_csv(tmp_path / "cmp.csv")) == 6


def test_cli_report_command(study, tmp_path):
    from typer.testing import CliRunner

    from pipeline.cli import app

    root, _ = study
    alloc = tmp_path / "allocation.csv"
    pd.DataFrame({"subject_id": list(ARMS), "arm": list(ARMS.values())}).to_csv(alloc,
                                                                               index=False)
    runner = CliRunner()
    res = runner.invoke(app, ["report", "--processed", str(root), "--out",
                              str(tmp_path / "rep"), "--allocation", str(alloc),
                              "--threshold", "90", "--confirm", "--include-failed-qc",
                              "--bootstrap", "5"])
    assert res.exit_code == 0, res.output
    assert "unblinded" in res.output and str(tmp_path / "rep" / "report.html") in res.output
    opts = json.loads((tmp_path / "rep" / "summary.json").read_text())["options"]
    assert (opts["threshold_percent"], opts["confirm"], opts["include_failed_qc"]) == (
        90.0, True, True)
    bad = runner.invoke(app, ["report", "--processed", str(tmp_path / "nowhere"), "--out",
                              str(tmp_path / "rep2")])
    assert bad.exit_code == 2 and "no study store" in bad.output


def test_run_ends_with_blinded_and_unblinded_reports(tmp_path, monkeypatch):
    """`donorsite run` (make run) writes the blinded report after processing, the unblinded
    one only with --allocation (processing faked)."""
    from types import SimpleNamespace

    from typer.testing import CliRunner

    import pipeline.process
    from pipeline.cli import app

    study = tmp_path / "raw" / "demo"
    study.mkdir(parents=True)
    (study / "manifest.csv").write_text("subject_id,visit_day,site,file\n")
    pd.DataFrame({"subject_id": list(ARMS), "arm": list(ARMS.values())}).to_csv(
        study / "allocation.csv", index=False)

    def fake_process(manifest, settings, **kw):
        if not (settings.out_dir / "study.sqlite").exists():
            make_study(settings.out_dir)
        return SimpleNamespace(n_failed=0, new=42, unchanged=0, seconds=0.0)

    monkeypatch.setattr(pipeline.process, "process_study", fake_process)
    import pipeline.report.build as build

    real_turnbull = build.turnbull  # the wiring is tested here, not the bootstrap (speed)
    monkeypatch.setattr(build, "turnbull", lambda *a, **kw: real_turnbull(
        *a, **{**kw, "bootstrap": 0}))
    out = tmp_path / "processed"
    res = CliRunner().invoke(app, ["run", "--raw", str(tmp_path / "raw"), "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert f"report, blinded: {out / 'report' / 'blinded' / 'report.html'}" in res.output
    assert not (out / "report" / "unblinded").exists()  # only when the analyst asks
    assert f"donorsite report --allocation {study / 'allocation.csv'}" in res.output
    res = CliRunner().invoke(app, ["run", "--raw", str(tmp_path / "raw"), "--out", str(out),
                                   "--allocation", str(study / "allocation.csv")])
    assert res.exit_code == 0, res.output
    assert str(out / "report" / "unblinded" / "report.html") in res.output
    assert _leaks(out / "report" / "blinded") == []
    assert json.loads((out / "report" / "unblinded" / "summary.json").read_text())["logrank"]


# ------------------------------------------------------- populations, flow, effects, ADaM
def test_held_photo_flow_populations_effects_and_datasets(study, reports):
    blinded, unblinded = reports
    held = study[1][HELD_PHOTO]
    s = json.loads(unblinded.summary.read_text())
    reasons = {e["photo_id"]: e["exclusion_reason"] for e in s["excluded_photos"]}
    assert reasons[held] == "held for read: low_confidence"
    flow = pd.read_csv(unblinded.out_dir / "consort_flow.csv")
    row = flow[flow["stage"] == "photos held for read"].iloc[0]
    assert (row["control"], row["msc"]) == (1, 0)  # S04 is control
    assert flow[flow["stage"] == "randomized donor sites"][["control", "msc"]].values.tolist(
        ) == [[3, 3]]
    sens = pd.read_csv(unblinded.out_dir / "sensitivity.csv")
    assert set(sens["photos"]) == {"default", "+QC-flagged", "+QC-flagged +held"}
    assert len(sens) == 18 and {"hazard_ratio", "hr_ci_low", "hr_ci_high"} <= set(sens.columns)
    assert s["populations"]["ITT"] == 6 and 0 < s["populations"]["PP"] < 6
    est = s["effects"]["estimates"]
    assert {e["population"] for e in est} == {"ITT", "PP"} and s["effects"]["reference"] == (
        "control")
    assert any("APPROXIMATION" in e["estimate"] for e in est)
    by_visit = pd.read_csv(unblinded.out_dir / "difference_by_visit.csv")
    assert (by_visit["ci_low"].dropna() <= by_visit["difference"].dropna()).all()
    at_risk = pd.read_csv(unblinded.out_dir / "numbers_at_risk.csv")
    assert at_risk["day 0"].tolist() == [3, 3]
    tte = pd.read_csv(unblinded.out_dir / "adtte.csv")
    assert set(tte["PARAMCD"]) == {"TTHEAL", "TTHEALIC"} and len(tte) == 12
    assert {"AVAL", "CNSR", "STARTDY", "ADY", "EVNTDESC", "ITTFL", "PPROTFL", "TRT01P"} <= set(
        tte.columns)
    ev = tte[(tte["PARAMCD"] == "TTHEAL") & (tte["CNSR"] == 0)]
    assert ev["EVNTDESC"].str.startswith("healed").all()
    bds = pd.read_csv(unblinded.out_dir / "adbds.csv")
    hp = bds[bds["PARAMCD"] == "HEALPCT"]
    assert (hp.loc[hp["ABLFL"] == "Y", "AVISITN"] == 0).all()
    ok = hp.dropna(subset=["AVAL", "BASE"])
    assert np.allclose(ok["CHG"], ok["AVAL"] - ok["BASE"])
    assert "TRT01P" not in pd.read_csv(blinded.out_dir / "adtte.csv").columns
    assert (blinded.out_dir / "data_dictionary.csv").is_file()
    html = unblinded.html.read_text()
    for text in ("Populations.", "Missing visits", "Baseline", "Sensitivity", "adtte.csv",
                 'class="scroll"'):
        assert text in html


def test_report_states_which_model_produced_the_numbers(reports):
    import json

    for res in reports:
        used = json.loads(res.summary.read_text())["models_used"]
        assert len(used) == 1 and used[0]["model"] == "m" and used[0]["sha256"] == "h"
        assert used[0]["n_results"] > 0
        assert "Numbers produced by: model m (sha256 h" in res.html.read_text()
