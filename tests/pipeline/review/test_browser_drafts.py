"""Nothing lost (issue 18), in headless Chromium: a brush edit and a filled form survive
leaving the page (which asks first) and a server restart, as the assessor's draft; the
estimate slider has no anchor; an old error message goes once the form changes.
Skipped like test_browser.py when Playwright or chromium is missing."""

from __future__ import annotations

import os

import pytest

from pipeline.review.app import create_app
from pipeline.review.appdb import AppDB
from pipeline.store import Store
from tests.pipeline.review.reviewkit import PASSWORDS, cheap_hasher, server_config, tasks_of
from tests.pipeline.review.test_browser import CHROMIUM, LiveServer, launch, wait_until

playwright_api = pytest.importorskip("playwright.sync_api",
                                     reason="Playwright for Python is not installed")
pytestmark = pytest.mark.skipif(not os.path.exists(CHROMIUM),
                                reason=f"Debian's chromium is not installed ({CHROMIUM})")


def _login(page, url: str) -> None:
    page.goto(url + "/login")
    if page.url.endswith("/queue"):   # still logged in (cookies are per host, not port)
        return
    page.fill("#name", "ann")
    page.fill("#password", PASSWORDS["ann"])
    page.click("#login")
    page.wait_for_url("**/queue")


def _open(page, url: str) -> None:
    page.goto(url)
    page.wait_for_selector("#viewport[data-ready='1']")
    wait_until(page, "document.getElementById('read-form').dataset.draft !== undefined")


def test_unsaved_work_survives_leaving_and_a_restart(study):
    first, second = (t[0] for t in tasks_of(study, "ann")[:2])
    with playwright_api.sync_playwright() as p:
        browser = launch(p)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.set_default_timeout(20_000)
            problems: list[str] = []
            page.on("pageerror", lambda e: problems.append(str(e)))
            with LiveServer(create_app(server_config(study), hasher=cheap_hasher())) as live:
                _login(page, live.url)
                _open(page, f"{live.url}/read/{first}")
                assert page.input_value("#estimate") == ""
                assert "unset" in page.get_attribute("#estimate-slider", "class")
                # a complaint, then it goes as soon as the form changes
                page.click("#submit")
                assert page.text_content("#form-error")
                page.focus("#viewport")
                page.keyboard.press("a")
                assert page.text_content("#form-error") == ""
                # a brush stroke and a filled form
                page.click("button[data-tool=brush]")
                page.check("#edit-outline")   # the stroke leaves the donor site
                page.evaluate("window.reviewViewer.fit()")   # it opens on the site
                box = page.locator("#viewport").bounding_box()
                st = page.evaluate("window.reviewViewer.state")

                def screen(x, y):
                    return (box["x"] + st["tx"] + x * st["scale"],
                            box["y"] + st["ty"] + y * st["scale"])

                page.mouse.move(*screen(20, 10))
                page.mouse.down()
                page.mouse.move(*screen(70, 12), steps=8)
                page.mouse.up()
                edited = page.evaluate("window.reviewViewer.counts()")
                page.fill("#estimate", "41")
                assert "unset" not in (page.get_attribute("#estimate-slider", "class") or "")
                assert page.input_value("#estimate-slider") == "41"
                page.fill("#comment", "thin new skin at the edge")
                wait_until(page, "document.getElementById('read-form').dataset.draft "
                                 "=== 'saved'")
                # leaving asks first
                dialogs: list[str] = []
                page.on("dialog", lambda d: (dialogs.append(d.type), d.accept()))
                page.click("text=My queue")
                page.wait_for_url("**/queue")
                assert dialogs == ["beforeunload"]
                # back: restored
                _open(page, f"{live.url}/read/{first}")
                assert page.get_attribute("#read-form", "data-draft") == "restored"
                assert page.input_value("#estimate") == "41"
                assert page.is_checked("#verdict-accept")
                assert page.input_value("#comment") == "thin new skin at the edge"
                assert page.evaluate("window.reviewViewer.counts()") == edited
            # a server restart (a new server on the same folder): still there (leaving the
            # restored, unsaved work asks again)
            with LiveServer(create_app(server_config(study), hasher=cheap_hasher())) as live:
                _login(page, live.url)
                assert dialogs == ["beforeunload"] * 2
                _open(page, f"{live.url}/read/{first}")
                assert page.get_attribute("#read-form", "data-draft") == "restored"
                assert page.evaluate("window.reviewViewer.counts()") == edited
                # saving the read keeps the edit and discards the draft; no question asked
                page.keyboard.press("Control+Enter")
                page.wait_for_url(f"**/read/{second}")
                assert len(dialogs) == 2
            with Store.open(study.store_path) as s:
                row = s.conn.execute("SELECT * FROM review_reads").fetchone()
            assert (row["estimate_percent"], row["verdict"]) == (41.0, "accept")
            assert row["corrected_mask_file"]
            db = AppDB.open(study.out_dir)
            assert db.draft("ann", first) is None
            db.close()
            assert not problems, problems
        finally:
            browser.close()
