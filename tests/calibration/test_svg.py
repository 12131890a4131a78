from __future__ import annotations

import dataclasses
import re
import xml.etree.ElementTree as ET
from pathlib import Path

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


def test_the_astro_card_is_drawn_at_true_size_with_its_new_features(astro):
    root = ET.fromstring(sticker_svg(astro))
    assert (root.get("width"), root.get("height")) == ("85mm", "52mm")
    # Turned markers decode with their own corners where the description puts them.
    s = 12.0
    img = _rasterize_black_rects(root, s, 85, 52)
    det = cv2.aruco.ArucoDetector(cv2.aruco.getPredefinedDictionary(astro.aruco_dictionary_id))
    corners, ids, _ = det.detectMarkers(img)
    assert sorted(ids.ravel().tolist()) == [46, 47, 48, 49]
    for c, i in zip(corners, ids.ravel(), strict=True):
        m = astro.marker(int(i))
        assert np.abs(c.reshape(4, 2) - (m.corners_mm() * s - 0.5)).max() < 1.0
        # The marker's own top-left corner is the card's nearest outer corner.
        own_tl = m.corners_mm()[0]
        assert np.hypot(*(own_tl - [0, 0])) < 4 or np.hypot(*(own_tl - [85, 0])) < 4 or (
            np.hypot(*(own_tl - [85, 52])) < 4 or np.hypot(*(own_tl - [0, 52])) < 4)
    # Rectangular patches, filled with their 8-bit sRGB references.
    rects = root.find("s:g[@id='patches']", NS).findall("s:rect", NS)
    assert len(rects) == 24
    for rect, p in zip(rects, astro.patches, strict=True):
        assert (float(rect.get("width")), float(rect.get("height"))) == (8.0, 7.0)
        fill = rect.get("fill")
        got = [int(fill[i:i + 2], 16) for i in (1, 3, 5)]
        assert got == [int(v) for v in p.reference.values]
    # Ticks pointing down, 1.2 mm long, every 10 mm 3.0 mm; no labels.
    lines = root.find("s:g[@id='ruler']", NS).findall("s:line", NS)
    ticks = lines[1:]
    assert len(ticks) == 51
    lengths = [float(t.get("y2")) - float(t.get("y1")) for t in ticks]
    assert lengths[0] == lengths[10] == lengths[50] == pytest.approx(3.0)
    assert lengths[1] == lengths[9] == lengths[49] == pytest.approx(1.2)
    assert root.find("s:g[@id='ruler-labels']", NS) is None


def test_the_svg_and_the_synthetic_raster_draw_the_same_markers(astro):
    from calibration.sticker import render_sticker

    s = 10.0
    svg = _rasterize_black_rects(ET.fromstring(sticker_svg(astro)), s, 85, 52) < 128
    raster = render_sticker(astro, px_per_mm=s)[..., 0] < 0.5
    on_markers = np.zeros_like(svg)
    for m in astro.markers:
        x, y, n = round(m.x_mm * s), round(m.y_mm * s), round(m.size_mm * s)
        on_markers[y:y + n, x:x + n] = True
    # Only cell edges differ (the raster's cells are whole pixels) ...
    assert (svg[on_markers] != raster[on_markers]).mean() < 0.03
    # ... while markers drawn without their turn differ in many inner cells.
    upright = dataclasses.replace(astro, markers=tuple(
        dataclasses.replace(m, rotation_deg=0) for m in astro.markers))
    plain = render_sticker(upright, px_per_mm=s)[..., 0] < 0.5
    assert (svg[on_markers] != plain[on_markers]).mean() > 0.08


def test_sticker_command_draws_another_description(tmp_path):
    from typer.testing import CliRunner

    import calibration
    from pipeline.cli import app

    desc = Path(calibration.__file__).parent / "stickers" / "astro-aruco-46.toml"
    res = CliRunner().invoke(app, ["sticker", "--out", str(tmp_path / "astro.svg"),
                                   "--sticker", str(desc)])
    assert res.exit_code == 0, res.output
    assert "ASTRO-46" in res.output
    assert ET.parse(tmp_path / "astro.svg").getroot().get("width") == "85mm"
    res = CliRunner().invoke(app, ["sticker", "--out", str(tmp_path / "astro.pdf"),
                                   "--sticker", str(desc)])
    assert res.exit_code == 0 and (tmp_path / "astro.pdf").read_bytes().startswith(b"%PDF")
