from __future__ import annotations

import numpy as np

from calibration.geometry import PlaneGeometry
from calibration.patches import sample_patches
from calibration.synthetic import render_scene


def _truth_geometry(scene) -> PlaneGeometry:
    h, w = scene.image_rgb.shape[:2]
    return PlaneGeometry(np.linalg.inv(scene.homography_plane_to_image), (h, w))


def test_patch_sampling_recovers_the_printed_colours(spec):
    scene = render_scene(spec, size=(800, 600), px_per_mm=6.0, tilt_deg=25.0,
                         rotation_deg=30.0, noise_sigma=0.01, seed=5)
    s = sample_patches(scene.image_rgb, _truth_geometry(scene), spec)
    printed = np.clip(spec.reference_rgb_linear, 0, 1)
    assert np.allclose(s.rgb_linear, printed, rtol=0.03, atol=0.002)
    assert s.clipped_fraction.max() == 0 and s.specular_fraction.max() < 0.02


def test_sampling_rejects_a_small_highlight(spec):
    kw = dict(size=(800, 600), px_per_mm=6.0, tilt_deg=10.0, noise_sigma=0.006, seed=6)
    clean = sample_patches(render_scene(spec, **kw).image_rgb,
                           _truth_geometry(render_scene(spec, **kw)), spec)
    # A small glint on the edge of the 'purple' patch (index 9: 35..41 x 12..18 mm).
    scene = render_scene(spec, glare_mm=(39.0, 16.0, 0.8), glare_gain=2.0, **kw)
    s = sample_patches(scene.image_rgb, _truth_geometry(scene), spec)
    assert s.specular_fraction[9] > 0.05
    assert np.allclose(s.rgb_linear[9], clean.rgb_linear[9], rtol=0.1)
