"""End to end: a small synthetic study through `process_study` with a tiny untrained model.

The model's masks are meaningless (random weights); these tests check the mechanics: the store,
idempotence, versions, bad inputs, PHI, DICOM and kill-and-resume.
"""

from __future__ import annotations

import csv
import io
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from pipeline.config import Settings
from pipeline.exports import MEASUREMENT_COLUMNS
from pipeline.process import process_study
from pipeline.store import Store
from tests.conftest import make_dicom, make_jpeg

ROOT = Path(__file__).resolve().parents[2]


def _copy(study: Path, dst: Path) -> Path:
    shutil.copytree(study, dst)
    return dst


def _settings(tmp_path: Path, model: Path, **kw) -> Settings:
    return Settings(out_dir=tmp_path / "out", model=str(model), jobs=1, device="cpu", **kw)


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file()}


def test_end_to_end_idempotent(tmp_path, small_study, tiny_model):
    study = _copy(small_study, tmp_path / "study")
    before = _snapshot(study)
    s = _settings(tmp_path, tiny_model)
    first = process_study(study, s, progress=False)
    assert first.new == 4 and first.unchanged == 0 and first.n_failed == 0
    df = pd.read_csv(s.out_dir / "measurements.csv")
    assert list(df.columns) == MEASUREMENT_COLUMNS and len(df) == 4
    assert (df["status"] == "ok").all()
    assert pd.read_parquet(s.out_dir / "measurements.parquet").shape == df.shape
    truth = pd.read_csv(study / "truth" / "photos.csv")
    for _, row in df.iterrows():
        mask = np.asarray(Image.open(s.out_dir / row["mask_file"]))
        t = truth[truth["file"] == row["file"]].iloc[0]
        tmask = np.asarray(Image.open(study / t["mask_file"]))
        assert mask.shape == tmask.shape  # full oriented resolution
        assert set(np.unique(mask)) <= {0, 1, 2}
        assert (s.out_dir / row["overlay_file"]).is_file()
        # opaque names: no subject id, day or original name in output file names
        for name in (row["mask_file"], row["overlay_file"]):
            assert row["subject_id"] not in name and Path(row["file"]).stem not in name
    assert _snapshot(study) == before  # data/raw is immutable
    results_before = _count(s, "results")
    second = process_study(study, s, progress=False)
    assert second.new == 0 and second.unchanged == 4 and second.n_failed == 0
    assert _count(s, "results") == results_before


def _count(s: Settings, table: str) -> int:
    with Store.open(s.store_path) as st:
        return st.conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]


def test_reprocess_and_changed_files_make_new_versions(tmp_path, small_study, tiny_model):
    study = _copy(small_study, tmp_path / "study")
    s = _settings(tmp_path, tiny_model)
    process_study(study, s, progress=False)
    with pytest.raises(ValueError, match="--reason"):
        process_study(study, s, reprocess=True, progress=False)
    again = process_study(study, s, reprocess=True, reason="new sticker lot", progress=False)
    assert again.new == 4
    with Store.open(s.store_path) as st:
        assert st.conn.execute("SELECT COUNT(*) FROM results").fetchone()[0] == 8
        assert {r["result_version"] for r in st.current_results()} == {2}
        assert st.conn.execute("SELECT reason FROM runs ORDER BY run_id DESC").fetchone()[0] \
            == "new sticker lot"
    # a changed file under a known name is a new photo version; the old one is kept
    first = next(csv.DictReader((study / "manifest.csv").open()))["file"]
    img = Image.open(study / first)
    img.save(study / first, "JPEG", quality=60)
    changed = process_study(study, s, progress=False)
    assert changed.new == 1 and changed.unchanged == 3
    with Store.open(s.store_path) as st:
        assert st.conn.execute("SELECT COUNT(*) FROM photos").fetchone()[0] == 5
        assert st.integrity_problems() == []


def test_bad_inputs_recorded_and_batch_goes_on(tmp_path, small_study, tiny_model):
    study = _copy(small_study, tmp_path / "study")
    good = list(csv.DictReader((study / "manifest.csv").open()))
    bad = study / "bad"
    bad.mkdir()
    (bad / "zero.jpg").write_bytes(b"")
    jpg = (study / good[0]["file"]).read_bytes()
    (bad / "cut.jpg").write_bytes(jpg[: len(jpg) // 3])
    (bad / "text.jpg").write_bytes(b"not an image at all\n" * 50)
    Image.new("L", (3000, 3000)).save(bad / "bomb.png")  # 9 MP > the 5 MP limit below
    rgb = np.full((40, 60, 3), 120, np.uint8)
    (bad / "nopix.dcm").write_bytes(make_dicom(rgb, pixel_data=False))
    wide = np.full((40, 100, 3), 120, np.uint8)
    (bad / "absurd.dcm").write_bytes(make_dicom(wide, rows=65000))  # 6.5 MP promised
    (tmp_path / "outside.jpg").write_bytes(jpg)
    Image.open(study / good[1]["file"]).save(bad / "second.jpg", quality=80)
    rows = [
        "S90,0,thigh,bad/zero.jpg", "S90,3,thigh,bad/cut.jpg", "S90,5,thigh,bad/text.jpg",
        "S90,7,thigh,bad/bomb.png", "S90,10,thigh,bad/nopix.dcm", "S90,14,thigh,bad/absurd.dcm",
        "S90,21,thigh,bad/missing.jpg", "S 90,0,thigh,bad/zero.jpg", "S90,x,thigh,bad/cut.jpg",
        "S90,0,thigh,../outside.jpg", "S90,0,thigh,/etc/passwd",
        f"{good[0]['subject_id']},{good[0]['visit_day']},{good[0]['site']},bad/second.jpg",
        f"S90,3,thigh,{good[1]['file']}",  # the same file listed twice
    ]
    with (study / "manifest.csv").open("a") as fh:
        fh.write("\n".join(rows) + "\n")
    s = _settings(tmp_path, tiny_model, max_pixels=5_000_000)
    summary = process_study(study, s, progress=False)
    assert summary.new == 5  # 4 good + the second photo of a visit (kept, flagged)
    assert summary.failed == {"empty_file": 1, "corrupt_image": 1, "not_an_image": 1,
                              "image_too_large": 2, "bad_dicom": 1, "missing_file": 1,
                              "bad_row": 2, "unsafe_path": 2,
                              "duplicate_listing": 1}
    df = pd.read_csv(s.out_dir / "measurements.csv")
    second = df[df["qc_flags"].fillna("").str.contains("second_photo_for_visit")]
    assert len(second) == 1
    # nothing was written outside the output folder
    written = {p for p in tmp_path.rglob("*") if p.is_file()}
    assert all(s.out_dir in p.parents or study in p.parents or p.name == "outside.jpg"
               for p in written)
    assert (tmp_path / "outside.jpg").read_bytes() == jpg


def test_no_identifying_metadata_in_outputs(tmp_path, small_study, tiny_model):
    study = _copy(small_study, tmp_path / "study")
    rows = list(csv.DictReader((study / "manifest.csv").open()))
    # Re-save the first photo with PHI in EXIF (GPS, serial number, owner) under a name.
    src = study / rows[0]["file"]
    rgb = np.asarray(Image.open(src).convert("RGB"))
    secret = "JaneDoe-MRN-5551234"
    data = make_jpeg(rgb, exif={0x8825: {1: "N", 2: (52.0, 13.0, 7.5)}, 0xA431: secret,
                                0x013B: secret, 0x010F: "PhoneCo"})
    (study / "photos" / f"{secret}.jpg").write_bytes(data)
    dicom = make_dicom(rgb, compressed=True, patient_name=secret.replace("-", "^"),
                       patient_id="MRN5551234", trial_subject=rows[0]["subject_id"])
    (study / "photos" / "upload.dcm").write_bytes(dicom)
    with (study / "manifest.csv").open("w") as fh:
        fh.write("subject_id,visit_day,site,file\n")
        fh.write(f"{rows[0]['subject_id']},0,{rows[0]['site']},photos/{secret}.jpg\n")
        fh.write(f"{rows[0]['subject_id']},3,{rows[0]['site']},photos/upload.dcm\n")
    s = _settings(tmp_path, tiny_model)
    process_study(study, s, progress=False)
    needles = [secret.encode(), b"MRN5551234", b"Doe", b"Secret Hospital", b"19700101"]
    for p in (s.out_dir / "overlays").iterdir():
        blob = p.read_bytes()
        assert not any(n in blob for n in needles)
        assert dict(Image.open(p).getexif()) == {}
        assert secret not in p.name
    for p in (s.out_dir / "masks").iterdir():
        assert not any(n in p.read_bytes() for n in needles) and secret not in p.name
    for table in ("visits.csv",):
        assert not any(n in (s.out_dir / table).read_bytes() for n in needles)
    # measurements.csv keeps the manifest's own `file` column (the imaging core's link back to
    # its uploads), but no EXIF or DICOM tag reaches it
    m = (s.out_dir / "measurements.csv").read_bytes()
    assert not any(n in m for n in (b"MRN5551234", b"Secret Hospital", b"19700101", b"^"))


def _edit_dicom(data: bytes, **changes) -> bytes:
    import io

    import pydicom

    ds = pydicom.dcmread(io.BytesIO(data))
    for key, value in changes.items():
        if value is None:
            delattr(ds, key)
        else:
            setattr(ds, key, value)
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


def test_dicom_day_from_the_subjects_stored_day0_never_the_patient_id(tmp_path, small_study,
                                                                      tiny_model):
    study = _copy(small_study, tmp_path / "study")
    rows = list(csv.DictReader((study / "manifest.csv").open()))
    subj, site = rows[0]["subject_id"], rows[0]["site"]
    rgb = np.asarray(Image.open(study / rows[0]["file"]).convert("RGB"))
    dcm = make_dicom(rgb, acquired="20260301090000", trial_subject=subj, patient_id="MRN555")
    (study / "d0.dcm").write_bytes(dcm)
    (study / "d1.dcm").write_bytes(_edit_dicom(dcm, AcquisitionDateTime="20260308091500"))
    # only a StudyDate (no acquisition or content date)
    (study / "d2.dcm").write_bytes(_edit_dicom(dcm, AcquisitionDateTime=None,
                                               StudyDate="20260305"))
    (study / "d3.dcm").write_bytes(_edit_dicom(dcm, AcquisitionDateTime="19960301"))
    (study / "d4.dcm").write_bytes(_edit_dicom(dcm, AcquisitionDateTime="20260306",
                                               ClinicalTrialSubjectID="../../etc/passwd"))
    lines = ["subject_id,visit_day,site,file", f"{subj},,{site},d1.dcm",
             f"{subj},0,{site},d0.dcm",  # anchors day 0 (whatever the row order)
             f"{subj},,{site},d2.dcm", f"{subj},,{site},d3.dcm", f",,{site},d0.dcm",
             f"NEW,,{site},d1.dcm", f"{subj},5,{site},d4.dcm"]
    (study / "manifest.csv").write_text("\n".join(lines) + "\n")
    s = _settings(tmp_path, tiny_model)
    summary = process_study(study, s, progress=False)
    fails = {line: (code, msg) for _, line, code, msg in summary.failures}
    assert fails[5][0] == "implausible_visit_day" and "day -10957" in fails[5][1]
    assert fails[6][0] == "bad_row" and "never used as the subject" in fails[6][1]
    assert fails[7][0] == "bad_row" and "no day 0 known for subject NEW" in fails[7][1]
    assert len(fails) == 3
    df = pd.read_csv(s.out_dir / "measurements.csv").sort_values("file")
    assert list(df["file"]) == ["d0.dcm", "d1.dcm", "d2.dcm", "d4.dcm"]
    assert list(df["visit_day"]) == [0, 7, 4, 5]
    assert "dicom_subject_conflict" in df.iloc[3]["qc_flags"]
    blob = b"".join(p.read_bytes() for p in s.out_dir.rglob("*") if p.is_file())
    assert b"MRN555" not in blob and b"etc/passwd" not in blob
    # a later batch: a day-14 photo without a day is day 14, not day 0 of the new batch
    (study / "d5.dcm").write_bytes(_edit_dicom(dcm, AcquisitionDateTime="20260315"))
    (study / "d6.dcm").write_bytes(_edit_dicom(dcm, AcquisitionDateTime="20260316"))
    later = tmp_path / "later.csv"
    later.write_text(f"subject_id,visit_day,site,file\n{subj},,{site},study/d5.dcm\n"
                     f"{subj},16,{site},study/d6.dcm\n")
    summary = process_study(later, s, progress=False)
    assert summary.n_failed == 0
    df = pd.read_csv(s.out_dir / "measurements.csv").set_index("file")
    assert df.loc["study/d5.dcm", "visit_day"] == 14
    assert "dicom_day_conflict" in df.loc["study/d6.dcm", "qc_flags"]  # day 15 by its date


@pytest.mark.slow
def test_kill_and_resume(tmp_path, small_study, tiny_model):
    study = _copy(small_study, tmp_path / "study")
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "pipeline.cli", "process", str(study), "--out", str(out),
           "--model", str(tiny_model), "--jobs", "1", "--device", "cpu", "--no-progress"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for _ in range(2):  # kill twice at different points, then finish
        proc = subprocess.Popen(cmd, env=env, cwd=ROOT)
        deadline = time.time() + 120
        while time.time() < deadline and proc.poll() is None:
            if (out / "study.sqlite").exists() and _results(out) >= 1 + _:
                break
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    done = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    with Store.open(out / "study.sqlite") as st:
        assert st.integrity_problems() == []
        per_photo = st.conn.execute("SELECT photo_id, COUNT(*) FROM results GROUP BY photo_id"
                                    ).fetchall()
        assert len(per_photo) == 4 and all(n == 1 for _, n in per_photo)
        for r in st.current_results():
            assert r["status"] == "ok" and (out / r["mask_file"]).is_file()
    assert len(pd.read_csv(out / "measurements.csv")) == 4


def _results(out: Path) -> int:
    import sqlite3

    try:
        con = sqlite3.connect(f"file:{out / 'study.sqlite'}?mode=ro", uri=True, timeout=1)
        n = con.execute("SELECT COUNT(*) FROM results").fetchone()[0]
        con.close()
        return n
    except sqlite3.Error:
        return 0


def test_overlay_is_an_image_without_metadata(tmp_path, small_study, tiny_model):
    study = _copy(small_study, tmp_path / "study")
    s = _settings(tmp_path, tiny_model)
    process_study(study, s, progress=False)
    p = next((s.out_dir / "overlays").iterdir())
    img = Image.open(io.BytesIO(p.read_bytes()))
    assert img.format == "JPEG" and not img.info.get("exif")
