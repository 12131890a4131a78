from __future__ import annotations

import cv2
import numpy as np
import pytest
from skimage.draw import polygon2mask

from calibration.errors import HomographyError
from calibration.geometry import PlaneGeometry, estimate_tilt
from calibration.synthetic import camera_homography

SIZE = (800, 600)


def _shoelace(pts: np.ndarray) -> float:
    x, y = pts[:, 0], pts[:, 1]
    return 0.5 * abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))


@pytest.fixture(scope="module")
def tilted() -> tuple[np.ndarray, PlaneGeometry]:
    h_pi = camera_homography(size=SIZE, px_per_mm=5.0, tilt_deg=35.0, tilt_axis_deg=20.0,
                             rotation_deg=10.0)
    return h_pi, PlaneGeometry(np.linalg.inv(h_pi), (SIZE[1], SIZE[0]))


def test_pixel_areas_sum_to_the_plane_area_of_the_frame(tilted):
    _, geo = tilted
    w, h = SIZE
    # The photo's outer edge (pixel edges at -0.5 and size - 0.5) maps to a quadrilateral.
    frame = np.array([[-0.5, -0.5], [w - 0.5, -0.5], [w - 0.5, h - 0.5], [-0.5, h - 0.5]])
    exact = _shoelace(geo.image_to_plane(frame))
    for shape in [None, (150, 200), (601, 799), (1200, 1600)]:
        total = geo.pixel_area_mm2(shape).sum()
        assert total == pytest.approx(exact, rel=2e-4), shape


def test_pixel_area_varies_across_a_tilted_photo(tilted):
    _, geo = tilted
    a = geo.pixel_area_mm2()
    # 35 degrees of tilt: the far side's pixels cover clearly more skin than the near side's.
    assert a.max() / a.min() > 1.3
    untilted = PlaneGeometry(np.diag([0.2, 0.2, 1.0]), (SIZE[1], SIZE[0]))
    assert np.allclose(untilted.pixel_area_mm2(), 0.04)


def test_mask_area_matches_an_analytic_plane_ellipse(tilted):
    h_pi, geo = tilted
    a, b, cx, cy = 30.0, 18.0, 40.0, 20.0
    t = np.linspace(0, 2 * np.pi, 2000, endpoint=False)
    ring_mm = np.column_stack([cx + a * np.cos(t), cy + b * np.sin(t)])
    ring_px = geo.plane_to_image(ring_mm)
    assert ring_px.min() > 0 and ring_px[:, 0].max() < SIZE[0] and ring_px[:, 1].max() < SIZE[1]
    # Pixels whose centres lie inside the projected ellipse.
    mask = polygon2mask((SIZE[1], SIZE[0]), ring_px[:, ::-1]).astype(np.uint8)
    exact = np.pi * a * b
    assert geo.area_mm2(mask.astype(bool)) == pytest.approx(exact, rel=0.002)
    # One px/mm factor from the centre would be biased; the per-pixel area is not.
    naive = mask.sum() * geo.mm_per_px_at(*geo.plane_to_image(np.array([[35.0, 25.0]]))[0])**2
    assert abs(naive / exact - 1) > abs(geo.area_mm2(mask.astype(bool)) / exact - 1)
    # The same mask at half resolution measures the same area.
    half = cv2.resize(mask, (SIZE[0] // 2, SIZE[1] // 2), interpolation=cv2.INTER_AREA)
    assert geo.area_mm2(half > 0) == pytest.approx(exact, rel=0.01)


def test_tilt_is_recovered_with_an_estimated_focal_length():
    for tilt in (10.0, 25.0, 40.0):
        h_pi = camera_homography(size=SIZE, px_per_mm=5.0, tilt_deg=tilt, tilt_axis_deg=70.0,
                                 rotation_deg=-20.0, focal_px=900.0)
        est, focal, estimated = estimate_tilt(h_pi, (SIZE[1], SIZE[0]), estimate_focal=True)
        assert estimated and focal == pytest.approx(900.0, rel=0.02)
        assert est == pytest.approx(tilt, abs=0.2)
        # With the focal length known (here: assumed right) the tilt is exact too.
        focal_35mm = 900.0 / 1000.0 * np.hypot(36, 24)
        est, focal, estimated = estimate_tilt(h_pi, (SIZE[1], SIZE[0]), focal_35mm=focal_35mm)
        assert not estimated and est == pytest.approx(tilt, abs=0.01)


def test_a_fronto_parallel_view_falls_back_to_the_assumed_focal_length():
    h_pi = camera_homography(size=SIZE, px_per_mm=5.0)
    tilt, focal, estimated = estimate_tilt(h_pi, (SIZE[1], SIZE[0]), focal_35mm=26.0,
                                           estimate_focal=True)
    assert tilt == pytest.approx(0.0, abs=0.01)
    assert not estimated and focal == pytest.approx(26.0 / np.hypot(36, 24) * 1000.0)


def test_mapping_round_trip_and_bad_input(tilted):
    _, geo = tilted
    pts = np.array([[0.0, 0.0], [70.0, 50.0], [12.5, 40.0]])
    assert np.allclose(geo.image_to_plane(geo.plane_to_image(pts)), pts)
    with pytest.raises(HomographyError, match="singular"):
        PlaneGeometry(np.zeros((3, 3)), (10, 10))
    with pytest.raises(HomographyError, match="3x3"):
        PlaneGeometry(np.eye(2), (10, 10))
    with pytest.raises(ValueError, match="mask must be 2-D"):
        geo.area_mm2(np.ones((2, 2, 2), bool))
