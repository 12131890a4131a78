"""Reads (versioned, never overwritten), the analysts' export, and adjudication."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from pipeline.review.adjudication import (
    adjudication_items,
    disagreements,
    export_decisions,
    save_decision,
)
from pipeline.review.errors import ReadError
from pipeline.review.reads import READ_COLUMNS, ReadInput, export_reads, my_reads, save_read
from pipeline.store import Store
from tests.pipeline.review.reviewkit import REVIEW, tasks_of


@pytest.mark.parametrize("kw, match", [
    ({"estimate_percent": -1, "verdict": "accept"}, r"\[0, 100\]"),
    ({"estimate_percent": float("nan"), "verdict": "accept"}, r"\[0, 100\]"),
    ({"estimate_percent": "abc", "verdict": "accept"}, "'abc'"),
    ({"estimate_percent": None, "verdict": "accept"}, "required"),
    ({"estimate_percent": 5, "verdict": "fine"}, "'fine'"),
    ({"estimate_percent": None, "verdict": "unassessable"}, "needs a reason"),
    ({"estimate_percent": 5, "verdict": "accept", "reason": "bogus"}, "'bogus'"),
    ({"estimate_percent": 5, "verdict": "needs_correction", "reason": "other"}, "comment"),
    ({"estimate_percent": 5, "verdict": "accept", "comment": "x" * 2001}, "longer"),
])
def test_read_input_is_validated(kw, match):
    with pytest.raises(ReadError, match=match):
        ReadInput(**kw)


def test_read_input_normalizes():
    r = ReadInput(estimate_percent="42.5", verdict="unassessable", reason="blurred",
                  comment="  ")
    assert (r.estimate_percent, r.comment) == (42.5, None)
    assert ReadInput(estimate_percent="", verdict="unassessable",
                     reason="lighting").estimate_percent is None


def _pair(study):
    """Task codes of two assessors on the same photo."""
    bob = {p: c for c, p, rep in tasks_of(study, "bob") if not rep}
    for c, p, rep in tasks_of(study, "ann"):
        if not rep and p in bob:
            return c, bob[p], p
    raise AssertionError("no shared photo")


def test_reads_are_versioned_and_exported(study, tmp_path):
    a, _, photo = _pair(study)
    labels = np.zeros((REVIEW[1], REVIEW[0]), np.uint8)
    labels[10:20, 10:30] = 2
    with Store.open(study.store_path) as s:
        r1 = save_read(s, assessor="ann", task_code=a, out_dir=study.out_dir,
                       read=ReadInput(estimate_percent=30, verdict="needs_correction"),
                       corrected_labels=labels)
        r2 = save_read(s, assessor="ann", task_code=a, out_dir=study.out_dir,
                       read=ReadInput(estimate_percent=35, verdict="accept", comment="ok"),
                       corrected_labels=None)
        assert (r1.version, r2.version) == (1, 2) and r1.photo_id == photo
        assert r1.corrected_mask_file == f"review/corrections/{a}-v1.png"
        assert (study.out_dir / r1.corrected_mask_file).is_file()
        assert r1.created_utc <= r2.created_utc
        with pytest.raises(ReadError, match="no such task"):
            save_read(s, assessor="bob", task_code=a, out_dir=study.out_dir,
                      read=ReadInput(estimate_percent=1, verdict="accept"),
                      corrected_labels=None)
        mine = my_reads(s.conn, "ann")
        assert len(mine) == 1 and mine[0].versions == 2 and mine[0].latest.version == 2
        n = export_reads(s.conn, tmp_path / "reads.csv")
    assert n == 2
    with open(tmp_path / "reads.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert tuple(rows[0]) == READ_COLUMNS
    assert READ_COLUMNS[:11] == ("read_id", "photo_id", "assessor", "version",
                                 "estimate_percent", "verdict", "reason", "comment",
                                 "corrected_mask_file", "is_repeat", "created_utc")
    assert [(r["version"], r["estimate_percent"], r["verdict"]) for r in rows] == [
        ("1", "30.0", "needs_correction"), ("2", "35.0", "accept")]
    assert rows[0]["photo_id"] == photo and rows[1]["corrected_mask_file"] == ""


def test_disagreement_rules():
    from pipeline.review.reads import Read

    def r(e, v="accept", rid=1):
        return Read(rid, "P", "a", 1, e, v, None, None, None, 0, "", "T", 1)

    assert disagreements((r(40), r(50)), threshold=10) == ()
    assert disagreements((r(40), r(50.5)), threshold=10) == ("estimates differ by 10.5 points",)
    assert disagreements((r(40), r(41, "needs_correction")), threshold=10) == (
        "verdicts differ",)
    assert disagreements((r(40),), threshold=0) == ()
    assert disagreements((r(None, "unassessable"), r(20)), threshold=10) == ("verdicts differ",)


def test_adjudication_queue_opens_closes_and_reopens(study, tmp_path):
    a, b, photo = _pair(study)
    with Store.open(study.store_path) as s:
        def read(who, code, e, v="accept"):
            save_read(s, assessor=who, task_code=code, out_dir=study.out_dir,
                      read=ReadInput(estimate_percent=e, verdict=v), corrected_labels=None)

        read("ann", a, 40)
        assert adjudication_items(s.conn, threshold=10) == []   # one read only
        read("bob", b, 48)
        assert adjudication_items(s.conn, threshold=10) == []   # within the threshold
        read("bob", b, 60)                                        # a new version disagrees
        items = adjudication_items(s.conn, threshold=10)
        assert len(items) == 1 and items[0].photo_id == photo and items[0].is_open
        assert [x.estimate_percent for x in items[0].reads] == [40, 60]
        assert adjudication_items(s.conn, threshold=25) == []
        save_decision(s, coordinator="cora", item_code=items[0].item_code,
                      decision=ReadInput(estimate_percent=50, verdict="accept", comment="mid"),
                      threshold=10)
        assert adjudication_items(s.conn, threshold=10) == []
        closed = adjudication_items(s.conn, threshold=10, include_closed=True)
        assert len(closed) == 1 and closed[0].decision.version == 1
        read("ann", a, 41, "needs_correction")                   # changed again: reopens
        again = adjudication_items(s.conn, threshold=10)
        assert len(again) == 1 and again[0].why == ("estimates differ by 19.0 points",
                                                    "verdicts differ")
        assert export_decisions(s.conn, tmp_path / "adj.csv") == 1


def test_hidden_repeats_do_not_count_as_a_second_assessor(study):
    tasks = tasks_of(study, "ann")
    rep = next((c, p) for c, p, r in tasks if r)
    first = next(c for c, p, r in tasks if p == rep[1] and not r)
    with Store.open(study.store_path) as s:
        for code, e in ((first, 10), (rep[0], 90)):
            save_read(s, assessor="ann", task_code=code, out_dir=study.out_dir,
                      read=ReadInput(estimate_percent=e, verdict="accept"),
                      corrected_labels=None)
        assert adjudication_items(s.conn, threshold=10) == []
        flags = s.conn.execute("SELECT is_repeat FROM review_reads ORDER BY read_id").fetchall()
        assert [f[0] for f in flags] == [0, 1]
