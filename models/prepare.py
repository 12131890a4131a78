"""Turn a synthetic study (``donorsite synth``) into a label folder of working images.

For every photo of ``truth/photos.csv``: decode it with its EXIF orientation applied,
calibrate it against the sticker, build the working image with
:func:`models.preprocess.working_image` (the same function the pipeline uses), and resample
the truth mask to the working size. Photos whose calibration fails are skipped and counted.

The output folder holds ``images/<stem>.png`` (8-bit working image), ``labels/<stem>.png``
(class indices 0 background, 1 epithelialized, 2 raw), ``photos.csv`` (per-photo scale,
skin type, calibration scale) and ``prepared.json`` (what was done, for the cache check).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from models.config import ModelConfig
from models.errors import DatasetError
from models.preprocess import to_working, working_image

__all__ = ["PrepareResult", "prepare_synth_study", "is_synth_study", "decode_photo",
           "resample_labels", "PREPARE_VERSION"]

PREPARE_VERSION = 2
MODES = ("calibrated", "truth")


@dataclass(frozen=True)
class PrepareResult:
    """What :func:`prepare_synth_study` wrote: ``n_written`` pairs, ``skipped`` (file, reason)."""

    out_dir: Path
    n_photos: int
    n_written: int
    skipped: tuple[tuple[str, str], ...]
    cached: bool = False


def is_synth_study(folder: str | Path) -> bool:
    """Whether ``folder`` is a study written by ``donorsite synth`` (manifest + truth)."""
    p = Path(folder)
    return (p / "manifest.csv").is_file() and (p / "truth" / "photos.csv").is_file()


def decode_photo(path: str | Path) -> np.ndarray:
    """A photo as uint8 RGB (H, W, 3) with its EXIF orientation applied."""
    from PIL import Image, ImageOps

    try:
        with Image.open(path) as im:
            return np.asarray(ImageOps.exif_transpose(im).convert("RGB"))
    except (OSError, ValueError) as exc:
        raise DatasetError(f"cannot decode photo {path}: {exc}") from None


def resample_labels(labels: np.ndarray, shape: tuple[int, int], n_classes: int) -> np.ndarray:
    """Resample a label map to ``shape`` (H, W) by area-weighted majority.

    Each class's indicator is area-averaged (``cv2.INTER_AREA``, as the image is) and the
    largest share wins, so a working pixel gets the class covering most of it; enlarging
    falls back to nearest neighbour.

    Examples
    --------
    >>> lab = np.zeros((8, 8), np.uint8); lab[:, 5:] = 2
    >>> resample_labels(lab, (2, 2), 3).tolist()
    [[0, 2], [0, 2]]
    """
    h, w = shape
    if labels.shape == (h, w):
        return labels.astype(np.uint8)
    if h >= labels.shape[0] and w >= labels.shape[1]:
        return cv2.resize(labels, (w, h), interpolation=cv2.INTER_NEAREST)
    best = np.zeros((h, w), np.float32)
    out = np.zeros((h, w), np.uint8)
    for k in range(n_classes):
        share = cv2.resize((labels == k).astype(np.float32), (w, h),
                           interpolation=cv2.INTER_AREA)
        better = share > best
        out[better] = k
        best[better] = share[better]
    return out


def _read_rows(study: Path) -> list[dict[str, str]]:
    with open(study / "truth" / "photos.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        raise DatasetError(f"{study}/truth/photos.csv lists no photos")
    return rows


def _prepare_one(args: tuple[Path, Path, dict[str, str], ModelConfig, Any, str]
                 ) -> tuple[str, str | None, dict[str, Any]]:
    study, out, row, config, sticker, mode = args
    file = row["file"]
    stem = Path(file).stem
    photo = decode_photo(study / file)
    mask_file = row.get("mask_file") or f"truth/masks/{stem}.png"
    truth = cv2.imread(str(study / mask_file), cv2.IMREAD_UNCHANGED)
    if truth is None:
        return file, f"truth mask {mask_file} unreadable", {}
    if truth.shape != photo.shape[:2]:
        return file, f"truth mask {truth.shape} does not match photo {photo.shape[:2]}", {}
    if mode == "calibrated":
        from calibration import CalibrationError, calibrate

        try:
            cal = calibrate(photo, sticker, source=file)
        except CalibrationError as exc:
            return file, f"calibration failed: {type(exc).__name__}: {exc}", {}
        work, scale = working_image(photo, cal, config=config)
        mm_per_px = cal.mm_per_px
    else:  # development fallback: the truth scale, no colour correction
        mm_per_px = 1.0 / float(row["px_per_mm"])
        work, scale = to_working(photo, mm_per_px=mm_per_px, config=config)
    labels = resample_labels(truth, work.shape[:2], config.n_classes)
    rgb8 = np.round(np.clip(work, 0, 1) * 255).astype(np.uint8)
    cv2.imwrite(str(out / "images" / f"{stem}.png"), cv2.cvtColor(rgb8, cv2.COLOR_RGB2BGR))
    cv2.imwrite(str(out / "labels" / f"{stem}.png"), labels)
    meta = {"stem": stem, "file": file, "skin_type": row.get("skin_type", ""),
            "mm_per_px": round(mm_per_px, 6), "scale": round(scale, 6),
            "height": work.shape[0], "width": work.shape[1]}
    return file, None, meta


def _run(jobs: int, tasks: list) -> Iterator[tuple[str, str | None, dict[str, Any]]]:
    if jobs <= 1:
        for t in tasks:
            yield _prepare_one(t)
        return
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        yield from pool.map(_prepare_one, tasks, chunksize=2)


def prepare_synth_study(study_dir: str | Path, out_dir: str | Path, *, config: ModelConfig,
                        sticker: Any = None, mode: str = "calibrated", jobs: int = 1,
                        progress: bool = False) -> PrepareResult:
    """Write the working images and label maps of a synthetic study to ``out_dir``.

    Parameters
    ----------
    study_dir : path
        A study written by ``donorsite synth`` (``manifest.csv``, ``truth/``).
    out_dir : path
        The label folder to write; reused as is when it was already prepared the same way.
    config : ModelConfig
        Its ``px_per_mm`` sets the working scale; its classes must number 3.
    sticker : calibration.StickerSpec, optional
        Default: the trial's DS-CAL-1.
    mode : {'calibrated', 'truth'}
        ``'calibrated'``: the real chain (calibrate, colour-correct, working scale from the
        calibration). ``'truth'``: development fallback with the generator's true scale and
        no colour correction (not for shipped models).
    jobs : int
        Worker processes.

    Returns
    -------
    PrepareResult

    Examples
    --------
    >>> import tempfile
    >>> is_synth_study(tempfile.mkdtemp())
    False
    """
    study, out = Path(study_dir), Path(out_dir)
    if mode not in MODES:
        raise DatasetError(f"mode must be one of {MODES}, got {mode!r}")
    if not is_synth_study(study):
        raise DatasetError(f"{study} is not a synthetic study (needs manifest.csv and "
                           f"truth/photos.csv; make one with `donorsite synth`)")
    if config.px_per_mm is None:
        raise DatasetError(f"preparing {study} needs a model config with a working scale "
                           f"(px_per_mm), got None")
    stamp = {"version": PREPARE_VERSION, "study": str(study.resolve()), "mode": mode,
             "px_per_mm": config.px_per_mm, "n_classes": config.n_classes}
    done = out / "prepared.json"
    if done.is_file():
        old = json.loads(done.read_text())
        if {k: old.get(k) for k in stamp} == stamp:
            return PrepareResult(out, old["n_photos"], old["n_written"],
                                 tuple(tuple(x) for x in old["skipped"]), cached=True)
    if mode == "calibrated" and sticker is None:
        from calibration import load_sticker

        sticker = load_sticker()
    rows = _read_rows(study)
    (out / "images").mkdir(parents=True, exist_ok=True)
    (out / "labels").mkdir(parents=True, exist_ok=True)
    tasks = [(study, out, r, config, sticker, mode) for r in rows]
    skipped, metas = [], []
    results = _run(jobs, tasks)
    if progress:
        from tqdm import tqdm

        results = tqdm(results, total=len(tasks), desc=f"prepare {study.name}", unit="photo")
    for file, reason, meta in results:
        if reason is None:
            metas.append(meta)
        else:
            skipped.append((file, reason))
    if metas:
        with open(out / "photos.csv", "w", newline="") as f:
            wr = csv.DictWriter(f, fieldnames=list(metas[0]))
            wr.writeheader()
            wr.writerows(metas)
    result = PrepareResult(out, len(rows), len(metas), tuple(skipped))
    done.write_text(json.dumps({**stamp, "n_photos": len(rows), "n_written": len(metas),
                                "skipped": skipped}, indent=2) + "\n")
    return result
