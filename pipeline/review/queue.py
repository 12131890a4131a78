"""The reading queue: which assessor reads which photo, in which order.

Each readable photo (current version, newest result ok with a mask) is given to
``reads_per_photo`` different assessors, balancing their loads. Each assessor's queue is put
in a random order (seeded: the study's ``queue_seed`` and the build number) that interleaves
subjects — no two consecutive photos of the same subject when avoidable, visits in random
order — and about ``repeat_fraction`` of it comes back later as hidden repeats. Every task has
its own random opaque code, so a repeat looks like any other photo, and two assessors never
share a URL. The order is stored (``review_tasks.position``); building again only adds tasks
for photos that still lack reads (new photos, or new assessors), after the existing ones.

Subject and visit are read here, server-side, for the interleaving only; they never leave
this module.
"""

from __future__ import annotations

import secrets
import sqlite3
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from pipeline.review.errors import QueueError
from pipeline.review.settings import StudyReviewSettings
from pipeline.store import Store, utc_now

__all__ = ["QueueBuild", "build_queue", "interleave", "place_repeats", "next_task", "held_sql",
           "progress", "new_code"]


@dataclass(frozen=True)
class QueueBuild:
    """What one queue build added."""

    build_id: int
    n_tasks: int
    n_repeats: int
    n_photos: int
    per_assessor: tuple[tuple[str, int], ...]
    n_moved: int = 0


def new_code(prefix: str) -> str:
    """A random opaque code such as ``T4F0C2A19BE``."""
    return prefix + secrets.token_hex(5).upper()


def _feasible(counts: dict[str, int], first_not: str) -> bool:
    """Whether these counts can be ordered with no subject twice in a row, not starting
    with ``first_not``."""
    n = sum(counts.values())
    half = (n + 1) // 2
    if n == 0:
        return True
    return max(counts.values()) <= half and not (n % 2 and counts.get(first_not, 0) == half)


def interleave(items: list[tuple[str, str]], rng: np.random.Generator) -> list[str]:
    """Order ``(photo_id, subject)`` pairs randomly, never the same subject twice in a row
    when that can be avoided.

    Each step draws a subject (not the previous one, and only one after which the rest can
    still be interleaved) with probability proportional to its remaining photos; a subject's
    photos (its visits) come in random order.

    Examples
    --------
    >>> items = [("a", "S1"), ("b", "S1"), ("c", "S2"), ("d", "S2")]
    >>> order = interleave(items, np.random.default_rng(0))
    >>> sorted(order), all(order[i][0] != order[i + 1][0] for i in range(3))
    (['a', 'b', 'c', 'd'], True)
    """
    remaining: dict[str, list[str]] = defaultdict(list)
    for photo, subject in sorted(items):
        remaining[subject].append(photo)
    for subject in sorted(remaining):
        rng.shuffle(remaining[subject])
    out: list[str] = []
    prev: str | None = None
    while remaining:
        subjects = sorted(remaining)
        counts = {s: len(remaining[s]) for s in subjects}
        cands = [s for s in subjects if s != prev] or subjects
        ok = [s for s in cands if _feasible({**counts, s: counts[s] - 1}, s)]
        cands = ok or cands
        weights = np.array([counts[s] for s in cands], float)
        subject = cands[int(rng.choice(len(cands), p=weights / weights.sum()))]
        out.append(remaining[subject].pop())
        if not remaining[subject]:
            del remaining[subject]
        prev = subject
    return out


def place_repeats(order: list[str], fraction: float, rng: np.random.Generator, *,
                  subject_of: Mapping[str, str] | None = None) -> list[tuple[str, bool]]:
    """Insert hidden repeats of about ``fraction`` of ``order``, each well after its first
    showing (at least a fifth of the queue, and three photos, later) and, given
    ``subject_of``, between photos of other subjects where possible.

    Returns ``(photo_id, is_repeat)`` in reading order.

    Examples
    --------
    >>> out = place_repeats([str(i) for i in range(40)], 0.05, np.random.default_rng(1))
    >>> len(out), sum(r for _, r in out)
    (42, 2)
    """
    n = len(order)
    n_rep = int(round(fraction * n))
    gap = max(3, n // 5)
    eligible = n - gap - 1
    if n_rep == 0 or eligible <= 0:
        return [(p, False) for p in order]
    n_rep = min(n_rep, eligible)
    subj = subject_of or {}
    chosen = sorted(int(i) for i in rng.choice(eligible, size=n_rep, replace=False))
    inserts: dict[int, list[str]] = defaultdict(list)  # insert before original index t
    for i in chosen:
        slots = list(range(i + gap + 1, n + 1))
        s = subj.get(order[i])
        calm = [t for t in slots if t not in inserts
                and (s is None or (subj.get(order[t - 1]) != s
                                   and (t == n or subj.get(order[t]) != s)))]
        pool = calm or slots
        inserts[pool[int(rng.integers(len(pool)))]].append(order[i])
    out: list[tuple[str, bool]] = []
    for t in range(n + 1):
        out.extend((p, True) for p in inserts.get(t, ()))
        if t < n:
            out.append((order[t], False))
    return out


def _readable_photos(store: Store) -> list[tuple[str, str]]:
    return sorted((r["photo_id"], r["subject_id"]) for r in store.current_results()
                  if r["status"] == "ok" and r["mask_file"])


def build_queue(store: Store, *, settings: StudyReviewSettings, created_by: str) -> QueueBuild:
    """Add tasks so that every readable photo has ``reads_per_photo`` assessors.

    An active assessor who still has no task after that (added mid-study, when no photo
    needs another read) receives a fair share of the others' unread first showings
    (:func:`pipeline.review.assign.share_with_newcomers`).

    Raises
    ------
    QueueError
        Fewer active assessors than ``reads_per_photo``.
    """
    with store.transaction() as c:
        assessors = [r[0] for r in c.execute(
            "SELECT name FROM review_users WHERE role='assessor' AND active=1 ORDER BY name")]
        if len(assessors) < settings.reads_per_photo:
            raise QueueError(f"{len(assessors)} active assessor(s), but reads_per_photo is "
                             f"{settings.reads_per_photo}: add assessors first")
        photos = _readable_photos(store)
        subject_of = dict(photos)
        assigned: dict[str, set[str]] = defaultdict(set)
        load: dict[str, int] = dict.fromkeys(assessors, 0)
        for row in c.execute("SELECT photo_id, assessor, is_repeat FROM review_tasks"):
            if not row["is_repeat"]:
                assigned[row["photo_id"]].add(row["assessor"])
            if row["assessor"] in load:
                load[row["assessor"]] += 1
        cur = c.execute("INSERT INTO review_queue_builds (seed, reads_per_photo, "
                        "repeat_fraction, n_tasks, created_by, created_utc) VALUES "
                        "(?,?,?,0,?,?)", (settings.queue_seed, settings.reads_per_photo,
                                          settings.repeat_fraction, created_by, utc_now()))
        build_id = int(cur.lastrowid)
        rng = np.random.default_rng([settings.queue_seed, build_id])
        todo: dict[str, list[tuple[str, str]]] = defaultdict(list)
        for k in rng.permutation(len(photos)):
            photo = photos[int(k)][0]
            have = assigned[photo]
            need = settings.reads_per_photo - len(have)
            free = [a for a in assessors if a not in have]
            ties = rng.random(len(free))
            for i in sorted(range(len(free)), key=lambda i: (load[free[i]], ties[i]))[:need]:
                a = free[i]
                todo[a].append((photo, subject_of[photo]))
                load[a] += 1
        n_tasks = n_repeats = 0
        per: list[tuple[str, int]] = []
        for a in assessors:
            if not todo[a]:
                continue
            order = place_repeats(interleave(todo[a], rng), settings.repeat_fraction, rng,
                                  subject_of=subject_of)
            start = c.execute("SELECT COALESCE(MAX(position), 0) FROM review_tasks WHERE "
                              "assessor=?", (a,)).fetchone()[0]
            for k, (photo, is_repeat) in enumerate(order, start=1):
                c.execute("INSERT INTO review_tasks VALUES (?,?,?,?,?,?,?)",
                          (new_code("T"), a, photo, start + k, int(is_repeat), build_id,
                           utc_now()))
                c.execute("INSERT OR IGNORE INTO review_items VALUES (?, ?)",
                          (new_code("J"), photo))
            n_tasks += len(order)
            n_repeats += sum(r for _, r in order)
            per.append((a, len(order)))
        c.execute("UPDATE review_queue_builds SET n_tasks=? WHERE build_id=?",
                  (n_tasks, build_id))
        # an assessor who joined mid-study and still has nothing (no photo needed another
        # read) takes a fair share of the others' unread first showings
        from pipeline.review.assign import share_with_newcomers

        shared = share_with_newcomers(c, created_by=created_by)
    return QueueBuild(build_id, n_tasks, n_repeats, len(photos), tuple(per), shared.n_moved)


#: 1 when the photo's current result carries a flag that holds it for a read (the model is
#: unsure of it, or has not seen its like): such photos are read first.
_HELD_SQL = """(SELECT COUNT(*) FROM qc_flags f WHERE f.result_id = (
    SELECT r.result_id FROM results r WHERE r.photo_id = {photo} AND r.status = 'ok'
    ORDER BY r.version DESC LIMIT 1) AND f.flag IN ({flags})) > 0"""


def held_sql(photo: str = "t.photo_id") -> str:
    """SQL that is 1 when ``photo``'s current result is held for a read (see qc)."""
    from pipeline.qc import HOLD_FOR_READ_FLAGS

    flags = ", ".join(f"'{f}'" for f in sorted(HOLD_FOR_READ_FLAGS))
    return _HELD_SQL.format(photo=photo, flags=flags)


def next_task(conn: sqlite3.Connection, assessor: str, *, exclude: str | None = None
              ) -> str | None:
    """The code of the assessor's next unread task (other than ``exclude``), or None.

    Photos held for a read (``low_confidence``, ``out_of_distribution``) come first, in
    queue order; then the rest in queue order. Hidden repeats keep their place, so a repeat
    is never pulled up next to its original.
    """
    row = conn.execute(
        "SELECT task_code FROM review_tasks t WHERE assessor=? AND task_code IS NOT ? AND NOT "
        "EXISTS (SELECT 1 FROM review_reads r WHERE r.task_code=t.task_code) "
        f"ORDER BY (t.is_repeat = 0 AND {held_sql()}) DESC, position LIMIT 1",
        (assessor, exclude)).fetchone()
    return row[0] if row else None


def progress(conn: sqlite3.Connection, assessor: str) -> tuple[int, int]:
    """``(tasks read, tasks in the queue)`` for one assessor."""
    row = conn.execute(
        "SELECT COUNT(*), SUM(EXISTS (SELECT 1 FROM review_reads r WHERE "
        "r.task_code=t.task_code)) FROM review_tasks t WHERE assessor=?",
        (assessor,)).fetchone()
    return int(row[1] or 0), int(row[0])
