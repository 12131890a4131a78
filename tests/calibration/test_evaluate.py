from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from PIL import Image
from skimage.draw import polygon2mask

from calibration.evaluate import evaluate_study, main
from calibration.synthetic import render_scene, with_markers

FIELDS = ["file", "subject_id", "visit_day", "photo_index", "mask_file", "donor_area_mm2",
          "epithelialized_area_mm2", "raw_area_mm2", "healed_percent", "skin_type",
          "tilt_deg", "rotation_deg", "px_per_mm", "cct_k", "exposure_ev", "jpeg_quality",
          "exif_orientation", "blur_sigma_px", "noise_sigma"]


def _make_study(root, spec, warm_cast):
    """Three photos: upright, stored rotated with EXIF 6, and one without a sticker."""
    (root / "photos" / "S01").mkdir(parents=True)
    (root / "truth" / "masks").mkdir(parents=True)
    (root / "truth" / "photos").mkdir(parents=True)
    a, b, cx, cy = 20.0, 12.0, 100.0, 25.0  # an elliptic donor site beside the card
    t = np.linspace(0, 2 * np.pi, 720, endpoint=False)
    ring = np.column_stack([cx + a * np.cos(t), cy + b * np.sin(t)])
    rows = []
    cases = [(1, 10.0, 1, spec), (2, 30.0, 6, spec), (3, 5.0, 1, with_markers(spec, ()))]
    for idx, tilt, orient, drawn in cases:
        scene = render_scene(spec, render_spec=drawn, size=(800, 600), px_per_mm=4.5,
                             tilt_deg=tilt, tilt_axis_deg=20.0, target_mm=(60.0, 25.0),
                             colour_matrix=warm_cast, noise_sigma=0.006, seed=idx)
        stem = f"S01_D00{idx}_1"
        stored = np.rot90(scene.image_rgb, k=1) if orient == 6 else scene.image_rgb
        exif = Image.Exif()
        if orient != 1:
            exif[0x0112] = orient
        Image.fromarray(np.ascontiguousarray(stored)).save(
            root / "photos" / "S01" / f"{stem}.jpg", quality=92, exif=exif.tobytes())
        h = scene.homography_plane_to_image
        hom = np.c_[ring, np.ones(len(ring))] @ h.T
        mask = polygon2mask((600, 800), (hom[:, :2] / hom[:, 2:])[:, ::-1]).astype(np.uint8)
        Image.fromarray(mask).save(root / "truth" / "masks" / f"{stem}.png")
        (root / "truth" / "photos" / f"{stem}.json").write_text(
            json.dumps({"homography_plane_to_image": h.tolist()}))
        row = dict.fromkeys(FIELDS, "0")
        row.update(file=f"photos/S01/{stem}.jpg", subject_id="S01", visit_day=str(idx),
                   mask_file=f"truth/masks/{stem}.png", donor_area_mm2=str(np.pi * a * b),
                   tilt_deg=str(tilt), px_per_mm="4.5", exif_orientation=str(orient))
        rows.append(row)
    with (root / "truth" / "photos.csv").open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=FIELDS)
        w.writeheader()
        w.writerows(rows)


@pytest.fixture(scope="module")
def study(tmp_path_factory, spec, warm_cast):
    root = tmp_path_factory.mktemp("study")
    _make_study(root, spec, warm_cast)
    return root


def test_evaluation_report(study, spec):
    rep = evaluate_study(study, sticker=spec)
    s = rep["summary"]
    assert s["photos"] == 3 and s["found"] == 2
    assert s["detection_rate"] == pytest.approx(2 / 3)
    assert s["failures"][0]["error"] == "StickerNotFoundError"
    ok = [r for r in rep["photos"] if r["found"]]
    for r in ok:
        assert abs(r["area_rel_error"]) < 0.01
        assert abs(r["mask_rasterization_rel_error"]) < 0.01
    assert s["area"]["tilt<=15"]["photos"] == 1 and s["area"]["15<tilt<=35"]["photos"] == 1
    assert s["area"]["tilt<=35"]["abs_rel_error_pct_median"] < 1.0
    for method in ("linear", "root-polynomial"):
        c = s["colour"][method]
        assert c["median_mean_de00_before"] > 5 and c["median_mean_de00_after"] < 2
    assert s["time"]["median_ms"] > 0 and s["time"]["threads"] == 1


def test_evaluation_command_writes_json(study, tmp_path):
    out = tmp_path / "r.json"
    assert main([str(study), "--out", str(out), "--quiet", "--limit", "1"]) == 0
    rep = json.loads(out.read_text())
    assert rep["summary"]["photos"] == 1 and len(rep["photos"]) == 1
