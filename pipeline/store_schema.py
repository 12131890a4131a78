"""The study store's schema: its migrations, applied in order by :class:`pipeline.store.Store`.

Each entry of ``MIGRATIONS`` takes the schema from version *n* to *n + 1*; a released
migration is never edited, a change is a new entry. ``SCHEMA_VERSION`` is the newest version.
Append-only tables are enforced by triggers, so even a hand-written ``UPDATE`` is refused.
"""

from __future__ import annotations

import sqlite3

from pipeline.errors import StoreError

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "split_sql"]

MIGRATIONS: list[str] = [
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
    # 4: how sure the model is of each result, and how familiar the photo is (issue 15)
    """
    CREATE TABLE assessments (
        result_id INTEGER PRIMARY KEY REFERENCES results(result_id),
        confidence REAL, healed_percent_low REAL, healed_percent_high REAL,
        outline_ambiguity REAL, ood_score REAL);
    CREATE TRIGGER assessments_no_update BEFORE UPDATE ON assessments
    BEGIN SELECT RAISE(ABORT, 'assessments is append-only'); END;
    CREATE TRIGGER assessments_no_delete BEFORE DELETE ON assessments
    BEGIN SELECT RAISE(ABORT, 'assessments is append-only'); END;
    """,
    # 5: each subject's day 0 as a calendar date, anchored once by a manifest row that gives a
    # DICOM photo's visit day; later DICOM photos without a day are dated from it (issue 14)
    """
    CREATE TABLE subject_day0 (
        subject_id TEXT PRIMARY KEY, day0_date TEXT NOT NULL, anchor TEXT NOT NULL,
        created_utc TEXT NOT NULL);
    CREATE TRIGGER subject_day0_no_update BEFORE UPDATE ON subject_day0
    BEGIN SELECT RAISE(ABORT, 'subject_day0 is append-only'); END;
    CREATE TRIGGER subject_day0_no_delete BEFORE DELETE ON subject_day0
    BEGIN SELECT RAISE(ABORT, 'subject_day0 is append-only'); END;
    """,
]
SCHEMA_VERSION = len(MIGRATIONS)


def split_sql(script: str) -> list[str]:
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
