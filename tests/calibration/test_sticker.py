from __future__ import annotations

import re
from pathlib import Path

import cv2
import numpy as np
import pytest

from calibration.errors import StickerSpecError
from calibration.sticker import (
    ARUCO_DICTIONARIES,
    ARUCO_DICTIONARY_SIZES,
    load_sticker,
    render_sticker,
    sticker_from_dict,
)

SPEC_MD = Path("/work/shared/sticker/SPEC.md")

BASE = """name = "T"
card_width_mm = 60.0
card_height_mm = 40.0
dictionary = "DICT_4X4_50"
marker_size_mm = 8.0
[[markers]]
id = 0
x_mm = 2.0
y_mm = 2.0
[[markers]]
id = 1
x_mm = 50.0
y_mm = 2.0
[[markers]]
id = 2
x_mm = 50.0
y_mm = 30.0
[[markers]]
id = 3
x_mm = 2.0
y_mm = 30.0
"""


def _load(tmp_path: Path, extra: str, base: str = BASE, name: str = "card.toml"):
    path = tmp_path / name
    path.write_text(base + extra)
    return load_sticker(path)


@pytest.mark.skipif(not SPEC_MD.exists(), reason="shared SPEC.md not mounted")
def test_ds_cal_1_matches_its_spec_sheet(spec):
    text = SPEC_MD.read_text()
    assert (spec.card_width_mm, spec.card_height_mm, spec.dictionary) == (70.0, 50.0,
                                                                         "DICT_4X4_50")
    tops = {0: (3.0, 3.0), 1: (59.0, 3.0), 2: (59.0, 39.0), 3: (3.0, 39.0)}
    for m in spec.markers:
        assert (m.x_mm, m.y_mm, m.size_mm, m.rotation_deg) == (*tops[m.id], 8.0, 0)
        assert np.array_equal(m.corners_mm()[0], tops[m.id])  # upright: own TL is TL
    rows = re.findall(r"^\| (\d+) \| (\d),(\d) \| ([^|]+) \| ([-\d.]+) \| ([-\d.]+) \| "
                      r"([-\d.]+) \|$", text, re.M)
    assert len(rows) == 24 == len(spec.patches)
    for (_k, r, c, name, lab_l, lab_a, lab_b), p in zip(rows, spec.patches, strict=True):
        r, c = int(r), int(c)
        assert p.name == name.strip() and p.reference is None
        assert (p.x_mm, p.y_mm, p.width_mm, p.height_mm) == (14.0 + 7 * c, 5.0 + 7 * r, 6.0,
                                                             6.0)
        assert p.lab_d50 == (float(lab_l), float(lab_a), float(lab_b))
    r = spec.ruler
    assert (r.x0_mm, r.x1_mm, r.y_mm, r.direction) == (15.0, 55.0, 44.0, "up")
    assert r.tick_every_mm == (1.0, 5.0, 10.0) and r.tick_lengths_mm == (1.5, 2.5, 3.5)


def test_to_dict_reads_back_to_an_equal_spec(spec, astro):
    for s in (spec, astro):
        assert sticker_from_dict(s.to_dict()) == s
    # DS-CAL-1's provenance record keeps its historical form.
    d = spec.to_dict()
    assert set(d["patches"][0]) == {"name", "x_mm", "y_mm", "size_mm", "lab_d50"}
    assert set(d["markers"][0]) == {"id", "x_mm", "y_mm", "size_mm"}
    assert set(d["ruler"]) == {"x0_mm", "x1_mm", "y_mm", "tick_mm", "tick_lengths_mm"}
    a = astro.to_dict()
    assert a["patches"][0]["srgb8"] == [116, 79, 65] and "lab_d50" not in a["patches"][0]
    assert a["markers"][1]["rotation_deg"] == 90


def test_every_opencv_dictionary_can_be_named():
    names = {n for n in dir(cv2.aruco) if n.startswith("DICT_")}
    assert {n.upper() for n in names} == {n.upper() for n in ARUCO_DICTIONARIES}
    for name, const in ARUCO_DICTIONARIES.items():
        assert getattr(cv2.aruco, name) == const
        d = cv2.aruco.getPredefinedDictionary(const)
        assert d.bytesList.shape[0] == ARUCO_DICTIONARY_SIZES[name]


def test_dictionary_names_are_case_insensitive_and_ids_checked_against_its_size(tmp_path):
    s = _load(tmp_path, "", BASE.replace("DICT_4X4_50", "dict_apriltag_36H11"))
    assert s.dictionary == "DICT_APRILTAG_36h11" and s.aruco_dictionary_id == 20
    base = BASE.replace("DICT_4X4_50", "DICT_APRILTAG_16h5").replace("id = 3", "id = 30")
    with pytest.raises(StickerSpecError, match=r"markers\[3\]\.id'.*30 is outside "
                                               r"DICT_APRILTAG_16h5 \(0\.\.29\)"):
        _load(tmp_path, "", base)


def test_rectangular_patches_grids_and_rotations(tmp_path):
    s = _load(tmp_path, """
[[patches]]
name = "wide"
x_mm = 12.0
y_mm = 2.0
width_mm = 20.0
height_mm = 4.0
lab_d50 = [50, 0, 0]

[[patch_grids]]
x_mm = 12.0
y_mm = 10.0
rows = 2
columns = 3
width_mm = 5.0
height_mm = 8.0
pitch_x_mm = 6.0
pitch_y_mm = 9.0
srgb8 = [[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 255], [128, 128, 128], [0, 0, 0]]
""", BASE.replace("id = 1\n", "id = 1\nrotation_deg = 90\n"))
    assert s.marker(1).rotation_deg == 90
    assert np.array_equal(s.marker(1).corners_mm(), [[58, 2], [58, 10], [50, 10], [50, 2]])
    assert [p.name for p in s.patches] == ["wide", "grid 1 r1 c1", "grid 1 r1 c2",
                                           "grid 1 r1 c3", "grid 1 r2 c1", "grid 1 r2 c2",
                                           "grid 1 r2 c3"]
    wide, g = s.patches[0], s.patches[1:]
    assert (wide.width_mm, wide.height_mm, wide.centre_mm) == (20.0, 4.0, (22.0, 4.0))
    assert [(p.x_mm, p.y_mm) for p in g] == [(12, 10), (18, 10), (24, 10), (12, 19), (18, 19),
                                             (24, 19)]
    assert all((p.width_mm, p.height_mm) == (5.0, 8.0) for p in g)
    assert g[3].lab_d50 == pytest.approx((100.0, 0.0, 0.0), abs=0.02)
    # The raster draws each rectangle at its size.
    img = render_sticker(s, px_per_mm=10)
    red = np.all(np.isclose(img, s.reference_rgb_linear[1].clip(0, 1), atol=1e-6), axis=2)
    ys, xs = np.nonzero(red)
    assert (xs.min(), xs.max() + 1, ys.min(), ys.max() + 1) == (120, 170, 100, 180)


def test_a_sticker_without_patches_is_allowed(tmp_path):
    s = _load(tmp_path, "")
    assert s.patches == () and s.reference_rgb_linear.shape == (0, 3)


@pytest.mark.parametrize("extra, base_edit, field, value", [
    ("", ("marker_size_mm = 8.0", "marker_size_mm = 8.0\nmarker_sise_mm = 8"),
     "marker_sise_mm", "unknown field"),
    ("", ("id = 2\n", "id = 2\nrotation_deg = 45\n"), r"markers\[2\]\.rotation_deg", "45"),
    ("", ("id = 3\n", "id = 1\n"), "markers", r"duplicate marker ids \[1\]"),
    ("", ("DICT_4X4_50", "DICT_4X4_51"), "dictionary", "'DICT_4X4_51'"),
    ('[[patches]]\nx_mm = 20\ny_mm = 10\nsize_mm = 5\nsrgb8 = [10, 20, 256]\n', None,
     r"patches\[0\]\.srgb8", r"\[10, 20, 256\]"),
    ('[[patches]]\nx_mm = 20\ny_mm = 10\nsize_mm = 5\nsrgb8 = [0.1, 0.2, 0.3]\n', None,
     r"patches\[0\]\.srgb8", r"three integers, got \[0\.1, 0\.2, 0\.3\]"),
    ('[[patches]]\nx_mm = 20\ny_mm = 10\nsize_mm = 5\nsrgb = [0.5, 1.5, 0.2]\n', None,
     r"patches\[0\]\.srgb", r"\[0\.5, 1\.5, 0\.2\]"),
    ('[[patches]]\nx_mm = 20\ny_mm = 10\nsize_mm = 5\nlab = [120, 0, 0]\n', None,
     r"patches\[0\]\.lab", "120"),
    ('[[patches]]\nx_mm = 20\ny_mm = 10\nsize_mm = 5\nlab = [50, 0, 0]\nilluminant = "D66"\n',
     None, r"patches\[0\]\.illuminant", "'D66'"),
    ('[[patches]]\nx_mm = 20\ny_mm = 10\nsize_mm = 5\nlab = [50, 0, 0]\nobserver = 5\n',
     None, r"patches\[0\]\.observer", "'5'"),
    ('[[patches]]\nx_mm = 20\ny_mm = 10\nsize_mm = 5\nsrgb8 = [1, 2, 3]\nilluminant = "D65"\n',
     None, r"patches\[0\]\.illuminant", "only 'lab'"),
    ('[[patches]]\nx_mm = 20\ny_mm = 10\nsize_mm = 5\nsrgb8 = [1, 2, 3]\nlab_d50 = [5, 0, 0]\n',
     None, r"patches\[0\]\.lab_d50", r"exactly one.*\['lab_d50', 'srgb8'\]"),
    ('[[patches]]\nx_mm = 20\ny_mm = 10\nsize_mm = 5\nwidth_mm = 6\nlab_d50 = [5, 0, 0]\n',
     None, r"patches\[0\]\.size_mm", "not both"),
    ('[[patches]]\nx_mm = 8\ny_mm = 8\nsize_mm = 5\nlab_d50 = [5, 0, 0]\n', None,
     "patches", "marker 0 and patch 'patch 1' overlap"),
    ('[[patches]]\nx_mm = 58\ny_mm = 20\nwidth_mm = 5\nheight_mm = 2\nlab_d50 = [5, 0, 0]\n',
     None, r"patches\[0\]", r"outside the 60\.0 x 40\.0 mm card \(x=58\.0"),
    ('[[patch_grids]]\nx_mm = 20\ny_mm = 10\nrows = 2\ncolumns = 2\nsize_mm = 4\npitch_mm = 5\n'
     'srgb8 = [[1, 2, 3], [4, 5, 6], [7, 8, 9]]\n', None, r"patch_grids\[0\]\.srgb8",
     "expected 4 colours.*got 3"),
    ('[[patch_grids]]\nx_mm = 20\ny_mm = 10\nrows = 1\ncolumns = 2\nsize_mm = 4\npitch_mm = 3\n'
     'srgb8 = [[1, 2, 3], [4, 5, 6]]\n', None, r"patch_grids\[0\]\.pitch_mm", r"overlap"),
    ('[[patch_grids]]\nx_mm = 20\ny_mm = 10\nrows = 1\ncolumns = 2\nsize_mm = 4\npitch_mm = 5\n'
     'srgb8 = [[1, 2, 3], [4, 5, 300]]\n', None, r"patch_grids\[0\]\.srgb8\[1\]",
     r"\[4, 5, 300\]"),
    ('[ruler]\nx0_mm = 12\nx1_mm = 42\ny_mm = 20\ntick_lengths_mm = [2, 1, 3]\n', None,
     r"ruler\.tick_lengths_mm", r"must increase.*\[2\.0, 1\.0, 3\.0\]"),
    ('[ruler]\nx0_mm = 12\nx1_mm = 42\ny_mm = 20\ntick_every_mm = [2, 5]\n'
     'tick_lengths_mm = [1, 2]\n', None, r"ruler\.tick_every_mm", r"multiple.*\[2\.0, 5\.0\]"),
    ('[ruler]\nx0_mm = 12\nx1_mm = 42\ny_mm = 20\ntick_every_mm = [1, 10]\n', None,
     r"ruler\.tick_lengths_mm", r"one length per tick class \[1\.0, 10\.0\]"),
    ('[ruler]\nx0_mm = 12\nx1_mm = 42\ny_mm = 38\ndirection = "down"\n', None,
     r"ruler\.tick_lengths_mm", "leave the card"),
    ('[ruler]\nx0_mm = 12\nx1_mm = 42\ny_mm = 20\ndirection = "left"\n', None,
     r"ruler\.direction", "'left'"),
])
def test_validation_errors_name_the_file_the_field_and_the_value(tmp_path, extra, base_edit,
                                                                  field, value):
    base = BASE if base_edit is None else BASE.replace(*base_edit, 1)
    with pytest.raises(StickerSpecError) as err:
        _load(tmp_path, extra, base, name="bad-card.toml")
    msg = str(err.value)
    assert "bad-card.toml" in msg
    assert re.search(rf"field '{field}'", msg), msg
    assert re.search(value, msg), msg


def test_an_unreadable_file_is_named(tmp_path):
    with pytest.raises(StickerSpecError, match=r"nope\.toml: cannot read"):
        load_sticker(tmp_path / "nope.toml")
    (tmp_path / "bin.toml").write_bytes(b"\xff\xfe\x00")
    with pytest.raises(StickerSpecError, match=r"bin\.toml: not a UTF-8"):
        load_sticker(tmp_path / "bin.toml")
