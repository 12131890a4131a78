from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from calibration import calibrate
from calibration.detect import detect_markers, fit_homography
from calibration.errors import (
    CalibrationError,
    DuplicateMarkerError,
    ForeignMarkerError,
    MarkerRotationError,
    StickerNotFoundError,
    StickerOutOfFrameError,
    StrayMarkerError,
    TooFewMarkersError,
)
from calibration.sticker import Marker
from calibration.synthetic import render_scene, with_markers

KW = dict(size=(800, 600), px_per_mm=6.0, tilt_deg=15.0, rotation_deg=8.0, seed=3)


def _moved(m: Marker, new_id: int) -> Marker:
    return Marker(new_id, m.x_mm, m.y_mm, m.size_mm)


def test_markers_found_and_corners_accurate(spec, good_scene):
    det = detect_markers(good_scene.image_rgb, spec)
    assert det.ids == (0, 1, 2, 3)
    h = good_scene.homography_plane_to_image
    plane = det.plane_points(spec)
    hom = np.c_[plane, np.ones(len(plane))] @ h.T
    truth = hom[:, :2] / hom[:, 2:]
    assert np.abs(det.image_points() - truth).max() < 0.6


def test_large_photo_is_detected_on_a_reduced_copy_and_refined(spec):
    scene = render_scene(spec, size=(2400, 1800), px_per_mm=12.0, tilt_deg=25.0,
                         tilt_axis_deg=40.0, noise_sigma=0.01, seed=4)
    det = detect_markers(scene.image_rgb, spec, max_side=800)
    assert det.detection_scale < 0.5 and det.ids == (0, 1, 2, 3)
    geo, inliers = fit_homography(det, spec)
    assert inliers.all()
    truth = scene.homography_plane_to_image
    plane = det.plane_points(spec)
    hom = np.c_[plane, np.ones(len(plane))] @ truth.T
    err = np.linalg.norm(det.image_points() - hom[:, :2] / hom[:, 2:], axis=1)
    assert err.max() < 0.6  # full-resolution sub-pixel corners, not reduced-copy ones


def test_no_marker_raises_sticker_not_found(spec):
    empty = with_markers(spec, ())
    scene = render_scene(spec, render_spec=empty, **KW)
    with pytest.raises(StickerNotFoundError, match="photo-7.jpg"):
        calibrate(scene.image_rgb, spec, source="photo-7.jpg")
    skin = np.full((300, 400, 3), (190, 140, 120), np.uint8)
    with pytest.raises(StickerNotFoundError):
        calibrate(skin, spec)


def test_two_markers_raise_too_few(spec):
    scene = render_scene(spec, render_spec=with_markers(spec, spec.markers[:2]), **KW)
    with pytest.raises(TooFewMarkersError, match=r"only 2 of 4 markers.*ids \[0, 1\]"):
        calibrate(scene.image_rgb, spec, source="p.jpg")


def test_duplicated_id_raises(spec):
    m = spec.markers
    scene = render_scene(spec, render_spec=with_markers(spec, (m[0], m[1], m[2],
                                                               _moved(m[3], 1))), **KW)
    with pytest.raises(DuplicateMarkerError, match=r"ids \[1\] found more than once"):
        calibrate(scene.image_rgb, spec, source="p.jpg")


def test_foreign_ids_raise(spec):
    m = spec.markers
    one_foreign = with_markers(spec, (m[0], m[1], m[2], _moved(m[3], 7)))
    scene = render_scene(spec, render_spec=one_foreign, **KW)
    with pytest.raises(ForeignMarkerError, match=r"ids \[7\] are not on sticker 'DS-CAL-1'"):
        calibrate(scene.image_rgb, spec, source="p.jpg")
    other = with_markers(spec, tuple(_moved(x, 20 + i) for i, x in enumerate(m)))
    scene = render_scene(spec, render_spec=other, **KW)
    with pytest.raises(ForeignMarkerError, match=r"\[20, 21, 22, 23\]"):
        calibrate(scene.image_rgb, spec)


def test_card_corner_out_of_frame_raises(spec):
    # All four markers visible, but the card's left edge is cut by the frame.
    kw = dict(KW, tilt_deg=0.0, rotation_deg=0.0)
    scene = render_scene(spec, target_px=(35.0 * 6.0 - 6.0, 300.0), **kw)
    det = detect_markers(scene.image_rgb, spec)
    assert det.ids == (0, 1, 2, 3)
    with pytest.raises(StickerOutOfFrameError, match=r"partly out of frame.*top-left"):
        calibrate(scene.image_rgb, spec, source="p.jpg")


def test_marker_out_of_frame_is_an_error_not_a_three_marker_flag(spec):
    # Rolled 25 degrees and pushed right: marker 1 (top right) is cut by the frame.
    kw = dict(KW, tilt_deg=0.0, rotation_deg=25.0)
    scene = render_scene(spec, target_px=(600.0, 330.0), **kw)
    with pytest.raises(StickerOutOfFrameError, match="top-right"):
        calibrate(scene.image_rgb, spec)


def test_every_error_is_a_calibration_error():
    for cls in (StickerNotFoundError, TooFewMarkersError, DuplicateMarkerError,
                ForeignMarkerError, StickerOutOfFrameError):
        assert issubclass(cls, CalibrationError)


def test_a_stray_marker_of_another_id_is_ignored_with_a_note(spec):
    stray = (Marker(5, 80.0, 18.0, 8.0),)  # beside the card, the same size and dictionary
    with_stray = render_scene(spec, extra_markers=stray, **KW)
    without = render_scene(spec, **KW)
    det = detect_markers(with_stray.image_rgb, spec)
    assert det.ids == (0, 1, 2, 3) and det.ignored_ids == (5,)
    cal = calibrate(with_stray.image_rgb, spec)
    assert cal.qc_flags == ("foreign_markers",)
    assert cal.markers_ignored == (5,)
    assert any("ignored markers [5]" in n for n in cal.notes)
    rec = cal.to_dict()
    assert rec["markers_ignored"] == [5] and rec["qc_flags"] == ["foreign_markers"]
    ref = calibrate(without.image_rgb, spec)
    assert ref.qc_flags == () and ref.markers_ignored == () and ref.notes == ()
    assert cal.mm_per_px == pytest.approx(ref.mm_per_px, rel=1e-4)


def test_a_second_copy_of_the_sticker_makes_the_pose_ambiguous(spec):
    copy = tuple(Marker(m.id, m.x_mm + 75.0, m.y_mm, m.size_mm) for m in spec.markers)
    scene = render_scene(spec, extra_markers=copy, target_mm=(72.0, 25.0),
                         **dict(KW, size=(1200, 700), tilt_deg=0.0, rotation_deg=0.0))
    with pytest.raises(DuplicateMarkerError, match=r"\[0, 1, 2, 3\] found more than once "
                                                   r"\(two copies of sticker 'DS-CAL-1'"):
        calibrate(scene.image_rgb, spec, source="p.jpg")


def test_a_stray_marker_with_a_sticker_id_far_away_is_refused(spec):
    # Marker 3 is covered on the card, and a loose marker 3 lies beside it.
    m = spec.markers
    scene = render_scene(spec, render_spec=with_markers(spec, m[:3]),
                         extra_markers=(Marker(3, 82.0, 30.0, 8.0),), **KW)
    with pytest.raises(StrayMarkerError, match=r"p\.jpg: marker 3 is \d+ mm from where "
                                               r"markers \[0, 1, 2\].*ambiguous"):
        calibrate(scene.image_rgb, spec, source="p.jpg")
    assert issubclass(StrayMarkerError, CalibrationError)


def test_a_marker_printed_turned_but_described_upright_is_named(spec):
    m = spec.markers
    turned = with_markers(spec, (m[0], dataclasses.replace(m[1], rotation_deg=90), m[2], m[3]))
    scene = render_scene(spec, render_spec=turned, **KW)
    with pytest.raises(MarkerRotationError, match=r"marker 1 .* turned 90 degrees clockwise.*"
                                                  r"ds-cal-1\.toml\) says rotation_deg = 0"):
        calibrate(scene.image_rgb, spec)
    # Described as printed, the same photo calibrates.
    cal = calibrate(scene.image_rgb, turned)
    assert cal.qc_flags == () and cal.reprojection_error_px < 0.3


@pytest.mark.parametrize("turns", [1, 2, 3])
def test_markers_at_every_rotation_give_their_own_corners(spec, turns):
    rotated = with_markers(spec, tuple(dataclasses.replace(x, rotation_deg=90 * ((k + turns) % 4))
                                       for k, x in enumerate(spec.markers)))
    scene = render_scene(rotated, **KW)
    det = detect_markers(scene.image_rgb, rotated)
    plane = det.plane_points(rotated)
    hom = np.c_[plane, np.ones(len(plane))] @ scene.homography_plane_to_image.T
    assert np.abs(det.image_points() - hom[:, :2] / hom[:, 2:]).max() < 0.6
