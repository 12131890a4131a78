"""Deep-zoom tiles made ahead of the assessors (``review build-queue --tiles``)."""

from __future__ import annotations

import json
import re
from pathlib import Path

from pipeline.review.app import create_app
from pipeline.review.prebuild import prebuild_pyramids
from pipeline.review.tiles import tile_path
from pipeline.store import Store
from tests.pipeline.review.reviewkit import (
    cheap_hasher,
    login,
    make_study,
    server_config,
    tasks_of,
)


def _queued(study):
    with Store.open(study.store_path) as s:
        return s.conn.execute(
            "SELECT DISTINCT t.photo_id, r.result_id, p.manifest, p.source_name FROM "
            "review_tasks t JOIN photos p USING (photo_id) JOIN results r ON r.photo_id = "
            "t.photo_id AND r.status = 'ok'").fetchall()


def test_prebuilt_tiles_are_the_ones_the_app_serves(tmp_path):
    study = make_study(tmp_path, originals=True)
    queued = _queued(study)
    seen = []
    with Store.open(study.store_path) as s:
        done, problems = prebuild_pyramids(s.conn, study.out_dir,
                                           on_photo=lambda i, n: seen.append((i, n)))
    assert problems == [] and done == len(queued) > 0
    assert seen[-1] == (len(queued), len(queued))
    for photo_id, result_id, *_ in queued:
        assert tile_path(study.out_dir, photo_id, result_id, 0, 0, 0).is_file()
    # the app serves exactly the prebuilt bytes (no second making)
    app = create_app(server_config(study), hasher=cheap_hasher())
    c = app.test_client()
    login(c, "ann")
    code = tasks_of(study, "ann")[0][0]
    html = c.get(f"/read/{code}").get_data(as_text=True)
    dz = json.loads(re.search(r'id="viewer-config">(.*?)</script>', html, re.S).group(1))
    r = c.get(dz["deepzoom"]["url"].format(level=0, x=0, y=0))
    assert r.status_code == 200
    with Store.open(study.store_path) as s:
        photo_id = s.conn.execute("SELECT photo_id FROM review_tasks WHERE task_code=?",
                                  (code,)).fetchone()[0]
    result_id = next(r_id for p, r_id, *_ in queued if p == photo_id)
    assert r.data == tile_path(study.out_dir, photo_id, result_id, 0, 0, 0).read_bytes()


def test_a_missing_original_is_reported_not_raised(tmp_path):
    study = make_study(tmp_path, originals=True)
    queued = _queued(study)
    photo_id, _, manifest, source = queued[0]
    (Path(manifest).parent / source).unlink()
    with Store.open(study.store_path) as s:
        done, problems = prebuild_pyramids(s.conn, study.out_dir)
    assert done == len(queued) - 1
    assert len(problems) == 1 and problems[0].startswith(photo_id) and "missing" in problems[0]
