"""Adjudication: photos whose independent reads disagree go to the coordinator.

A photo needs adjudication when at least two assessors have read it (hidden repeats are not
counted: they measure intra-rater agreement) and either their estimates differ by more than
the study's threshold (default 10 points) or their verdicts differ. The coordinator's decision
is stored with the read ids it considered; when a read changes later (a new version), the
photo comes back. Decisions are versioned like reads.
"""

from __future__ import annotations

import csv
import io
import json
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.review.reads import READ_COLUMNS, Read, ReadInput
from pipeline.stages import atomic_write_bytes
from pipeline.store import Store, utc_now

__all__ = ["Item", "Decision", "disagreements", "adjudication_items", "get_item",
           "save_decision", "export_decisions", "decisions_csv", "DECISION_COLUMNS"]


@dataclass(frozen=True)
class Decision:
    """A coordinator's adjudication of a photo."""

    adjudication_id: int
    coordinator: str
    version: int
    estimate_percent: float | None
    verdict: str
    comment: str | None
    read_ids: tuple[int, ...]


@dataclass(frozen=True)
class Item:
    """A photo with its independent reads (newest version per task)."""

    item_code: str
    photo_id: str
    reads: tuple[Read, ...]
    why: tuple[str, ...]
    decision: Decision | None

    @property
    def is_open(self) -> bool:
        """Disagreeing and not decided on exactly these read versions."""
        current = tuple(sorted(r.read_id for r in self.reads))
        return bool(self.why) and (self.decision is None or self.decision.read_ids != current)


def disagreements(reads: tuple[Read, ...], *, threshold: float) -> tuple[str, ...]:
    """Why these reads need adjudication (empty when they agree or are fewer than two).

    Examples
    --------
    >>> from pipeline.review.reads import Read
    >>> def r(e, v): return Read(0, "P", "a", 1, e, v, None, None, None, 0, "", "T", 1)
    >>> disagreements((r(40.0, "accept"), r(55.0, "accept")), threshold=10)
    ('estimates differ by 15.0 points',)
    """
    if len(reads) < 2:
        return ()
    why = []
    est = [r.estimate_percent for r in reads if r.estimate_percent is not None]
    if len(est) >= 2 and max(est) - min(est) > threshold:
        why.append(f"estimates differ by {max(est) - min(est):.1f} points")
    if len({r.verdict for r in reads}) > 1:
        why.append("verdicts differ")
    return tuple(why)


_LATEST_SQL = f"""
SELECT {', '.join('r.' + c for c in READ_COLUMNS)} FROM review_reads r
WHERE r.is_repeat = 0 AND r.photo_id = ?
  AND r.version = (SELECT MAX(version) FROM review_reads q WHERE q.task_code = r.task_code)
ORDER BY r.assessor, r.task_code
"""


def _decision(conn: sqlite3.Connection, photo_id: str) -> Decision | None:
    row = conn.execute("SELECT * FROM review_adjudications WHERE photo_id=? ORDER BY version "
                       "DESC LIMIT 1", (photo_id,)).fetchone()
    if row is None:
        return None
    return Decision(row["adjudication_id"], row["coordinator"], row["version"],
                    row["estimate_percent"], row["verdict"], row["comment"],
                    tuple(json.loads(row["read_ids"])))


def _item(conn: sqlite3.Connection, item_code: str, photo_id: str, threshold: float) -> Item:
    reads = tuple(Read.from_row(r) for r in conn.execute(_LATEST_SQL, (photo_id,)))
    return Item(item_code, photo_id, reads, disagreements(reads, threshold=threshold),
                _decision(conn, photo_id))


def adjudication_items(conn: sqlite3.Connection, *, threshold: float,
                       include_closed: bool = False) -> list[Item]:
    """Photos needing adjudication (open first), or also those already decided."""
    items = []
    for row in conn.execute(
            "SELECT i.item_code, i.photo_id FROM review_items i WHERE (SELECT COUNT(DISTINCT "
            "task_code) FROM review_reads r WHERE r.photo_id=i.photo_id AND r.is_repeat=0) >= 2 "
            "ORDER BY i.item_code"):
        item = _item(conn, row["item_code"], row["photo_id"], threshold)
        if item.is_open or (include_closed and item.why):
            items.append(item)
    return sorted(items, key=lambda i: (not i.is_open, i.item_code))


def get_item(conn: sqlite3.Connection, item_code: str, *, threshold: float) -> Item | None:
    """One item by its code (None when unknown)."""
    row = conn.execute("SELECT photo_id FROM review_items WHERE item_code=?",
                       (item_code,)).fetchone()
    return _item(conn, item_code, row[0], threshold) if row else None


def save_decision(store: Store, *, coordinator: str, item_code: str, decision: ReadInput,
                  threshold: float) -> Decision:
    """Store a new version of the decision on an item, naming the reads it considered."""
    with store.transaction() as c:
        item = get_item(c, item_code, threshold=threshold)
        if item is None:
            raise LookupError("no such adjudication item")
        version = c.execute("SELECT COALESCE(MAX(version), 0) + 1 FROM review_adjudications "
                            "WHERE photo_id=?", (item.photo_id,)).fetchone()[0]
        ids = sorted(r.read_id for r in item.reads)
        comment = decision.comment  # the reason is kept apart (review/app.sqlite)
        c.execute("INSERT INTO review_adjudications (photo_id, coordinator, version, "
                  "estimate_percent, verdict, comment, read_ids, created_utc) VALUES "
                  "(?,?,?,?,?,?,?,?)", (item.photo_id, coordinator, version,
                                        decision.estimate_percent, decision.verdict, comment,
                                        json.dumps(ids), utc_now()))
        return _decision(c, item.photo_id)  # type: ignore[return-value]


#: Columns of the adjudication export, in order (the last three from the decision's details).
_STORED_COLUMNS = ("adjudication_id", "photo_id", "coordinator", "version",
                   "estimate_percent", "verdict", "comment", "read_ids", "created_utc")
DECISION_COLUMNS = (*_STORED_COLUMNS, "reason", "adopted_mask", "adopted_mask_file")


def decisions_csv(conn: sqlite3.Connection, details: Mapping[int, Any] | None = None
                  ) -> tuple[bytes, int]:
    """Every version of every decision as CSV bytes, and the number of rows.

    ``details`` maps adjudication ids to :class:`pipeline.review.appdb.DecisionDetails`
    (reason, adopted mask); decisions without details leave those columns empty.
    """
    details = details or {}
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(DECISION_COLUMNS)
    n = 0
    for row in conn.execute(f"SELECT {', '.join(_STORED_COLUMNS)} FROM review_adjudications "
                            "ORDER BY adjudication_id"):
        d = details.get(row["adjudication_id"])
        adopted = mask_file = ""
        if d is not None:
            adopted = d.adopted_mask if d.adopted_read_id is None else \
                f"read {d.adopted_read_id}"
            if d.adopted_read_id is not None:
                got = conn.execute("SELECT corrected_mask_file FROM review_reads WHERE "
                                   "read_id=?", (d.adopted_read_id,)).fetchone()
                mask_file = got[0] if got and got[0] else ""
        writer.writerow([*("" if row[k] is None else row[k] for k in _STORED_COLUMNS),
                         (d.reason or "") if d else "", adopted, mask_file])
        n += 1
    return buf.getvalue().encode(), n


def export_decisions(conn: sqlite3.Connection, path: Path,
                     details: Mapping[int, Any] | None = None) -> int:
    """Write :func:`decisions_csv` to ``path`` atomically. Returns the rows."""
    data, n = decisions_csv(conn, details)
    atomic_write_bytes(Path(path), data)
    return n
