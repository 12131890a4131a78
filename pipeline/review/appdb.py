"""The review app's own small database, ``<out>/review/app.sqlite``, beside the study store.

It holds what only the web app needs and what is not study data, so the study store's
schema stays untouched:

- ``secrets``: the key that makes opaque URL codes (:mod:`pipeline.review.opaque`), made
  once with :func:`secrets.token_bytes` and never shown.
- ``decision_details``: for each adjudication decision (``review_adjudications`` in the
  study store), the mask it adopts (the model's, one read's correction, or none) and its
  reason, kept apart from the comment.
- ``drafts``: an assessor's unsaved work on a task (form fields as JSON, the edited mask as a
  grey-coded PNG), autosaved by the viewer and offered again on return; one row per
  (assessor, task), replaced by each autosave and deleted when the read is saved. A draft is
  never shown to anyone but its assessor.

The file has its own ``user_version`` migrations, like the study store.
"""

from __future__ import annotations

import json
import secrets
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.review.errors import DraftError, ReviewError
from pipeline.store import utc_now
from pipeline.store_schema import split_sql

__all__ = ["AppDB", "Draft", "DecisionDetails", "APP_DB_NAME", "MAX_DRAFT_BYTES"]

APP_DB_NAME = "review/app.sqlite"
#: Largest draft (form JSON plus mask PNG) accepted, in bytes.
MAX_DRAFT_BYTES = 6 * 1024 * 1024
_MIGRATIONS = [
    """
    CREATE TABLE secrets (name TEXT PRIMARY KEY, value BLOB NOT NULL, created_utc TEXT NOT NULL);
    CREATE TABLE drafts (
        assessor TEXT NOT NULL, task_code TEXT NOT NULL,
        form TEXT NOT NULL, mask_png BLOB, updated_utc TEXT NOT NULL,
        PRIMARY KEY (assessor, task_code));
    """,
    # 2: what an adjudication decision adopts, and its reason (beside review_adjudications)
    """
    CREATE TABLE decision_details (
        adjudication_id INTEGER PRIMARY KEY,
        adopted_mask TEXT NOT NULL CHECK (adopted_mask IN ('model', 'read', 'none')),
        adopted_read_id INTEGER, reason TEXT, created_utc TEXT NOT NULL);
    CREATE TRIGGER decision_details_no_update BEFORE UPDATE ON decision_details
    BEGIN SELECT RAISE(ABORT, 'decision_details is append-only'); END;
    """,
]


@dataclass(frozen=True)
class Draft:
    """An assessor's unsaved work on one task."""

    form: dict[str, Any]
    mask_png: bytes | None
    updated_utc: str


@dataclass(frozen=True)
class DecisionDetails:
    """What an adjudication decision adopts (``model``, ``read`` with its id, or ``none``)
    and its reason."""

    adopted_mask: str
    adopted_read_id: int | None
    reason: str | None


class AppDB:
    """The review app's database; open with :meth:`AppDB.open`, close with :meth:`close`."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    @classmethod
    def open(cls, out_dir: Path) -> AppDB:
        path = Path(out_dir) / APP_DB_NAME
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            conn = sqlite3.connect(path, timeout=30.0, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            have = int(conn.execute("PRAGMA user_version").fetchone()[0])
            if have > len(_MIGRATIONS):
                raise ReviewError(f"{path}: made by a newer version (schema {have})")
            for n in range(have, len(_MIGRATIONS)):
                conn.execute("BEGIN IMMEDIATE")
                try:
                    if int(conn.execute("PRAGMA user_version").fetchone()[0]) == n:
                        for statement in split_sql(_MIGRATIONS[n]):
                            conn.execute(statement)
                        conn.execute(f"PRAGMA user_version={n + 1}")
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
                conn.execute("COMMIT")
        except sqlite3.DatabaseError as exc:
            raise ReviewError(f"{path}: not a usable review app database ({exc})") from exc
        return cls(conn)

    def close(self) -> None:
        self.conn.close()

    # ------------------------------------------------------------------------ secrets
    def secret(self, name: str, n_bytes: int = 32) -> bytes:
        """The named secret, made on first use (kept for the life of the output folder)."""
        self.conn.execute("INSERT OR IGNORE INTO secrets VALUES (?, ?, ?)",
                          (name, secrets.token_bytes(n_bytes), utc_now()))
        return bytes(self.conn.execute("SELECT value FROM secrets WHERE name=?",
                                       (name,)).fetchone()[0])

    # ------------------------------------------------------------------------- drafts
    def save_draft(self, assessor: str, task_code: str, *, form: dict[str, Any],
                   mask_png: bytes | None) -> str:
        """Replace the assessor's draft of a task; returns its UTC time."""
        text = json.dumps(form, sort_keys=True)
        if len(text) + len(mask_png or b"") > MAX_DRAFT_BYTES:
            raise DraftError("the draft is too large")
        now = utc_now()
        self.conn.execute("INSERT INTO drafts VALUES (?,?,?,?,?) ON CONFLICT(assessor, "
                          "task_code) DO UPDATE SET form=excluded.form, "
                          "mask_png=excluded.mask_png, updated_utc=excluded.updated_utc",
                          (assessor, task_code, text, mask_png, now))
        return now

    def draft(self, assessor: str, task_code: str) -> Draft | None:
        row = self.conn.execute("SELECT form, mask_png, updated_utc FROM drafts WHERE "
                                "assessor=? AND task_code=?", (assessor, task_code)).fetchone()
        if row is None:
            return None
        return Draft(json.loads(row[0]), None if row[1] is None else bytes(row[1]), row[2])

    def discard_draft(self, assessor: str, task_code: str) -> None:
        self.conn.execute("DELETE FROM drafts WHERE assessor=? AND task_code=?",
                          (assessor, task_code))

    # ---------------------------------------------------------------- decisions
    def save_decision_details(self, adjudication_id: int, details: DecisionDetails) -> None:
        self.conn.execute("INSERT INTO decision_details VALUES (?,?,?,?,?)",
                          (adjudication_id, details.adopted_mask, details.adopted_read_id,
                           details.reason, utc_now()))

    def decision_details(self) -> dict[int, DecisionDetails]:
        return {r[0]: DecisionDetails(r[1], r[2], r[3]) for r in self.conn.execute(
            "SELECT adjudication_id, adopted_mask, adopted_read_id, reason "
            "FROM decision_details")}
