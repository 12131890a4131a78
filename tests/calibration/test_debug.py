from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from calibration import calibrate
from calibration.bench import bench_calibration
from calibration.debug import ImageReadError, debug_image, load_image_rgb, summary_lines


def test_summary_and_debug_picture(spec, good_scene):
    cal = calibrate(good_scene.image_rgb, spec, source="good.jpg")
    lines = "\n".join(summary_lines(cal))
    assert "mm/px" in lines and "tilt" in lines and "ruler check" in lines
    assert "40.0" in lines and "QC flags:     none" in lines
    img = debug_image(good_scene.image_rgb, cal, spec)
    assert img.dtype == np.uint8 and img.shape[0] >= 600 and img.shape[1] > 800
    # Annotations are drawn over the photo; the ΔE table is a panel beside it.
    changed = np.any(img[:600, :800] != good_scene.image_rgb, axis=-1)
    assert changed.sum() > 1000
    corners = cal.marker_corners_px[0].round().astype(int)
    x, y = corners[0]
    assert changed[y - 2:y + 3, x - 2:x + 3].any()  # marker outline at its corner
    assert (img[:, 800:] == 255).mean() > 0.5


def test_load_image_applies_exif_orientation(tmp_path):
    oriented = np.zeros((30, 40, 3), np.uint8)
    oriented[:5, :10] = 255  # top-left block
    stored = np.rot90(oriented, k=1)  # what a camera writes with Orientation 6
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(np.ascontiguousarray(stored)).save(tmp_path / "r.png", exif=exif.tobytes())
    got = load_image_rgb(tmp_path / "r.png")
    assert got.shape == (30, 40, 3) and got[:5, :10].min() == 255 and got[10:, 10:].max() == 0
    with pytest.raises(ImageReadError, match="nope.jpg"):
        load_image_rgb(tmp_path / "nope.jpg")


def test_calibrate_command(tmp_path, good_scene):
    from typer.testing import CliRunner

    from pipeline.cli import app

    photo = tmp_path / "p.png"
    Image.fromarray(good_scene.image_rgb).save(photo)
    res = CliRunner().invoke(app, ["calibrate", str(photo), "--debug", str(tmp_path / "d.png"),
                                   "--method", "root-polynomial", "--json",
                                   str(tmp_path / "r.json")])
    assert res.exit_code == 0, res.output
    assert "root-polynomial" in res.output and "CIEDE2000" in res.output
    assert Image.open(tmp_path / "d.png").size[0] > 800
    assert json.loads((tmp_path / "r.json").read_text())["colour"]["method"] == "root-polynomial"
    skin = tmp_path / "skin.png"
    Image.fromarray(np.full((60, 80, 3), 150, np.uint8)).save(skin)
    res = CliRunner().invoke(app, ["calibrate", str(skin)])
    assert res.exit_code == 1 and "skin.png: no DICT_4X4_50 marker found" in res.output
    res = CliRunner().invoke(app, ["calibrate", str(photo), "--method", "cubic"])
    assert res.exit_code == 1 and "cubic" in res.output


def test_bench_reports_one_thread_median(spec, good_scene):
    import cv2

    threads = cv2.getNumThreads()
    r = bench_calibration(good_scene.image_rgb, spec, repeats=2)
    assert r["threads"] == 1 and r["repeats"] == 2 and r["image_shape"] == [600, 800]
    assert 0 < r["min_ms"] <= r["median_ms"] <= r["max_ms"]
    assert cv2.getNumThreads() == threads  # restored
