"""Composite studies: truth, sticker scale, out-of-distribution pictures, CLI errors."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pandas as pd
import pytest

from models.fuseg import fuseg_split
from pipeline.composite import CompositeError, compose, make_fuseg_study, make_ood_study
from pipeline.composite.sources import skin_crop, trim_padding

PX = 5.0


def _fake_fuseg(root, n_held: int = 2, n_dev: int = 1):
    """A FUSeg-like folder: 512x512 skin-coloured photos, black padding on the right, a
    dark-red wound with its mask; ``n_held`` held-out and ``n_dev`` development stems."""
    (root / "images").mkdir(parents=True)
    (root / "labels").mkdir()
    held, dev = [], []
    for i in range(1, 200):
        stem = f"{i:04d}"
        part = held if fuseg_split(stem) == "held_out" else dev
        if len(part) >= (n_held if part is held else n_dev):
            continue
        part.append(stem)
        rng = np.random.default_rng(i)
        img = np.zeros((512, 512, 3), np.uint8)
        img[:, :400] = (200, 150, 120) + rng.integers(-10, 10, (512, 400, 3))
        mask = np.zeros((512, 512), np.uint8)
        cv2.ellipse(mask, (120 + 10 * len(held), 150), (50, 35), 20, 0, 360, 255, -1)
        img[mask > 0] = (120, 20, 25)
        cv2.imwrite(str(root / "images" / f"{stem}.jpg"), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
        cv2.imwrite(str(root / "labels" / f"{stem}.png"), mask)
        if len(held) >= n_held and len(dev) >= n_dev:
            break
    return held, dev


@pytest.fixture(scope="module")
def fuseg(tmp_path_factory):
    root = tmp_path_factory.mktemp("fuseg") / "train"
    held, dev = _fake_fuseg(root)
    study = root.parent / "study"
    make_fuseg_study(root, study, part="held_out", px_per_mm=PX)
    return root, study, held, dev


def test_fuseg_study_layout_and_truth(fuseg):
    root, study, held, _ = fuseg
    man = pd.read_csv(study / "manifest.csv")
    truth = pd.read_csv(study / "truth" / "photos.csv")
    meta = json.loads((study / "study.json").read_text())
    assert meta["kind"] == "fuseg_composite" and meta["part"] == "held_out"
    assert list(man.columns) == ["subject_id", "visit_day", "site", "file"]
    assert sorted(man["subject_id"]) == [f"FUSEG{s}" for s in held]  # development left out
    for r in truth.itertuples():
        photo = cv2.imread(str(study / r.file))
        labels = cv2.imread(str(study / r.mask_file), cv2.IMREAD_UNCHANGED)
        assert photo.shape[:2] == labels.shape
        assert set(np.unique(labels)) == {0, 2}  # no epithelium in the truth
        wound = cv2.imread(str(root / "labels" / f"{r.source.split('/')[1]}.png")) > 127
        scale = (PX / 5.0) ** 2  # the photo's assumed 5 px/mm -> the canvas's PX
        assert abs((labels == 2).sum() - wound[..., 0].sum() * scale) < 0.03 * wound.sum()
        assert r.raw_area_mm2 == pytest.approx((labels == 2).sum() / PX**2, rel=1e-3)
        assert r.healed_percent == 0
        # the wound is where the dark-red pixels are
        red = photo[..., 2].astype(int) - photo[..., 1]
        assert np.median(red[labels == 2]) > 60 > np.median(red[labels == 0])


def test_sticker_found_at_stated_scale(fuseg):
    from calibration import calibrate
    from calibration.sticker import load_sticker

    _, study, _, _ = fuseg
    truth = pd.read_csv(study / "truth" / "photos.csv")
    for f in truth["file"]:
        rgb = cv2.cvtColor(cv2.imread(str(study / f)), cv2.COLOR_BGR2RGB)
        cal = calibrate(rgb, load_sticker())
        assert 1 / cal.mm_per_px == pytest.approx(PX, rel=0.01)


def test_varied_keeps_truth_with_the_picture():
    rng = np.random.default_rng(3)
    from calibration.sticker import load_sticker

    pic = np.full((100, 120, 3), 180, np.uint8)
    lab = np.zeros((100, 120), np.uint8)
    pic[30:60, 40:80] = (150, 10, 10)
    lab[30:60, 40:80] = 2
    comp = compose(pic, lab, spec=load_sticker(), px_per_mm=4.0, content_px_per_mm=4.0,
                   rng=rng, varied=True)
    assert comp.image.shape[:2] == comp.labels.shape
    red = comp.image[..., 0].astype(int) - comp.image[..., 1]
    inside = comp.labels == 2
    assert 0.5 * 1200 < inside.sum() < 2 * 1200
    assert np.median(red[inside]) > np.median(red[~inside]) + 50
    assert 55 <= comp.meta["jpeg_quality"] <= 95


def test_skin_crop_avoids_wound_and_padding():
    rgb = np.zeros((512, 512, 3), np.uint8)
    rgb[:, :400] = (200, 150, 120)
    wound = np.zeros((512, 512), bool)
    wound[100:200, 100:200] = True
    crop = skin_crop(rgb, wound)
    assert crop is not None and crop.shape[0] == crop.shape[1] >= 128
    assert (crop.max(axis=2) > 8).all()  # no black padding
    assert (np.abs(crop.astype(int) - (200, 150, 120)).max() == 0)  # no wound
    assert skin_crop(np.zeros_like(rgb), wound) is None
    _, lab, box = trim_padding(rgb, wound.astype(np.uint8))
    assert box == [0, 0, 400, 512] and lab.sum() == wound.sum()


def test_ood_study_has_no_site(fuseg, tmp_path):
    root, *_ = fuseg
    n = make_ood_study(tmp_path / "ood", src=root, px_per_mm=4.0, placements=2,
                       scenes=("coins",), skin_crops=1)
    truth = pd.read_csv(tmp_path / "ood" / "truth" / "photos.csv")
    assert n == len(truth) == 3
    assert sorted(truth["source_kind"]) == ["scene", "scene", "skin_crop"]
    for m in truth["mask_file"]:
        assert not cv2.imread(str(tmp_path / "ood" / m), cv2.IMREAD_UNCHANGED).any()
    assert json.loads((tmp_path / "ood" / "study.json").read_text())["kind"] == "ood_composite"


def test_errors(tmp_path, fuseg):
    root, study, *_ = fuseg
    with pytest.raises(CompositeError, match="not a FUSeg folder"):
        make_fuseg_study(tmp_path, tmp_path / "x")
    with pytest.raises(CompositeError, match="px_per_mm"):
        make_fuseg_study(root, tmp_path / "x", px_per_mm=0.5)
    with pytest.raises(Exception, match="already holds a study"):
        make_fuseg_study(root, study)


def test_cli(fuseg, tmp_path):
    from typer.testing import CliRunner

    from pipeline.cli import app

    root, *_ = fuseg
    runner = CliRunner()
    res = runner.invoke(app, ["composite", "fuseg", str(root), str(tmp_path / "x"),
                              "--part", "test"])
    assert res.exit_code == 2 and "held_out or development" in res.output
    res = runner.invoke(app, ["composite", "fuseg", str(root), str(tmp_path / "d"),
                              "--part", "development", "--px-per-mm", "3"])
    assert res.exit_code == 0, res.output
    assert "1 photos, kind fuseg_composite, part development" in res.output
    res = runner.invoke(app, ["composite", "ood", str(tmp_path / "o"), "--src",
                              str(tmp_path / "missing")])
    assert res.exit_code == 2 and "no such folder" in res.output
