"""Simulated assessors for a synthetic study: truth masks written as corrected reads.

For demonstrating and testing the corrections loop (issue 19) only: the reads go through
the review app's own functions (:func:`pipeline.review.accounts.add_user`,
:func:`pipeline.review.queue.build_queue`, :func:`pipeline.review.reads.save_read`), the
corrected mask at the review picture's size as the browser would send it.
"""

from __future__ import annotations

import csv
import secrets
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from pipeline.corrections import CorrectionsError
from pipeline.store import Store

__all__ = ["simulate_corrected_reads", "truth_by_photo"]


def truth_by_photo(store: Store, study: Path) -> dict[str, tuple[Path, float, str]]:
    """``{photo_id: (truth mask, true healed %, subject)}`` for a synthetic study's photos."""
    with open(study / "truth" / "photos.csv", newline="") as f:
        rows = {r["file"]: r for r in csv.DictReader(f)}
    out = {}
    for r in store.current_results():
        row = rows.get(r["source_name"])
        if row is not None and Path(r["manifest"]).parent.resolve() == study.resolve():
            out[r["photo_id"]] = (study / row["mask_file"], float(row["healed_percent"]),
                                  r["subject_id"])
    return out


def simulate_corrected_reads(store: Store, study: str | Path, photo_ids: Sequence[str], *,
                             out_dir: Path, assessor: str = "sim-assessor") -> int:
    """Write each photo's truth mask as ``assessor``'s corrected read; returns the count.

    A queue with one read per photo and no repeats is built when the assessor has none.
    """
    from argon2 import PasswordHasher

    from pipeline.review.accounts import add_user
    from pipeline.review.images import picture_size, review_picture
    from pipeline.review.queue import build_queue
    from pipeline.review.reads import ReadInput, save_read
    from pipeline.review.settings import StudyReviewSettings

    study = Path(study)
    truth = truth_by_photo(store, study)
    missing = [p for p in photo_ids if p not in truth]
    if missing:
        raise CorrectionsError(f"{study}: no truth for photo(s) {missing[:3]}")
    conn = store.conn
    if conn.execute("SELECT 1 FROM review_users WHERE name=?", (assessor,)).fetchone() is None:
        with store.transaction() as c:
            add_user(c, assessor, role="assessor", must_change=False,
                     hasher=PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1),
                     password=secrets.token_urlsafe(16))
    if conn.execute("SELECT 1 FROM review_tasks WHERE assessor=?", (assessor,)).fetchone() \
            is None:
        build_queue(store, settings=StudyReviewSettings(reads_per_photo=1, repeat_fraction=0),
                    created_by="simulation")
    n = 0
    for pid in photo_ids:
        row = conn.execute("SELECT t.task_code, s.overlay_file FROM review_tasks t "
                           "JOIN results r ON r.photo_id = t.photo_id "
                           "JOIN segmentations s ON s.result_id = r.result_id "
                           "WHERE t.assessor=? AND t.photo_id=? AND t.is_repeat=0 "
                           "ORDER BY r.version DESC LIMIT 1", (assessor, pid)).fetchone()
        if row is None:
            raise CorrectionsError(f"photo {pid} has no task for {assessor}")
        mask_path, healed, _ = truth[pid]
        labels = cv2.imread(str(mask_path), cv2.IMREAD_UNCHANGED)
        if labels is None:
            raise CorrectionsError(f"{mask_path}: truth mask unreadable")
        w, h = picture_size(review_picture(out_dir, row["overlay_file"])[0])
        small = cv2.resize(labels, (w, h), interpolation=cv2.INTER_NEAREST).astype(np.uint8)
        save_read(store, assessor=assessor, task_code=row["task_code"],
                  read=ReadInput(estimate_percent=round(healed, 1), verdict="needs_correction"),
                  corrected_labels=small, out_dir=out_dir)
        n += 1
    return n
