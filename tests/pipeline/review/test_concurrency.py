"""Several assessors submitting at once lose no read, and versions never collide."""

from __future__ import annotations

import base64
import threading

import numpy as np

from pipeline.review.images import labels_to_browser_png
from pipeline.store import Store
from tests.pipeline.review.reviewkit import ASSESSORS, REVIEW, login, session_csrf, tasks_of


def test_simultaneous_submissions_lose_no_read(app, study):
    clients = {}
    for name in ASSESSORS:
        c = app.test_client()
        login(c, name)
        clients[name] = (c, session_csrf(c))
    mask = np.zeros((REVIEW[1], REVIEW[0]), np.uint8)
    mask[5:50, 5:50] = 1
    png = base64.b64encode(labels_to_browser_png(mask)).decode()
    jobs = []  # (assessor, task, estimate)
    for name in ASSESSORS:
        for k, (code, _, _) in enumerate(tasks_of(study, name)):
            jobs.append((name, code, k))
    hot = tasks_of(study, "ann")[0][0]
    jobs += [("ann", hot, 50 + k) for k in range(6)]  # the same task, many versions at once
    barrier = threading.Barrier(len(ASSESSORS) * 2)
    errors: list[object] = []

    def worker(mine):
        barrier.wait()
        for name, code, est in mine:
            c, token = clients[name]
            # each thread needs its own client: copy the session cookie into a new one
            r = c.application.test_client()
            r.set_cookie("ds_session", c.get_cookie("ds_session").value)
            resp = r.post(f"/api/read/{code}", headers={"X-CSRF-Token": token},
                          json={"estimate_percent": est, "verdict": "needs_correction",
                                "mask_png": png})
            if resp.status_code != 200:
                errors.append((name, code, resp.status_code, resp.get_data(as_text=True)))

    chunks = [jobs[i::len(ASSESSORS) * 2] for i in range(len(ASSESSORS) * 2)]
    threads = [threading.Thread(target=worker, args=(ch,)) for ch in chunks]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors[:3]
    with Store.open(study.store_path) as s:
        rows = s.conn.execute("SELECT task_code, version, assessor, corrected_mask_file FROM "
                              "review_reads").fetchall()
        assert len(rows) == len(jobs)
        hot_versions = sorted(r["version"] for r in rows if r["task_code"] == hot)
        assert hot_versions == list(range(1, len(hot_versions) + 1))
        assert all((study.out_dir / r["corrected_mask_file"]).is_file() for r in rows)
        assert len({r["corrected_mask_file"] for r in rows}) == len(rows)
        assert s.integrity_problems() == []
