"""Region tools (issue 18) in headless Chromium: the locked donor-site outline and the
"Edit outline" switch, the warning for epithelialized painted outside the site, flood fill,
hole fill, a polygon fill, and undo/redo well beyond 20 steps. Skipped like test_browser.py
when Playwright or chromium is missing."""

from __future__ import annotations

import os

import pytest

from pipeline.review.app import create_app
from tests.pipeline.review.reviewkit import cheap_hasher, server_config, tasks_of
from tests.pipeline.review.test_browser import CHROMIUM, LiveServer, launch, signed_in

playwright_api = pytest.importorskip("playwright.sync_api",
                                     reason="Playwright for Python is not installed")
pytestmark = pytest.mark.skipif(not os.path.exists(CHROMIUM),
                                reason=f"Debian's chromium is not installed ({CHROMIUM})")


def test_region_tools_outline_lock_and_long_undo(study):
    code = tasks_of(study, "ann")[0][0]
    with LiveServer(create_app(server_config(study), hasher=cheap_hasher())) as live, \
            playwright_api.sync_playwright() as p:
        browser = launch(p)
        try:
            page, problems = signed_in(browser, live.url, "ann", landing="**/queue")
            page.goto(f"{live.url}/read/{code}")
            page.wait_for_selector("#viewport[data-ready='1']")
            # it opens framed on the donor site (larger than "Fit"); Z frames it again
            site = page.evaluate("window.reviewViewer.state")
            page.evaluate("window.reviewViewer.fit()")
            fit = page.evaluate("window.reviewViewer.state")
            assert site["scale"] > fit["scale"] * 1.05
            page.focus("#viewport")
            page.keyboard.press("z")
            assert page.evaluate("window.reviewViewer.state.scale") == site["scale"]
            # brightness, contrast, gamma act on the photo only
            page.click("details.look summary")
            for name, value in (("brightness", "1.5"), ("contrast", "1.2"), ("gamma", "2")):
                page.fill(f"#{name}", value)
                page.dispatch_event(f"#{name}", "input")
            flt = page.eval_on_selector("#photo", "e => e.style.filter")
            assert "brightness(1.5)" in flt and "contrast(1.2)" in flt and "gamma-filter" in flt
            assert page.get_attribute("#gamma-filter feFuncR", "exponent") == "0.5"
            assert not page.eval_on_selector("#overlay", "e => e.style.filter")
            page.click("#look-reset")
            assert page.eval_on_selector("#photo", "e => e.style.filter") == \
                "brightness(1) contrast(1)"
            # compare photo and overlay: swipe and flicker
            page.fill("#swipe", "40")
            page.dispatch_event("#swipe", "input")
            assert page.eval_on_selector("#overlay", "e => e.style.clipPath") == \
                "inset(0px 60% 0px 0px)"
            page.fill("#swipe", "100")
            page.dispatch_event("#swipe", "input")
            page.focus("#viewport")
            page.keyboard.press("v")
            assert page.evaluate("window.reviewViewer.flickering")
            page.wait_for_timeout(600)
            page.keyboard.press("v")
            assert not page.evaluate("window.reviewViewer.flickering")
            assert page.eval_on_selector("#overlay", "e => e.style.visibility") == "visible"
            page.evaluate("window.reviewViewer.fit()")
            box = page.locator("#viewport").bounding_box()
            st = page.evaluate("window.reviewViewer.state")

            def at(x, y):
                return (box["x"] + st["tx"] + (x + 0.5) * st["scale"],
                        box["y"] + st["ty"] + (y + 0.5) * st["scale"])

            def stroke(a, b):
                page.mouse.move(*at(*a))
                page.mouse.down()
                page.mouse.move(*at(*b), steps=8)
                page.mouse.up()

            def counts():
                return page.evaluate("window.reviewViewer.counts()")

            def key(k):
                page.focus("#viewport")
                page.keyboard.press(k)

            c0 = counts()   # the site: rows 30-89, raw then epithelialized, x 30-129
            # locked outline: a stroke over background changes nothing, one across the site
            # only recolours inside it
            key("b")
            key("1")
            stroke((10, 10), (150, 12))
            assert counts() == c0
            stroke((5, 60), (155, 60))
            c1 = counts()
            assert c1[0] == c0[0] and c1[1] > c0[1]
            assert page.is_hidden("#paint-warning")
            key("e")
            stroke((100, 50), (110, 50))
            assert counts() == c1
            assert "Edit outline" in page.text_content("#paint-hint")
            key("Control+z")
            assert counts() == c0
            # editing the outline: epithelialized outside the site is allowed, with a warning
            key("x")
            assert page.is_checked("#edit-outline")
            key("b")
            stroke((10, 10), (150, 12))
            assert counts()[0] < c0[0]
            assert "outside the donor site" in page.text_content("#paint-warning")
            key("Control+z")
            assert page.is_hidden("#paint-warning") and counts() == c0
            # flood fill: the epithelialized region becomes raw in one click
            key("g")
            key("2")
            page.mouse.click(*at(125, 60))
            assert counts() == [c0[0], 0, c0[1] + c0[2]]
            key("Control+z")
            assert counts() == c0
            # a hole erased in the site, then filled
            key("e")
            page.fill("#brush-size", "8")
            page.dispatch_event("#brush-size", "input")
            page.mouse.click(*at(110, 60))
            assert counts()[0] > c0[0]
            page.click("#fill-holes")
            assert counts()[0] == c0[0]
            # a polygon: four corners on the background, Enter closes it
            key("k")
            key("1")
            c_poly = counts()
            for x, y in ((5, 5), (25, 5), (25, 20), (5, 20)):
                page.mouse.click(*at(x, y))
            key("Enter")
            c2 = counts()
            assert abs((c2[1] - c_poly[1]) - 20 * 15) <= 40, (c_poly, c2)
            assert c2[0] == c_poly[0] - (c2[1] - c_poly[1])
            # undo and redo well beyond 20 steps
            key("b")
            before = page.evaluate("window.reviewViewer.maskPNG()")
            depth = page.evaluate("window.reviewViewer.undoDepth")
            for k in range(25):
                page.mouse.click(*at(5 + 5 * (k % 28), 100 + 2 * (k // 28)))
            after = page.evaluate("window.reviewViewer.maskPNG()")
            assert page.evaluate("window.reviewViewer.undoDepth") == depth + 25
            key("Control+z")
            key("Control+z")
            page.evaluate("() => { for (let k = 0; k < 23; k++) window.reviewViewer.undo(); }")
            assert page.evaluate("window.reviewViewer.maskPNG()") == before
            key("Control+y")
            key("Control+Shift+z")
            page.evaluate("() => { for (let k = 0; k < 23; k++) window.reviewViewer.redo(); }")
            assert page.evaluate("window.reviewViewer.maskPNG()") == after
            # a 1366x768 laptop: "Save and next" stays in view, at the panel's foot
            page.set_viewport_size({"width": 1366, "height": 768})
            page.evaluate("window.scrollTo(0, 0)")
            b = page.locator("#submit").bounding_box()
            assert b["y"] >= 0 and b["y"] + b["height"] <= 768, b
            hit = page.evaluate(f"document.elementFromPoint({b['x'] + b['width'] / 2}, "
                                f"{b['y'] + b['height'] / 2}).closest('#submit') !== null")
            assert hit
            assert not problems, problems
        finally:
            browser.close()

