from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from calibration.geometry import PlaneGeometry
from calibration.ruler import measure_ruler
from calibration.synthetic import render_scene


def _geo(scene) -> PlaneGeometry:
    h, w = scene.image_rgb.shape[:2]
    return PlaneGeometry(np.linalg.inv(scene.homography_plane_to_image), (h, w))


def test_ruler_measures_its_printed_length(spec):
    scene = render_scene(spec, size=(800, 600), px_per_mm=6.0, tilt_deg=30.0,
                         rotation_deg=-25.0, noise_sigma=0.01, blur_sigma=0.8, seed=9)
    assert measure_ruler(scene.image_rgb, _geo(scene), spec.ruler) == pytest.approx(40.0,
                                                                                    abs=0.1)


def test_a_wrong_scale_shows_in_the_ruler(spec):
    scene = render_scene(spec, size=(800, 600), px_per_mm=6.0, seed=9)
    h = np.linalg.inv(scene.homography_plane_to_image)
    shrunk = PlaneGeometry(np.diag([1.01, 1.01, 1.0]) @ h, (600, 800))  # 1 % too large
    got = measure_ruler(scene.image_rgb, shrunk, spec.ruler)
    assert got == pytest.approx(40.4, abs=0.1)


def test_missing_ruler_is_none(spec):
    scene = render_scene(spec, render_spec=dataclasses.replace(spec, ruler=None),
                         size=(800, 600), px_per_mm=6.0, seed=9)
    assert measure_ruler(scene.image_rgb, _geo(scene), spec.ruler) is None


def test_a_ruler_with_its_ticks_down_and_two_classes_is_measured(astro):
    assert astro.ruler.direction == "down" and astro.ruler.major_mm == 10.0
    scene = render_scene(astro, size=(900, 700), px_per_mm=7.0, tilt_deg=25.0,
                         rotation_deg=30.0, noise_sigma=0.01, blur_sigma=0.8, seed=9)
    assert measure_ruler(scene.image_rgb, _geo(scene), astro.ruler) == pytest.approx(50.0,
                                                                                     abs=0.1)
    h = np.linalg.inv(scene.homography_plane_to_image)
    shrunk = PlaneGeometry(np.diag([1.01, 1.01, 1.0]) @ h, (700, 900))
    assert measure_ruler(scene.image_rgb, shrunk, astro.ruler) == pytest.approx(50.5, abs=0.1)
    # Read on the wrong side of the baseline, there are no ticks.
    up = dataclasses.replace(astro.ruler, direction="up", y_mm=astro.ruler.y_mm + 0.4)
    assert measure_ruler(scene.image_rgb, _geo(scene), up) is None


def test_the_coarsest_tick_class_is_the_one_measured(spec):
    # Ticks every 1 mm and 5 mm only: the 5 mm ticks are the major ones.
    r = dataclasses.replace(spec.ruler, x1_mm=50.0, tick_every_mm=(1.0, 5.0),
                            tick_lengths_mm=(1.5, 3.5))
    five = dataclasses.replace(spec, ruler=r)
    scene = render_scene(five, size=(800, 600), px_per_mm=6.0, tilt_deg=20.0, seed=9)
    assert [c for _, c in r.ticks()][:6] == [1, 0, 0, 0, 0, 1]
    assert measure_ruler(scene.image_rgb, _geo(scene), r) == pytest.approx(35.0, abs=0.1)
