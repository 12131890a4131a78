"""Reduced-size JPEG decoding in the prepare stage: same geometry, same areas, safe fallbacks."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from calibration import load_sticker
from models.config import ModelConfig
from pipeline.decode import sha256_bytes
from pipeline.engine_prepare import (
    DecodePolicy,
    choose_reduce,
    prepare_photo,
    prepare_pixels,
    rescale_calibration,
)
from pipeline.stages import PrepareOptions, Task, prepare

POLICY = DecodePolicy(min_long_side=800)  # lets these 1600 px photos decode at 1/2


@pytest.fixture(scope="module")
def study(tmp_path_factory) -> Path:
    """Two 1600x1200 photos, both stored rotated with an EXIF orientation tag."""
    from pipeline.synth import StudyConfig, generate_study

    root = tmp_path_factory.mktemp("reduce") / "s"
    cfg = StudyConfig.from_cli(seed=23, subjects=1, days="0,7", size="1600x1200",
                               exif_fraction=1.0)
    generate_study(root, cfg, jobs=1, force=False, progress=False)
    return root


def _rows(study: Path) -> list[dict]:
    return list(csv.DictReader((study / "truth" / "photos.csv").open()))


def _task(study: Path, rel: str) -> Task:
    p = study / rel
    return Task("P1", 1, p, rel, sha256_bytes(p.read_bytes()))


def _options(px_per_mm: float = 1.0) -> PrepareOptions:
    return PrepareOptions(sticker=load_sticker(), model_config=ModelConfig(px_per_mm=px_per_mm))


def test_choose_reduce():
    assert choose_reduce(4000, 3000, DecodePolicy()) == 2
    assert choose_reduce(4000, 3000, DecodePolicy(min_long_side=500)) == 8
    assert choose_reduce(4000, 3000, DecodePolicy(reduce=4, min_long_side=500)) == 4
    assert choose_reduce(1200, 900, DecodePolicy()) == 1
    with pytest.raises(ValueError, match="reduce"):
        DecodePolicy(reduce=3)


def test_reduced_decode_keeps_geometry_and_areas(study):
    opts = _options()
    for row in _rows(study):
        task = _task(study, row["file"])
        full = prepare(task, opts)
        fast = prepare_photo(task, opts, POLICY)
        assert full.ok and fast.ok, (full.error_message, fast.error_message)
        assert fast.full_shape == full.full_shape  # the oriented full photo
        assert fast.calibration.image_shape == full.full_shape
        assert fast.photo_info["decoded_at"] == [full.full_shape[0] // 2,
                                                 full.full_shape[1] // 2]  # really reduced
        assert fast.photo_info["width"] == full.photo_info["width"]
        cf, cr = full.calibration, fast.calibration
        assert cr.mm_per_px == pytest.approx(cf.mm_per_px, rel=0.01)
        assert cr.tilt_deg == pytest.approx(cf.tilt_deg, abs=1.0)
        pts = np.array([[100.0, 80.0], [1100.0, 700.0], [500.0, 1500.0]])
        pts = np.minimum(pts, np.array(full.full_shape[::-1]) - 1)
        assert np.abs(cr.geometry.image_to_plane(pts)
                      - cf.geometry.image_to_plane(pts)).max() < 0.5  # mm
        mask = np.asarray(Image.open(study / row["mask_file"])) > 0
        true = float(row["donor_area_mm2"])
        assert cr.area_mm2(mask) == pytest.approx(true, rel=0.01)
        assert cr.area_mm2(mask) == pytest.approx(cf.area_mm2(mask), rel=0.005)
        assert abs(fast.working.shape[0] - full.working.shape[0]) <= 1
        assert abs(fast.working.shape[1] - full.working.shape[1]) <= 1
        h, w = min(fast.working.shape[0], full.working.shape[0]), \
            min(fast.working.shape[1], full.working.shape[1])
        diff = np.abs(fast.working[:h, :w] - full.working[:h, :w]).mean()
        assert diff < 0.03


def test_rescale_is_identity_at_the_same_size(study):
    row = _rows(study)[0]
    p = prepare(_task(study, row["file"]), _options())
    same = rescale_calibration(p.calibration, p.full_shape)
    np.testing.assert_allclose(same.homography, p.calibration.homography, atol=1e-12)
    assert same.mm_per_px == pytest.approx(p.calibration.mm_per_px)
    assert same.qc_flags == p.calibration.qc_flags


def _same(a, b) -> None:
    """Both prepared from the full decode: same calibration, working image, review."""
    assert a.ok and b.ok and "decoded_at" not in a.photo_info
    np.testing.assert_allclose(a.calibration.homography, b.calibration.homography)
    np.testing.assert_array_equal(a.working, b.working)
    assert a.review.shape == b.review.shape
    assert np.abs(a.review.astype(int) - b.review.astype(int)).max() <= 1


def test_falls_back_to_full_decode(study, tmp_path):
    row = _rows(study)[0]
    task = _task(study, row["file"])
    # a working scale finer than half the photo would have to enlarge the reduced copy
    fine = _options(px_per_mm=4.0)  # photos at ~6 px/mm: 4 > 6 / 2
    _same(prepare_photo(task, fine, POLICY), prepare(task, fine))
    opts = _options()
    _same(prepare_photo(task, opts, DecodePolicy(reduce=1)), prepare(task, opts))  # the default
    # not a JPEG: full path
    png = tmp_path / "p.png"
    Image.open(study / row["file"]).save(png)
    t_png = Task("P2", 1, png, "p.png", sha256_bytes(png.read_bytes()))
    _same(prepare_photo(t_png, opts, POLICY), prepare(t_png, opts))
    # bad inputs get the same error codes as the full path
    cut = tmp_path / "cut.jpg"
    data = (study / row["file"]).read_bytes()
    cut.write_bytes(data[: len(data) // 4])
    t_cut = Task("P3", 1, cut, "cut.jpg", sha256_bytes(cut.read_bytes()))
    missing = Task("P4", 1, tmp_path / "nope.jpg", "nope.jpg", "0" * 64)
    changed = Task("P5", 1, study / row["file"], row["file"], "f" * 64)
    for t in (t_cut, missing, changed):
        a, b = prepare_photo(t, opts, POLICY), prepare(t, opts)
        assert not a.ok and a.error_code == b.error_code


def test_prepare_pixels_at_full_size(study):
    row = _rows(study)[1]
    task = _task(study, row["file"])
    opts = _options()
    full = prepare(task, opts)
    from pipeline.decode import decode_photo

    photo = decode_photo(task.path.read_bytes(), name=task.name)
    p = prepare_pixels(task, opts, photo.rgb, full_shape=photo.shape, metadata=photo.metadata)
    assert p.ok and p.full_shape == full.full_shape
    np.testing.assert_allclose(p.calibration.homography, full.calibration.homography)
    np.testing.assert_allclose(p.working, full.working, atol=1e-6)
