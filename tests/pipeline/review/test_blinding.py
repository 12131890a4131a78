"""Blinding must not leak: crawl everything an assessor (and a coordinator) can reach —
pages, JSON, scripts, pictures and their metadata bytes, error pages — and look for arm
labels, subject identifiers, dates, original file names and the store's photo ids.

The fixture plants all of these where a careless server could pick them up: in the photos'
names, their kept metadata, the EXIF of the review pictures, and an allocation file next to
the store.
"""

from __future__ import annotations

import base64
import json
import re
import struct
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

import numpy as np
import pytest

from pipeline.review.images import labels_to_browser_png
from tests.pipeline.review.reviewkit import (
    ARMS,
    REVIEW,
    SUBJECTS,
    csrf_from,
    login,
    session_csrf,
    tasks_of,
)

ARM_WORDS = re.compile(r"\b(" + "|".join(sorted(set(ARMS.values()))) + r")\b", re.I)
DATES = re.compile(r"\d{4}[-:/]\d{2}[-:/]\d{2}|\d{2}/\d{2}/\d{4}|\d{2}:\d{2}:\d{2}")
DAY = re.compile(r"\bday\s*\d", re.I)


def forbidden(text: str, *, photo_ids: tuple[str, ...], hide_repeats: bool) -> list[str]:
    found = [s for s in SUBJECTS if s.lower() in text.lower()]
    found += [m.group(0) for m in ARM_WORDS.finditer(text)]
    found += [m.group(0) for m in DATES.finditer(text)]
    found += [m.group(0) for m in DAY.finditer(text)]
    found += [p for p in photo_ids if p in text]
    found += [w for w in ("photos/", "manifest", "thigh", "allocation") if w in text.lower()]
    if hide_repeats:
        found += [m.group(0) for m in re.finditer(r"repeat", text, re.I)]
    return found


def jpeg_metadata(data: bytes) -> bytes:
    """All bytes before the scan; fails on any APP1..APP15 or comment segment."""
    assert data[:2] == b"\xff\xd8"
    i, meta = 2, bytearray()
    while True:
        marker = data[i + 1]
        if marker == 0xDA:
            return bytes(meta)
        (length,) = struct.unpack(">H", data[i + 2:i + 4])
        assert not (0xE1 <= marker <= 0xEF or marker == 0xFE), f"metadata segment {marker:#x}"
        meta += data[i:i + 2 + length]
        i += 2 + length


def png_metadata(data: bytes) -> bytes:
    """All chunks but IDAT; fails on text, time, EXIF or other ancillary chunks."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    i, meta = 8, bytearray()
    while i < len(data):
        (length,) = struct.unpack(">I", data[i:i + 4])
        kind = data[i + 4:i + 8].decode("latin-1")
        assert kind in {"IHDR", "IDAT", "IEND", "PLTE"}, f"PNG chunk {kind}"
        if kind != "IDAT":
            meta += data[i:i + 12 + length]
        i += 12 + length
    return bytes(meta)


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.json: list[str] = []
        self._in_json = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        for k in ("href", "src"):
            if a.get(k):
                self.urls.append(a[k])
        self._in_json = tag == "script" and a.get("type") == "application/json"

    def handle_data(self, data):
        if self._in_json:
            self.json.append(data)
            self._in_json = False


def _urls_in_config(cfg: dict) -> list[str]:
    out = [cfg.get(k) for k in ("photo", "mask", "model_mask")]
    out += list(cfg.get("preload", [])) + list(cfg.get("read_masks", {}).values())
    return [u for u in out if u]


def check_response(url: str, r, *, photo_ids, hide_repeats) -> None:
    for k, v in r.headers.items():
        # protocol timestamps (the Date header, a deleted cookie's epoch Expires) are the
        # server's clock, not study data
        v = re.sub(r"Expires=[^;]*GMT", "", v)
        if k.lower() != "date":
            assert not forbidden(v, photo_ids=photo_ids, hide_repeats=hide_repeats), (url, k, v)
    body = r.data
    if r.mimetype == "image/jpeg":
        body = jpeg_metadata(body)
    elif r.mimetype == "image/png":
        body = png_metadata(body)
    text = body.decode("latin-1")
    leaks = forbidden(text, photo_ids=photo_ids, hide_repeats=hide_repeats)
    assert not leaks, (url, r.status_code, leaks)


#: The coordinator's downloads for analysts carry the store's opaque photo_id by contract
#: (as ``donorsite review export`` does); test_coordinator_exports checks them apart.
EXPORTS = "/coord/export/"


def crawl(client, start: list[str], *, photo_ids, hide_repeats) -> dict[str, int]:
    """Follow every link, picture and viewer URL reachable from ``start`` (GET only)."""
    seen: dict[str, int] = {}
    todo = list(start)
    while todo:
        url = todo.pop()
        if url in seen or not url.startswith("/") or url.startswith(EXPORTS):
            continue
        r = client.get(url)
        seen[url] = r.status_code
        check_response(url, r, photo_ids=photo_ids, hide_repeats=hide_repeats)
        if r.status_code in (301, 302, 303):
            todo.append(urlsplit(r.headers["Location"]).path or "/")
        if r.mimetype == "text/html":
            p = _Links()
            p.feed(r.get_data(as_text=True))
            todo += [urljoin(url, u) for u in p.urls]
            for blob in p.json:
                todo += _urls_in_config(json.loads(blob))
    return seen


def _read(client, code, estimate, verdict="accept", correct=False):
    body = {"estimate_percent": estimate, "verdict": verdict, "comment": "fine"}
    if correct:
        lab = np.zeros((REVIEW[1], REVIEW[0]), np.uint8)
        lab[20:60, 20:90] = 1
        body["mask_png"] = base64.b64encode(labels_to_browser_png(lab)).decode()
    r = client.post(f"/api/read/{code}", json=body,
                    headers={"X-CSRF-Token": session_csrf(client)})
    assert r.status_code == 200
    return r


@pytest.fixture
def busy_study(app, study):
    """Reads by two assessors on shared photos (one disagreement), one adjudication."""
    ann, bob = app.test_client(), app.test_client()
    login(ann, "ann")
    login(bob, "bob")
    ann_tasks, bob_tasks = tasks_of(study, "ann"), tasks_of(study, "bob")
    bob_by_photo = {p: c for c, p, rep in bob_tasks if not rep}
    shared = [(c, bob_by_photo[p]) for c, p, rep in ann_tasks if p in bob_by_photo and not rep]
    assert len(shared) >= 2
    (a1, b1), (a2, b2) = shared[:2]
    _read(ann, a1, 20, correct=True)
    _read(bob, b1, 70, verdict="needs_correction", correct=True)
    _read(ann, a2, 40)
    _read(bob, b2, 45)
    for code, _, rep in ann_tasks:
        if rep:
            _read(ann, code, 33)
    return app, study


def test_nothing_an_assessor_can_reach_leaks(busy_study):
    app, study = busy_study
    c = app.test_client()
    login(c, "ann")
    seen = crawl(c, ["/", "/static/review.css", "/static/viewer.js", "/static/read.js"],
                 photo_ids=study.photo_ids + (study.failed_id,), hide_repeats=True)
    pictures = [u for u in seen if u.endswith((".jpg", ".png")) or ".png?" in u
                or ".jpg?" in u]
    assert len(pictures) >= 6 and sum(u.startswith("/read/") for u in seen) >= 10
    assert all(s in (200, 302) for s in seen.values()), seen
    ids = dict(photo_ids=study.photo_ids, hide_repeats=True)
    code = tasks_of(study, "ann")[0][0]
    bobs = tasks_of(study, "bob")[0][0]
    token = session_csrf(c)
    # error pages and JSON errors
    for url, r in [
        ("404", c.get("/read/T0000000000")),
        ("other's", c.get(f"/read/{bobs}")),
        ("other's picture", c.get(f"/read/{bobs}/photo.jpg")),
        ("bad code", c.get("/read/../../study.sqlite")),
        ("coord", c.get("/coord/adjudication")),
        ("405", c.put("/queue")),
        ("csrf", c.post(f"/api/read/{code}", json={"verdict": "accept"})),
        ("422", c.post(f"/api/read/{code}", json={"estimate_percent": 500, "verdict": "x"},
                       headers={"X-CSRF-Token": token})),
        ("not json", c.post(f"/api/read/{code}", data="x", headers={"X-CSRF-Token": token})),
        ("submit", c.post(f"/api/read/{code}", json={"estimate_percent": 5,
                                                      "verdict": "accept"},
                          headers={"X-CSRF-Token": token})),
    ]:
        assert r.status_code != 500, url
        check_response(url, r, **ids)


def test_nothing_a_coordinator_can_reach_leaks(busy_study):
    app, study = busy_study
    c = app.test_client()
    login(c, "cora")
    seen = crawl(c, ["/"], photo_ids=study.photo_ids + (study.failed_id,), hide_repeats=False)
    assert any(u.startswith("/coord/adjudication/J") for u in seen)
    assert any("/reads/" in u for u in seen), "corrections of reads are shown"
    # adjudicate the open item, then crawl again
    item = next(u for u in seen if re.fullmatch(r"/coord/adjudication/J[0-9A-F]{10}", u))
    page = c.get(item).get_data(as_text=True)
    r = c.post(item, data={"estimate_percent": "50", "verdict": "accept", "adopted_mask": "model",
                           "csrf_token": csrf_from(page)})
    assert r.status_code == 302
    crawl(c, ["/coord/adjudication", item], photo_ids=study.photo_ids, hide_repeats=False)


def test_login_and_error_pages_for_strangers_leak_nothing(app, study):
    c = app.test_client()
    ids = dict(photo_ids=study.photo_ids, hide_repeats=True)
    for _ in range(6):
        r = login(c, "ann", "wrong-password-1")
        check_response("login", r, **ids)
    assert r.status_code == 429
    for url in ("/login", "/", "/read/T0000000000", "/nonexistent"):
        check_response(url, c.get(url), **ids)


def test_visit_day_shows_only_when_the_study_says_so(tmp_path):
    from pipeline.review.app import create_app
    from tests.pipeline.review.reviewkit import cheap_hasher, make_study, server_config

    st = make_study(tmp_path, show_visit_day=True)
    c = create_app(server_config(st), hasher=cheap_hasher()).test_client()
    login(c, "ann")
    page = c.get(f"/read/{tasks_of(st, 'ann')[0][0]}").get_data(as_text=True)
    assert DAY.search(page)
    assert not [s for s in SUBJECTS if s in page] and not ARM_WORDS.search(page)


def test_review_code_never_touches_an_allocation():
    """No code path of the review server names an allocation or an arm (docstrings aside):
    belt and braces beside the crawls above."""
    import ast
    from pathlib import Path

    import pipeline.review as pkg

    root = Path(pkg.__file__).parent
    for f in root.glob("*.py"):
        tree = ast.parse(f.read_text())
        docstrings = {id(n.body[0].value) for n in ast.walk(tree)
                      if isinstance(n, (ast.Module, ast.FunctionDef, ast.ClassDef))
                      and n.body and isinstance(n.body[0], ast.Expr)}
        for node in ast.walk(tree):
            words = []
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                if id(node) not in docstrings:
                    words.append(node.value)
            elif isinstance(node, ast.Name):
                words.append(node.id)
            elif isinstance(node, ast.Attribute):
                words.append(node.attr)
            elif isinstance(node, (ast.FunctionDef, ast.arg)):
                words.append(getattr(node, "name", None) or node.arg)
            for w in words:
                assert "allocation" not in w.lower(), (f, w)
                assert not re.search(r"\barms?\b", w.lower()), (f, w)
    for f in [*root.glob("templates/*"), *root.glob("static/*")]:
        assert "allocation" not in f.read_text().lower(), f
