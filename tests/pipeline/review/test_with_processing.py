"""The review app over a study really processed by ``process_study`` (tiny untrained model):
the processing outputs the viewer needs (plain review picture, full-resolution mask, the
calibration's mm per pixel) are where the app looks for them. Slow: generation + processing.
"""

from __future__ import annotations

import io
import json
import re

import numpy as np
import pytest
from PIL import Image

pytestmark = pytest.mark.slow


def test_review_over_a_processed_study(tmp_path):
    from models.config import ModelConfig
    from models.factory import build_model
    from models.registry import save_model
    from pipeline.config import Settings
    from pipeline.process import process_study
    from pipeline.review.accounts import add_user
    from pipeline.review.app import create_app
    from pipeline.review.queue import build_queue
    from pipeline.review.settings import ServerConfig, StudyReviewSettings
    from pipeline.store import Store
    from pipeline.synth import StudyConfig, generate_study
    from tests.pipeline.review.reviewkit import CHEAP, cheap_hasher, login

    cfg = ModelConfig(encoder="tu-resnet10t", encoder_depth=3, decoder_channels=(16, 8, 8),
                      tile_size=64, px_per_mm=1.0)
    model = save_model(build_model(cfg), cfg, "tiny", weights_dir=tmp_path / "weights")
    study = tmp_path / "study"
    generate_study(study, StudyConfig.from_cli(seed=21, subjects=2, days="0,7",
                                               photos_per_visit=1, size="800x600"),
                   jobs=1, force=False, progress=False)
    settings = Settings(out_dir=tmp_path / "out", model=str(model), jobs=1, device="cpu")
    summary = process_study(study, settings, progress=False)
    assert summary.processed >= 2
    with Store.open(settings.store_path) as s:
        ok = [r for r in s.current_results() if r["status"] == "ok"]
        assert ok
        for r in ok:
            assert (settings.out_dir / "review" / (r["overlay_file"].split("/")[-1])).is_file()
        with s.transaction() as c:
            for n in ("ann", "bob"):
                add_user(c, n, role="assessor", hasher=cheap_hasher(),
                         password=f"pw-{n}-0123456789", must_change=False)
        build_queue(s, settings=StudyReviewSettings(), created_by="t")
        code = s.conn.execute("SELECT task_code FROM review_tasks WHERE assessor='ann' "
                              "ORDER BY position").fetchone()[0]
        full = s.conn.execute("SELECT p.width FROM review_tasks t JOIN photos p USING "
                              "(photo_id) WHERE task_code=?", (code,)).fetchone()[0]

    app = create_app(ServerConfig(out_dir=settings.out_dir, **CHEAP), hasher=cheap_hasher())
    c = app.test_client()
    login(c, "ann")
    page = c.get(f"/read/{code}").get_data(as_text=True)
    assert "already has the classes drawn in" not in page  # the plain picture exists
    photo = Image.open(io.BytesIO(c.get(f"/read/{code}/photo.jpg").data))
    mask = Image.open(io.BytesIO(c.get(f"/read/{code}/mask.png").data))
    assert photo.size == mask.size and set(np.unique(np.asarray(mask))) <= {0, 100, 200}
    cfg = json.loads(re.search(r'id="viewer-config">(.*?)</script>', page, re.S).group(1))
    assert cfg["mm_per_px"] > 0 and cfg["width"] == photo.size[0] and full >= photo.size[0]
