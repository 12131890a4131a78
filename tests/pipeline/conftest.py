"""Shared fixtures for the pipeline tests: a tiny synthetic study, generated once."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def synth_study(tmp_path_factory) -> Path:
    """4 subjects x 3 visits at 480x360; half the photos stored rotated with EXIF tags."""
    from pipeline.synth import StudyConfig, generate_study

    root = tmp_path_factory.mktemp("synth") / "study"
    cfg = StudyConfig.from_cli(seed=7, subjects=4, days="0,5,21", size="480x360",
                               exif_fraction=0.5)
    generate_study(root, cfg, jobs=1)
    return root
