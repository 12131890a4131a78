from __future__ import annotations

import sqlite3

import pytest

from pipeline.errors import StoreError
from pipeline.store import SCHEMA_VERSION, Store


def _reg(store: Store, name: str = "a.jpg", sha: str = "s1", day: int = 0, site: str = "thigh"):
    return store.register_photo(manifest="/m.csv", source_name=name, sha256=sha, size_bytes=1,
                                subject_id="S01", visit_day=day, site=site)


def _run(store: Store) -> int:
    return store.begin_run(software_version="t", git_commit="c", model_name="m",
                           model_sha256="h", sticker={"name": "X"}, params={}, reason=None,
                           command="test")


def _ok(store: Store, photo_id: str, run: int, version: int = 1, healed: float = 50.0) -> int:
    return store.save_result(
        photo_id=photo_id, run_id=run, version=version, status="ok",
        calibration={"mm_per_px": 0.1, "tilt_deg": 3.0, "markers": (0, 1, 2, 3)},
        segmentation={"model_name": "m", "model_sha256": "h", "mask_file": "m.png",
                      "overlay_file": "o.jpg"},
        measurement={"donor_site_area_mm2": 100.0, "epithelialized_area_mm2": healed,
                     "raw_area_mm2": 100 - healed, "healed_percent": healed},
        qc_flags=("b_flag", "a_flag"))


def test_schema_is_migrated_and_reopened(tmp_path):
    with Store.open(tmp_path / "s.sqlite") as s:
        assert s.schema_version == SCHEMA_VERSION
    with Store.open(tmp_path / "s.sqlite") as s:
        assert s.schema_version == SCHEMA_VERSION


def test_newer_schema_is_refused(tmp_path):
    p = tmp_path / "s.sqlite"
    Store.open(p).close()
    con = sqlite3.connect(p)
    con.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    con.close()
    with pytest.raises(StoreError, match="newer than this software"):
        Store.open(p)


def test_not_a_database(tmp_path):
    p = tmp_path / "s.sqlite"
    p.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError, match="not a usable SQLite"):
        Store.open(p)


def test_same_bytes_same_photo_changed_bytes_new_version(tmp_path):
    with Store.open(tmp_path / "s.sqlite") as s:
        a = _reg(s)
        assert a.is_new and a.version == 1 and a.photo_id.startswith("P")
        assert "S01" not in a.photo_id
        again = _reg(s)
        assert not again.is_new and again.photo_id == a.photo_id
        changed = _reg(s, sha="s2")
        assert changed.is_new and changed.version == 2 and changed.photo_id != a.photo_id
        assert "changed_file_new_version" in changed.flags
        # the old version is still there
        assert s.conn.execute("SELECT COUNT(*) FROM photos").fetchone()[0] == 2
        assert [r["photo_id"] for r in s.current_results()] == [changed.photo_id]


def test_second_photo_for_visit_is_kept_and_flagged(tmp_path):
    with Store.open(tmp_path / "s.sqlite") as s:
        _reg(s, "a.jpg", "s1")
        b = _reg(s, "b.jpg", "s2")
        assert "second_photo_for_visit" in b.flags
        assert len(s.current_results()) == 2


def test_results_are_versioned_never_overwritten(tmp_path):
    with Store.open(tmp_path / "s.sqlite") as s:
        run = _run(s)
        p = _reg(s)
        _ok(s, p.photo_id, run, 1, healed=40.0)
        assert s.next_result_version(p.photo_id) == 2
        _ok(s, p.photo_id, run, 2, healed=60.0)
        cur = s.current_results()[0]
        assert cur["result_version"] == 2 and cur["healed_percent"] == 60.0
        assert cur["qc_flags"] == "a_flag;b_flag"
        assert s.conn.execute("SELECT COUNT(*) FROM measurements").fetchone()[0] == 2
        with pytest.raises(sqlite3.IntegrityError):
            _ok(s, p.photo_id, run, 2)
        assert s.integrity_problems() == []


def test_a_failing_transaction_leaves_nothing(tmp_path):
    with Store.open(tmp_path / "s.sqlite") as s:
        run = _run(s)
        p = _reg(s)
        with pytest.raises(KeyError):
            s.save_result(photo_id=p.photo_id, run_id=run, version=1, status="ok",
                          segmentation={"model_name": "m"})  # incomplete -> KeyError
        assert s.conn.execute("SELECT COUNT(*) FROM results").fetchone()[0] == 0
        assert s.counts_by_state()["pending"] == 1


def test_results_and_reads_are_append_only_in_the_database(tmp_path):
    with Store.open(tmp_path / "s.sqlite") as s:
        run = _run(s)
        p = _reg(s)
        rid = _ok(s, p.photo_id, run)
        for sql in (f"UPDATE measurements SET healed_percent=1 WHERE result_id={rid}",
                    f"DELETE FROM results WHERE result_id={rid}",
                    f"UPDATE results SET status='failed' WHERE result_id={rid}",
                    "DELETE FROM qc_flags"):
            with pytest.raises(sqlite3.IntegrityError, match="append-only"):
                s.conn.execute(sql)
        assert s.current_results()[0]["healed_percent"] == 50.0


def test_assessment_is_stored_with_its_result_and_is_append_only(tmp_path):
    with Store.open(tmp_path / "s.sqlite") as s:
        run = _run(s)
        p = _reg(s)
        q = _reg(s, "b.jpg", "s2", day=3)
        s.save_result(photo_id=p.photo_id, run_id=run, version=1, status="ok",
                      measurement={"donor_site_area_mm2": 100.0, "epithelialized_area_mm2": 40,
                                   "raw_area_mm2": 60, "healed_percent": 40.0},
                      assessment={"confidence": 0.93, "healed_percent_low": 38.5,
                                  "healed_percent_high": 44.0, "outline_ambiguity": 0.02,
                                  "ood_score": 1.7},
                      qc_flags=("out_of_distribution",))
        _ok(s, q.photo_id, run)  # no assessment: its columns stay empty
        rows = {r["source_name"]: r for r in s.current_results()}
        a, b = rows["a.jpg"], rows["b.jpg"]
        assert (a["confidence"], a["healed_percent_low"], a["healed_percent_high"],
                a["ood_score"]) == (0.93, 38.5, 44.0, 1.7)
        assert a["qc_flags"] == "out_of_distribution"
        assert b["confidence"] is None and b["ood_score"] is None
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            s.conn.execute("UPDATE assessments SET confidence = 1")
