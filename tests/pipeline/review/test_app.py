"""The review app over HTTP (Flask test client): login, roles, reads, pictures, CSRF."""

from __future__ import annotations

import base64
import io

import cv2
import numpy as np
from PIL import Image

from pipeline.review.images import labels_to_browser_png
from pipeline.store import Store
from tests.pipeline.review.reviewkit import (
    ASSESSORS,
    MM_PER_PX,
    REVIEW,
    csrf_from,
    login,
    session_csrf,
    tasks_of,
)


def _submit(client, code, body, token):
    return client.post(f"/api/read/{code}", json=body, headers={"X-CSRF-Token": token})


def test_login_sets_strict_httponly_session_cookie_and_logout_ends_it(app):
    c = app.test_client()
    r = login(c, "ann")
    assert r.status_code == 302 and r.headers["Location"].endswith("/")
    cookie = next(h for h in r.headers.getlist("Set-Cookie") if h.startswith("ds_session="))
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert c.get("/queue").status_code == 200
    stolen = c.get_cookie("ds_session").value
    token = session_csrf(c)
    r = c.post("/logout", data={"csrf_token": token})
    assert r.status_code == 302 and r.headers["Location"].endswith("/login")
    # the old cookie is dead on the server, not only deleted in this browser
    c2 = app.test_client()
    c2.set_cookie("ds_session", stolen)
    assert c2.get("/queue").status_code == 302


def test_login_form_survives_another_login_page_load(app):
    """A second /login load (another tab, a redirected favicon request) keeps the token."""
    c = app.test_client()
    first = csrf_from(c.get("/login").get_data(as_text=True))
    c.get("/login")
    r = c.post("/login", data={"name": "ann", "password": "pw-ann-0123456789",
                               "csrf_token": first})
    assert r.status_code == 302


def test_wrong_password_and_unknown_user_look_the_same(app):
    c = app.test_client()
    a = login(c, "ann", "wrong-password-123")
    b = login(c, "nobody", "wrong-password-123")
    assert a.status_code == b.status_code == 401
    assert "Wrong name or password" in a.get_data(as_text=True)
    assert "Wrong name or password" in b.get_data(as_text=True)


def test_login_form_needs_its_csrf_token(app):
    c = app.test_client()
    c.get("/login")
    r = c.post("/login", data={"name": "ann", "password": "pw-ann-0123456789"})
    assert r.status_code == 400 and c.get_cookie("ds_session") is None


def test_assessor_reads_a_photo_with_a_corrected_mask(app, study):
    c = app.test_client()
    login(c, "ann")
    code = tasks_of(study, "ann")[0][0]
    r = c.get("/next")
    assert r.headers["Location"].endswith(f"/read/{code}")
    page = c.get(f"/read/{code}").get_data(as_text=True)
    assert 'id="viewer-config"' in page
    # the pictures: plain review picture, mask at the picture's size, grey coded
    photo = c.get(f"/read/{code}/photo.jpg")
    assert photo.status_code == 200 and photo.mimetype == "image/jpeg"
    assert Image.open(io.BytesIO(photo.data)).size == REVIEW
    mask = cv2.imdecode(np.frombuffer(c.get(f"/read/{code}/mask.png").data, np.uint8), -1)
    assert mask.shape == (REVIEW[1], REVIEW[0]) and set(np.unique(mask)) <= {0, 100, 200}
    corrected = (mask // 100).astype(np.uint8)
    corrected[0:10, 0:10] = 2
    body = {"estimate_percent": 55, "verdict": "needs_correction", "comment": "edge",
            "mask_png": base64.b64encode(labels_to_browser_png(corrected)).decode()}
    token = session_csrf(c)
    r = _submit(c, code, body, token)
    assert r.status_code == 200, r.get_json()
    assert r.get_json()["version"] == 1
    assert r.get_json()["next_url"].endswith(f"/read/{tasks_of(study, 'ann')[1][0]}")
    with Store.open(study.store_path) as s:
        row = s.conn.execute("SELECT * FROM review_reads").fetchone()
    assert row["assessor"] == "ann" and row["estimate_percent"] == 55
    assert row["created_utc"].endswith("Z")
    saved = cv2.imread(str(study.out_dir / row["corrected_mask_file"]), cv2.IMREAD_UNCHANGED)
    np.testing.assert_array_equal(saved, corrected)
    # reopening shows the correction, and a change is a new version
    again = cv2.imdecode(np.frombuffer(c.get(f"/read/{code}/mask.png?v=1").data, np.uint8), -1)
    np.testing.assert_array_equal(again // 100, corrected)
    r = _submit(c, code, {"estimate_percent": 60, "verdict": "accept"}, token)
    assert r.get_json()["version"] == 2
    with Store.open(study.store_path) as s:
        rows = s.conn.execute("SELECT version, estimate_percent FROM review_reads ORDER BY "
                              "version").fetchall()
    assert [tuple(r) for r in rows] == [(1, 55.0), (2, 60.0)]


def test_invalid_reads_are_refused(app, study):
    c = app.test_client()
    login(c, "ann")
    code = tasks_of(study, "ann")[0][0]
    token = session_csrf(c)
    for body in ({"estimate_percent": 101, "verdict": "accept"},
                 {"estimate_percent": 50, "verdict": "maybe"},
                 {"verdict": "accept"},
                 {"verdict": "unassessable"},
                 {"estimate_percent": 50, "verdict": "accept", "mask_png": "!!notbase64"},
                 {"estimate_percent": 50, "verdict": "accept",
                  "mask_png": base64.b64encode(labels_to_browser_png(
                      np.zeros((5, 5), np.uint8))).decode()}):
        r = _submit(c, code, body, token)
        assert r.status_code == 422, body
    assert _submit(c, code, {"verdict": "unassessable", "reason": "blurred"},
                   token).status_code == 200


def test_posts_without_csrf_token_are_rejected(app, study):
    c = app.test_client()
    login(c, "ann")
    code = tasks_of(study, "ann")[0][0]
    body = {"estimate_percent": 50, "verdict": "accept"}
    assert c.post(f"/api/read/{code}", json=body).status_code == 400
    assert c.post(f"/api/read/{code}", json=body,
                  headers={"X-CSRF-Token": "forged"}).status_code == 400
    assert c.post("/logout").status_code == 400
    assert c.get("/queue").status_code == 200  # still logged in
    # another user's token does not work either
    other = app.test_client()
    login(other, "bob")
    assert _submit(c, code, body, session_csrf(other)).status_code == 400
    coord = app.test_client()
    login(coord, "cora")
    assert coord.post("/coord/queue").status_code == 400
    assert coord.post("/coord/settings", data={"show_visit_day": "on"}).status_code == 400
    with Store.open(study.store_path) as s:
        assert s.conn.execute("SELECT COUNT(*) FROM review_reads").fetchone()[0] == 0
        assert s.conn.execute("SELECT COUNT(*) FROM review_settings WHERE key="
                              "'show_visit_day' AND value='1'").fetchone()[0] == 0


def test_an_assessor_cannot_see_or_change_another_assessors_reads(app, study):
    ann, bob = app.test_client(), app.test_client()
    login(ann, "ann")
    login(bob, "bob")
    code = tasks_of(study, "ann")[0][0]
    assert _submit(ann, code, {"estimate_percent": 30, "verdict": "accept", "comment": "ann's"},
                   session_csrf(ann)).status_code == 200
    for url in (f"/read/{code}", f"/read/{code}/photo.jpg", f"/read/{code}/mask.png"):
        assert bob.get(url).status_code == 404
    r = _submit(bob, code, {"estimate_percent": 90, "verdict": "accept"}, session_csrf(bob))
    assert r.status_code == 404
    assert "ann's" not in bob.get("/queue").get_data(as_text=True)
    assert code not in bob.get("/queue").get_data(as_text=True)
    with Store.open(study.store_path) as s:
        rows = s.conn.execute("SELECT assessor, estimate_percent FROM review_reads").fetchall()
    assert [tuple(r) for r in rows] == [("ann", 30.0)]


def test_roles_are_separate(app, study):
    coord, ann = app.test_client(), app.test_client()
    login(coord, "cora")
    login(ann, "ann")
    assert coord.get("/queue").status_code == 404
    assert coord.get(f"/read/{tasks_of(study, 'ann')[0][0]}").status_code == 404
    assert ann.get("/coord/").status_code == 404
    assert ann.get("/coord/adjudication").status_code == 404
    assert coord.get("/coord/").status_code == 200


def test_unauthenticated_client_reaches_only_login_and_static(app, study):
    c = app.test_client()
    code = tasks_of(study, "ann")[0][0]
    urls = ["/", "/queue", "/next", f"/read/{code}", f"/read/{code}/photo.jpg",
            f"/read/{code}/mask.png", "/coord/", "/coord/adjudication", "/password",
            "/coord/adjudication/J0123456789/photo.jpg", "/nonexistent", "/static/../study.sqlite"]
    for rule in app.url_map.iter_rules():
        if "<" not in rule.rule:
            urls.append(rule.rule)
    for url in urls:
        for method in ("get", "post"):
            r = getattr(c, method)(url)
            if url.startswith("/login") or (url.startswith("/static/") and r.status_code == 200):
                continue
            assert r.status_code in (302, 401, 404), (method, url, r.status_code)
            if r.status_code == 302:
                assert r.headers["Location"].endswith("/login"), url
            assert b"<img" not in r.data and b"viewer-config" not in r.data
    r = c.post(f"/api/read/{code}", json={"estimate_percent": 1, "verdict": "accept"})
    assert r.status_code == 401 and r.get_json() == {"error": "Please log in."}
    assert c.get("/static/viewer.js").status_code == 200
    assert c.get("/login").status_code == 200


def test_failed_logins_are_throttled_per_user_and_per_ip(study):
    from pipeline.review.app import create_app
    from tests.pipeline.review.reviewkit import cheap_hasher, server_config

    app = create_app(server_config(study, max_user_failures=3, max_ip_failures=5),
                     hasher=cheap_hasher())
    c = app.test_client()
    for _ in range(3):
        assert login(c, "ann", "wrong-password-xx").status_code == 401
    # locked: even the right password is refused for a while
    assert login(c, "ann").status_code == 429
    assert c.get_cookie("ds_session") is None
    # other users from the same address still get in, until the address limit
    assert login(c, "bob").status_code == 302
    for _ in range(2):
        login(app.test_client(), "cat", "wrong-password-xx")
    r = login(app.test_client(), "cora")
    assert r.status_code == 429
    # another address is not affected by this one's failures
    other = app.test_client()
    other.environ_base["REMOTE_ADDR"] = "10.1.2.3"
    assert login(other, "cora").status_code == 302


def test_one_time_password_must_be_changed_first(study):
    from pipeline.review.accounts import add_user
    from pipeline.review.app import create_app
    from tests.pipeline.review.reviewkit import cheap_hasher, server_config

    with Store.open(study.store_path) as s, s.transaction() as conn:
        otp = add_user(conn, "dan", role="assessor", hasher=cheap_hasher())
        h = conn.execute("SELECT password_hash FROM review_users WHERE name='dan'").fetchone()[0]
    assert h.startswith("$argon2id$") and otp not in h
    app = create_app(server_config(study), hasher=cheap_hasher())
    c = app.test_client()
    assert login(c, "dan", otp).status_code == 302
    assert c.get("/queue").headers["Location"].endswith("/password")
    page = c.get("/password").get_data(as_text=True)
    r = c.post("/password", data={"current": otp, "new": "short", "confirm": "short",
                                  "csrf_token": csrf_from(page)})
    assert "at least" in r.get_data(as_text=True)
    new = "a-much-better-password"
    r = c.post("/password", data={"current": otp, "new": new, "confirm": new,
                                  "csrf_token": csrf_from(page)})
    assert r.status_code == 302
    assert c.get("/queue").status_code == 200
    assert login(app.test_client(), "dan", otp).status_code == 401
    assert login(app.test_client(), "dan", new).status_code == 302


def test_scale_and_visit_day_setting(tmp_path):
    import json
    import re

    from pipeline.review.app import create_app
    from tests.pipeline.review.reviewkit import cheap_hasher, make_study, server_config

    for show in (False, True):
        st = make_study(tmp_path / str(show), show_visit_day=show)
        app = create_app(server_config(st), hasher=cheap_hasher())
        c = app.test_client()
        login(c, "ann")
        page = c.get(f"/read/{tasks_of(st, 'ann')[0][0]}").get_data(as_text=True)
        cfg = json.loads(re.search(r'id="viewer-config">(.*?)</script>', page, re.S).group(1))
        assert abs(cfg["mm_per_px"] - MM_PER_PX * 320 / REVIEW[0]) < 1e-9
        assert (cfg["width"], cfg["height"]) == REVIEW
        assert ('id="visit-day"' in page) is show


def test_assessors_queue_page_shows_progress(app, study):
    c = app.test_client()
    login(c, "bob")
    html = c.get("/queue").get_data(as_text=True)
    n = len(tasks_of(study, "bob"))
    assert f'<strong id="total">{n}</strong>' in html and 'id="start"' in html
    assert len(ASSESSORS) == 3
