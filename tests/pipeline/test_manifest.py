from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.errors import ManifestError
from pipeline.manifest import read_manifest


def _study(tmp_path: Path, body: str, files: tuple[str, ...] = ("photos/a.jpg",)) -> Path:
    for f in files:
        (tmp_path / f).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / f).write_bytes(b"x")
    (tmp_path / "manifest.csv").write_text("subject_id,visit_day,site,file\n" + body)
    return tmp_path


def test_valid_row(tmp_path):
    rows = read_manifest(_study(tmp_path, "S01,3,thigh-left,photos/a.jpg\n"))
    assert len(rows) == 1 and rows[0].ok
    assert (rows[0].subject_id, rows[0].visit_day, rows[0].site) == ("S01", 3, "thigh-left")
    assert rows[0].path == tmp_path / "photos" / "a.jpg"


@pytest.mark.parametrize("file,code", [
    ("../outside.jpg", "unsafe_path"),
    ("/etc/passwd", "unsafe_path"),
    ("photos/../../x.jpg", "unsafe_path"),
    ("photos\\a.jpg", "unsafe_path"),
    ("photos/a;rm -rf.jpg", "missing_file"),  # odd but harmless: nothing runs a shell
    ("photos/a\x07.jpg", "unsafe_path"),
    ("photos/\u202egpj.exe", "unsafe_path"),
    ("photos/missing.jpg", "missing_file"),
    ("", "unsafe_path"),
])
def test_bad_files(tmp_path, file, code):
    rows = read_manifest(_study(tmp_path, f"S01,0,thigh,{file}\n"))
    assert rows[0].error is not None and rows[0].error.code == code
    assert "manifest.csv line 2" in str(rows[0].error)


def test_symlink_escaping_the_study_is_refused(tmp_path):
    outside = tmp_path / "outside.jpg"
    outside.write_bytes(b"x")
    study = tmp_path / "study"
    study.mkdir()
    (study / "link.jpg").symlink_to(outside)
    (study / "manifest.csv").write_text("subject_id,visit_day,site,file\nS01,0,t,link.jpg\n")
    assert read_manifest(study)[0].error.code == "unsafe_path"


@pytest.mark.parametrize("row,needle", [
    ("S 01,0,thigh,photos/a.jpg", "malformed subject_id"),
    ("S01,three,thigh,photos/a.jpg", "not a whole number"),
    ("S01,-1,thigh,photos/a.jpg", "outside 0..365"),
    ("S01,0,,photos/a.jpg", "site"),
    (",0,thigh,photos/a.jpg", "subject_id is required"),
    ("S01,1_0,thigh,photos/a.jpg", "not a whole number"),
    ("S01,+3,thigh,photos/a.jpg", "not a whole number"),
    ("S01,\u0663,thigh,photos/a.jpg", "not a whole number"),
    ("S01,366,thigh,photos/a.jpg", "outside 0..365"),
    ("S01,,thigh,photos/a.jpg", "visit_day is required"),
    ("=HYPERLINK(1),0,thigh,photos/a.jpg", "malformed subject_id"),
    ("S01,0,thigh,photos/a.jpg,extra", "5 fields but the header has 4"),
    ("S01,0,photos/a.jpg", "missing column(s) ['file']"),
])
def test_bad_rows(tmp_path, row, needle):
    rows = read_manifest(_study(tmp_path, row + "\n"))
    assert rows[0].error.code == "bad_row" and needle in str(rows[0].error)


def test_dicom_row_may_leave_the_day_but_never_the_subject_empty(tmp_path):
    rows = read_manifest(_study(tmp_path, "S01,,thigh,photos/a.dcm\n,,thigh,photos/a.dcm\n",
                                files=("photos/a.dcm",)))
    assert rows[0].ok and rows[0].subject_id == "S01" and rows[0].visit_day is None
    assert rows[1].error.code == "bad_row" and "never used as the subject" in str(rows[1].error)


def test_malformed_rows_are_per_row_errors_with_their_line(tmp_path):
    body = ('S01,0,thigh,photos/a.jpg\n\nS01,3,thigh,"photos/b,c.jpg",x\n'
            'S02,3,thigh\n"S02",5,"thigh","photos/a.jpg"\n')
    rows = read_manifest(_study(tmp_path, body))
    assert [r.line for r in rows] == [2, 4, 5, 6]
    assert rows[0].ok and rows[3].ok
    assert "line 4: 5 fields" in str(rows[1].error) and "unquoted comma" in str(rows[1].error)
    assert "line 5: 3 fields" in str(rows[2].error) and "'file'" in str(rows[2].error)


def test_duplicated_header_column_is_refused(tmp_path):
    (tmp_path / "manifest.csv").write_text("subject_id,visit_day,site,file,file\n"
                                           "S01,0,t,a.jpg,b.jpg\n")
    with pytest.raises(ManifestError, match=r"\['file'\] appear more than once"):
        read_manifest(tmp_path)


def test_non_ascii_names_are_accepted_and_special_files_refused(tmp_path):
    import os

    study = _study(tmp_path, "S01,0,t,photos/photé.jpg\nS01,1,t,dir.jpg\nS01,2,t,fifo.jpg\n",
                   files=("photos/photé.jpg",))
    (study / "dir.jpg").mkdir()
    os.mkfifo(study / "fifo.jpg")
    rows = read_manifest(study)
    assert rows[0].ok and rows[0].path.name == "photé.jpg"
    assert rows[1].error.code == "not_regular_file" and "a folder" in str(rows[1].error)
    assert rows[2].error.code == "not_regular_file" and "FIFO" in str(rows[2].error)


def test_missing_columns_and_missing_manifest(tmp_path):
    (tmp_path / "manifest.csv").write_text("subject,day,file\nS01,0,a.jpg\n")
    with pytest.raises(ManifestError, match="missing column"):
        read_manifest(tmp_path)
    with pytest.raises(ManifestError, match="no manifest here"):
        read_manifest(tmp_path / "nope")
