"""Drafts (issue 18, "nothing lost"): autosaved per task and assessor, private, kept across a
server restart, discarded when the read is saved; the app's own database."""

from __future__ import annotations

import base64

import numpy as np
import pytest

from pipeline.review.app import create_app
from pipeline.review.appdb import AppDB
from pipeline.review.errors import DraftError
from pipeline.review.images import labels_to_browser_png
from tests.pipeline.review.reviewkit import (
    REVIEW,
    cheap_hasher,
    login,
    server_config,
    session_csrf,
    tasks_of,
)


def _mask_b64() -> str:
    lab = np.zeros((REVIEW[1], REVIEW[0]), np.uint8)
    lab[10:30, 10:50] = 2
    return base64.b64encode(labels_to_browser_png(lab)).decode()


def _post(client, code, body):
    return client.post(f"/api/draft/{code}", json=body,
                       headers={"X-CSRF-Token": session_csrf(client)})


def test_a_draft_is_saved_restored_after_a_restart_and_private(app, study):
    ann = app.test_client()
    login(ann, "ann")
    code = tasks_of(study, "ann")[0][0]
    assert ann.get(f"/api/draft/{code}").get_json() == {"draft": None}
    form = {"estimate_percent": "37", "verdict": "needs_correction", "reason": "",
            "comment": "edge unclear"}
    r = _post(ann, code, {"form": form, "mask_png": _mask_b64()})
    assert r.status_code == 200 and r.get_json()["saved"]
    # a new server on the same folder (a restart) gives it back
    app2 = create_app(server_config(study), hasher=cheap_hasher())
    again = app2.test_client()
    login(again, "ann")
    d = again.get(f"/api/draft/{code}").get_json()["draft"]
    assert d["form"] == form and d["mask_png"] == _mask_b64()
    # the viewer is told where its draft lives
    assert f"/api/draft/{code}" in again.get(f"/read/{code}").get_data(as_text=True)
    # nobody else sees it: another assessor's request for the task is a 404
    bob = app2.test_client()
    login(bob, "bob")
    assert bob.get(f"/api/draft/{code}").status_code == 404
    assert _post(bob, code, {"form": form}).status_code == 404
    # saving the read discards the draft
    r = again.post(f"/api/read/{code}", json={"estimate_percent": 37, "verdict": "accept"},
                   headers={"X-CSRF-Token": session_csrf(again)})
    assert r.status_code == 200
    assert again.get(f"/api/draft/{code}").get_json() == {"draft": None}


def test_a_draft_can_be_discarded_and_bad_drafts_are_refused(app, study):
    ann = app.test_client()
    login(ann, "ann")
    code = tasks_of(study, "ann")[1][0]
    assert _post(ann, code, {"form": {"estimate_percent": 5}}).status_code == 200
    assert ann.get(f"/api/draft/{code}").get_json()["draft"]["form"]["estimate_percent"] == "5"
    r = ann.delete(f"/api/draft/{code}", headers={"X-CSRF-Token": session_csrf(ann)})
    assert r.status_code == 200
    assert ann.get(f"/api/draft/{code}").get_json() == {"draft": None}
    for body, words in [
        ({"form": {"verdict": "maybe"}}, "verdict"),
        ({"form": {"subject": "x"}}, "unknown draft fields"),
        ({"form": {"comment": "x" * 2001}}, "at most 2000"),
        ({"form": {}, "mask_png": "not base64!"}, "base64"),
        ({"form": {}, "mask_png": base64.b64encode(labels_to_browser_png(
            np.zeros((5, 5), np.uint8))).decode()}, "expected 160x120"),
        ([1, 2], "JSON object"),
    ]:
        r = _post(ann, code, body)
        assert r.status_code == 422 and words in r.get_json()["error"], (body, r.get_json())
    # without the CSRF token nothing is written
    r = ann.post(f"/api/draft/{code}", json={"form": {"estimate_percent": "9"}})
    assert r.status_code == 400
    assert ann.get(f"/api/draft/{code}").get_json() == {"draft": None}


def test_app_db_keeps_its_secret_and_refuses_huge_drafts(tmp_path):
    db = AppDB.open(tmp_path)
    key = db.secret("url-key")
    assert len(key) == 32 and db.secret("url-key") == key
    db.close()
    db = AppDB.open(tmp_path)
    assert db.secret("url-key") == key
    with pytest.raises(DraftError, match="too large"):
        db.save_draft("ann", "T0", form={}, mask_png=b"x" * (7 * 1024 * 1024))
    db.save_draft("ann", "T0", form={"a": "1"}, mask_png=None)
    db.save_draft("bob", "T0", form={"a": "2"}, mask_png=None)
    assert db.draft("ann", "T0").form == {"a": "1"} and db.draft("bob", "T0").form == {"a": "2"}
    db.close()
