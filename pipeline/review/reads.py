"""Reads: an assessor's estimate, verdict, reason, comment and optional corrected mask.

Every read is a new row (``review_reads``) with the assessor and UTC time; changing a read adds
a new version (``version`` counts per task) and nothing is ever updated or deleted, so the table
is its own audit trail. A corrected mask is a 0/1/2 label PNG at the review picture's
resolution, ``review/corrections/<task>-v<version>.png``, and names the result it corrects
(``result_id``): usable later as training data (upscale with nearest neighbour to the full
mask's size).
"""

from __future__ import annotations

import csv
import io
import math
import sqlite3
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np

from pipeline.review.errors import ReadError
from pipeline.review.images import encode_labels_png
from pipeline.stages import atomic_write_bytes
from pipeline.store import Store, utc_now

__all__ = ["VERDICTS", "REASONS", "ReadInput", "Read", "PhotoView", "TaskView", "photo_view",
           "task_view", "save_read",
           "latest_read", "my_reads", "export_reads", "reads_csv", "READ_COLUMNS"]

#: Verdicts on the overlay.
VERDICTS = ("accept", "needs_correction", "unassessable")
#: Reasons a photo is unassessable (or needs correction): code -> label.
REASONS = {
    "blurred": "Blurred or out of focus",
    "lighting": "Glare, shadow or poor lighting",
    "not_visible": "Donor site not fully visible",
    "no_scale": "Sticker missing or unreadable",
    "covered": "Dressing or object covers the site",
    "other": "Other (say why in the comment)",
}
#: Columns of ``donorsite review export`` (the analysts' contract), in order.
READ_COLUMNS = ("read_id", "photo_id", "assessor", "version", "estimate_percent", "verdict",
                "reason", "comment", "corrected_mask_file", "is_repeat", "created_utc",
                "task_code", "result_id")
_MAX_COMMENT = 2000


@dataclass(frozen=True)
class ReadInput:
    """A submitted read, validated on construction.

    Examples
    --------
    >>> ReadInput(estimate_percent=42, verdict="accept").estimate_percent
    42.0
    """

    estimate_percent: float | None
    verdict: str
    reason: str | None = None
    comment: str | None = None

    def __post_init__(self) -> None:
        if self.verdict not in VERDICTS:
            raise ReadError(f"verdict must be one of {VERDICTS}, got {self.verdict!r}")
        e = self.estimate_percent
        if e is None or e == "":
            if self.verdict != "unassessable":
                raise ReadError("an estimate of % epithelialized (0-100) is required")
            object.__setattr__(self, "estimate_percent", None)
        else:
            try:
                e = float(e)
            except (TypeError, ValueError):
                raise ReadError(f"estimate must be a number in [0, 100], got {e!r}") from None
            if not math.isfinite(e) or not 0.0 <= e <= 100.0:
                raise ReadError(f"estimate must be a number in [0, 100], got {e!r}")
            object.__setattr__(self, "estimate_percent", e)
        reason = self.reason or None
        if reason is not None and reason not in REASONS:
            raise ReadError(f"reason must be one of {tuple(REASONS)}, got {reason!r}")
        if self.verdict == "unassessable" and reason is None:
            raise ReadError("an unassessable photo needs a reason")
        object.__setattr__(self, "reason", reason)
        comment = (self.comment or "").strip() or None
        if comment is not None and len(comment) > _MAX_COMMENT:
            raise ReadError(f"comment is longer than {_MAX_COMMENT} characters")
        if reason == "other" and comment is None:
            raise ReadError("reason 'other' needs a comment")
        object.__setattr__(self, "comment", comment)


@dataclass(frozen=True)
class Read:
    """One stored read version (a row of ``review_reads``)."""

    read_id: int
    photo_id: str
    assessor: str
    version: int
    estimate_percent: float | None
    verdict: str
    reason: str | None
    comment: str | None
    corrected_mask_file: str | None
    is_repeat: int
    created_utc: str
    task_code: str
    result_id: int | None

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> Read:
        return cls(**{f.name: row[f.name] for f in fields(cls)})


@dataclass(frozen=True)
class PhotoView:
    """What a viewer needs about a photo's current result (server-side only; templates get
    opaque URLs). ``visit_day`` is None unless the study shows it."""

    photo_id: str
    result_id: int
    mask_file: str
    overlay_file: str
    mm_per_px: float | None
    full_width: int | None
    visit_day: int | None
    full_height: int | None = None
    calibration_record: str | None = None


@dataclass(frozen=True)
class TaskView:
    """One assessor's task: its code, its place in the queue, and the photo."""

    task_code: str
    position: int
    photo: PhotoView


_PHOTO_SQL = """
SELECT p.photo_id, r.result_id, s.mask_file, s.overlay_file, c.mm_per_px,
       p.width AS full_width, v.visit_day, p.height AS full_height,
       c.record_json AS calibration_record
FROM photos p
JOIN visits v ON v.visit_id = p.visit_id
JOIN results r ON r.photo_id = p.photo_id AND r.version = (
    SELECT MAX(version) FROM results q WHERE q.photo_id = p.photo_id AND q.status = 'ok')
JOIN segmentations s ON s.result_id = r.result_id
LEFT JOIN calibrations c ON c.result_id = r.result_id
WHERE p.photo_id = ?
"""


def photo_view(conn: sqlite3.Connection, photo_id: str, *,
               show_visit_day: bool) -> PhotoView | None:
    """The photo's newest successful result, or None."""
    row = conn.execute(_PHOTO_SQL, (photo_id,)).fetchone()
    if row is None:
        return None
    values = dict(row)
    if not show_visit_day:
        values["visit_day"] = None
    return PhotoView(**values)


def task_view(conn: sqlite3.Connection, assessor: str, task_code: str, *,
              show_visit_day: bool) -> TaskView | None:
    """The assessor's own task, or None (someone else's, unknown, or nothing to show)."""
    row = conn.execute("SELECT photo_id, position FROM review_tasks WHERE task_code=? AND "
                       "assessor=?", (task_code, assessor)).fetchone()
    if row is None:
        return None
    photo = photo_view(conn, row["photo_id"], show_visit_day=show_visit_day)
    return None if photo is None else TaskView(task_code, row["position"], photo)


def _read_sql(where: str) -> str:
    return f"SELECT {', '.join(READ_COLUMNS)} FROM review_reads WHERE {where}"


def latest_read(conn: sqlite3.Connection, assessor: str, task_code: str) -> Read | None:
    """The newest version of the assessor's read of a task."""
    row = conn.execute(_read_sql("task_code=? AND assessor=? ORDER BY version DESC LIMIT 1"),
                       (task_code, assessor)).fetchone()
    return Read.from_row(row) if row else None


def save_read(store: Store, *, assessor: str, task_code: str, read: ReadInput,
              corrected_labels: np.ndarray | None, out_dir: Path) -> Read:
    """Store a new version of the assessor's read of ``task_code`` (one transaction).

    Raises
    ------
    ReadError
        The task is not this assessor's.
    """
    mask_path: Path | None = None
    try:
        with store.transaction() as c:
            view = task_view(c, assessor, task_code, show_visit_day=False)
            if view is None:
                raise ReadError("no such task in your queue")
            task = c.execute("SELECT is_repeat FROM review_tasks WHERE task_code=?",
                             (task_code,)).fetchone()
            version = c.execute("SELECT COALESCE(MAX(version), 0) + 1 FROM review_reads "
                                "WHERE task_code=?", (task_code,)).fetchone()[0]
            mask_rel = None
            if corrected_labels is not None:
                mask_rel = f"review/corrections/{task_code}-v{version}.png"
                mask_path = out_dir / mask_rel
                atomic_write_bytes(mask_path, encode_labels_png(corrected_labels))
            cur = c.execute(
                "INSERT INTO review_reads (task_code, photo_id, assessor, version, "
                "estimate_percent, verdict, reason, comment, corrected_mask_file, is_repeat, "
                "result_id, created_utc) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                (task_code, view.photo.photo_id, assessor, version, read.estimate_percent,
                 read.verdict, read.reason, read.comment, mask_rel, task["is_repeat"],
                 view.photo.result_id, utc_now()))
            row = c.execute(_read_sql("read_id=?"), (cur.lastrowid,)).fetchone()
    except BaseException:
        if mask_path is not None:
            mask_path.unlink(missing_ok=True)
        raise
    return Read.from_row(row)


@dataclass(frozen=True)
class MyRead:
    """A line of an assessor's own list of reads."""

    task_code: str
    position: int
    versions: int
    latest: Read


def my_reads(conn: sqlite3.Connection, assessor: str) -> list[MyRead]:
    """The assessor's read tasks in queue order, with their newest version."""
    rows = conn.execute(
        f"SELECT t.position, n.versions, r.* FROM ({_read_sql('assessor=?')}) r "
        "JOIN review_tasks t USING (task_code) "
        "JOIN (SELECT task_code, MAX(version) AS top, COUNT(*) AS versions FROM review_reads "
        "      GROUP BY task_code) n ON n.task_code = r.task_code AND n.top = r.version "
        "ORDER BY t.position", (assessor,)).fetchall()
    return [MyRead(r["task_code"], r["position"], r["versions"], Read.from_row(r))
            for r in rows]


def reads_csv(conn: sqlite3.Connection) -> tuple[bytes, int]:
    """Every version of every read as CSV bytes (columns :data:`READ_COLUMNS`), and the
    number of rows."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(READ_COLUMNS)
    n = 0
    for row in conn.execute(_read_sql("1 ORDER BY read_id")):
        writer.writerow(["" if row[k] is None else row[k] for k in READ_COLUMNS])
        n += 1
    return buf.getvalue().encode(), n


def export_reads(conn: sqlite3.Connection, path: Path) -> int:
    """Write :func:`reads_csv` to ``path`` atomically. Returns the number of rows."""
    data, n = reads_csv(conn)
    atomic_write_bytes(Path(path), data)
    return n
