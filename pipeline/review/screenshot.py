"""A screenshot of the viewer for the docs (``docs/review-viewer.png``), in headless Chromium.

Two sources:

- ``--processed DIR``: a processing output folder. It is copied to a temporary folder first,
  so the account made for the screenshot never touches the real study store.
- ``--synth STUDY``: a synthetic study, for when no trained model exists: every photo is
  decoded, calibrated and colour-corrected for real, and its ground-truth mask stands in for
  the segmentation (model name ``truth-stand-in``).

Usage::

    python -m pipeline.review.screenshot docs/review-viewer.png --processed /tmp/rv-out
    python -m pipeline.review.screenshot docs/review-viewer.png --synth /tmp/rv

Needs Playwright for Python and Debian's ``chromium`` (never ``playwright install``).
"""

from __future__ import annotations

import argparse
import csv
import shutil
import tempfile
import threading
from pathlib import Path

import cv2
import numpy as np

from pipeline.stages import atomic_write_bytes, review_picture
from pipeline.store import Store

__all__ = ["stand_in_from_synth", "take_screenshot"]

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync"]
_USER, _PASSWORD = "assessor-1", "screenshot-only-password"


def _jpeg(rgb: np.ndarray) -> bytes:
    ok, data = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR),
                            [cv2.IMWRITE_JPEG_QUALITY, 90])
    assert ok
    return data.tobytes()


def stand_in_from_synth(study: Path, out_dir: Path) -> int:
    """Build a study store from a synthetic study with truth masks as the segmentation.

    Returns the number of photos stored.
    """
    from calibration import CalibrationError, calibrate, load_sticker
    from pipeline.decode import decode_photo, read_bytes
    from pipeline.overlay import render_overlay

    sticker = load_sticker()
    masks = {r["file"]: r["mask_file"] for r in
             csv.DictReader(open(study / "truth" / "photos.csv", newline=""))}
    n = 0
    with Store.open(out_dir / "study.sqlite") as store:
        run = store.begin_run(software_version="screenshot", git_commit="-",
                              model_name="truth-stand-in", model_sha256="-", sticker=None,
                              params={}, reason="docs screenshot", command="screenshot")
        for row in csv.DictReader(open(study / "manifest.csv", newline="")):
            data = read_bytes(study / row["file"])
            photo = decode_photo(data, name=row["file"])
            try:
                cal = calibrate(photo.rgb, sticker, source=row["file"])
            except CalibrationError:
                continue
            rec = store.register_photo(manifest=str(study / "manifest.csv"),
                                       source_name=row["file"], sha256=photo.sha256,
                                       size_bytes=len(data), subject_id=row["subject_id"],
                                       visit_day=int(row["visit_day"]), site=row["site"])
            labels = cv2.imread(str(study / masks[row["file"]]), cv2.IMREAD_UNCHANGED)
            h, w = photo.shape
            review = review_picture(photo.rgb, cal)
            code = f"{rec.photo_id}-r1"
            ok, png = cv2.imencode(".png", labels)
            atomic_write_bytes(out_dir / f"masks/{code}.png", png.tobytes())
            mm = cal.mm_per_px * w / review.shape[1]
            atomic_write_bytes(out_dir / f"overlays/{code}.jpg",
                               _jpeg(render_overlay(review, labels, mm_per_px=mm)))
            atomic_write_bytes(out_dir / f"review/{code}.jpg", _jpeg(review))
            epi, raw = float((labels == 1).sum()), float((labels == 2).sum())
            store.save_result(
                photo_id=rec.photo_id, run_id=run, version=1, status="ok",
                photo_info={"width": w, "height": h, "format": "JPEG", "metadata": {}},
                calibration={"mm_per_px": cal.mm_per_px, "tilt_deg": cal.tilt_deg},
                segmentation={"model_name": "truth-stand-in", "model_sha256": "-",
                              "mask_file": f"masks/{code}.png",
                              "overlay_file": f"overlays/{code}.jpg"},
                measurement={"donor_site_area_mm2": epi + raw, "epithelialized_area_mm2": epi,
                             "raw_area_mm2": raw,
                             "healed_percent": 100 * epi / max(epi + raw, 1.0)})
            n += 1
        store.finish_run(run)
    return n


def _prepare(out_dir: Path) -> str:
    """Add the screenshot account, queue every photo for it; return the task code of the
    photo whose healed % is closest to 50 (the most telling overlay)."""
    from pipeline.review.accounts import add_user, make_hasher
    from pipeline.review.queue import build_queue
    from pipeline.review.settings import ServerConfig, StudyReviewSettings

    with Store.open(out_dir / "study.sqlite") as store:
        with store.transaction() as c:
            add_user(c, _USER, role="assessor", password=_PASSWORD, must_change=False,
                     hasher=make_hasher(ServerConfig(out_dir=out_dir)))
        build_queue(store, settings=StudyReviewSettings(reads_per_photo=1, repeat_fraction=0),
                    created_by="screenshot")
        row = store.conn.execute(
            "SELECT t.task_code FROM review_tasks t JOIN results r ON r.photo_id = t.photo_id "
            "JOIN measurements m ON m.result_id = r.result_id WHERE r.status = 'ok' "
            "ORDER BY ABS(m.healed_percent - 50) LIMIT 1").fetchone()
    return row[0]


def _zoom_on_site(page, out_dir: Path, code: str) -> None:
    """Zoom (with the wheel, as a user would) towards the donor site's centre."""
    with Store.open(out_dir / "study.sqlite") as store:
        mask_file = store.conn.execute(
            "SELECT s.mask_file FROM review_tasks t JOIN results r ON r.photo_id = t.photo_id "
            "JOIN segmentations s ON s.result_id = r.result_id WHERE t.task_code = ? "
            "ORDER BY r.version DESC LIMIT 1", (code,)).fetchone()[0]
    labels = cv2.imread(str(out_dir / mask_file), cv2.IMREAD_UNCHANGED)
    ys, xs = np.nonzero(labels)
    if not len(xs):
        return
    st = page.evaluate("window.reviewViewer.state")
    f = page.evaluate("JSON.parse(document.getElementById('viewer-config').textContent).width")
    f /= labels.shape[1]
    box = page.locator("#viewport").bounding_box()
    x = box["x"] + st["tx"] + xs.mean() * f * st["scale"]
    y = box["y"] + st["ty"] + ys.mean() * f * st["scale"]
    page.mouse.move(x, y)
    page.mouse.wheel(0, -450)
    page.wait_for_timeout(300)
    # drag the site to the middle with the pan tool
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2, steps=8)
    page.mouse.up()


def take_screenshot(out_dir: Path, png: Path, *, chromium: str = "/usr/bin/chromium",
                    size: tuple[int, int] = (1440, 900)) -> None:
    """Serve ``out_dir`` (already copied: it gets an account) and photograph the viewer."""
    from playwright.sync_api import sync_playwright
    from werkzeug.serving import make_server

    from pipeline.review.app import create_app
    from pipeline.review.settings import ServerConfig

    code = _prepare(out_dir)
    server = make_server("127.0.0.1", 0, create_app(ServerConfig(out_dir=out_dir)),
                         threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_port}"
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, headless=True,
                                        args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": size[0], "height": size[1]})
            page.goto(url + "/login")
            page.fill("#name", _USER)
            page.fill("#password", _PASSWORD)
            page.click("#login")
            page.wait_for_url("**/queue")
            page.goto(f"{url}/read/{code}")
            page.wait_for_selector("#viewport[data-ready='1']")
            _zoom_on_site(page, out_dir, code)
            page.focus("#viewport")
            page.keyboard.press("b")
            page.fill("#estimate", "55")
            page.check("#verdict-accept")
            box = page.locator("#viewport").bounding_box()
            page.mouse.move(box["x"] + box["width"] * 0.3, box["y"] + box["height"] * 0.5)
            png.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(png))
            browser.close()
    finally:
        server.shutdown()
        thread.join(timeout=10)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("png", type=Path)
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--processed", type=Path, help="a processing output folder")
    src.add_argument("--synth", type=Path, help="a synthetic study (truth masks stand in)")
    ap.add_argument("--chromium", default="/usr/bin/chromium")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="donorsite-shot-") as tmp:
        out = Path(tmp) / "processed"
        if args.processed:
            shutil.copytree(args.processed, out)
        else:
            out.mkdir()
            print(f"{stand_in_from_synth(args.synth, out)} photos (truth masks stand in)")
        take_screenshot(out, args.png, chromium=args.chromium)
    print(f"written: {args.png}")


if __name__ == "__main__":  # pragma: no cover
    main()
