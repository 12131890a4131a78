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
