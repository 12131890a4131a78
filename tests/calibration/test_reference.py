from __future__ import annotations

import colour
import numpy as np
import pytest

from calibration.reference import (
    illuminant_xy,
    lab_d50_to_rgb_linear,
    lab_to_lab_d50,
    srgb_to_lab_d50,
)
from calibration.sticker import load_sticker

CHECKER = colour.CCS_COLOURCHECKERS["ColorChecker24 - After November 2014"]


def _checker() -> tuple[np.ndarray, np.ndarray, list[str]]:
    """colour-science's ColorChecker (after Nov. 2014): L*a*b* D50 and sRGB floats."""
    xyz = colour.xyY_to_XYZ(np.array(list(CHECKER.data.values())))
    lab = colour.XYZ_to_Lab(xyz, CHECKER.illuminant)
    srgb = colour.XYZ_to_sRGB(xyz, illuminant=CHECKER.illuminant,
                              chromatic_adaptation_transform="Bradford")
    return lab, srgb, list(CHECKER.data)


def _de(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.asarray(colour.delta_E(a, b, method="CIE 2000"))


def test_ds_cal_1_references_are_colour_sciences_colorchecker(spec):
    lab, _, _ = _checker()
    assert np.abs(spec.reference_lab_d50 - lab).max() < 0.006  # the table's 2 decimals


def test_srgb_references_round_trip_to_the_colorchecker_lab():
    lab, srgb, _ = _checker()
    inside = np.all((srgb >= 0) & (srgb <= 1), axis=1)
    assert inside.sum() == 23  # cyan lies outside sRGB
    # Floats: the same colour, up to colour-science's D50 white (0.34570, 0.35854) for the
    # chart vs the CIE's (0.3457, 0.3585).
    assert _de(lab[inside], srgb_to_lab_d50(srgb[inside])).max() < 0.01
    # 8-bit: only the quantization (half a code value) remains.
    de8 = _de(lab[inside], srgb_to_lab_d50(np.round(srgb[inside] * 255) / 255))
    assert de8.max() < 0.6 and de8.mean() < 0.25
    # Values truly decoded with the sRGB curve, not taken as linear or gamma 2.2.
    assert _de(lab[inside], srgb_to_lab_d50(srgb[inside] ** 2.2)).mean() > 5


def test_srgb8_references_in_a_description_reach_the_fit_unchanged(tmp_path):
    lab, srgb, names = _checker()
    s8 = np.round(np.clip(srgb, 0, 1) * 255).astype(int)
    rows = ", ".join(f"[{r}, {g}, {b}]" for r, g, b in s8)
    quoted = ", ".join(f'"{n}"' for n in names)
    path = tmp_path / "srgb-card.toml"
    path.write_text(f"""name = "SRGB"
card_width_mm = 100.0
card_height_mm = 60.0
dictionary = "DICT_4X4_50"
marker_size_mm = 8.0
markers = [{{id = 0, x_mm = 1.0, y_mm = 1.0}}, {{id = 1, x_mm = 91.0, y_mm = 1.0}},
           {{id = 2, x_mm = 91.0, y_mm = 51.0}}, {{id = 3, x_mm = 1.0, y_mm = 51.0}}]
[[patch_grids]]
x_mm = 12.0
y_mm = 10.0
rows = 4
columns = 6
width_mm = 10.0
height_mm = 8.0
pitch_x_mm = 12.0
pitch_y_mm = 10.0
names = [{quoted}]
srgb8 = [{rows}]
""")
    spec = load_sticker(path)
    decoded = colour.cctf_decoding(s8 / 255.0, function="sRGB")
    # The fit's linear targets are the decoded sRGB values themselves ...
    assert np.abs(spec.reference_rgb_linear - decoded).max() < 1e-9
    # ... and their L*a*b* D50 is the chart's, within 8-bit quantization (cyan clipped).
    de = _de(lab, spec.reference_lab_d50)
    cyan = names.index("cyan")
    assert np.delete(de, cyan).max() < 0.6 and de[cyan] > 2
    assert spec.patches[0].reference.kind == "srgb8"


def test_lab_under_another_white_is_bradford_adapted_to_d50():
    rgb = np.array([[0.8, 0.3, 0.2], [0.1, 0.5, 0.7], [0.5, 0.5, 0.5]])
    d65 = illuminant_xy("D65")
    lab_d65 = colour.XYZ_to_Lab(colour.sRGB_to_XYZ(rgb), d65)
    # sRGB -> L*a*b* D65 -> (ours) -> L*a*b* D50 equals sRGB -> L*a*b* D50 directly.
    assert _de(lab_to_lab_d50(lab_d65, "D65", "2"), srgb_to_lab_d50(rgb)).max() < 0.02
    # D50 2° values are used as given; a perfect white stays white under any white.
    lab = np.array([37.54, 14.37, 14.92])
    assert lab_to_lab_d50(lab).tolist() == lab.tolist()
    for ill, obs in (("D65", "10"), ("A", "2"), ("FL2", "10")):
        assert np.allclose(lab_to_lab_d50(np.array([100.0, 0, 0]), ill, obs), [100, 0, 0],
                           atol=1e-6)
    # An illuminant A reading of a grey looks orange under D50 only when mis-declared.
    grey_a = np.array([50.0, 0.0, 0.0])
    assert np.allclose(lab_to_lab_d50(grey_a, "A"), grey_a, atol=1e-6)


def test_lab_d50_to_rgb_linear_inverts_srgb_to_lab():
    x = np.array([[0.2, 0.4, 0.6], [0.9, 0.1, 0.3]])
    linear = colour.cctf_decoding(x, function="sRGB")
    # Up to IEC 61966-2-1's rounded (not mutually inverse) 4-decimal matrices.
    back = lab_d50_to_rgb_linear(srgb_to_lab_d50(x))
    assert np.abs(back - linear).max() < 1e-4


def test_unknown_white_is_named():
    with pytest.raises(KeyError, match="D66"):
        illuminant_xy("D66")
    with pytest.raises(KeyError, match="observer '5'"):
        illuminant_xy("D50", "5")
