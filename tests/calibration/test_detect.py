from __future__ import annotations

import numpy as np
import pytest

from calibration import calibrate
from calibration.detect import detect_markers, fit_homography
from calibration.errors import (
    CalibrationError,
    DuplicateMarkerError,
    ForeignMarkerError,
    StickerNotFoundError,
    StickerOutOfFrameError,
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
