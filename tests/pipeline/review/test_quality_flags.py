"""Photos the model is unsure of are read first; the assessor is told "the model is unsure"
but sees the model's numbers only when the study shows live numbers (issue 18, item 5)."""

from __future__ import annotations

from pipeline.qc import LOW_CONFIDENCE, OUT_OF_DISTRIBUTION
from pipeline.review.queue import next_task
from pipeline.review.settings import load_study_settings, save_study_settings
from pipeline.store import Store
from tests.pipeline.review.reviewkit import login, session_csrf, tasks_of


def _flag(study, photo_id: str, flag: str, *, interval: tuple[float, float] | None = None):
    with Store.open(study.store_path) as s, s.transaction() as c:
        rid = c.execute("SELECT result_id FROM results WHERE photo_id=? AND status='ok'",
                        (photo_id,)).fetchone()[0]
        c.execute("INSERT INTO qc_flags VALUES (?, ?)", (rid, flag))
        if interval:
            c.execute("INSERT INTO assessments VALUES (?, 0.4, ?, ?, 0.3, 2.5)",
                      (rid, *interval))


def test_held_photos_come_first_and_say_the_model_is_unsure(app, study):
    tasks = tasks_of(study, "ann")
    originals = [(c, p) for c, p, rep in tasks if not rep]
    repeated = {p for _, p, rep in tasks if rep}
    late = [(c, p) for c, p in originals[3:] if p not in repeated][-2:]
    (c1, p1), (c2, p2) = sorted(late, key=lambda t: [x[0] for x in tasks].index(t[0]))
    _flag(study, p1, LOW_CONFIDENCE, interval=(48.0, 71.0))
    _flag(study, p2, OUT_OF_DISTRIBUTION)
    with Store.open(study.store_path) as s:
        assert next_task(s.conn, "ann") == c1
        assert next_task(s.conn, "ann", exclude=c1) == c2
    c = app.test_client()
    login(c, "ann")
    assert c.get("/next").headers["Location"].endswith(f"/read/{c1}")
    page = c.get(f"/read/{c1}").get_data(as_text=True)
    assert 'id="model-unsure"' in page
    assert "48–71" not in page and "model-interval" not in page
    assert 'id="model-unsure"' not in c.get(f"/read/{originals[0][0]}").get_data(as_text=True)
    token = session_csrf(c)
    for code in (c1, c2):
        r = c.post(f"/api/read/{code}", json={"estimate_percent": 50, "verdict": "accept"},
                   headers={"X-CSRF-Token": token})
        assert r.status_code == 200
    # then the queue goes on in its own order
    assert c.get("/next").headers["Location"].endswith(f"/read/{tasks[0][0]}")


def test_a_repeat_of_a_held_photo_keeps_its_place_and_looks_the_same(app, study):
    tasks = tasks_of(study, "ann")
    code_rep, photo = next((c, p) for c, p, rep in tasks if rep)
    code_orig = next(c for c, p, rep in tasks if p == photo and not rep)
    _flag(study, photo, LOW_CONFIDENCE)
    with Store.open(study.store_path) as s:
        assert next_task(s.conn, "ann") == code_orig
        # the repeat is not pulled forward: after the original, the queue's own order
        assert next_task(s.conn, "ann", exclude=code_orig) == next(
            c for c, _, _ in tasks if c != code_orig)
    c = app.test_client()
    login(c, "ann")
    for code in (code_orig, code_rep):
        assert 'id="model-unsure"' in c.get(f"/read/{code}").get_data(as_text=True)


def test_the_models_interval_shows_only_with_live_numbers(app, study):
    code, photo, _ = tasks_of(study, "ann")[0]
    _flag(study, photo, LOW_CONFIDENCE, interval=(48.0, 71.0))
    c = app.test_client()
    login(c, "ann")
    assert "model-interval" not in c.get(f"/read/{code}").get_data(as_text=True)
    with Store.open(study.store_path) as s, s.transaction() as conn:
        from dataclasses import replace

        save_study_settings(conn, replace(load_study_settings(conn), show_live_numbers=True))
    page = c.get(f"/read/{code}").get_data(as_text=True)
    assert 'id="model-interval">48–71 %' in page
