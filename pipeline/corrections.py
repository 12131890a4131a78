"""Assessors' reads -> a training folder (issue 19, step 1).

Which mask teaches the model, per photo of the processed folder's review tables:

* an adjudication decision wins: ``unassessable`` skips the photo; otherwise the mask of the
  considered read whose estimate is nearest the decided estimate (its corrected mask, or the
  model's mask it accepted);
* without a decision, the newest version of each independent read (hidden repeats ignored):
  any ``unassessable`` skips the photo, reads that disagree (adjudication still open) skip
  it, a corrected mask is preferred to an accepted model mask; a ``needs_correction`` read
  without a mask teaches nothing.

The mask (corrected masks are stored at the review picture's size: nearest-neighbour up to the
photo) is resampled to the model's working scale exactly as at inference: the photo is decoded
by :func:`pipeline.decode.decode_photo`, calibrated against the run's own sticker (the scale
is checked against the stored calibration) and turned into the colour-corrected working
image by :func:`models.preprocess.working_image`; labels by
:func:`models.prepare.resample_labels`. Files are named by the photo's opaque code only.

The held-out part is drawn by subject (all photos of a subject on one side), never by photo;
``reads.json`` records reads, assessors and photo codes per side, without subject or arm.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from pipeline.errors import PipelineError
from pipeline.review.adjudication import disagreements
from pipeline.review.reads import READ_COLUMNS, Read
from pipeline.store import Store

__all__ = ["CorrectionsError", "ChosenMask", "choose_masks", "export_training_data",
           "ExportResult", "READS_FILE"]

READS_FILE = "reads.json"
#: Estimates of independent reads further apart than this are a disagreement (the review
#: app's default adjudication threshold).
DEFAULT_THRESHOLD = 10.0


class CorrectionsError(PipelineError):
    """Reads cannot be turned into training data (names the file and the problem)."""


@dataclass(frozen=True)
class ChosenMask:
    """The mask that teaches the model for one photo, and where it came from."""

    photo_id: str
    result_id: int
    source: str  # 'corrected', 'accepted', 'adjudicated-corrected', 'adjudicated-accepted'
    mask_file: str  # relative to the processed folder
    is_full_resolution: bool
    read_ids: tuple[int, ...]
    assessors: tuple[str, ...]


_LATEST = f"""
SELECT {', '.join('r.' + c for c in READ_COLUMNS)} FROM review_reads r
WHERE r.is_repeat = 0
  AND r.version = (SELECT MAX(version) FROM review_reads q WHERE q.task_code = r.task_code)
ORDER BY r.photo_id, r.assessor, r.task_code
"""


def _model_mask(conn: Any, result_id: int) -> str | None:
    row = conn.execute("SELECT mask_file FROM segmentations WHERE result_id=?",
                       (result_id,)).fetchone()
    return None if row is None else row[0]


def _mask_of(conn: Any, read: Read, prefix: str) -> ChosenMask | None:
    if read.verdict == "needs_correction" and read.corrected_mask_file:
        return ChosenMask(read.photo_id, int(read.result_id), prefix + "corrected",
                          read.corrected_mask_file, False, (read.read_id,), (read.assessor,))
    if read.verdict == "accept" and read.result_id is not None:
        mask = _model_mask(conn, read.result_id)
        if mask:
            return ChosenMask(read.photo_id, int(read.result_id), prefix + "accepted", mask,
                              True, (read.read_id,), (read.assessor,))
    return None


def choose_masks(conn: Any, *, threshold: float = DEFAULT_THRESHOLD
                 ) -> tuple[list[ChosenMask], dict[str, str]]:
    """The teaching mask per photo, and why the other read photos were skipped.

    Returns
    -------
    chosen : list of ChosenMask
        Sorted by photo code.
    skipped : dict
        ``{photo_id: reason}``.
    """
    by_photo: dict[str, list[Read]] = {}
    for row in conn.execute(_LATEST):
        r = Read.from_row(row)
        by_photo.setdefault(r.photo_id, []).append(r)
    chosen: list[ChosenMask] = []
    skipped: dict[str, str] = {}
    for pid, reads in sorted(by_photo.items()):
        dec = conn.execute("SELECT * FROM review_adjudications WHERE photo_id=? ORDER BY "
                           "version DESC LIMIT 1", (pid,)).fetchone()
        if dec is not None:
            if dec["verdict"] == "unassessable":
                skipped[pid] = "adjudicated unassessable"
                continue
            ids = set(json.loads(dec["read_ids"]))
            pool = [r for r in _all_versions(conn, ids) if r.verdict != "unassessable"]
            target = dec["estimate_percent"]
            pool.sort(key=lambda r: (abs((r.estimate_percent or 0.0) - (target or 0.0)),
                                     r.verdict != "needs_correction", r.read_id))
            pick = next((m for r in pool if (m := _mask_of(conn, r, "adjudicated-"))), None)
            if pick is None:
                skipped[pid] = "adjudicated, but no considered read has a usable mask"
                continue
            chosen.append(ChosenMask(pick.photo_id, pick.result_id, pick.source,
                                     pick.mask_file, pick.is_full_resolution,
                                     tuple(sorted(ids)),
                                     (str(dec["coordinator"]), *pick.assessors)))
            continue
        if any(r.verdict == "unassessable" for r in reads):
            skipped[pid] = "unassessable"
            continue
        if disagreements(tuple(reads), threshold=threshold):
            skipped[pid] = "reads disagree and are not adjudicated yet"
            continue
        ordered = sorted(reads, key=lambda r: (r.verdict != "needs_correction", r.assessor))
        pick = next((m for r in ordered if (m := _mask_of(conn, r, ""))), None)
        if pick is None:
            skipped[pid] = "needs correction, but no corrected mask was stored"
            continue
        chosen.append(ChosenMask(pick.photo_id, pick.result_id, pick.source, pick.mask_file,
                                 pick.is_full_resolution, tuple(r.read_id for r in reads),
                                 tuple(sorted({r.assessor for r in reads}))))
    return chosen, skipped


def _all_versions(conn: Any, ids: set[int]) -> list[Read]:
    if not ids:
        return []
    marks = ",".join("?" * len(ids))
    return [Read.from_row(r) for r in conn.execute(
        f"SELECT {', '.join(READ_COLUMNS)} FROM review_reads WHERE read_id IN ({marks})",
        tuple(sorted(ids)))]


@dataclass(frozen=True)
class ExportResult:
    """What :func:`export_training_data` wrote."""

    out_dir: Path
    train_dir: Path
    heldout_dir: Path | None
    n_train: int
    n_heldout: int
    skipped: dict[str, str]


def _split_subjects(subjects: list[str], fraction: float, seed: int) -> set[str]:
    """The held-out subjects: a fixed random ``fraction`` (at least one when asked, and at
    least one left for training)."""
    subs = sorted(set(subjects))
    if fraction <= 0 or len(subs) < 2:
        return set()
    n = min(len(subs) - 1, max(1, int(round(len(subs) * fraction))))
    order = np.random.default_rng(seed).permutation(len(subs))
    return {subs[i] for i in order[:n]}


def _photo_context(conn: Any, photo_id: str, result_id: int) -> dict[str, Any]:
    row = conn.execute(
        "SELECT p.manifest, p.source_name, p.sha256, p.width, p.height, v.subject_id, "
        "c.mm_per_px, u.sticker_json FROM photos p JOIN visits v USING (visit_id) "
        "JOIN results r ON r.photo_id = p.photo_id AND r.result_id = ? "
        "LEFT JOIN calibrations c ON c.result_id = r.result_id "
        "JOIN runs u ON u.run_id = r.run_id WHERE p.photo_id = ?",
        (result_id, photo_id)).fetchone()
    if row is None:
        raise CorrectionsError(f"photo {photo_id}: result {result_id} is not in the store")
    return dict(row)


def _working_pair(out_dir: Path, ctx: dict[str, Any], chosen: ChosenMask, config: Any,
                  stickers: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    from calibration import CalibrationError, calibrate
    from calibration.sticker import sticker_from_dict
    from models.prepare import resample_labels
    from models.preprocess import working_image
    from pipeline.decode import decode_photo, read_bytes

    path = Path(ctx["manifest"]).parent / ctx["source_name"]
    if not path.is_file():
        raise CorrectionsError(f"{path}: the photo of {chosen.photo_id} is gone; training "
                               f"data needs the original photos where they were processed")
    photo = decode_photo(read_bytes(path), name=path.name)
    if photo.sha256 != ctx["sha256"]:
        raise CorrectionsError(f"{path}: the file changed since it was processed (sha256 "
                               f"{photo.sha256[:12]} != {ctx['sha256'][:12]})")
    key = ctx["sticker_json"] or ""
    if key not in stickers:
        if key:
            stickers[key] = sticker_from_dict(json.loads(key), source="run sticker")
        else:
            from calibration import load_sticker

            stickers[key] = load_sticker()
    try:
        cal = calibrate(photo.rgb, stickers[key], source=chosen.photo_id)
    except CalibrationError as exc:
        raise CorrectionsError(f"photo {chosen.photo_id}: calibration failed now ({exc})"
                               ) from None
    stored = ctx["mm_per_px"]
    if stored is not None and abs(cal.mm_per_px - stored) > 1e-4 * stored:
        raise CorrectionsError(f"photo {chosen.photo_id}: calibration gives {cal.mm_per_px:.6f}"
                               f" mm/px but {stored:.6f} was stored; process it again first")
    work, _ = working_image(photo.rgb, cal, config=config)
    mask_path = out_dir / chosen.mask_file
    labels = cv2.imread(str(mask_path), cv2.IMREAD_UNCHANGED)
    if labels is None or labels.ndim != 2:
        raise CorrectionsError(f"{mask_path}: mask missing or unreadable")
    if labels.max(initial=0) >= config.n_classes:
        raise CorrectionsError(f"{mask_path}: holds class {int(labels.max())}, the model has "
                               f"{config.n_classes} classes")
    full = photo.rgb.shape[:2]
    if labels.shape != full:
        labels = cv2.resize(labels, (full[1], full[0]), interpolation=cv2.INTER_NEAREST)
    return work, resample_labels(labels, work.shape[:2], config.n_classes)


def export_training_data(processed: str | Path, out: str | Path, *, config: Any,
                         heldout_fraction: float = 0.3, seed: int = 0,
                         threshold: float = DEFAULT_THRESHOLD,
                         heldout_subjects: int | None = None) -> ExportResult:
    """Write the assessors' masks as training (and held-out) label folders.

    Parameters
    ----------
    processed : path
        A processed folder (``study.sqlite`` with review reads).
    out : path
        New folder: ``train/`` and ``heldout/`` (``images/`` + ``labels/``, as
        :func:`models.datasets.find_samples` reads) and ``reads.json``. Must not exist yet
        (nothing is overwritten).
    config : models.config.ModelConfig
        The model to be trained; its ``px_per_mm`` sets the working scale.
    heldout_fraction : float
        Share of the read subjects held out (by subject).
    heldout_subjects : int, optional
        Exact number of held-out subjects (overrides ``heldout_fraction``).

    Raises
    ------
    CorrectionsError
        No store, no usable read, existing ``out``, or a photo/mask problem (named).
    """
    from pipeline.config import Settings

    processed, out = Path(processed), Path(out)
    store_path = Settings(out_dir=processed).store_path
    if not store_path.is_file():
        raise CorrectionsError(f"{store_path}: no study store (process and review first)")
    if out.exists():
        raise CorrectionsError(f"{out} exists; choose a new folder (nothing is overwritten)")
    if config.px_per_mm is None:
        raise CorrectionsError("the model has no working scale (px_per_mm); cannot resample")
    with Store.open(store_path) as store:
        conn = store.conn
        chosen, skipped = choose_masks(conn, threshold=threshold)
        if not chosen:
            raise CorrectionsError(f"{store_path}: no accepted, corrected or adjudicated read "
                                   f"to learn from ({len(skipped)} read photo(s) skipped)")
        ctxs = {c.photo_id: _photo_context(conn, c.photo_id, c.result_id) for c in chosen}
        subjects = [ctxs[c.photo_id]["subject_id"] for c in chosen]
        if heldout_subjects is not None:
            frac = heldout_subjects / max(1, len(set(subjects)))
            held = _split_subjects(subjects, frac, seed) if heldout_subjects > 0 else set()
        else:
            held = _split_subjects(subjects, heldout_fraction, seed)
        stickers: dict[str, Any] = {}
        records = []
        tmp = out.with_name(f".{out.name}.partial")
        if tmp.exists():
            import shutil

            shutil.rmtree(tmp)
        for c in chosen:
            part = "heldout" if ctxs[c.photo_id]["subject_id"] in held else "train"
            work, labels = _working_pair(processed, ctxs[c.photo_id], c, config, stickers)
            for sub in ("images", "labels"):
                (tmp / part / sub).mkdir(parents=True, exist_ok=True)
            rgb8 = np.round(np.clip(work, 0, 1) * 255).astype(np.uint8)
            cv2.imwrite(str(tmp / part / "images" / f"{c.photo_id}.png"),
                        cv2.cvtColor(rgb8, cv2.COLOR_RGB2BGR))
            cv2.imwrite(str(tmp / part / "labels" / f"{c.photo_id}.png"), labels)
            records.append({**asdict(c), "part": part, "working_shape": list(labels.shape)})
    n_held = sum(r["part"] == "heldout" for r in records)
    summary = {
        "processed": str(processed),
        "px_per_mm": config.px_per_mm,
        "split": "by subject", "seed": seed, "heldout_subjects": len(held),
        "n_train": len(records) - n_held, "n_heldout": n_held,
        "assessors": sorted({a for r in records for a in r["assessors"]}),
        "photos": records,
        "skipped": skipped,
    }
    (tmp / READS_FILE).write_text(json.dumps(summary, indent=2) + "\n")
    tmp.rename(out)
    return ExportResult(out, out / "train", out / "heldout" if n_held else None,
                        len(records) - n_held, n_held, skipped)
