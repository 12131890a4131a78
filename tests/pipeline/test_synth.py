"""The synthetic study generator: determinism, truth consistency, contracts, safety."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
from PIL import Image, ImageOps

from calibration.sticker import load_sticker
from pipeline.synth import (
    StudyConfig,
    StudyConfigError,
    StudyExistsError,
    generate_study,
    plan_subjects,
)
from pipeline.synth.study import MANIFEST_COLUMNS, PHOTO_COLUMNS, SUBJECT_COLUMNS


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file()}


def _oriented(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.array(ImageOps.exif_transpose(im).convert("RGB"))


def _record(root: Path, row: pd.Series) -> dict:
    return json.loads((root / "truth" / "photos" / f"{Path(row['file']).stem}.json").read_text())


def _pixel_area_mm2(h_plane_to_image: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """mm² of skin plane covered by each pixel: |det J| of the image -> plane map."""
    g = np.linalg.inv(h_plane_to_image)
    v, u = np.mgrid[0:shape[0], 0:shape[1]].astype(np.float64)
    w = g[2, 0] * u + g[2, 1] * v + g[2, 2]
    return np.abs(np.linalg.det(g)) / np.abs(w) ** 3


# ------------------------------------------------------------------------- determinism
def test_same_seed_gives_identical_files_whatever_the_jobs(tmp_path):
    cfg = StudyConfig.from_cli(seed=21, subjects=2, days="0,7", size="160x120")
    a = generate_study(tmp_path / "a", cfg, jobs=1)
    b = generate_study(tmp_path / "b", cfg, jobs=2)
    assert a.n_photos == b.n_photos == 4
    fa, fb = _files(a.root), _files(b.root)
    assert fa.keys() == fb.keys() and len(fa) > 10
    assert all(fa[k] == fb[k] for k in fa)


def test_different_seed_gives_different_photos(tmp_path):
    a = generate_study(tmp_path / "a", StudyConfig.from_cli(seed=1, subjects=2, days="0",
                                                            size="160x120"))
    b = generate_study(tmp_path / "b", StudyConfig.from_cli(seed=2, subjects=2, days="0",
                                                            size="160x120"))
    photos = sorted(p.relative_to(a.root) for p in (a.root / "photos").rglob("*.jpg"))
    assert photos == sorted(p.relative_to(b.root) for p in (b.root / "photos").rglob("*.jpg"))
    assert all((a.root / p).read_bytes() != (b.root / p).read_bytes() for p in photos)


# ------------------------------------------------------------------------- contracts
def test_manifest_allocation_and_truth_contracts(synth_study):
    manifest = pd.read_csv(synth_study / "manifest.csv")
    assert tuple(manifest.columns) == MANIFEST_COLUMNS  # no arm: processing stays blinded
    allocation = pd.read_csv(synth_study / "allocation.csv")
    assert list(allocation.columns) == ["subject_id", "arm"]
    assert sorted(allocation["arm"]) == ["control", "control", "msc", "msc"]
    assert set(allocation["subject_id"]) == set(manifest["subject_id"])
    assert len(manifest) == 4 * 3 and sorted(set(manifest["visit_day"])) == [0, 5, 21]
    for f in manifest["file"]:
        assert not Path(f).is_absolute() and (synth_study / f).is_file()
    photos = pd.read_csv(synth_study / "truth" / "photos.csv")
    assert tuple(photos.columns) == PHOTO_COLUMNS
    assert list(photos["file"]) == list(manifest["file"])
    subjects = pd.read_csv(synth_study / "truth" / "subjects.csv")
    assert tuple(subjects.columns) == SUBJECT_COLUMNS
    assert "arm" not in subjects.columns and "arm" not in photos.columns
    study = json.loads((synth_study / "study.json").read_text())
    assert study["seed"] == 7 and StudyConfig.from_dict(study["config"]).n_subjects == 4
    assert study["sticker"]["name"] == "DS-CAL-1"
    for _, row in photos.iterrows():
        labels = cv2.imread(str(synth_study / row["mask_file"]), cv2.IMREAD_UNCHANGED)
        assert labels.shape == (360, 480) and labels.dtype == np.uint8
        assert set(np.unique(labels)) <= {0, 1, 2}
        assert _record(synth_study, row)["homography_plane_to_image"]
    healed = 100 * photos["epithelialized_area_mm2"] / photos["donor_area_mm2"]
    assert np.allclose(healed, photos["healed_percent"], atol=1e-3)
    assert np.allclose(photos["epithelialized_area_mm2"] + photos["raw_area_mm2"],
                       photos["donor_area_mm2"], atol=0.01)


def test_randomization_is_one_to_one_and_msc_heals_faster():
    subjects = plan_subjects(StudyConfig(seed=3, n_subjects=200))
    arms = [s.arm for s in subjects]
    assert arms.count("msc") == arms.count("control") == 100
    t95 = {arm: np.median([s.t95_days for s in subjects if s.arm == arm])
           for arm in ("msc", "control")}
    assert t95["msc"] < t95["control"]
    assert {s.skin_type for s in subjects} == {1, 2, 3, 4, 5, 6}


# ------------------------------------------------------------------------- truth
def test_truth_areas_agree_with_masks_through_the_homography(synth_study):
    photos = pd.read_csv(synth_study / "truth" / "photos.csv")
    for _, row in photos.iterrows():
        labels = cv2.imread(str(synth_study / row["mask_file"]), cv2.IMREAD_UNCHANGED)
        h = np.array(_record(synth_study, row)["homography_plane_to_image"])
        area = _pixel_area_mm2(h, labels.shape)
        donor = row["donor_area_mm2"]
        assert area[labels > 0].sum() == pytest.approx(donor, rel=0.01)
        assert area[labels == 1].sum() == pytest.approx(row["epithelialized_area_mm2"],
                                                        abs=0.01 * donor)


def test_healing_is_monotonic_per_subject(synth_study):
    photos = pd.read_csv(synth_study / "truth" / "photos.csv")
    subjects = pd.read_csv(synth_study / "truth" / "subjects.csv").set_index("subject_id")
    for sid, g in photos.sort_values("visit_day").groupby("subject_id"):
        assert g["donor_area_mm2"].nunique() == 1
        assert (np.diff(g["epithelialized_area_mm2"]) >= 0).all()
        assert (np.diff(g["raw_area_mm2"]) <= 0).all()
        assert (np.diff(g["healed_percent"]) >= 0).all()
        assert g["healed_percent"].iloc[0] == 0.0  # day 0: freshly harvested
        t95, t100 = subjects.loc[sid, ["t95_day", "t100_day"]]
        assert 0 < t95 <= t100
        for _, row in g.iterrows():
            if row["visit_day"] >= t100:
                assert row["healed_percent"] == 100.0
            if row["visit_day"] < t95:
                assert row["healed_percent"] < 95.0


def test_site_and_sticker_in_frame_and_apart(synth_study):
    spec = load_sticker()
    card = np.array([[0, 0], [spec.card_width_mm, 0], [spec.card_width_mm, spec.card_height_mm],
                     [0, spec.card_height_mm]], dtype=np.float64)
    photos = pd.read_csv(synth_study / "truth" / "photos.csv")
    for _, row in photos.iterrows():
        labels = cv2.imread(str(synth_study / row["mask_file"]), cv2.IMREAD_UNCHANGED)
        h = np.array(_record(synth_study, row)["homography_plane_to_image"])
        corners = cv2.perspectiveTransform(card[None], h)[0]
        assert (corners >= 0).all() and (corners[:, 0] < 480).all() and (corners[:, 1] < 360).all()
        card_mask = np.zeros_like(labels)
        cv2.fillConvexPoly(card_mask, np.round(corners).astype(np.int32), 1)
        assert not (labels[card_mask > 0] > 0).any()
        border = np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]])
        assert (labels > 0).any() and not (border > 0).any()


def test_raw_tissue_is_redder_than_epithelium(synth_study):
    photos = pd.read_csv(synth_study / "truth" / "photos.csv")
    raw, epi = [], []
    for _, row in photos.iterrows():
        labels = cv2.imread(str(synth_study / row["mask_file"]), cv2.IMREAD_UNCHANGED)
        rgb = _oriented(synth_study / row["file"]).astype(float)
        redness = (rgb[..., 0] - rgb[..., 1]) / (rgb.sum(axis=2) + 1)
        raw += list(redness[labels == 2])
        epi += list(redness[labels == 1])
    assert len(raw) > 100 and len(epi) > 100
    assert np.median(raw) > np.median(epi) + 0.05


def test_exif_orientation_gives_the_truth_shape(synth_study):
    photos = pd.read_csv(synth_study / "truth" / "photos.csv")
    assert set(photos["exif_orientation"]) - {1}, "the fixture should hold rotated files"
    for _, row in photos.iterrows():
        with Image.open(synth_study / row["file"]) as im:
            stored = im.size
            tag = im.getexif().get(0x0112, 1)
            oriented = ImageOps.exif_transpose(im).size
        assert tag == row["exif_orientation"]
        assert oriented == (480, 360)
        assert stored == ((360, 480) if tag in (6, 8) else (480, 360))


def test_homography_puts_the_markers_where_the_photo_shows_them(tmp_path):
    cfg = StudyConfig.from_cli(seed=4, subjects=1, days="0", size="1024x768",
                               px_per_mm=(20.0, 20.0), tilt_max_deg=25.0, exif_fraction=1.0)
    root = generate_study(tmp_path / "s", cfg).root
    row = pd.read_csv(root / "truth" / "photos.csv").iloc[0]
    spec = load_sticker()
    gray = cv2.cvtColor(_oriented(root / row["file"]), cv2.COLOR_RGB2GRAY)
    params = cv2.aruco.DetectorParameters()
    params.cornerRefinementMethod = cv2.aruco.CORNER_REFINE_SUBPIX
    detector = cv2.aruco.ArucoDetector(
        cv2.aruco.getPredefinedDictionary(spec.aruco_dictionary_id), params)
    corners, ids, _ = detector.detectMarkers(gray)
    assert ids is not None and len(ids) >= 3
    h = np.array(_record(root, row)["homography_plane_to_image"])
    for c, marker_id in zip(corners, ids.ravel(), strict=True):
        expected = cv2.perspectiveTransform(spec.marker(int(marker_id)).corners_mm()[None], h)[0]
        assert np.abs(c[0] - expected).max() < 1.5


# ------------------------------------------------------------------------- safety, config
def test_refuses_to_overwrite_without_force(tmp_path):
    cfg = StudyConfig.from_cli(seed=5, subjects=1, days="0", size="96x72")
    out = tmp_path / "study"
    generate_study(out, cfg)
    with pytest.raises(StudyExistsError, match=str(out)):
        generate_study(out, cfg)
    photo = out / "photos" / "S01" / "S01_D000_1.jpg"
    before = photo.read_bytes()
    generate_study(out, cfg.with_(seed=6), force=True)
    assert json.loads((out / "study.json").read_text())["seed"] == 6
    assert photo.read_bytes() != before
    assert not list(tmp_path.glob(".*partial"))
    other = tmp_path / "not-a-study"
    other.mkdir()
    (other / "notes.txt").write_text("keep me")
    with pytest.raises(StudyExistsError, match="does not look like a study"):
        generate_study(other, cfg, force=True)
    assert (other / "notes.txt").read_text() == "keep me"


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"size": "4000by3000"}, "4000by3000"),
    ({"days": "0,x"}, "0,x"),
    ({"days": "5,3"}, "visit_days"),
    ({"subjects": 0}, "n_subjects"),
    ({"size": "10x10"}, "width"),
])
def test_bad_settings_are_refused_with_the_value(kwargs, message):
    args = {"seed": 1, **kwargs}
    with pytest.raises(StudyConfigError, match=message):
        StudyConfig.from_cli(**args)


def test_bad_ranges_are_refused():
    with pytest.raises(StudyConfigError, match="tilt_max_deg"):
        StudyConfig(seed=1, tilt_max_deg=80.0)
    with pytest.raises(StudyConfigError, match="px_per_mm"):
        StudyConfig(seed=1, px_per_mm=(20.0, 5.0))


def test_contact_sheet(synth_study, tmp_path):
    from pipeline.synth.contact_sheet import main

    out = tmp_path / "sheet.jpg"
    assert main([str(synth_study), str(out), "--n", "6", "--columns", "3", "--cell-width",
                 "120", "--masks"]) == 0
    with Image.open(out) as im:
        assert im.width > 3 * 120 and im.height > 2 * 90
