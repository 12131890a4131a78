"""Model-level real-tissue and no-site checks (models.realcheck)."""

from __future__ import annotations

import numpy as np
import pytest

from models.config import ModelConfig
from models.fuseg import fuseg_split, prepare_fuseg
from models.realcheck import EPI_FRAME_LIMIT, score_no_site_scenes, score_real_raw

from .conftest import make_label_folder


class ColourRule:
    """A fake predictor: red pixels are raw; with ``epi_band`` rows also epithelialized."""

    def __init__(self, *, epi_rows: int = 0, card: dict | None = None) -> None:
        self.config = ModelConfig(encoder="tu-resnet10t", encoder_depth=3,
                                  decoder_channels=(16, 8, 8), tile_size=64, px_per_mm=3.0)
        self.epi_rows = epi_rows
        self.card = card or {}

    def predict_proba(self, img: np.ndarray) -> np.ndarray:
        red = (img[..., 0] > 0.6) & (img[..., 1] < 0.4)
        p = np.zeros((3, *img.shape[:2]), np.float32)
        p[2][red] = 1.0
        p[0][~red] = 1.0
        if self.epi_rows:
            p[:, : self.epi_rows] = np.array([0.0, 1.0, 0.0])[:, None, None]
        return p


@pytest.fixture
def held_out_folder(tmp_path):
    src = make_label_folder(tmp_path / "fuseg", n=40, size=96)
    stems = [p.stem for p in (src / "images").glob("*.jpg")]
    assert any(fuseg_split(s) == "held_out" for s in stems)
    return prepare_fuseg(src, tmp_path / "ho", config=ColourRule().config, part="held_out",
                         copies=1)


def test_held_out_part_takes_only_held_out_photos(held_out_folder):
    names = {p.stem.split("_")[0].removeprefix("fuseg")
             for p in (held_out_folder / "images").glob("*.png")}
    assert names and all(fuseg_split(s) == "held_out" for s in names)


def test_a_perfect_raw_rule_scores_high_and_calls_nothing_epithelialized(held_out_folder):
    res = score_real_raw(held_out_folder, ColourRule())
    assert res["n_photos"] == len(list((held_out_folder / "images").glob("*.png")))
    assert res["dice_raw_pooled"] > 0.8  # resampling blurs the disc edge a little
    assert res["n_epi_over_limit"] == 0 and res["healed_percent_median"] == 0.0


def test_epithelialized_frame_share_over_the_limit_is_counted_and_unflagged(held_out_folder):
    rows = 10  # of ~30 working-image rows: far above 1 % of the frame
    res = score_real_raw(held_out_folder, ColourRule(epi_rows=rows))
    assert res["n_epi_over_limit"] == res["n_photos"]
    assert res["n_epi_over_limit_unflagged"] == res["n_photos"]  # no qc in the card
    assert all(r["epi_frame_share"] > EPI_FRAME_LIMIT for r in res["photos"])
    assert res["healed_percent_median"] > 50


def test_no_site_scenes_are_caught_when_nothing_is_found_and_missed_otherwise():
    quiet = score_no_site_scenes(ColourRule(), scenes=("camera", "moon"), scales=(0.3,))
    assert quiet["n_photos"] == 2 and quiet["caught_share"] == 1.0  # grey: no red, no site
    busy = score_no_site_scenes(ColourRule(epi_rows=20), scenes=("camera",), scales=(0.3,))
    # a confident, unflagged "site" on a no-site scene is a miss
    assert busy["caught_share"] == 0.0 and busy["photos"][0]["site_share"] > 0
