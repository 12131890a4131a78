"""Moving unread work (issue 18): an assessor added mid-study gets tasks, tasks can be
reassigned, an account can be deactivated with its reads kept."""

from __future__ import annotations

from collections import Counter

import pytest

from pipeline.review.accounts import add_user
from pipeline.review.assign import deactivate, reassign_unread, unread_load
from pipeline.review.errors import QueueError
from pipeline.review.queue import build_queue
from pipeline.review.reads import ReadInput, save_read
from pipeline.review.settings import load_study_settings
from pipeline.store import Store
from tests.pipeline.review.reviewkit import cheap_hasher, login, session_csrf, tasks_of


def _tasks(s):
    return s.conn.execute("SELECT assessor, photo_id, is_repeat FROM review_tasks").fetchall()


def _consistent(s):
    """No assessor has a photo twice as a first showing; every repeat has its original."""
    rows = _tasks(s)
    firsts = Counter((r["assessor"], r["photo_id"]) for r in rows if not r["is_repeat"])
    assert max(firsts.values()) == 1
    for r in rows:
        if r["is_repeat"]:
            assert firsts[(r["assessor"], r["photo_id"])] == 1
    # every photo keeps its reads_per_photo first showings
    per_photo = Counter(r["photo_id"] for r in rows if not r["is_repeat"])
    assert set(per_photo.values()) == {2}


def test_an_assessor_added_mid_study_gets_a_fair_share(study):
    tasks = tasks_of(study, "ann")
    with Store.open(study.store_path) as s:
        save_read(s, assessor="ann", task_code=tasks[0][0], out_dir=study.out_dir,
                  read=ReadInput(estimate_percent=10, verdict="accept"), corrected_labels=None)
        with s.transaction() as c:
            add_user(c, "dee", role="assessor", hasher=cheap_hasher(), password="x" * 12)
        built = build_queue(s, settings=load_study_settings(s.conn), created_by="cora")
        loads = {a: unread_load(s.conn, a) for a in ("ann", "bob", "cat", "dee")}
        assert built.n_moved == loads["dee"] >= 4
        assert max(loads.values()) - min(loads.values()) <= 2, loads
        _consistent(s)
        # the read task stayed with ann, under its code
        assert s.conn.execute("SELECT assessor FROM review_tasks WHERE task_code=?",
                              (tasks[0][0],)).fetchone()[0] == "ann"
        # building again moves nothing more
        assert build_queue(s, settings=load_study_settings(s.conn),
                           created_by="cora").n_moved == 0


def test_reassign_and_deactivate_keep_reads_and_consistency(study):
    ann = tasks_of(study, "ann")
    with Store.open(study.store_path) as s:
        save_read(s, assessor="ann", task_code=ann[0][0], out_dir=study.out_dir,
                  read=ReadInput(estimate_percent=10, verdict="accept"), corrected_labels=None)
        before = unread_load(s.conn, "ann")
        moved = reassign_unread(s, source="ann", target="bob", limit=2, created_by="cora")
        assert moved.moved == (("bob", 2),)
        assert unread_load(s.conn, "ann") < before
        _consistent(s)
        with pytest.raises(QueueError, match="not another active assessor"):
            reassign_unread(s, source="ann", target="zed", created_by="cora")
        unread_firsts = ("SELECT COUNT(*) FROM review_tasks t WHERE assessor='ann' AND "
                         "is_repeat=0 AND NOT EXISTS (SELECT 1 FROM review_reads r WHERE "
                         "r.task_code=t.task_code)")
        n_unread = s.conn.execute(unread_firsts).fetchone()[0]
        out = deactivate(s, "ann", created_by="cora")
        # photos both others already have cannot move: they stay, and are reported
        assert out.n_moved + out.stuck == n_unread and out.n_moved > 0
        assert s.conn.execute(unread_firsts).fetchone()[0] == out.stuck
        assert s.conn.execute("SELECT active FROM review_users WHERE name='ann'"
                              ).fetchone()[0] == 0
        assert s.conn.execute("SELECT COUNT(*) FROM review_reads WHERE assessor='ann'"
                              ).fetchone()[0] == 1
        _consistent(s)


def test_coordinator_deactivates_and_reassigns_from_the_web(app, study):
    c = app.test_client()
    login(c, "cora")
    token = session_csrf(c)
    ann = app.test_client()
    login(ann, "ann")
    assert ann.get("/queue").status_code == 200
    r = c.post("/coord/users/bob/reassign", data={"to": "cat", "csrf_token": token})
    assert r.status_code == 302 and "moved" in r.headers["Location"]
    r = c.post("/coord/users/ann/deactivate", data={"csrf_token": token})
    assert r.status_code == 302 and "deactivated" in r.headers["Location"]
    assert ann.get("/queue").status_code == 302   # logged out: back to the login page
    home = c.get("/coord/").get_data(as_text=True)
    assert "Deactivated (reads kept): ann" in home and 'id="assessor-ann"' not in home
    assert c.post("/coord/users/cora/deactivate", data={"csrf_token": token}
                  ).headers["Location"].endswith("yourself")
