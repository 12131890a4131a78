from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import cv2
import numpy as np
import pytest

from calibration.colour import linear_to_srgb
from calibration.sticker import load_sticker
from calibration.svg import StickerOutputError, sticker_svg, write_sticker

NS = {"s": "http://www.w3.org/2000/svg"}


def _rasterize_black_rects(root: ET.Element, px_per_mm: float, w_mm: float,
                           h_mm: float) -> np.ndarray:
    img = np.full((round(h_mm * px_per_mm), round(w_mm * px_per_mm)), 255, np.uint8)
    for g in root.findall("s:g", NS):
        if not g.get("id", "").startswith("marker-"):
            continue
        for r in g.findall("s:rect", NS):
            x, y, w, h = (float(r.get(k)) * px_per_mm for k in ("x", "y", "width", "height"))
            img[round(y):round(y + h), round(x):round(x + w)] = 0
    return img


def test_svg_is_true_size_and_its_markers_decode_at_the_described_places(spec):
    root = ET.fromstring(sticker_svg(spec))
    assert root.get("width") == "70mm" and root.get("height") == "50mm"
    assert root.get("viewBox") == "0 0 70 50"
    s = 12.0
    img = _rasterize_black_rects(root, s, 70, 50)
    det = cv2.aruco.ArucoDetector(cv2.aruco.getPredefinedDictionary(spec.aruco_dictionary_id))
    corners, ids, _ = det.detectMarkers(img)
    assert sorted(ids.ravel().tolist()) == [0, 1, 2, 3]
    for c, i in zip(corners, ids.ravel(), strict=True):
        expected = spec.marker(int(i)).corners_mm() * s - 0.5  # pixel centres at integers
        assert np.abs(c.reshape(4, 2) - expected).max() < 1.0


def test_svg_patches_carry_the_reference_colours(spec):
    root = ET.fromstring(sticker_svg(spec))
    patches = root.find("s:g[@id='patches']", NS).findall("s:rect", NS)
    assert len(patches) == 24
    srgb = linear_to_srgb(np.clip(spec.reference_rgb_linear, 0, 1))
    for rect, p, rgb in zip(patches, spec.patches, srgb, strict=True):
        assert float(rect.get("x")) == pytest.approx(p.x_mm)
        assert float(rect.get("width")) == pytest.approx(p.size_mm)
        fill = rect.get("fill")
        got = np.array([int(fill[i:i + 2], 16) for i in (1, 3, 5)]) / 255
        assert np.abs(got - rgb).max() <= 1 / 255 + 1e-6
    labels = [t.text for t in root.find("s:g[@id='ruler-labels']", NS).findall("s:text", NS)]
    assert labels[:2] == ["0", "cm"] and labels[-1] == "4"
    ticks = root.find("s:g[@id='ruler']", NS).findall("s:line", NS)
    assert len(ticks) == 1 + 41  # baseline + a tick per mm


def test_pdf_page_is_the_card_size(tmp_path, spec):
    path = write_sticker(spec, tmp_path / "s.pdf")
    data = path.read_bytes()
    assert data.startswith(b"%PDF")
    box = re.search(rb"/MediaBox \[\s*0 0 ([\d.]+) ([\d.]+)", data)
    assert float(box.group(1)) == pytest.approx(70 / 25.4 * 72, abs=0.01)
    assert float(box.group(2)) == pytest.approx(50 / 25.4 * 72, abs=0.01)


def test_bad_output_names_the_file(tmp_path, spec):
    with pytest.raises(StickerOutputError, match=r"s\.png.*expected \.svg or \.pdf"):
        write_sticker(spec, tmp_path / "s.png")
    with pytest.raises(StickerOutputError, match="cannot write"):
        write_sticker(spec, tmp_path / "missing" / "s.svg")


def test_sticker_command_writes_svg_and_pdf(tmp_path):
    from typer.testing import CliRunner

    from pipeline.cli import app

    runner = CliRunner()
    res = runner.invoke(app, ["sticker", "--out", str(tmp_path / "a.svg")])
    assert res.exit_code == 0, res.output
    assert "DS-CAL-1" in res.output
    assert ET.parse(tmp_path / "a.svg").getroot().get("width") == "70mm"
    res = runner.invoke(app, ["sticker", "--out", str(tmp_path / "a.pdf")])
    assert res.exit_code == 0 and (tmp_path / "a.pdf").read_bytes().startswith(b"%PDF")
    res = runner.invoke(app, ["sticker", "--out", str(tmp_path / "a.svg"), "--sticker",
                              str(tmp_path / "nope.toml")])
    assert res.exit_code != 0 and "nope.toml" in res.output


def test_another_description_draws_its_own_markers(tmp_path):
    spec = load_sticker()
    other = spec.__class__(**{**{f: getattr(spec, f) for f in
                                 ("name", "card_width_mm", "card_height_mm", "markers",
                                  "patches", "ruler")}, "dictionary": "DICT_6X6_50"})
    root = ET.fromstring(sticker_svg(other))
    img = _rasterize_black_rects(root, 12.0, 70, 50)
    det = cv2.aruco.ArucoDetector(cv2.aruco.getPredefinedDictionary(other.aruco_dictionary_id))
    _, ids, _ = det.detectMarkers(img)
    assert sorted(ids.ravel().tolist()) == [0, 1, 2, 3]
