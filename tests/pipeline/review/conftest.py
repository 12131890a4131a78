"""Fixtures for the review app's tests (helpers live in reviewkit.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.review.app import create_app
from tests.pipeline.review.reviewkit import Study, cheap_hasher, make_study, server_config


@pytest.fixture
def study(tmp_path: Path) -> Study:
    return make_study(tmp_path)


@pytest.fixture
def app(study: Study):
    app = create_app(server_config(study), hasher=cheap_hasher())
    app.config["TESTING"] = True
    return app
