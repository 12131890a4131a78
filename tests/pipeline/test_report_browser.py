"""The report in Debian's chromium: nothing wider than a 1280 px window (tables scroll inside
their container), every ``<details>`` opened; screenshots kept in the test's artefacts.
Slow (two reports and a browser: minutes on a loaded machine): ``make test-slow``."""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from pipeline.report import build_report
from pipeline.report.options import ReportOptions

CHROMIUM = shutil.which("chromium")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--window-size=1280,900"]
# opens every <details>, then writes the page's width and the elements sticking out of it
# (outside a sideways-scrolling container) into <body> attributes read back from --dump-dom
PROBE = """<script>
document.querySelectorAll("details").forEach(function (d) { d.open = true; });
var cw = document.documentElement.clientWidth, bad = [];
document.querySelectorAll("body *").forEach(function (e) {
  if (e.getBoundingClientRect().right > cw + 0.5 && !e.closest(".scroll")) {
    bad.push(e.tagName + "." + e.getAttribute("class"));
  }
});
document.body.setAttribute("data-width", document.documentElement.scrollWidth);
document.body.setAttribute("data-client", cw);
document.body.setAttribute("data-wide", bad.slice(0, 8).join(" "));
</script></body>"""


def _chromium(*args: str) -> str:
    res = subprocess.run([CHROMIUM, *FLAGS, *args], capture_output=True, text=True,
                         timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
    return res.stdout


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    spec = importlib.util.spec_from_file_location(
        "report_build_helpers", Path(__file__).with_name("test_report_build.py"))
    helpers = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(helpers)
    root = tmp_path_factory.mktemp("browser")
    helpers.make_study(root)
    opts = ReportOptions(bootstrap=20)
    return (build_report(root, root / "blinded", options=opts),
            build_report(root, root / "unblinded", allocation=helpers.ARMS, options=opts))


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (CI installs it)")
@pytest.mark.parametrize("which", [0, 1], ids=["blinded", "unblinded"])
def test_report_fits_1280_px_in_chromium(built, which):
    res = built[which]
    probe = res.out_dir / "probe.html"
    probe.write_text(res.html.read_text().replace("</body>", PROBE))
    body = re.search(r"<body[^>]*>", _chromium("--dump-dom", probe.as_uri())).group(0)
    width = int(re.search(r'data-width="(\d+)"', body).group(1))
    client = int(re.search(r'data-client="(\d+)"', body).group(1))
    wide = re.search(r'data-wide="([^"]*)"', body).group(1)
    assert 1200 <= client <= 1280 and width <= client, (width, client, wide)
    assert wide == ""
    probe.unlink()
    shot = res.out_dir.parent / f"screenshot_{'unblinded' if which else 'blinded'}.png"
    _chromium(f"--screenshot={shot}", "--window-size=1280,6000", res.html.as_uri())
    assert shot.stat().st_size > 10_000
