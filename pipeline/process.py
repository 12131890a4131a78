"""Batch processing of a study's uploads into the study store (``donorsite process``).

Flow: read the manifest -> hash every listed file and register it in the store (new, changed
or unchanged) -> run the stages on the photos without a result -> store each result in its
own transaction -> export the tables. Safe to kill at any point and run again: photos whose
result was committed are skipped, the rest are processed, nothing is duplicated.
"""

from __future__ import annotations

import datetime as dt
import shlex
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.config import Settings
from pipeline.decode import read_bytes, sha256_bytes
from pipeline.errors import IngestError, StoreError
from pipeline.identity import DicomIdentity, plausible_day, read_dicom_identity
from pipeline.manifest import MAX_VISIT_DAY, ManifestRow, read_manifest, resolve_input
from pipeline.provenance import git_commit, software_version
from pipeline.runlock import RunLock
from pipeline.stages import Prepared, PrepareOptions, Task
from pipeline.store import Store

__all__ = ["ProcessSummary", "process_study", "plan_tasks", "ENGINES"]

#: Where the stages can run (``process_study(engine=...)``, ``donorsite process --engine``).
ENGINES = ("local", "ray")


@dataclass
class ProcessSummary:
    """What a batch did."""

    new: int = 0
    unchanged: int = 0
    failed: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0
    processed: int = 0
    out_dir: Path | None = None
    #: (file, manifest line, code, message) of every photo or row that failed, in order.
    failures: list[tuple[str, int | None, str, str]] = field(default_factory=list)
    #: photo id -> (file, manifest line) for the photos sent to the stages.
    lines: dict[str, tuple[str, int]] = field(default_factory=dict)
    #: the manifest's file name, for messages.
    manifest_name: str = ""
    #: things the user should know that are not failures (a stale run lock taken over).
    notes: list[str] = field(default_factory=list)

    @property
    def n_failed(self) -> int:
        return sum(self.failed.values())

    @property
    def photos_per_second(self) -> float:
        return self.processed / self.seconds if self.seconds > 0 else 0.0


def plan_tasks(rows: list[ManifestRow], store: Store, *, manifest: Path, run_id: int,
               reprocess: bool, summary: ProcessSummary) -> list[Task]:
    """Register every valid row's file in the store and return the photos to process.

    Subject and visit day follow :mod:`pipeline.identity`: the subject always from the
    manifest, a DICOM photo's missing day from its date and the subject's stored day 0.
    """
    key = str(manifest.resolve())
    summary.manifest_name = manifest.name

    def refuse(row: ManifestRow, code: str, message: str) -> None:
        if not message.startswith(manifest.name):
            message = f"{manifest.name} line {row.line}: {message}"
        store.record_ingest_error(run_id=run_id, manifest=key, line=row.line,
                                  source_name=row.file, code=code, message=message)
        summary.failed[code] += 1
        summary.failures.append((row.file, row.line, code, message))

    hashed: list[tuple[ManifestRow, str, int, DicomIdentity | None]] = []
    for row in rows:
        if row.error is not None:
            refuse(row, row.error.code, str(row.error))
            continue
        try:
            data = read_bytes(row.path)
        except IngestError as exc:
            refuse(row, exc.code, str(exc))
            continue
        hashed.append((row, sha256_bytes(data), len(data), read_dicom_identity(data)))
        del data
    # day 0 per subject: anchored by rows that give both a day and a DICOM date
    conflicts: set[int] = set()
    for row, _, _, ident in hashed:
        if ident is None or ident.acquired is None or row.visit_day is None:
            continue
        day0 = ident.acquired.date() - dt.timedelta(days=row.visit_day)
        stored = store.anchor_subject_day0(
            row.subject_id, day0, anchor=f"{manifest.name} line {row.line}: day "
            f"{row.visit_day} on {ident.acquired.date()} ({ident.date_source})")
        if stored != day0:
            conflicts.add(row.line)
    tasks: list[Task] = []
    listed: dict[str, int] = {}
    for row, sha, size, ident in hashed:
        flags: list[str] = []
        subject, day = row.subject_id, row.visit_day
        if ident is not None:
            if ident.subject_conflict(subject):
                flags.append("dicom_subject_conflict")
            if row.line in conflicts:
                flags.append("dicom_day_conflict")
        if day is None:
            day0 = store.subject_day0(subject)
            if ident is None or ident.acquired is None:
                refuse(row, "bad_row", f"{row.file!r}: no visit_day in the manifest and no "
                       "acquisition, content, series or study date in the DICOM header")
                continue
            if day0 is None:
                refuse(row, "bad_row", f"{row.file!r}: no visit_day in the manifest and no day "
                       f"0 known for subject {subject}; give visit_day for one of its DICOM "
                       "photos (that photo's date anchors day 0)")
                continue
            day = (ident.acquired.date() - day0).days
            if not plausible_day(day):
                refuse(row, "implausible_visit_day", f"{row.file!r}: its "
                       f"{ident.date_source} {ident.acquired.date()} is day {day} after subject "
                       f"{subject}'s day 0 ({day0}); visit days must be 0..{MAX_VISIT_DAY}")
                continue
        if row.file in listed:
            refuse(row, "duplicate_listing", f"{row.file!r} is already listed on line "
                   f"{listed[row.file]}; one file is one photo")
            continue
        listed[row.file] = row.line
        rec = store.register_photo(manifest=key, source_name=row.file, sha256=sha,
                                   size_bytes=size, subject_id=subject, visit_day=day,
                                   site=row.site, extra_flags=tuple(flags))
        if rec.has_result and not reprocess:
            summary.unchanged += 1
            continue
        tasks.append(Task(rec.photo_id, store.next_result_version(rec.photo_id), row.path,
                          row.file, sha))
        summary.lines[rec.photo_id] = (row.file, row.line)
    return tasks


def process_study(target: str | Path, settings: Settings, *, reprocess: bool = False,
                  reason: str | None = None, progress: bool = True,
                  on_result: Callable[[Prepared], None] | None = None,
                  engine: str = "local", ray_options: Any = None,
                  engine_options: Any = None) -> ProcessSummary:
    """Process every photo of a study's manifest into the study store.

    Parameters
    ----------
    target : str or Path
        ``manifest.csv`` or the study folder holding it.
    settings : Settings
        Output folder, model, sticker, workers, device.
    reprocess : bool, optional
        Make new result versions for photos that already have one (old ones are kept).
    reason : str, optional
        Why (required with ``reprocess``); stored with the run.
    progress : bool, optional
        Show a progress bar.
    engine : {'local', 'ray'}, optional
        Where the stages run: this machine (:class:`pipeline.engine.Engine`) or a Ray
        cluster (:class:`pipeline.engine_ray.RayEngine`, optional extra ``donorsite[ray]``).
        Either way this process alone writes the store and the files.
    ray_options : pipeline.engine_ray.RayOptions, optional
        Cluster address and actor pool for ``engine='ray'``.
    engine_options : pipeline.engine.EngineOptions, optional
        Network back-end, decoding, batch sizes (default: chosen per machine).

    Returns
    -------
    ProcessSummary
    """
    from calibration import load_sticker

    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {ENGINES}, got {engine!r}")
    if reprocess and not (reason and reason.strip()):
        raise ValueError("--reprocess needs --reason TEXT (kept with the new results)")
    t0 = time.perf_counter()
    manifest = resolve_input(target)
    rows = read_manifest(manifest)
    sticker = load_sticker(settings.sticker)
    summary = ProcessSummary(out_dir=settings.out_dir)
    with RunLock(settings.out_dir) as lock:
        if lock.note:
            summary.notes.append(lock.note)
        _run_locked(rows, manifest, settings, sticker, summary, reprocess=reprocess,
                    reason=reason, progress=progress, on_result=on_result,
                    engine=_create_engine(settings, engine, ray_options, engine_options))
    summary.seconds = time.perf_counter() - t0
    return summary


def _run_locked(rows: list[ManifestRow], manifest: Path, settings: Settings, sticker: Any,
                summary: ProcessSummary, *, reprocess: bool, reason: str | None,
                progress: bool, on_result: Callable[[Prepared], None] | None,
                engine: Any) -> None:
    from pipeline.exports import export_tables

    with Store.open(settings.store_path) as store:
        run_id = store.begin_run(
            software_version=software_version(), git_commit=git_commit(),
            model_name=engine.model_name, model_sha256=engine.model_sha256,
            sticker=sticker.to_dict(), params=engine.params(), reason=reason,
            command=shlex.join(sys.argv))
        tasks = plan_tasks(rows, store, manifest=manifest, run_id=run_id, reprocess=reprocess,
                           summary=summary)
        options = PrepareOptions(sticker=sticker, model_config=engine.model_config,
                                 max_pixels=settings.max_pixels)
        for outcome in engine.run(tasks, options, out_dir=settings.out_dir, progress=progress):
            _store_outcome(store, run_id, outcome, engine, summary)
            if on_result is not None:
                on_result(outcome.prepared)
        store.finish_run(run_id)
        export_tables(store, settings.out_dir)


def _create_engine(settings: Settings, name: str, ray_options: Any,
                   engine_options: Any) -> Any:
    """The local engine, or the Ray one (which says how to install Ray when it is missing)."""
    if name == "ray":
        from pipeline.engine_ray import RayEngine

        return RayEngine.create(settings, ray_options, engine_options)
    from pipeline.engine import Engine

    return Engine.create(settings, engine_options)


def _store_outcome(store: Store, run_id: int, outcome: object, engine: object,
                   summary: ProcessSummary) -> None:
    p: Prepared = outcome.prepared  # type: ignore[attr-defined]
    t = p.task
    summary.processed += 1
    if not p.ok or outcome.error_code:  # type: ignore[attr-defined]
        code = p.error_code or outcome.error_code  # type: ignore[attr-defined]
        msg = p.error_message or outcome.error_message  # type: ignore[attr-defined]
        name, line = summary.lines.get(t.photo_id, (t.name, None))
        if line is not None and summary.manifest_name:
            msg = f"{summary.manifest_name} line {line}: {msg or code}"
        store.save_result(photo_id=t.photo_id, run_id=run_id, version=t.result_version,
                          status="failed", error_code=code, error_message=msg,
                          photo_info=p.photo_info or None)
        summary.failed[code] += 1
        summary.failures.append((name, line, code, msg or code))
        return
    cal = p.calibration
    colour = cal.colour
    qc = set(cal.qc_flags) | set(outcome.qc_flags)  # type: ignore[attr-defined]
    qc |= set((p.photo_info or {}).get("flags", ()))  # decoding's (grayscale_photo, ...)
    m = outcome.measurement  # type: ignore[attr-defined]
    a = getattr(outcome, "assessment", None)
    try:
        store.save_result(
            photo_id=t.photo_id, run_id=run_id, version=t.result_version, status="ok",
            photo_info=p.photo_info,
            calibration={"mm_per_px": cal.mm_per_px, "tilt_deg": cal.tilt_deg,
                         "reprojection_error_px": cal.reprojection_error_px,
                         "reprojection_error_mm": cal.reprojection_error_mm,
                         "markers": tuple(cal.markers_found),
                         "colour_method": getattr(colour, "method", None),
                         "delta_e00_before": float(colour.mean_before_all),
                         "delta_e00_after": float(colour.mean_after_all),
                         "record": cal.to_dict()},
            segmentation={"model_name": engine.model_name,  # type: ignore[attr-defined]
                          "model_sha256": engine.model_sha256,  # type: ignore[attr-defined]
                          "mask_file": outcome.mask_file,  # type: ignore[attr-defined]
                          "overlay_file": outcome.overlay_file,  # type: ignore[attr-defined]
                          "working_shape": "x".join(map(str, p.working.shape[:2]))},
            measurement=m.as_dict(), assessment=None if a is None else a.as_dict(),
            qc_flags=tuple(sorted(qc)))
    except Exception as exc:  # pragma: no cover - the store itself failing stops the batch
        raise StoreError(f"{store.path}: cannot store the result of {t.photo_id}: {exc}"
                         ) from exc
    summary.new += 1


def iter_failures(store: Store) -> Iterable[tuple[str, str, str]]:
    """(name, code, message) of every current failed photo and of the last run's bad rows."""
    for r in store.current_results():
        if r["status"] == "failed":
            yield r["source_name"], r["error_code"], r["error_message"]
    for r in store.conn.execute("SELECT source_name, error_code, error_message FROM "
                                "ingest_errors WHERE run_id=(SELECT MAX(run_id) FROM runs)"):
        yield r[0], r[1], r[2]
