"""Moving unread work between assessors: reassigning, deactivating an account, and giving an
assessor who joins mid-study a fair share (issue 18).

Only *unread* first showings move (a read task never changes hands: its reads name it). A
moved task gets a new opaque code and goes to the end of the new assessor's queue; the old
assessor's unread hidden repeat of the same photo is withdrawn with it (a repeat without its
original would be a first read mislabelled as a repeat). A photo never goes to an assessor
who already has it. Each move is recorded as a queue build (``review_queue_builds``) with
zero new tasks, naming who did it, so the history of the queue stays explained.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from pipeline.review.errors import QueueError
from pipeline.review.queue import new_code
from pipeline.store import Store, utc_now

__all__ = ["Moved", "reassign_unread", "deactivate", "share_with_newcomers", "unread_load"]


@dataclass(frozen=True)
class Moved:
    """What a reassignment did: tasks moved per target, and tasks that could not move."""

    moved: tuple[tuple[str, int], ...]
    stuck: int

    @property
    def n_moved(self) -> int:
        return sum(n for _, n in self.moved)


def _assessors(c: sqlite3.Connection) -> list[str]:
    return [r[0] for r in c.execute("SELECT name FROM review_users WHERE role='assessor' AND "
                                    "active=1 ORDER BY name")]


def unread_load(c: sqlite3.Connection, assessor: str) -> int:
    """Unread tasks in an assessor's queue."""
    return c.execute("SELECT COUNT(*) FROM review_tasks t WHERE assessor=? AND NOT EXISTS "
                     "(SELECT 1 FROM review_reads r WHERE r.task_code=t.task_code)",
                     (assessor,)).fetchone()[0]


def _movable(c: sqlite3.Connection, source: str) -> list[sqlite3.Row]:
    """The source's unread first showings, last in the queue first (least likely started)."""
    return c.execute(
        "SELECT task_code, photo_id FROM review_tasks t WHERE assessor=? AND is_repeat=0 AND "
        "NOT EXISTS (SELECT 1 FROM review_reads r WHERE r.photo_id=t.photo_id AND "
        "r.assessor=t.assessor) ORDER BY position DESC", (source,)).fetchall()


def _move(c: sqlite3.Connection, task_code: str, photo_id: str, source: str, target: str,
          build_id: int) -> None:
    c.execute("DELETE FROM review_tasks WHERE assessor=? AND photo_id=? AND is_repeat=1 AND "
              "NOT EXISTS (SELECT 1 FROM review_reads r WHERE "
              "r.task_code=review_tasks.task_code)", (source, photo_id))
    c.execute("DELETE FROM review_tasks WHERE task_code=?", (task_code,))
    pos = c.execute("SELECT COALESCE(MAX(position), 0) + 1 FROM review_tasks WHERE "
                    "assessor=?", (target,)).fetchone()[0]
    c.execute("INSERT INTO review_tasks VALUES (?,?,?,?,0,?,?)",
              (new_code("T"), target, photo_id, pos, build_id, utc_now()))


def _build_row(c: sqlite3.Connection, created_by: str) -> int:
    cur = c.execute("INSERT INTO review_queue_builds (seed, reads_per_photo, repeat_fraction, "
                    "n_tasks, created_by, created_utc) VALUES (0, 0, 0, 0, ?, ?)",
                    (created_by, utc_now()))
    return int(cur.lastrowid)


def _reassign(c: sqlite3.Connection, source: str, targets: list[str], *, limit: int | None,
              created_by: str) -> Moved:
    if not targets:
        raise QueueError("no other active assessor to take the tasks")
    build_id = _build_row(c, created_by)
    load = {t: unread_load(c, t) for t in targets}
    has = {t: {r[0] for r in c.execute("SELECT photo_id FROM review_tasks WHERE assessor=?",
                                       (t,))} for t in targets}
    moved = dict.fromkeys(targets, 0)
    stuck = 0
    for row in _movable(c, source):
        if limit is not None and sum(moved.values()) >= limit:
            break
        free = sorted((t for t in targets if row["photo_id"] not in has[t]),
                      key=lambda t: (load[t], t))
        if not free:
            stuck += 1
            continue
        t = free[0]
        _move(c, row["task_code"], row["photo_id"], source, t, build_id)
        has[t].add(row["photo_id"])
        load[t] += 1
        moved[t] += 1
    return Moved(tuple((t, n) for t, n in moved.items() if n), stuck)


def reassign_unread(store: Store, *, source: str, target: str | None = None,
                    limit: int | None = None, created_by: str) -> Moved:
    """Move the source's unread tasks to ``target`` (or to the least loaded other active
    assessors)."""
    with store.transaction() as c:
        others = [a for a in _assessors(c) if a != source]
        if target is not None:
            if target not in others:
                raise QueueError(f"{target!r} is not another active assessor")
            others = [target]
        return _reassign(c, source, others, limit=limit, created_by=created_by)


def deactivate(store: Store, name: str, *, created_by: str) -> Moved:
    """Deactivate an account (its reads are kept; it can no longer log in) and hand its
    unread tasks (if an assessor) to the others."""
    with store.transaction() as c:
        row = c.execute("SELECT role, active FROM review_users WHERE name=?", (name,)).fetchone()
        if row is None:
            raise QueueError(f"no account {name!r}")
        c.execute("UPDATE review_users SET active=0 WHERE name=?", (name,))
        c.execute("UPDATE review_sessions SET revoked_utc=? WHERE revoked_utc IS NULL AND "
                  "user_id=(SELECT user_id FROM review_users WHERE name=?)", (utc_now(), name))
        if row["role"] != "assessor":
            return Moved((), 0)
        others = _assessors(c)
        if not others:
            return Moved((), len(_movable(c, name)))
        return _reassign(c, name, others, limit=None, created_by=created_by)


def share_with_newcomers(c: sqlite3.Connection, *, created_by: str) -> Moved:
    """Give each active assessor with no tasks yet a fair share (the mean unread load) of
    the others' unread first showings, taken from the most loaded first (call inside a
    transaction; used by ``build_queue``)."""
    assessors = _assessors(c)
    newcomers = [a for a in assessors if not c.execute(
        "SELECT 1 FROM review_tasks WHERE assessor=? LIMIT 1", (a,)).fetchone()]
    if not newcomers or len(newcomers) == len(assessors):
        return Moved((), 0)
    load = {a: unread_load(c, a) for a in assessors}
    share = sum(load.values()) // len(assessors)
    has: dict[str, set[str]] = {n: set() for n in newcomers}
    moved = dict.fromkeys(newcomers, 0)
    build_id: int | None = None
    for n in newcomers:
        while load[n] < share:
            sources = sorted((a for a in assessors if a not in newcomers and load[a] > share),
                             key=lambda a: (-load[a], a))
            for source in sources:
                row = next((r for r in _movable(c, source) if r["photo_id"] not in has[n]),
                           None)
                if row is not None:
                    break
            else:
                break
            if build_id is None:
                build_id = _build_row(c, created_by)
            _move(c, row["task_code"], row["photo_id"], source, n, build_id)
            load[source] = unread_load(c, source)
            load[n] += 1
            has[n].add(row["photo_id"])
            moved[n] += 1
    return Moved(tuple((t, k) for t, k in moved.items() if k), 0)
