"""Every identifier an assessor can see is opaque (issue 14, item 7).

A study of 10 subjects x 5 visits read by three assessors (2 reads per photo, hidden
repeats). Each assessor's task pages are crawled; every token a page carries in a URL (path
segments, query values), a form field or a DOM attribute is collected. Tokens the same on
every page are the page's furniture; the rest must be opaque codes, and their ranks must not
correlate with subject, visit or processing order. A hidden repeat's page is the same as its
original's once the codes are replaced, and shares no code with it.
"""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from urllib.parse import parse_qsl, urlsplit

import numpy as np
import pytest
from scipy.stats import spearmanr

from pipeline.review.app import create_app
from pipeline.store import Store
from tests.pipeline.review.reviewkit import (
    ASSESSORS,
    cheap_hasher,
    login,
    make_study,
    server_config,
    tasks_of,
)

SUBJECTS = tuple(f"S-NEON-{k:02d}" for k in range(10))
DAYS = (0, 3, 7, 14, 21)
OPAQUE = re.compile(r"T[0-9A-F]{10}|[0-9a-f]{16}")
#: |Spearman rho| above this is a leak (a random code over ~120 tasks: sd about 0.09).
MAX_RHO = 0.4


class _Tokens(HTMLParser):
    """Attribute values of every element, with URLs split into path segments and query
    values; the viewer's JSON config is read the same way."""

    def __init__(self) -> None:
        super().__init__()
        self.tokens: list[str] = []
        self._json = False

    def _url(self, url: str) -> None:
        parts = urlsplit(url)
        self.tokens += [s for s in parts.path.split("/") if s]
        self.tokens += [v for _, v in parse_qsl(parts.query)]

    def handle_starttag(self, tag, attrs):
        for k, v in attrs:
            if v is None:
                continue
            if k in ("href", "src", "action"):
                self._url(v)
            else:
                self.tokens.append(v)
        self._json = tag == "script" and dict(attrs).get("type") == "application/json"

    def handle_data(self, data):
        if self._json:
            cfg = json.loads(data)
            for v in cfg.values():
                for u in (v if isinstance(v, list) else [v]):
                    if isinstance(u, str) and u.startswith("/"):
                        self._url(u)
            self._json = False


def page_tokens(html: str) -> list[str]:
    p = _Tokens()
    p.feed(html)
    return p.tokens


@pytest.fixture(scope="module")
def crawled(tmp_path_factory):
    study = make_study(tmp_path_factory.mktemp("ids"), subjects=SUBJECTS, days=DAYS,
                       repeat_fraction=0.2)
    app = create_app(server_config(study), hasher=cheap_hasher())
    with Store.open(study.store_path) as s:
        facts = {r["photo_id"]: (int(r["subject_id"][-2:]), r["visit_day"], r["result_id"])
                 for r in s.conn.execute(
                     "SELECT p.photo_id, v.subject_id, v.visit_day, r.result_id FROM photos p "
                     "JOIN visits v USING (visit_id) JOIN results r USING (photo_id) "
                     "WHERE r.status='ok'")}
    pages = {}   # task code -> (photo_id, is_repeat, html)
    for name in ASSESSORS:
        c = app.test_client()
        login(c, name)
        for code, photo, rep in tasks_of(study, name):
            r = c.get(f"/read/{code}")
            assert r.status_code == 200
            pages[code] = (photo, rep, r.get_data(as_text=True))
        # the pictures behind the codes are served
        code = tasks_of(study, name)[0][0]
        assert c.get(f"/read/{code}/photo.jpg?k=whatever").status_code == 200
    return facts, pages


def _varying(pages) -> dict[str, list[str]]:
    """Tokens of each page that are not on all of its assessor's pages (their session's
    CSRF token is on all of them)."""
    toks = {code: page_tokens(html) for code, (_, _, html) in pages.items()}
    who = {code: re.search(r'class="who">([a-z]+) ', html).group(1)
           for code, (_, _, html) in pages.items()}
    common = {w: set.intersection(*(set(t) for c, t in toks.items() if who[c] == w))
              for w in set(who.values())}
    return {code: [t for t in ts if t not in common[who[code]]] for code, ts in toks.items()}


def test_every_varying_identifier_is_an_opaque_code(crawled):
    facts, pages = crawled
    assert len(pages) >= 110 and sum(rep for _, rep, _ in pages.values()) >= 15
    for code, tokens in _varying(pages).items():
        bad = [t for t in tokens if not OPAQUE.fullmatch(t)]
        assert not bad, (code, bad)
        assert code in page_tokens(pages[code][2])


def test_identifiers_do_not_correlate_with_subject_visit_or_order(crawled):
    facts, pages = crawled
    # every kind of code a page carries: its own task code, and the query code of each URL
    by_kind: dict[str, list[tuple[str, str]]] = {"task": []}
    for code, (photo, _, html) in pages.items():
        by_kind["task"].append((code, photo))
        cfg = json.loads(re.search(r'id="viewer-config">(.*?)</script>', html, re.S).group(1))
        for key in ("photo", "mask", "model_mask"):
            q = dict(parse_qsl(urlsplit(cfg[key]).query))
            assert set(q) <= {"k", "model"}, cfg[key]
            by_kind.setdefault(key, []).append((q["k"], photo))
            assert OPAQUE.fullmatch(q["k"]), cfg[key]
    for kind, pairs in by_kind.items():
        codes = [c for c, _ in pairs]
        assert len(set(codes)) == len(codes), f"{kind} codes repeat between tasks"
        ranks = np.argsort(np.argsort(codes))
        for i, what in enumerate(("subject", "visit", "processing order")):
            rho = spearmanr(ranks, [facts[p][i] for _, p in pairs]).statistic
            assert abs(rho) < MAX_RHO, (kind, what, rho)


def own_codes(html: str) -> set[str]:
    """The opaque codes of a page, less those of the next photo it preloads."""
    cfg = json.loads(re.search(r'id="viewer-config">(.*?)</script>', html, re.S).group(1))
    preload = {t for u in cfg["preload"] for t in page_tokens(f'<a href="{u}">')}
    return {t for t in page_tokens(html) if OPAQUE.fullmatch(t)} - preload


def test_hidden_repeats_are_indistinguishable_from_their_originals(crawled):
    facts, pages = crawled
    by_photo_assessor = {}
    for code, (photo, _rep, html) in pages.items():
        who = re.search(r'class="who">([a-z]+) ', html).group(1)
        by_photo_assessor.setdefault((photo, who), []).append(code)
    pairs = [codes for codes in by_photo_assessor.values() if len(codes) == 2]
    assert len(pairs) >= 15

    def normal(code):
        html = OPAQUE.sub("CODE", pages[code][2])
        # the preloaded next photo is absent only on the last page of a queue
        return re.sub(r'"preload": \[[^\]]*\]', "", html)

    for a, b in pairs:
        assert sorted((pages[a][1], pages[b][1])) == [0, 1]
        assert len(own_codes(pages[a][2])) == 4
        assert not own_codes(pages[a][2]) & own_codes(pages[b][2]), \
            "a repeat shares a code with its original"
        assert normal(a) == normal(b)
