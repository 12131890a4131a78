"""Deep zoom (issue 18): full-resolution tiles made on first request from the original,
colour-corrected like processing, served only under the task's opaque code; in Chromium the
viewer switches to the tiles when zoomed in and back to the review picture at "Fit"."""

from __future__ import annotations

import json
import os
import re

import cv2
import numpy as np
import pytest

from calibration.colour import ColourCorrection
from pipeline.review.app import create_app
from pipeline.store import Store
from tests.pipeline.review.reviewkit import (
    cheap_hasher,
    login,
    make_study,
    original_for,
    server_config,
    tasks_of,
)
from tests.pipeline.review.test_blinding import jpeg_metadata
from tests.pipeline.review.test_browser import CHROMIUM, LiveServer, launch, signed_in, wait_until

MATRIX = [[0.9, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.05, 1.1]]


@pytest.fixture
def zstudy(tmp_path):
    return make_study(tmp_path, originals=True, colour_matrix=MATRIX)


def _cfg(html: str) -> dict:
    return json.loads(re.search(r'id="viewer-config">(.*?)</script>', html, re.S).group(1))


def _k_of(study, code: str) -> int:
    with Store.open(study.store_path) as s:
        ids = [r[0] for r in s.conn.execute(
            "SELECT photo_id FROM photos WHERE source_name LIKE 'photos/S-%' ORDER BY rowid")]
        photo = s.conn.execute("SELECT photo_id FROM review_tasks WHERE task_code=?",
                               (code,)).fetchone()[0]
    return ids.index(photo)


def test_tiles_are_the_corrected_original_behind_the_opaque_code(zstudy):
    app = create_app(server_config(zstudy), hasher=cheap_hasher())
    c = app.test_client()
    login(c, "ann")
    code = tasks_of(zstudy, "ann")[0][0]
    dz = _cfg(c.get(f"/read/{code}").get_data(as_text=True))["deepzoom"]
    assert dz["levels"] == 1 and (dz["full_width"], dz["full_height"]) == (320, 240)
    assert re.fullmatch(rf"/read/{code}/tiles/{{level}}/{{x}}_{{y}}\.jpg\?k=[0-9a-f]{{16}}",
                        dz["url"])
    r = c.get(dz["url"].format(level=0, x=1, y=0))
    assert r.status_code == 200 and r.mimetype == "image/jpeg"
    jpeg_metadata(r.data)   # no EXIF or comment segments
    tile = cv2.cvtColor(cv2.imdecode(np.frombuffer(r.data, np.uint8), cv2.IMREAD_COLOR),
                        cv2.COLOR_BGR2RGB)
    assert tile.shape == (240, 64, 3)   # the right edge: 320 - 256 pixels wide
    rgb = cv2.cvtColor(original_for(_k_of(zstudy, code)), cv2.COLOR_BGR2RGB)
    cc = ColourCorrection("linear", 1, np.array(MATRIX), np.ones(0, bool), *(np.zeros(0),) * 3)
    want = (np.clip(cc.apply(rgb), 0, 1) * 255 + 0.5).astype(np.uint8)[:, 256:]
    assert np.abs(tile.astype(int) - want).mean() < 4
    # the 1-pixel grid is there at full resolution (it is what the review picture loses)
    assert tile[:, :, 0].astype(int).std() > 15 and tile[:, :, 1].astype(int).std() > 15
    for url in (dz["url"].format(level=1, x=0, y=0), dz["url"].format(level=0, x=9, y=0)):
        assert c.get(url).status_code == 404
    bob = app.test_client()
    login(bob, "bob")
    assert bob.get(dz["url"].format(level=0, x=0, y=0)).status_code == 404
    assert app.test_client().get(dz["url"].format(level=0, x=0, y=0)).status_code == 302


def test_a_changed_original_is_not_served(zstudy):
    app = create_app(server_config(zstudy), hasher=cheap_hasher())
    c = app.test_client()
    login(c, "ann")
    code = tasks_of(zstudy, "ann")[0][0]
    with Store.open(zstudy.store_path) as s:
        name = s.conn.execute("SELECT p.source_name FROM review_tasks t JOIN photos p "
                              "USING (photo_id) WHERE t.task_code=?", (code,)).fetchone()[0]
    (zstudy.out_dir.parent / "study" / name).write_bytes(b"\x89PNG not the same")
    dz = _cfg(c.get(f"/read/{code}").get_data(as_text=True))["deepzoom"]
    assert c.get(dz["url"].format(level=0, x=0, y=0)).status_code == 404


@pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"no chromium at {CHROMIUM}")
def test_deep_zoom_in_chromium(zstudy):
    playwright_api = pytest.importorskip("playwright.sync_api")
    code = tasks_of(zstudy, "ann")[0][0]
    with LiveServer(create_app(server_config(zstudy), hasher=cheap_hasher())) as live, \
            playwright_api.sync_playwright() as p:
        browser = launch(p)
        try:
            page, problems = signed_in(browser, live.url, "ann", landing="**/queue")
            page.goto(f"{live.url}/read/{code}")
            page.wait_for_selector("#viewport[data-ready='1']")
            stats = "window.reviewViewer.tileStats"
            # the 160 px review picture is magnified ~5x at "Fit": the full-resolution
            # tiles cover it (the review picture stays below as the fallback)
            page.evaluate("window.reviewViewer.fit()")
            wait_until(page, f"{stats}.requested > 0 && {stats}.loaded === {stats}.requested")
            first = page.evaluate(stats)
            assert first["shown"] and first["level"] == 0
            n = page.evaluate("document.querySelectorAll('#tiles img.tile').length")
            assert n == first["requested"] == 2   # 320x240 in 256-pixel tiles: 2 x 1
            assert page.evaluate("Array.from(document.querySelectorAll('#tiles img.tile'))"
                                 ".every(i => i.complete && i.naturalWidth > 0)")
            # tiles sit where the review picture's pixels are: the right tile starts at
            # full-resolution x = 256, i.e. review x = 128
            left = page.evaluate("Array.from(document.querySelectorAll('#tiles img.tile'))"
                                 ".map(i => parseFloat(i.style.left)).sort((a, b) => a - b)")
            assert left == [0, 128]
            # a deep-zoom step (pyramid made, tiles cached): zoom in further
            page.evaluate("window.reviewViewer.zoomAt(4)")
            wait_until(page, f"{stats}.loaded === {stats}.requested")
            step = page.evaluate(stats)
            print(f"deep zoom: first view {first['lastStepMs']:.0f} ms (pyramid made), "
                  f"zoom step {step['lastStepMs']:.0f} ms")
            assert not problems, problems
        finally:
            browser.close()
