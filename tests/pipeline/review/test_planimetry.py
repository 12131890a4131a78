"""Live planimetry (issue 18): the page's numbers are the pipeline's, for the model mask and
for an edited one; the study setting decides whether assessors see them. The browser part
is skipped like test_browser.py when Playwright or chromium is missing."""

from __future__ import annotations

import base64
import json
import os
import re

import cv2
import numpy as np
import pytest

from calibration.geometry import PlaneGeometry
from pipeline.measure import measure_labels
from pipeline.review.app import create_app
from pipeline.review.images import decode_browser_mask
from pipeline.review.planimetry import planimetry_config, reference_areas
from pipeline.store import Store
from tests.pipeline.review.reviewkit import (
    FULL,
    MM_PER_PX,
    REVIEW,
    cheap_hasher,
    login,
    make_study,
    server_config,
    tasks_of,
)
from tests.pipeline.review.test_browser import CHROMIUM, LiveServer, launch, signed_in

#: A tilted card: the scale changes by ~9 % across the photo.
PERSPECTIVE = [[0.25, 0.02, 3.0], [0.01, 0.26, -2.0], [2e-4, 1e-4, 1.0]]


def _cfg(html: str) -> dict:
    return json.loads(re.search(r'id="viewer-config">(.*?)</script>', html, re.S).group(1))


def test_planimetry_config_uses_the_homography_else_the_flat_scale():
    rec = json.dumps({"homography_image_to_plane_mm": PERSPECTIVE, "image_shape": [240, 320]})
    cfg = planimetry_config(rec, mm_per_px=0.25, full_shape=(240, 320))
    lab = np.zeros((120, 160), np.uint8)
    lab[10:50, 20:90] = 1
    lab[60:100, 30:140] = 2
    ref = measure_labels(lab, meter=PlaneGeometry(np.array(PERSPECTIVE), (240, 320)))
    got = reference_areas(lab, cfg)
    assert got.epithelialized_area_mm2 == pytest.approx(ref.epithelialized_area_mm2, rel=1e-12)
    assert got.raw_area_mm2 == pytest.approx(ref.raw_area_mm2, rel=1e-12)
    flat = planimetry_config(None, mm_per_px=0.25, full_shape=(240, 320))
    # half resolution: each review pixel is 2x2 full pixels of 0.0625 mm²
    assert reference_areas(lab, flat).epithelialized_area_mm2 == pytest.approx(40 * 70 * 0.25)
    assert planimetry_config("not json", mm_per_px=None, full_shape=(240, 320)) is None
    bad = json.dumps({"homography_image_to_plane_mm": [[1, 2]], "image_shape": [2, 2]})
    assert planimetry_config(bad, mm_per_px=None, full_shape=None) is None


@pytest.mark.parametrize("show", [False, True])
def test_live_numbers_only_when_the_study_says_so(tmp_path, show):
    st = make_study(tmp_path, homography=PERSPECTIVE, show_live_numbers=show)
    c = create_app(server_config(st), hasher=cheap_hasher()).test_client()
    login(c, "ann")
    html = c.get(f"/read/{tasks_of(st, 'ann')[0][0]}").get_data(as_text=True)
    assert ("planimetry" in _cfg(html)) is show
    assert ('id="live-numbers"' in html) is show


@pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"no chromium at {CHROMIUM}")
def test_page_numbers_equal_the_pipelines(tmp_path):
    playwright_api = pytest.importorskip("playwright.sync_api")
    st = make_study(tmp_path, homography=PERSPECTIVE, show_live_numbers=True)
    code = tasks_of(st, "ann")[0][0]
    with Store.open(st.store_path) as s:
        mask_file = s.conn.execute(
            "SELECT s.mask_file FROM review_tasks t JOIN results r USING (photo_id) "
            "JOIN segmentations s USING (result_id) WHERE t.task_code=?", (code,)).fetchone()[0]
    full_labels = cv2.imread(str(st.out_dir / mask_file), cv2.IMREAD_UNCHANGED)
    geometry = PlaneGeometry(np.array(PERSPECTIVE), (FULL[1], FULL[0]))
    with LiveServer(create_app(server_config(st), hasher=cheap_hasher())) as live, \
            playwright_api.sync_playwright() as p:
        browser = launch(p)
        try:
            page, _ = signed_in(browser, live.url, "ann", landing="**/queue")
            page.goto(f"{live.url}/read/{code}")
            page.wait_for_selector("#viewport[data-ready='1']")

            def check() -> dict:
                page.wait_for_timeout(100)   # the numbers are drawn on the next frame
                a = page.evaluate("window.reviewViewer.areas()")
                png = base64.b64decode(page.evaluate("window.reviewViewer.maskPNG()"))
                ref = measure_labels(decode_browser_mask(png, REVIEW), meter=geometry)
                assert a["epithelialized_mm2"] == pytest.approx(ref.epithelialized_area_mm2,
                                                                rel=1e-9)
                assert a["raw_mm2"] == pytest.approx(ref.raw_area_mm2, rel=1e-9)
                assert a["healed_percent"] == pytest.approx(ref.healed_percent, rel=1e-9)
                shown = {k: float(page.text_content(f"#live-{k}").split()[0])
                         for k in ("epi", "raw", "donor", "healed")}
                assert abs(shown["epi"] - ref.epithelialized_area_mm2 / 100) <= 0.0051
                assert abs(shown["raw"] - ref.raw_area_mm2 / 100) <= 0.0051
                assert abs(shown["donor"] - ref.donor_site_area_mm2 / 100) <= 0.0051
                assert abs(shown["healed"] - ref.healed_percent) <= 0.051
                return a

            model = check()
            # the model mask at full resolution, measured by the pipeline: within 0.01 cm²
            full = measure_labels(full_labels, meter=geometry)
            assert abs(model["epithelialized_mm2"] - full.epithelialized_area_mm2) < 1.0
            assert abs(model["raw_mm2"] - full.raw_area_mm2) < 1.0
            assert full.epithelialized_area_mm2 != pytest.approx(
                (full_labels == 1).sum() * MM_PER_PX ** 2, rel=1e-3), "perspective matters"
            # an edited mask: paint raw across the epithelialized part
            page.click("button[data-tool=brush]")
            page.select_option("#brush-class", "2")
            page.evaluate("window.reviewViewer.fit()")   # it opens on the site
            box = page.locator("#viewport").bounding_box()
            st_ = page.evaluate("window.reviewViewer.state")
            x0, y0 = box["x"] + st_["tx"], box["y"] + st_["ty"]
            page.mouse.move(x0 + 95 * st_["scale"], y0 + 60 * st_["scale"])
            page.mouse.down()
            page.mouse.move(x0 + 125 * st_["scale"], y0 + 62 * st_["scale"], steps=6)
            page.mouse.up()
            edited = check()
            assert edited["raw_mm2"] > model["raw_mm2"] + 10
        finally:
            browser.close()
