from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from calibration.colour import (
    fit_colour_correction,
    linear_to_srgb,
    rgb_linear_to_lab_d50,
    srgb_to_linear,
    supported_method,
)
from calibration.errors import ColourFitError


def test_reference_path_round_trips(spec):
    # linear sRGB -> XYZ -> Bradford D50 -> Lab is the inverse of how the reference was made.
    lab = rgb_linear_to_lab_d50(spec.reference_rgb_linear)
    assert np.allclose(lab, spec.reference_lab_d50, atol=0.01)


def test_srgb_transfer_round_trips():
    x = np.linspace(0, 1, 256).astype(np.float32)
    assert np.allclose(srgb_to_linear(linear_to_srgb(x)), x, atol=1e-5)
    u8 = np.arange(256, dtype=np.uint8)
    assert np.allclose(srgb_to_linear(u8), srgb_to_linear(u8 / np.float32(255)), atol=1e-6)


@pytest.mark.parametrize("method", ["linear", "root-polynomial"])
def test_fit_removes_a_colour_cast(spec, method, warm_cast):
    printed = np.clip(spec.reference_rgb_linear, 0, 1)  # cyan is out of the sRGB gamut
    in_gamut = (spec.reference_rgb_linear >= 0).all(axis=1)
    photo = printed @ warm_cast.T * 0.7
    cc = fit_colour_correction(photo, spec, method=method)
    assert cc.mean_before > 8
    assert cc.mean_after < 0.5 and cc.mean_loo < 1.0
    assert cc.delta_e_after[in_gamut].max() < 1.5
    corrected = cc.apply_linear(photo)
    assert np.allclose(corrected[in_gamut], printed[in_gamut], atol=0.02)


def test_apply_to_an_image(spec, warm_cast):
    photo = np.clip(spec.reference_rgb_linear, 0, 1) @ warm_cast.T
    cc = fit_colour_correction(photo, spec, method="linear")
    img = (linear_to_srgb(photo.reshape(4, 6, 3)) * 255).round().astype(np.uint8)
    out = cc.apply(img)
    assert out.dtype == np.float32 and out.shape == (4, 6, 3)
    assert 0 <= out.min() and out.max() <= 1
    target = linear_to_srgb(np.clip(spec.reference_rgb_linear, 0, 1)).reshape(4, 6, 3)
    assert np.abs(out - target).mean() < 0.02


def test_unusable_patches_are_left_out_and_too_few_raise(spec):
    photo = spec.reference_rgb_linear * 0.5
    usable = np.ones(24, bool)
    usable[:5] = False
    cc = fit_colour_correction(photo, spec, usable=usable)
    assert cc.used.sum() == 19 and np.isnan(cc.delta_e_loo[:5]).all()
    assert np.isfinite(cc.delta_e_after[:5]).all()  # still reported, just not fitted
    with pytest.raises(ColourFitError, match="only 2 usable patches"):
        fit_colour_correction(photo, spec, usable=np.arange(24) < 2)
    with pytest.raises(ColourFitError, match="unknown colour correction method 'cubic'"):
        fit_colour_correction(photo, spec, method="cubic")


def _few(spec, idx):
    return dataclasses.replace(spec, patches=tuple(spec.patches[i] for i in idx))


def test_supported_method_follows_the_patches_the_sticker_has(spec):
    assert supported_method(spec, "root-polynomial", 2) == ("root-polynomial", 2)
    assert supported_method(spec, "linear") == ("linear", 1)
    # Five patches cannot determine 6 root-polynomial terms: a 3x3 matrix.
    assert supported_method(_few(spec, [0, 6, 12, 13, 14]), "root-polynomial") == ("linear", 1)
    # Red, green, blue determine a matrix; three greys do not (dependent colours).
    assert supported_method(_few(spec, [12, 13, 14]), "linear") == ("linear", 1)
    assert supported_method(_few(spec, [19, 20, 21]), "linear") == ("diagonal", 1)
    assert supported_method(_few(spec, [0, 18]), "root-polynomial") == ("diagonal", 1)
    assert supported_method(_few(spec, []), "linear") == ("none", 1)


def test_per_channel_gains_from_two_patches_remove_a_white_balance_cast(spec):
    two = _few(spec, [18, 21])  # white 9.5 and neutral 5
    gains = np.array([1.3, 1.0, 0.55])
    photo = np.clip(two.reference_rgb_linear, 0, 1) * gains
    cc = fit_colour_correction(photo, two, method="diagonal")
    assert cc.method == "diagonal" and cc.matrix.shape == (3, 3)
    assert np.allclose(np.diag(cc.matrix), 1 / gains, rtol=1e-3)
    assert cc.mean_before > 5 and cc.mean_after < 0.3
    assert np.isfinite(cc.delta_e_loo).all()  # each patch predicted from the other
    one = _few(spec, [18])
    cc1 = fit_colour_correction(photo[:1], one, method="diagonal")
    assert cc1.mean_after < 0.3 and np.isnan(cc1.delta_e_loo).all()
