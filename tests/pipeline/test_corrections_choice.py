"""Which stored read teaches the model (pipeline.corrections.choose_masks), on the review
tests' small store (no processing)."""

from __future__ import annotations

import numpy as np

from pipeline.corrections import choose_masks
from pipeline.review.adjudication import get_item, save_decision
from pipeline.review.reads import ReadInput, save_read
from pipeline.store import Store
from tests.pipeline.review.reviewkit import COORDINATOR, REVIEW, make_study


def _read(s, study, photo, assessor, estimate, verdict, *, mask=False, reason=None):
    code = s.conn.execute("SELECT task_code FROM review_tasks WHERE photo_id=? AND assessor=? "
                          "AND is_repeat=0", (photo, assessor)).fetchone()
    assert code is not None
    labels = np.ones((REVIEW[1], REVIEW[0]), np.uint8) if mask else None
    return save_read(s, assessor=assessor, task_code=code[0],
                     read=ReadInput(estimate_percent=estimate, verdict=verdict, reason=reason),
                     corrected_labels=labels, out_dir=study.out_dir)


def test_choice_rules(tmp_path):
    study = make_study(tmp_path, reads_per_photo=2, repeat_fraction=0.0)
    with Store.open(study.store_path) as s:
        readers = {p: [r[0] for r in s.conn.execute(
            "SELECT assessor FROM review_tasks WHERE photo_id=? ORDER BY assessor", (p,))]
            for p in study.photo_ids}
        a, b, c, d, e, f, g = study.photo_ids[:7]
        _read(s, study, a, readers[a][0], 40, "accept")
        _read(s, study, a, readers[a][1], 45, "accept")
        first = _read(s, study, b, readers[b][0], 40, "needs_correction", mask=True)
        _read(s, study, b, readers[b][1], 42, "needs_correction", mask=True)
        _read(s, study, g, readers[g][0], 40, "accept")  # verdicts differ: adjudication
        _read(s, study, g, readers[g][1], 42, "needs_correction", mask=True)
        _read(s, study, c, readers[c][0], 20, "accept")
        corrected = _read(s, study, c, readers[c][1], 60, "needs_correction", mask=True)
        _read(s, study, d, readers[d][0], 50, "accept")
        _read(s, study, d, readers[d][1], None, "unassessable", reason="blurred")
        _read(s, study, e, readers[e][0], 10, "accept")
        _read(s, study, e, readers[e][1], 90, "accept")
        _read(s, study, f, readers[f][0], 30, "needs_correction")  # no mask: teaches nothing
        chosen, skipped = choose_masks(s.conn)
        got = {m.photo_id: m for m in chosen}
        assert got[a].source == "accepted" and got[a].is_full_resolution
        assert got[a].mask_file.startswith("masks/")
        assert got[b].source == "corrected" and not got[b].is_full_resolution
        assert got[b].mask_file == first.corrected_mask_file and len(got[b].read_ids) == 2
        assert skipped[g].startswith("reads disagree")
        assert skipped[c].startswith("reads disagree") and skipped[e].startswith("reads")
        assert skipped[d] == "unassessable" and "no corrected mask" in skipped[f]
        # the coordinator decides: the considered read nearest the decision teaches
        items = {r[1]: r[0] for r in s.conn.execute("SELECT item_code, photo_id FROM "
                                                   "review_items")}
        assert get_item(s.conn, items[c], threshold=10) is not None
        save_decision(s, coordinator=COORDINATOR, item_code=items[c], threshold=10,
                      decision=ReadInput(estimate_percent=58, verdict="needs_correction"))
        save_decision(s, coordinator=COORDINATOR, item_code=items[e], threshold=10,
                      decision=ReadInput(estimate_percent=None, verdict="unassessable",
                                         reason="lighting"))
        chosen, skipped = choose_masks(s.conn)
        got = {m.photo_id: m for m in chosen}
    assert got[c].source == "adjudicated-corrected"
    assert got[c].mask_file == corrected.corrected_mask_file
    assert COORDINATOR in got[c].assessors
    assert skipped[e] == "adjudicated unassessable" and e not in got
