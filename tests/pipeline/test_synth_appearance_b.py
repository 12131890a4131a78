"""Appearance model B (``donorsite synth --appearance b``): truth with A's semantics, a look
that differs from A's, determinism, and its building blocks."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
from PIL import Image, ImageOps

from pipeline.synth import StudyConfig, StudyConfigError, generate_study
from pipeline.synth.appearance_b import build_site_b
from pipeline.synth.noise_b import fbm, perlin, worley
from pipeline.synth.skin_b import ITA_RANGES, lab_to_linear
from pipeline.synth.study import PHOTO_COLUMNS

# small sites keep the per-visit texture grids (0.1 mm) small
_SMALL = {"seed": 13, "subjects": 1, "days": "0,7,40", "size": "320x240",
          "site_width_mm": (20.0, 26.0), "site_length_mm": (30.0, 45.0)}


def _oriented(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.array(ImageOps.exif_transpose(im).convert("RGB"))


def _pixel_area_mm2(h_plane_to_image: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """mm² of skin plane covered by each pixel: |det J| of the image -> plane map."""
    g = np.linalg.inv(h_plane_to_image)
    v, u = np.mgrid[0:shape[0], 0:shape[1]].astype(np.float64)
    w = g[2, 0] * u + g[2, 1] * v + g[2, 2]
    return np.abs(np.linalg.det(g)) / np.abs(w) ** 3


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file()}


@pytest.fixture(scope="module")
def b_study(tmp_path_factory) -> Path:
    """A tiny study of appearance B (1 subject, days 0, 7 and 40)."""
    cfg = StudyConfig.from_cli(**_SMALL, appearance="b")
    return generate_study(tmp_path_factory.mktemp("appearance") / "b", cfg).root


@pytest.fixture(scope="module")
def studies(tmp_path_factory, b_study) -> dict[str, Path]:
    """The same tiny study (seed, subjects, days, size) in appearance A and B."""
    cfg = StudyConfig.from_cli(**_SMALL, appearance="a")
    return {"a": generate_study(tmp_path_factory.mktemp("appearance") / "a", cfg).root,
            "b": b_study}


# ------------------------------------------------------------------------------ config
def test_appearance_is_validated_and_recorded(b_study):
    assert StudyConfig(seed=1).appearance == "a"
    with pytest.raises(StudyConfigError, match="appearance"):
        StudyConfig(seed=1, appearance="c")
    meta = json.loads((b_study / "study.json").read_text())
    assert meta["config"]["appearance"] == "b"
    assert StudyConfig.from_dict(meta["config"]).appearance == "b"
    old = {k: v for k, v in StudyConfig(seed=1).to_dict().items() if k != "appearance"}
    assert StudyConfig.from_dict(old).appearance == "a"  # studies made before B


# ------------------------------------------------------------------------------ truth
def test_b_truth_has_the_same_semantics(b_study):
    studies = {"b": b_study}
    photos = pd.read_csv(b_study / "truth" / "photos.csv")
    assert tuple(photos.columns) == PHOTO_COLUMNS
    healed = 100 * photos["epithelialized_area_mm2"] / photos["donor_area_mm2"]
    assert np.allclose(healed, photos["healed_percent"], atol=1e-3)
    subjects = pd.read_csv(studies["b"] / "truth" / "subjects.csv").set_index("subject_id")
    for sid, g in photos.sort_values("visit_day").groupby("subject_id"):
        assert g["healed_percent"].iloc[0] == 0.0, sid
        assert (np.diff(g["healed_percent"]) >= 0).all()
        t95, t100 = subjects.loc[sid, ["t95_day", "t100_day"]]
        assert 0 < t95 <= t100
        for _, row in g.iterrows():
            assert (row["healed_percent"] == 100.0) == (row["visit_day"] >= t100)
            if row["visit_day"] < t95:
                assert row["healed_percent"] < 95.0
    for _, row in photos.iterrows():
        labels = cv2.imread(str(studies["b"] / row["mask_file"]), cv2.IMREAD_UNCHANGED)
        assert set(np.unique(labels)) <= {0, 1, 2}
        record = json.loads((studies["b"] / "truth" / "photos"
                             / f"{Path(row['file']).stem}.json").read_text())
        area = _pixel_area_mm2(np.array(record["homography_plane_to_image"]), labels.shape)
        donor = row["donor_area_mm2"]
        assert area[labels > 0].sum() == pytest.approx(donor, rel=0.02)
        assert area[labels == 1].sum() == pytest.approx(row["epithelialized_area_mm2"],
                                                        abs=0.02 * donor)


def test_b_site_is_scaled_to_its_t95():
    site = build_site_b(np.random.default_rng(4), width_mm=45, length_mm=110, t95_days=11.5)
    assert site.healed_day(0.95) == pytest.approx(11.5, abs=1e-3)
    donor, epi, raw = site.areas_mm2(2.0)
    assert epi == 0.0 and raw == donor
    assert 0.5 * 45 * 110 < donor < 45 * 110
    # re-epithelialization from islands: mid-way, the epithelium is many separate pieces
    day = site.healed_day(0.3)
    epi = ((site.t_days <= day) & (site.sdf_mm < 0)).astype(np.uint8)
    n, _ = cv2.connectedComponents(epi)
    assert n - 1 >= 10


# ------------------------------------------------------------------------------ the look
@pytest.mark.slow
def test_b_looks_different_from_a_for_the_same_seed(studies):
    assert _files(studies["a"]).keys() == _files(studies["b"]).keys()  # the same files
    pa = pd.read_csv(studies["a"] / "truth" / "photos.csv")
    a_stats, b_stats = [], []
    for study, stats in ((studies["a"], a_stats), (studies["b"], b_stats)):
        for _, row in pa.iterrows():
            rgb = _oriented(study / row["file"]).astype(np.float32)
            labels = cv2.imread(str(study / row["mask_file"]), cv2.IMREAD_UNCHANGED)
            lap = cv2.Laplacian(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), cv2.CV_32F)
            stats.append(np.concatenate([rgb[labels == 0].mean(axis=0),
                                         rgb[labels > 0].mean(axis=0),
                                         [np.abs(lap[labels > 0]).mean()]]))
    a_stats, b_stats = np.array(a_stats), np.array(b_stats)
    # per photo, the colour of the skin or the tissue, or the texture, differs clearly
    diff = np.abs(a_stats - b_stats)
    assert (diff[:, :6].max(axis=1) > 8).all()
    labels_a = [cv2.imread(str(studies["a"] / r), cv2.IMREAD_UNCHANGED) for r in pa["mask_file"]]
    labels_b = [cv2.imread(str(studies["b"] / r), cv2.IMREAD_UNCHANGED) for r in pa["mask_file"]]
    assert any((la != lb).mean() > 0.01 for la, lb in zip(labels_a, labels_b, strict=True))


def test_b_raw_is_redder_than_its_epithelium(b_study):
    studies = {"b": b_study}
    photos = pd.read_csv(b_study / "truth" / "photos.csv")
    raw, epi = [], []
    for _, row in photos.iterrows():
        rgb = _oriented(studies["b"] / row["file"]).astype(float)
        labels = cv2.imread(str(studies["b"] / row["mask_file"]), cv2.IMREAD_UNCHANGED)
        redness = (rgb[..., 0] - rgb[..., 1]) / (rgb.sum(axis=2) + 1)
        raw += list(redness[labels == 2])
        epi += list(redness[labels == 1])
    assert len(raw) > 100 and len(epi) > 100
    assert np.median(raw) > np.median(epi) + 0.05


@pytest.mark.slow
def test_b_is_deterministic(b_study, tmp_path):
    studies = {"b": b_study}
    again = generate_study(tmp_path / "b", StudyConfig.from_cli(**_SMALL, appearance="b")).root
    first, second = _files(studies["b"]), _files(again)
    assert first.keys() == second.keys()
    assert all(first[k] == second[k] for k in first)


# ------------------------------------------------------------------------------ parts
def test_noise_tiles_and_is_normalised():
    rng = np.random.default_rng(0)
    t = perlin(rng, (64, 96), 16.0, tile=True)
    wrapped = np.concatenate([t, t], axis=1)
    step = np.abs(np.diff(wrapped, axis=1))
    assert step[:, 95].max() <= step.max() + 1e-6  # no seam where the tile repeats
    f = fbm(rng, (80, 80), 20.0)
    assert abs(float(f.mean())) < 1e-4 and f.std() == pytest.approx(1.0, abs=1e-3)
    f1, f2 = worley(rng, (50, 50), 10.0)
    assert (f2 >= f1).all() and f1.min() < 0.05 and f1.max() < 1.5


@pytest.mark.parametrize("skin_type", sorted(ITA_RANGES))
def test_skin_colours_follow_the_ita_ranges(skin_type):
    from pipeline.synth.skin_b import _skin_colour

    rgb = np.array([_skin_colour(np.random.default_rng(i), skin_type) for i in range(20)])
    lum = rgb @ np.array([0.2126, 0.7152, 0.0722])
    darker = np.array([_skin_colour(np.random.default_rng(i), min(skin_type + 1, 6))
                       for i in range(20)]) @ np.array([0.2126, 0.7152, 0.0722])
    assert (rgb[:, 0] > rgb[:, 2]).all()  # skin is warm
    if skin_type < 6:
        assert np.median(lum) > np.median(darker)
    assert np.allclose(lab_to_linear(np.array([50.0, 0.0, 0.0])), 0.18, atol=0.01)


@pytest.mark.slow
def test_standard_a_studies_are_unchanged_by_b(tmp_path):
    """A tiny standard study made before model B existed: the same truth and masks (exact)
    and the same photos (mean pixel values; the JPEG bytes were identical too)."""
    import hashlib

    root = generate_study(tmp_path / "a", StudyConfig.from_cli(
        seed=33, subjects=2, days="0,5,10", size="480x360")).root
    digest = hashlib.sha256((root / "truth" / "photos.csv").read_bytes())
    for mask in sorted((root / "truth" / "masks").glob("*.png")):
        digest.update(cv2.imread(str(mask), cv2.IMREAD_UNCHANGED).tobytes())
    assert digest.hexdigest() == (
        "1b9430c0f38239301a49e1ec9c85d9a5e413b449a56d80aa5dee577ec6e40eb3")
    means = [float(np.asarray(Image.open(p)).mean())
             for p in sorted((root / "photos").rglob("*.jpg"))]
    assert means == pytest.approx([157.162, 131.095, 145.358, 144.915, 144.216, 144.14],
                                  abs=0.05)
