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
from pipeline.store_schema import MIGRATIONS, SCHEMA_VERSION, split_sql

__all__ = ["Store", "PhotoRecord", "SCHEMA_VERSION", "ASSESSMENT_COLUMNS", "utc_now"]

#: The per-result certainty figures stored in ``assessments`` (models.assess.Assessment).
ASSESSMENT_COLUMNS = ("confidence", "healed_percent_low", "healed_percent_high",
                      "outline_ambiguity", "ood_score")

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
                for statement in split_sql(MIGRATIONS[version]):
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
    def subject_day0(self, subject_id: str) -> dt.date | None:
        """The subject's stored day 0 (a calendar date), or None when none is anchored."""
        row = self.conn.execute("SELECT day0_date FROM subject_day0 WHERE subject_id=?",
                                (subject_id,)).fetchone()
        return None if row is None else dt.date.fromisoformat(row[0])

    def anchor_subject_day0(self, subject_id: str, day0: dt.date, *, anchor: str) -> dt.date:
        """Store ``day0`` as the subject's day 0 unless one is stored; return the stored one."""
        with self.transaction() as c:
            c.execute("INSERT OR IGNORE INTO subject_day0 VALUES (?,?,?,?)",
                      (subject_id, day0.isoformat(), anchor, utc_now()))
        stored = self.subject_day0(subject_id)
        assert stored is not None
        return stored

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
                    assessment: dict[str, Any] | None = None,
                    qc_flags: tuple[str, ...] = ()) -> int:
        """Store one processing result of one photo, all of it or nothing.

        ``assessment``: the model's certainty and the photo's novelty
        (:meth:`models.assess.Assessment.as_dict`)."""
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
            if assessment is not None:
                c.execute("INSERT INTO assessments VALUES (?,?,?,?,?,?)",
                          (rid, *(assessment.get(k) for k in ASSESSMENT_COLUMNS)))
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
       a.confidence, a.healed_percent_low, a.healed_percent_high, a.outline_ambiguity,
       a.ood_score,
       (SELECT GROUP_CONCAT(flag, ';') FROM (SELECT flag FROM qc_flags f
            WHERE f.result_id = r.result_id ORDER BY flag)) AS qc_flags
FROM cur_photo p
JOIN visits v USING (visit_id)
LEFT JOIN cur_result r ON r.photo_id = p.photo_id
LEFT JOIN calibrations c ON c.result_id = r.result_id
LEFT JOIN segmentations s ON s.result_id = r.result_id
LEFT JOIN measurements m ON m.result_id = r.result_id
LEFT JOIN assessments a ON a.result_id = r.result_id
ORDER BY v.subject_id, v.visit_day, p.site, p.source_name
"""


def _split_flags(text: str | None) -> tuple[str, ...]:
    return tuple(f for f in (text or "").split(",") if f)
