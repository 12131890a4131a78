"""Make the deep-zoom tiles of every queued photo ahead of the assessors (issue 18).

A tile pyramid of a 4000×3000 photo takes 1.5-3 s of CPU to make (decode, colour-correct,
encode ~200 tiles); made on an assessor's first zoom step it breaks the 200 ms step target.
``donorsite review build-queue`` therefore makes the pyramids of the photos it queued (the
same :func:`~pipeline.review.tiles.ensure_pyramid` the tile route calls, so the files and
the locking are the same; a pyramid already made is kept).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

from pipeline.errors import PipelineError
from pipeline.manifest import safe_join
from pipeline.review.errors import ReviewImageError
from pipeline.review.images import picture_size, review_picture
from pipeline.review.tiles import ensure_pyramid

__all__ = ["prebuild_pyramids"]

_QUEUED_SQL = """
SELECT DISTINCT p.photo_id, p.manifest, p.source_name, p.sha256, r.result_id, s.overlay_file,
       c.record_json
FROM review_tasks t
JOIN photos p ON p.photo_id = t.photo_id
JOIN results r ON r.photo_id = p.photo_id AND r.version = (
    SELECT MAX(version) FROM results q WHERE q.photo_id = p.photo_id AND q.status = 'ok')
JOIN segmentations s ON s.result_id = r.result_id
LEFT JOIN calibrations c ON c.result_id = r.result_id
ORDER BY p.photo_id
"""


def prebuild_pyramids(conn: sqlite3.Connection, out_dir: Path, *,
                      on_photo: Callable[[int, int], None] | None = None
                      ) -> tuple[int, list[str]]:
    """Make the tile pyramid of every photo in the review queue.

    Returns the number of pyramids now present and one message per photo whose original is
    missing or unreadable (those keep the review picture only; nothing is raised).
    """
    rows = conn.execute(_QUEUED_SQL).fetchall()
    done, problems = 0, []
    for i, (photo_id, manifest, source, sha, result_id, overlay, record) in enumerate(rows):
        try:
            original = safe_join(Path(manifest).parent, source, where="the original photo")
            if not original.is_file():
                raise ReviewImageError(f"{original}: the original photo is missing")
            review_w = picture_size(review_picture(out_dir, overlay)[0])[0]
            ensure_pyramid(out_dir, photo_id=photo_id, result_id=result_id,
                           original=original, sha256=sha, record_json=record,
                           review_width=review_w)
            done += 1
        except (ReviewImageError, PipelineError, OSError) as exc:
            problems.append(f"{photo_id}: {exc}")
        if on_photo is not None:
            on_photo(i + 1, len(rows))
    return done, problems
