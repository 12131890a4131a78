"""Shared fixtures for the calibration tests: tiny synthetic photos made here."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import calibration
from calibration.sticker import StickerSpec, load_sticker
from calibration.synthetic import render_scene

#: A warm illuminant and a camera's cross-talk, applied in linear light.
WARM_CAST = 0.85 * np.array([[1.05, 0.08, 0.0], [0.04, 0.85, 0.05], [0.0, 0.06, 0.55]])


@pytest.fixture(scope="session")
def spec() -> StickerSpec:
    return load_sticker()


@pytest.fixture(scope="session")
def astro() -> StickerSpec:
    """The second shipped description: an ArUco card of the astrobotany kind (ids 46-49)."""
    return load_sticker(Path(calibration.__file__).parent / "stickers" / "astro-aruco-46.toml")


@pytest.fixture(scope="session")
def warm_cast() -> np.ndarray:
    return WARM_CAST


@pytest.fixture(scope="session")
def good_scene(spec):
    return render_scene(spec, size=(800, 600), px_per_mm=6.0, tilt_deg=20.0,
                        tilt_axis_deg=30.0, rotation_deg=15.0, colour_matrix=WARM_CAST,
                        noise_sigma=0.006, seed=1)
