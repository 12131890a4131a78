"""End to end in real headless Chromium (Debian's ``chromium``, driven by Playwright):
log in, read a photo, move the opacity slider, zoom, correct the mask with the brush, submit,
get the next (preloaded) photo, log out.

Skipped, with the reason, only when Playwright or the chromium binary is missing; ``.ci/run``
installs chromium. Never run ``playwright install``: it would download a browser.
"""

from __future__ import annotations

import os
import shutil
import threading

import cv2
import pytest
from werkzeug.serving import make_server

from pipeline.review.app import create_app
from pipeline.store import Store
from tests.pipeline.review.reviewkit import PASSWORDS, cheap_hasher, server_config, tasks_of

CHROMIUM = os.environ.get("DONORSITE_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync"]

playwright_api = pytest.importorskip("playwright.sync_api",
                                     reason="Playwright for Python is not installed")
pytestmark = pytest.mark.skipif(not os.path.exists(CHROMIUM),
                                reason=f"Debian's chromium is not installed ({CHROMIUM}); "
                                       "`apt-get install chromium` (as .ci/run does)")


class LiveServer:
    """The review app on a free local port, in a thread."""

    def __init__(self, app) -> None:
        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.thread.join(timeout=10)


def wait_until(page, expression: str, timeout_s: float = 20.0) -> None:
    """Poll a JS expression with ``page.evaluate`` (``wait_for_function`` evaluates strings
    in the page, which the app's Content-Security-Policy rightly forbids)."""
    import time

    end = time.monotonic() + timeout_s
    while not page.evaluate(expression):
        assert time.monotonic() < end, f"timed out waiting for {expression}"
        page.wait_for_timeout(50)


def launch(p):
    return p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)


def signed_in(browser, url: str, name: str, *, landing: str) -> tuple[object, list[str]]:
    """A 1280x800 page where ``name`` has signed in and landed on ``landing`` (a URL glob),
    and the list the page's uncaught errors go to."""
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    page.set_default_timeout(20_000)
    problems: list[str] = []
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.goto(url + "/login")
    page.fill("#name", name)
    page.fill("#password", PASSWORDS[name])
    page.click("#login")
    page.wait_for_url(landing)
    return page, problems


def test_read_a_photo_end_to_end(study):
    app = create_app(server_config(study), hasher=cheap_hasher())
    tasks = tasks_of(study, "ann")
    first, second = tasks[0][0], tasks[1][0]
    with LiveServer(app) as live, playwright_api.sync_playwright() as p:
        browser = launch(p)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.set_default_timeout(20_000)
            problems: list[str] = []
            requested: list[str] = []
            page.on("pageerror", lambda e: problems.append(str(e)))
            page.on("console", lambda m: m.type == "error" and problems.append(m.text))
            page.on("request", lambda r: requested.append(r.url))

            # an unauthenticated visit lands on the login page
            page.goto(live.url + "/")
            assert page.url.endswith("/login")
            page.fill("#name", "ann")
            page.fill("#password", PASSWORDS["ann"])
            page.click("#login")
            page.wait_for_url("**/queue")
            page.click("#start")
            page.wait_for_url(f"**/read/{first}")
            page.wait_for_selector("#viewport[data-ready='1']")
            assert "mm" in page.text_content("#scalebar-label")

            # the opacity slider (keyboard on the focused slider) and the overlay toggle
            page.focus("#opacity")
            for _ in range(4):
                page.keyboard.press("ArrowLeft")
            assert float(page.eval_on_selector("#overlay", "e => e.style.opacity")) == \
                pytest.approx(0.25)
            assert page.text_content("#opacity-value") == "25%"
            page.focus("#viewport")
            page.keyboard.press("o")
            assert page.eval_on_selector("#overlay", "e => e.style.visibility") == "hidden"
            page.keyboard.press("o")
            page.keyboard.press("l")
            assert page.is_checked("#outline")
            page.keyboard.press("l")

            # zoom with the wheel, then fit again
            box = page.locator("#viewport").bounding_box()
            page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
            site_scale = page.evaluate("window.reviewViewer.state.scale")   # opened on the site
            page.keyboard.press("f")
            fit_scale = page.evaluate("window.reviewViewer.state.scale")
            assert site_scale > fit_scale * 1.05
            page.mouse.wheel(0, -400)
            wait_until(page, f"window.reviewViewer.state.scale > {fit_scale * 1.2}")
            page.keyboard.press("f")
            assert page.evaluate("window.reviewViewer.state.scale") == pytest.approx(fit_scale)

            # brush raw (2) across a background strip of the picture: rows 8-12, x 20-60
            before = page.evaluate("window.reviewViewer.counts()")
            page.click("button[data-tool=brush]")
            page.check("#edit-outline")   # the strip is outside the donor site
            page.select_option("#brush-class", "2")
            page.fill("#brush-size", "6")
            page.dispatch_event("#brush-size", "input")
            st = page.evaluate("window.reviewViewer.state")

            def screen(x, y):
                return (box["x"] + st["tx"] + x * st["scale"],
                        box["y"] + st["ty"] + y * st["scale"])

            page.mouse.move(*screen(20, 10))
            page.mouse.down()
            page.mouse.move(*screen(60, 10), steps=10)
            page.mouse.up()
            after = page.evaluate("window.reviewViewer.counts()")
            assert after[2] > before[2] + 100 and after[0] < before[0]
            assert page.evaluate("window.reviewViewer.isChanged()")
            assert "corrected" in page.text_content("#mask-state")

            # the next photo was preloaded
            assert any(f"/read/{second}/photo.jpg" in u for u in requested)

            # the read: estimate, verdict by shortcut, submit by shortcut
            page.fill("#estimate", "62")
            page.focus("#viewport")
            page.keyboard.press("c")
            assert page.is_checked("#verdict-needs_correction")
            page.keyboard.press("Control+Enter")
            page.wait_for_url(f"**/read/{second}")
            page.wait_for_selector("#viewport[data-ready='1']")

            with Store.open(study.store_path) as s:
                row = s.conn.execute("SELECT * FROM review_reads").fetchone()
            assert (row["task_code"], row["estimate_percent"], row["verdict"]) == (
                first, 62.0, "needs_correction")
            saved = cv2.imread(str(study.out_dir / row["corrected_mask_file"]),
                               cv2.IMREAD_UNCHANGED)
            assert saved.shape == (120, 160)
            assert (saved[10, 25:55] == 2).all() and (saved[30:, :] != 2).sum() > 0

            # log out: back to the login page, and the queue is out of reach
            page.click("#logout")
            page.wait_for_url("**/login")
            page.goto(live.url + "/queue")
            assert page.url.endswith("/login")
            assert not problems, problems
        finally:
            browser.close()


def test_coordinator_adjudicates_in_chromium(study):
    import numpy as np

    from pipeline.review.reads import ReadInput, save_read

    bob = {p: c for c, p, rep in tasks_of(study, "bob") if not rep}
    a, b = next((c, bob[p]) for c, p, rep in tasks_of(study, "ann") if not rep and p in bob)
    lab = np.zeros((120, 160), np.uint8)
    lab[40:80, 40:120] = 1
    with Store.open(study.store_path) as s:
        save_read(s, assessor="ann", task_code=a, out_dir=study.out_dir,
                  read=ReadInput(estimate_percent=20, verdict="accept"), corrected_labels=None)
        save_read(s, assessor="bob", task_code=b, out_dir=study.out_dir,
                  read=ReadInput(estimate_percent=80, verdict="needs_correction"),
                  corrected_labels=lab)
    app = create_app(server_config(study), hasher=cheap_hasher())
    with LiveServer(app) as live, playwright_api.sync_playwright() as p:
        browser = launch(p)
        try:
            page, problems = signed_in(browser, live.url, "cora", landing="**/coord/")
            assert page.text_content("#open-items").startswith("1 ")
            page.click("#open-items")
            page.click("table.reads a.code")
            page.wait_for_selector("#viewport[data-ready='1']")
            model = page.evaluate("window.reviewViewer.counts()")
            page.select_option("#mask-source", index=1)   # bob's correction
            wait_until(page, f"window.reviewViewer.counts()[1] !== {model[1]}")
            assert page.evaluate("window.reviewViewer.counts()")[1] == 40 * 80
            # compare with the model's mask: the difference map and the areas
            page.select_option("#compare-with", "model")
            wait_until(page, "document.body.dataset.compared === '1'")
            assert page.locator("#compare-areas tbody tr").count() == 2
            with Store.open(study.store_path) as s:
                mask_file = s.conn.execute(
                    "SELECT s.mask_file FROM review_tasks t JOIN results r USING (photo_id) "
                    "JOIN segmentations s USING (result_id) WHERE t.task_code=?",
                    (a,)).fetchone()[0]
            model_labels = cv2.resize(cv2.imread(str(study.out_dir / mask_file),
                                                 cv2.IMREAD_UNCHANGED), (160, 120),
                                      interpolation=cv2.INTER_NEAREST_EXACT)
            differ = int((model_labels != lab).sum())
            # flat calibration: 0.25 mm per full pixel, 2x2 full pixels per review pixel
            want = differ * 0.25 / 100
            got = float(page.text_content("#diff-area").split()[3])
            assert got == pytest.approx(want, abs=0.006), (got, want)
            page.fill("input[name=estimate_percent]", "55")
            page.check("input[name=verdict][value=needs_correction]")
            page.click("form.stack button.primary")
            page.wait_for_url("**/coord/adjudication")
            assert "decided" in page.text_content("table.reads")
            assert not problems, problems
        finally:
            browser.close()
