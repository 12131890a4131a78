"""The reading queue: assignment, seeded interleaved order, hidden repeats, extension."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from pipeline.review.accounts import add_user
from pipeline.review.errors import QueueError, ReviewSettingsError
from pipeline.review.queue import build_queue, interleave, next_task, place_repeats, progress
from pipeline.review.settings import StudyReviewSettings, load_study_settings
from pipeline.store import Store
from tests.pipeline.review.reviewkit import ASSESSORS, cheap_hasher, make_study


def _tasks(store):
    return store.conn.execute(
        "SELECT t.task_code, t.assessor, t.photo_id, t.position, t.is_repeat, v.subject_id "
        "FROM review_tasks t JOIN photos p USING (photo_id) JOIN visits v USING (visit_id) "
        "ORDER BY t.assessor, t.position").fetchall()


def test_interleave_is_seeded_and_avoids_the_same_subject_twice_in_a_row():
    items = [(f"{s}{d}", s) for s in "ABCD" for d in range(5)]
    a = interleave(items, np.random.default_rng(3))
    assert a == interleave(items, np.random.default_rng(3))
    assert a != interleave(items, np.random.default_rng(4))
    assert sorted(a) == sorted(p for p, _ in items)
    for seed in range(30):
        subj = [p[0] for p in interleave(items, np.random.default_rng(seed))]
        assert all(x != y for x, y in zip(subj, subj[1:], strict=False)), subj
    # one dominant subject: still alternated as far as possible
    lop = [(f"A{i}", "A") for i in range(5)] + [(f"B{i}", "B") for i in range(4)]
    assert [p[0] for p in interleave(lop, np.random.default_rng(1))] == list("ABABABABA")
    # visits of a subject are not in their natural order every time
    orders = {tuple(p for p in interleave(items, np.random.default_rng(k)) if p[0] == "A")
              for k in range(5)}
    assert len(orders) > 1


def test_place_repeats_puts_hidden_repeats_well_after_the_first_showing():
    order = [str(i) for i in range(60)]
    out = place_repeats(order, 0.05, np.random.default_rng(0))
    reps = [p for p, r in out if r]
    assert len(reps) == 3 and [p for p, r in out if not r] == order
    for p in reps:
        first = next(i for i, (q, r) in enumerate(out) if q == p and not r)
        again = next(i for i, (q, r) in enumerate(out) if q == p and r)
        assert again - first > 60 // 5
    assert place_repeats(order[:3], 0.5, np.random.default_rng(0)) == [
        (p, False) for p in order[:3]]


def test_each_photo_is_read_by_two_different_assessors_balanced(study):
    with Store.open(study.store_path) as s:
        rows = _tasks(s)
        primary = [r for r in rows if not r["is_repeat"]]
        per_photo = Counter(r["photo_id"] for r in primary)
        assert set(per_photo) == set(study.photo_ids)  # the failed photo is not queued
        assert set(per_photo.values()) == {2}
        for pid in study.photo_ids:
            assert len({r["assessor"] for r in primary if r["photo_id"] == pid}) == 2
        loads = Counter(r["assessor"] for r in primary)
        assert set(loads) == set(ASSESSORS) and max(loads.values()) - min(loads.values()) <= 1
        # repeats: ~20 % in this fixture, of photos already in the same assessor's queue
        reps = [r for r in rows if r["is_repeat"]]
        assert len(reps) == sum(round(0.2 * n) for n in loads.values())
        for r in reps:
            assert any(p["photo_id"] == r["photo_id"] and p["assessor"] == r["assessor"]
                       and p["position"] < r["position"] for p in primary)
        # codes are opaque and unique, and differ between a photo's tasks
        codes = [r["task_code"] for r in rows]
        assert len(set(codes)) == len(codes)
        # interleaved: no two consecutive first showings share a subject; a repeat may land
        # next to its subject only when a short queue leaves no other slot
        for a in ASSESSORS:
            subj = [r["subject_id"] for r in rows if r["assessor"] == a and not r["is_repeat"]]
            assert all(x != y for x, y in zip(subj, subj[1:], strict=False)), subj
            every = [r["subject_id"] for r in rows if r["assessor"] == a]
            n_rep = sum(r["is_repeat"] for r in rows if r["assessor"] == a)
            assert sum(x == y for x, y in zip(every, every[1:], strict=False)) <= n_rep


def test_building_again_adds_nothing_then_only_new_work(study):
    with Store.open(study.store_path) as s:
        before = [tuple(r) for r in _tasks(s)]
        settings = load_study_settings(s.conn)
        again = build_queue(s, settings=settings, created_by="test")
        assert again.n_tasks == 0 and [tuple(r) for r in _tasks(s)] == before
        # a new assessor and more reads per photo: only new tasks, appended after the old
        with s.transaction() as c:
            add_user(c, "dee", role="assessor", hasher=cheap_hasher(), password="x" * 12)
        more = build_queue(s, settings=StudyReviewSettings(reads_per_photo=3, queue_seed=7,
                                                           repeat_fraction=0.0),
                           created_by="test")
        assert more.n_tasks == len(study.photo_ids)
        after = [tuple(r) for r in _tasks(s)]
        assert set(before) <= set(after)
        builds = s.conn.execute("SELECT seed, n_tasks FROM review_queue_builds").fetchall()
        assert [tuple(b) for b in builds][-1] == (7, len(study.photo_ids))


def test_same_store_and_seed_give_the_same_order_another_seed_another(tmp_path):
    import shutil

    st = make_study(tmp_path / "s", queue=False)

    def order(name, seed):
        path = tmp_path / name
        shutil.copy(st.store_path, path)
        with Store.open(path) as s:
            build_queue(s, settings=StudyReviewSettings(queue_seed=seed, repeat_fraction=0.2),
                        created_by="t")
            return [(r["assessor"], r["photo_id"], r["position"], r["is_repeat"])
                    for r in _tasks(s)]

    a, b, c = order("a.sqlite", 11), order("b.sqlite", 11), order("c.sqlite", 12)
    assert a == b and a != c and len(a) == len(c)


def test_too_few_assessors(tmp_path):
    st = make_study(tmp_path, queue=False)
    with Store.open(st.store_path) as s:
        with pytest.raises(QueueError, match="reads_per_photo is 4"):
            build_queue(s, settings=StudyReviewSettings(reads_per_photo=4), created_by="t")


def test_next_task_and_progress(study):
    with Store.open(study.store_path) as s:
        rows = [r for r in _tasks(s) if r["assessor"] == "ann"]
        assert next_task(s.conn, "ann") == rows[0]["task_code"]
        assert next_task(s.conn, "ann", exclude=rows[0]["task_code"]) == rows[1]["task_code"]
        assert progress(s.conn, "ann") == (0, len(rows))


def test_settings_are_validated():
    with pytest.raises(ReviewSettingsError, match="disagreement_threshold"):
        StudyReviewSettings(disagreement_threshold=-1)
    with pytest.raises(ReviewSettingsError, match="reads_per_photo"):
        StudyReviewSettings(reads_per_photo=0)
    with pytest.raises(ReviewSettingsError, match="repeat_fraction"):
        StudyReviewSettings(repeat_fraction=0.9)
    with pytest.raises(ReviewSettingsError, match="show_visit_day"):
        StudyReviewSettings(show_visit_day="yes")
