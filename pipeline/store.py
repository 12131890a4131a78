"""The study store: an embedded SQLite database with a versioned schema.

What it holds: subjects, visits, photos (sha256, the manifest name, size, allow-listed
metadata), processing runs (provenance: software version and git commit, model name and
sha256, sticker description, parameters, UTC times), and per photo a history of results —
calibration, segmentation, measurements and QC flags. Nothing is ever updated in place: a
changed file under a known name is a new photo *version*, and reprocessing adds a new result
*version*; the newest version is the current one.

The allocation (``subject_id,arm``) is never stored here, by design.

Writes happen in transactions (one per photo result), from one process only (the batch
driver), with SQLite's WAL journal so a crash at any point leaves a consistent store.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import secrets
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.errors import StoreError

__all__ = ["Store", "PhotoRecord", "SCHEMA_VERSION", "utc_now"]

_MIGRATIONS: list[str] = [
    # 1: the initial schema
    """
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE subjects (subject_id TEXT PRIMARY KEY, created_utc TEXT NOT NULL);
    CREATE TABLE visits (
        visit_id INTEGER PRIMARY KEY,
        subject_id TEXT NOT NULL REFERENCES subjects(subject_id),
        visit_day INTEGER NOT NULL,
        UNIQUE (subject_id, visit_day));
    CREATE TABLE runs (
        run_id INTEGER PRIMARY KEY,
        started_utc TEXT NOT NULL, finished_utc TEXT,
        software_version TEXT NOT NULL, git_commit TEXT NOT NULL,
        model_name TEXT, model_sha256 TEXT, sticker_name TEXT, sticker_json TEXT,
        params_json TEXT NOT NULL, reason TEXT, command TEXT);
    CREATE TABLE photos (
        photo_id TEXT PRIMARY KEY,
        sha256 TEXT NOT NULL,
        visit_id INTEGER NOT NULL REFERENCES visits(visit_id),
        site TEXT NOT NULL,
        manifest TEXT NOT NULL,
        source_name TEXT NOT NULL,
        version INTEGER NOT NULL,
        size_bytes INTEGER NOT NULL,
        width INTEGER, height INTEGER, format TEXT,
        metadata_json TEXT NOT NULL DEFAULT '{}',
        flags TEXT NOT NULL DEFAULT '',
        created_utc TEXT NOT NULL,
        UNIQUE (manifest, source_name, version));
    CREATE INDEX photos_sha ON photos(sha256);
    CREATE TABLE results (
        result_id INTEGER PRIMARY KEY,
        photo_id TEXT NOT NULL REFERENCES photos(photo_id),
        run_id INTEGER NOT NULL REFERENCES runs(run_id),
        version INTEGER NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('ok', 'failed')),
        error_code TEXT, error_message TEXT,
        created_utc TEXT NOT NULL,
        UNIQUE (photo_id, version));
    CREATE TABLE calibrations (
        result_id INTEGER PRIMARY KEY REFERENCES results(result_id),
        mm_per_px REAL, tilt_deg REAL, reprojection_error_px REAL, reprojection_error_mm REAL,
        markers TEXT, colour_method TEXT, delta_e00_before REAL, delta_e00_after REAL,
        record_json TEXT NOT NULL);
    CREATE TABLE segmentations (
        result_id INTEGER PRIMARY KEY REFERENCES results(result_id),
        model_name TEXT NOT NULL, model_sha256 TEXT NOT NULL,
        mask_file TEXT NOT NULL, overlay_file TEXT NOT NULL, working_shape TEXT);
    CREATE TABLE measurements (
        result_id INTEGER PRIMARY KEY REFERENCES results(result_id),
        donor_site_area_mm2 REAL, epithelialized_area_mm2 REAL, raw_area_mm2 REAL,
        healed_percent REAL);
    CREATE TABLE qc_flags (
        result_id INTEGER NOT NULL REFERENCES results(result_id),
        flag TEXT NOT NULL, PRIMARY KEY (result_id, flag));
    CREATE TABLE ingest_errors (
        error_id INTEGER PRIMARY KEY,
        run_id INTEGER NOT NULL REFERENCES runs(run_id),
        manifest TEXT NOT NULL, line INTEGER NOT NULL, source_name TEXT NOT NULL,
        error_code TEXT NOT NULL, error_message TEXT NOT NULL, created_utc TEXT NOT NULL);
    """,
    # 2: blinded review (pipeline/review): accounts, sessions, queue, reads, adjudication
    """
    CREATE TABLE review_users (
        user_id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        role TEXT NOT NULL CHECK (role IN ('assessor', 'coordinator')),
        password_hash TEXT NOT NULL,
        must_change INTEGER NOT NULL DEFAULT 1,
        active INTEGER NOT NULL DEFAULT 1,
        created_utc TEXT NOT NULL);
    CREATE TABLE review_sessions (
        token_sha256 TEXT PRIMARY KEY,
        user_id INTEGER NOT NULL REFERENCES review_users(user_id),
        csrf_token TEXT NOT NULL,
        created_utc TEXT NOT NULL, expires_utc TEXT NOT NULL, revoked_utc TEXT);
    CREATE TABLE review_login_attempts (
        attempt_id INTEGER PRIMARY KEY,
        username TEXT NOT NULL, ip TEXT NOT NULL, ok INTEGER NOT NULL,
        created_utc TEXT NOT NULL);
    CREATE INDEX review_login_attempts_time ON review_login_attempts(created_utc);
    CREATE TABLE review_settings (
        key TEXT PRIMARY KEY, value TEXT NOT NULL, updated_utc TEXT NOT NULL);
    CREATE TABLE review_queue_builds (
        build_id INTEGER PRIMARY KEY,
        seed INTEGER NOT NULL, reads_per_photo INTEGER NOT NULL, repeat_fraction REAL NOT NULL,
        n_tasks INTEGER NOT NULL, created_by TEXT NOT NULL, created_utc TEXT NOT NULL);
    CREATE TABLE review_items (
        item_code TEXT PRIMARY KEY,
        photo_id TEXT NOT NULL UNIQUE REFERENCES photos(photo_id));
    CREATE TABLE review_tasks (
        task_code TEXT PRIMARY KEY,
        assessor TEXT NOT NULL REFERENCES review_users(name),
        photo_id TEXT NOT NULL REFERENCES photos(photo_id),
        position INTEGER NOT NULL,
        is_repeat INTEGER NOT NULL DEFAULT 0,
        build_id INTEGER NOT NULL REFERENCES review_queue_builds(build_id),
        created_utc TEXT NOT NULL,
        UNIQUE (assessor, position));
    CREATE INDEX review_tasks_photo ON review_tasks(photo_id);
    CREATE TABLE review_reads (
        read_id INTEGER PRIMARY KEY,
        task_code TEXT NOT NULL REFERENCES review_tasks(task_code),
        photo_id TEXT NOT NULL REFERENCES photos(photo_id),
        assessor TEXT NOT NULL REFERENCES review_users(name),
        version INTEGER NOT NULL,
        estimate_percent REAL CHECK (estimate_percent BETWEEN 0 AND 100),
        verdict TEXT NOT NULL
            CHECK (verdict IN ('accept', 'needs_correction', 'unassessable')),
        reason TEXT, comment TEXT, corrected_mask_file TEXT,
        is_repeat INTEGER NOT NULL,
        result_id INTEGER REFERENCES results(result_id),
        created_utc TEXT NOT NULL,
        UNIQUE (task_code, version));
    CREATE INDEX review_reads_photo ON review_reads(photo_id);
    CREATE TABLE review_adjudications (
        adjudication_id INTEGER PRIMARY KEY,
        photo_id TEXT NOT NULL REFERENCES photos(photo_id),
        coordinator TEXT NOT NULL REFERENCES review_users(name),
        version INTEGER NOT NULL,
        estimate_percent REAL CHECK (estimate_percent BETWEEN 0 AND 100),
        verdict TEXT NOT NULL
            CHECK (verdict IN ('accept', 'needs_correction', 'unassessable')),
        comment TEXT, read_ids TEXT NOT NULL,
        created_utc TEXT NOT NULL,
        UNIQUE (photo_id, version));
    """,
    # 3: results, reads and their audit trail are append-only, enforced by the database
    """
    CREATE TRIGGER results_no_update BEFORE UPDATE ON results
    BEGIN SELECT RAISE(ABORT, 'results is append-only'); END;
    CREATE TRIGGER results_no_delete BEFORE DELETE ON results
    BEGIN SELECT RAISE(ABORT, 'results is append-only'); END;
    CREATE TRIGGER calibrations_no_update BEFORE UPDATE ON calibrations
    BEGIN SELECT RAISE(ABORT, 'calibrations is append-only'); END;
    CREATE TRIGGER calibrations_no_delete BEFORE DELETE ON calibrations
    BEGIN SELECT RAISE(ABORT, 'calibrations is append-only'); END;
    CREATE TRIGGER segmentations_no_update BEFORE UPDATE ON segmentations
    BEGIN SELECT RAISE(ABORT, 'segmentations is append-only'); END;
    CREATE TRIGGER segmentations_no_delete BEFORE DELETE ON segmentations
    BEGIN SELECT RAISE(ABORT, 'segmentations is append-only'); END;
    CREATE TRIGGER measurements_no_update BEFORE UPDATE ON measurements
    BEGIN SELECT RAISE(ABORT, 'measurements is append-only'); END;
    CREATE TRIGGER measurements_no_delete BEFORE DELETE ON measurements
    BEGIN SELECT RAISE(ABORT, 'measurements is append-only'); END;
    CREATE TRIGGER qc_flags_no_update BEFORE UPDATE ON qc_flags
    BEGIN SELECT RAISE(ABORT, 'qc_flags is append-only'); END;
    CREATE TRIGGER qc_flags_no_delete BEFORE DELETE ON qc_flags
    BEGIN SELECT RAISE(ABORT, 'qc_flags is append-only'); END;
    CREATE TRIGGER runs_no_delete BEFORE DELETE ON runs
    BEGIN SELECT RAISE(ABORT, 'runs is append-only'); END;
    CREATE TRIGGER review_reads_no_update BEFORE UPDATE ON review_reads
    BEGIN SELECT RAISE(ABORT, 'review_reads is append-only'); END;
    CREATE TRIGGER review_reads_no_delete BEFORE DELETE ON review_reads
    BEGIN SELECT RAISE(ABORT, 'review_reads is append-only'); END;
    CREATE TRIGGER review_adjudications_no_update BEFORE UPDATE ON review_adjudications
    BEGIN SELECT RAISE(ABORT, 'review_adjudications is append-only'); END;
    CREATE TRIGGER review_adjudications_no_delete BEFORE DELETE ON review_adjudications
    BEGIN SELECT RAISE(ABORT, 'review_adjudications is append-only'); END;
    CREATE TRIGGER ingest_errors_no_update BEFORE UPDATE ON ingest_errors
    BEGIN SELECT RAISE(ABORT, 'ingest_errors is append-only'); END;
    CREATE TRIGGER ingest_errors_no_delete BEFORE DELETE ON ingest_errors
    BEGIN SELECT RAISE(ABORT, 'ingest_errors is append-only'); END;
    """,
]
SCHEMA_VERSION = len(_MIGRATIONS)


def utc_now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class PhotoRecord:
    """A registered photo version."""

    photo_id: str
    version: int
    is_new: bool
    has_result: bool
    flags: tuple[str, ...]


class Store:
    """The SQLite study store. Open with :meth:`Store.open`; use as a context manager."""

    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        self.conn = conn
        self.path = path

    # ------------------------------------------------------------------ opening, schema
    @classmethod
    def open(cls, path: str | Path) -> Store:
        """Open (creating when missing) and migrate the store at ``path``."""
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        try:
            conn = sqlite3.connect(p, timeout=30.0, isolation_level=None)
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA foreign_keys=ON")
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{p}: not a usable SQLite study store ({exc})") from exc
        store = cls(conn, p)
        store._migrate()
        return store

    def _migrate(self) -> None:
        try:
            current = int(self.conn.execute("PRAGMA user_version").fetchone()[0])
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{self.path}: not a usable SQLite study store ({exc})") from exc
        if current > SCHEMA_VERSION:
            raise StoreError(f"{self.path}: schema version {current} is newer than this "
                             f"software's {SCHEMA_VERSION}; upgrade donorsite")
        for version in range(current, SCHEMA_VERSION):
            with self.transaction() as c:
                for statement in _split_sql(_MIGRATIONS[version]):
                    c.execute(statement)
                c.execute(f"PRAGMA user_version = {version + 1}")
                if version == 0:
                    c.execute("INSERT INTO meta VALUES ('created_utc', ?)", (utc_now(),))
                    c.execute("INSERT INTO meta VALUES ('code_secret', ?)",
                              (secrets.token_hex(16),))

    @property
    def schema_version(self) -> int:
        return int(self.conn.execute("PRAGMA user_version").fetchone()[0])

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """``BEGIN IMMEDIATE`` … ``COMMIT``, rolled back on any exception."""
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self.conn
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    # ------------------------------------------------------------------------- runs
    def begin_run(self, *, software_version: str, git_commit: str, model_name: str | None,
                  model_sha256: str | None, sticker: dict[str, Any] | None,
                  params: dict[str, Any], reason: str | None, command: str) -> int:
        with self.transaction() as c:
            cur = c.execute(
                "INSERT INTO runs (started_utc, software_version, git_commit, model_name, "
                "model_sha256, sticker_name, sticker_json, params_json, reason, command) "
                "VALUES (?,?,?,?,?,?,?,?,?,?)",
                (utc_now(), software_version, git_commit, model_name, model_sha256,
                 (sticker or {}).get("name"), json.dumps(sticker, sort_keys=True),
                 json.dumps(params, sort_keys=True), reason, command))
            return int(cur.lastrowid)

    def finish_run(self, run_id: int) -> None:
        with self.transaction() as c:
            c.execute("UPDATE runs SET finished_utc = ? WHERE run_id = ?", (utc_now(), run_id))

    # ----------------------------------------------------------------------- photos
    def photo_code(self, manifest: str, source_name: str, version: int) -> str:
        """An opaque, stable code for a photo version (no subject, day or name in it)."""
        secret = self.conn.execute("SELECT value FROM meta WHERE key='code_secret'").fetchone()[0]
        h = hashlib.sha256(f"{secret}|{manifest}|{source_name}|{version}".encode()).hexdigest()
        return "P" + h[:11].upper()

    def register_photo(self, *, manifest: str, source_name: str, sha256: str, size_bytes: int,
                       subject_id: str, visit_day: int, site: str,
                       extra_flags: tuple[str, ...] = ()) -> PhotoRecord:
        """Find or add the photo version for (manifest, name, content).

        The same bytes under a known name -> the existing version. Other bytes under a known
        name -> a new version (the old one and its results are kept). A second photo for the
        same visit and site is kept and flagged.
        """
        with self.transaction() as c:
            latest = c.execute(
                "SELECT photo_id, version, sha256, flags FROM photos WHERE manifest=? AND "
                "source_name=? ORDER BY version DESC LIMIT 1", (manifest, source_name)
            ).fetchone()
            if latest is not None and latest["sha256"] == sha256:
                has = c.execute("SELECT 1 FROM results WHERE photo_id=? LIMIT 1",
                                (latest["photo_id"],)).fetchone() is not None
                return PhotoRecord(latest["photo_id"], latest["version"], False, has,
                                   _split_flags(latest["flags"]))
            version = 1 if latest is None else latest["version"] + 1
            c.execute("INSERT OR IGNORE INTO subjects VALUES (?, ?)", (subject_id, utc_now()))
            c.execute("INSERT OR IGNORE INTO visits (subject_id, visit_day) VALUES (?, ?)",
                      (subject_id, visit_day))
            visit_id = c.execute("SELECT visit_id FROM visits WHERE subject_id=? AND "
                                 "visit_day=?", (subject_id, visit_day)).fetchone()[0]
            flags = list(extra_flags)
            if version > 1:
                flags.append("changed_file_new_version")
            others = c.execute(
                "SELECT COUNT(*) FROM photos p WHERE p.visit_id=? AND p.site=? AND NOT "
                "(p.manifest=? AND p.source_name=?)", (visit_id, site, manifest, source_name)
            ).fetchone()[0]
            if others:
                flags.append("second_photo_for_visit")
            if c.execute("SELECT 1 FROM photos WHERE sha256=? LIMIT 1", (sha256,)).fetchone():
                flags.append("duplicate_content")
            code = self.photo_code(manifest, source_name, version)
            c.execute(
                "INSERT INTO photos (photo_id, sha256, visit_id, site, manifest, source_name, "
                "version, size_bytes, flags, created_utc) VALUES (?,?,?,?,?,?,?,?,?,?)",
                (code, sha256, visit_id, site, manifest, source_name, version, size_bytes,
                 ",".join(sorted(set(flags))), utc_now()))
            return PhotoRecord(code, version, True, False, tuple(sorted(set(flags))))

    def add_photo_flags(self, photo_id: str, flags: tuple[str, ...]) -> None:
        if not flags:
            return
        with self.transaction() as c:
            row = c.execute("SELECT flags FROM photos WHERE photo_id=?", (photo_id,)).fetchone()
            merged = sorted(set(_split_flags(row["flags"])) | set(flags))
            c.execute("UPDATE photos SET flags=? WHERE photo_id=?", (",".join(merged), photo_id))

    # ---------------------------------------------------------------------- results
    def next_result_version(self, photo_id: str) -> int:
        row = self.conn.execute("SELECT MAX(version) FROM results WHERE photo_id=?",
                                (photo_id,)).fetchone()
        return int(row[0] or 0) + 1

    def save_result(self, *, photo_id: str, run_id: int, version: int, status: str,
                    error_code: str | None = None, error_message: str | None = None,
                    photo_info: dict[str, Any] | None = None,
                    calibration: dict[str, Any] | None = None,
                    segmentation: dict[str, Any] | None = None,
                    measurement: dict[str, Any] | None = None,
                    qc_flags: tuple[str, ...] = ()) -> int:
        """Store one processing result of one photo, all of it or nothing."""
        with self.transaction() as c:
            if photo_info:
                c.execute("UPDATE photos SET width=?, height=?, format=?, metadata_json=? "
                          "WHERE photo_id=?",
                          (photo_info.get("width"), photo_info.get("height"),
                           photo_info.get("format"),
                           json.dumps(photo_info.get("metadata", {}), sort_keys=True), photo_id))
            cur = c.execute(
                "INSERT INTO results (photo_id, run_id, version, status, error_code, "
                "error_message, created_utc) VALUES (?,?,?,?,?,?,?)",
                (photo_id, run_id, version, status, error_code, error_message, utc_now()))
            rid = int(cur.lastrowid)
            if calibration is not None:
                c.execute("INSERT INTO calibrations VALUES (?,?,?,?,?,?,?,?,?,?)",
                          (rid, calibration.get("mm_per_px"), calibration.get("tilt_deg"),
                           calibration.get("reprojection_error_px"),
                           calibration.get("reprojection_error_mm"),
                           ",".join(str(m) for m in calibration.get("markers", ())),
                           calibration.get("colour_method"),
                           calibration.get("delta_e00_before"),
                           calibration.get("delta_e00_after"),
                           json.dumps(calibration.get("record", {}), sort_keys=True)))
            if segmentation is not None:
                c.execute("INSERT INTO segmentations VALUES (?,?,?,?,?,?)",
                          (rid, segmentation["model_name"], segmentation["model_sha256"],
                           segmentation["mask_file"], segmentation["overlay_file"],
                           segmentation.get("working_shape")))
            if measurement is not None:
                c.execute("INSERT INTO measurements VALUES (?,?,?,?,?)",
                          (rid, measurement["donor_site_area_mm2"],
                           measurement["epithelialized_area_mm2"], measurement["raw_area_mm2"],
                           measurement["healed_percent"]))
            for flag in sorted(set(qc_flags)):
                c.execute("INSERT INTO qc_flags VALUES (?, ?)", (rid, flag))
            return rid

    def record_ingest_error(self, *, run_id: int, manifest: str, line: int, source_name: str,
                            code: str, message: str) -> None:
        with self.transaction() as c:
            c.execute("INSERT INTO ingest_errors (run_id, manifest, line, source_name, "
                      "error_code, error_message, created_utc) VALUES (?,?,?,?,?,?,?)",
                      (run_id, manifest, line, source_name, code, message, utc_now()))

    # ---------------------------------------------------------------------- queries
    def current_results(self) -> list[sqlite3.Row]:
        """One row per current photo version (newest version of each manifest name), joined
        with its newest result; ``status`` is NULL for photos not processed yet."""
        return self.conn.execute(_CURRENT_SQL).fetchall()

    def counts_by_state(self) -> dict[str, int]:
        out: dict[str, int] = {"photos": 0, "ok": 0, "failed": 0, "pending": 0}
        for r in self.current_results():
            out["photos"] += 1
            out[r["status"] or "pending"] += 1
        out["ingest_errors"] = self.conn.execute(
            "SELECT COUNT(*) FROM ingest_errors WHERE run_id = (SELECT MAX(run_id) FROM runs)"
        ).fetchone()[0]
        out["runs"] = self.conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0]
        return out

    def integrity_problems(self) -> list[str]:
        """Consistency checks used by tests and ``donorsite status --check``."""
        problems = [r[0] for r in self.conn.execute("PRAGMA integrity_check") if r[0] != "ok"]
        problems += [f"foreign key: {tuple(r)}" for r in
                     self.conn.execute("PRAGMA foreign_key_check")]
        dup = self.conn.execute("SELECT photo_id, version, COUNT(*) n FROM results GROUP BY "
                                "photo_id, version HAVING n > 1").fetchall()
        problems += [f"duplicate result {r['photo_id']} v{r['version']}" for r in dup]
        orphan = self.conn.execute(
            "SELECT r.result_id FROM results r LEFT JOIN measurements m USING (result_id) "
            "WHERE r.status='ok' AND m.result_id IS NULL").fetchall()
        problems += [f"ok result {r[0]} without measurement" for r in orphan]
        return problems


_CURRENT_SQL = """
WITH cur_photo AS (
    SELECT p.* FROM photos p
    WHERE p.version = (SELECT MAX(version) FROM photos q
                       WHERE q.manifest = p.manifest AND q.source_name = p.source_name)),
cur_result AS (
    SELECT r.* FROM results r
    WHERE r.version = (SELECT MAX(version) FROM results s WHERE s.photo_id = r.photo_id))
SELECT p.photo_id, p.version AS photo_version, p.sha256, p.site, p.manifest, p.source_name,
       p.width, p.height, p.flags AS photo_flags, v.subject_id, v.visit_day,
       r.result_id, r.version AS result_version, r.status, r.error_code, r.error_message,
       c.mm_per_px, c.tilt_deg, c.delta_e00_before, c.delta_e00_after,
       s.model_name, s.model_sha256, s.mask_file, s.overlay_file,
       m.donor_site_area_mm2, m.epithelialized_area_mm2, m.raw_area_mm2, m.healed_percent,
       (SELECT GROUP_CONCAT(flag, ';') FROM (SELECT flag FROM qc_flags f
            WHERE f.result_id = r.result_id ORDER BY flag)) AS qc_flags
FROM cur_photo p
JOIN visits v USING (visit_id)
LEFT JOIN cur_result r ON r.photo_id = p.photo_id
LEFT JOIN calibrations c ON c.result_id = r.result_id
LEFT JOIN segmentations s ON s.result_id = r.result_id
LEFT JOIN measurements m ON m.result_id = r.result_id
ORDER BY v.subject_id, v.visit_day, p.site, p.source_name
"""


def _split_flags(text: str | None) -> tuple[str, ...]:
    return tuple(f for f in (text or "").split(",") if f)


def _split_sql(script: str) -> list[str]:
    """Split a migration into complete statements (triggers' inner ';' included)."""
    out: list[str] = []
    buf = ""
    for line in script.splitlines(keepends=True):
        buf += line
        if sqlite3.complete_statement(buf):
            out.append(buf.strip())
            buf = ""
    if buf.strip():
        raise StoreError(f"incomplete SQL statement in a migration: {buf.strip()[:80]!r}")
    return out
