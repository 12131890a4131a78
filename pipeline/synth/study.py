"""Generate a synthetic, trial-shaped donor-site study with its ground truth.

Subjects are randomized 1:1 to ``msc`` (heals faster on average) and ``control``; each has a
skin type, a donor site and a healing speed. Every photo is made independently from
generators seeded by ``(seed, subject, visit, photo)``, so a study is identical whatever the
number of worker processes. The study is written to a temporary sibling folder and moved into
place at the end, so an interrupted run never leaves a half-written study behind.
"""

from __future__ import annotations

import csv
import json
import math
import multiprocessing
import shutil
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from calibration.sticker import StickerSpec, load_sticker
from pipeline.synth.appearance_b import build_layers_b, build_palette_b, build_site_b
from pipeline.synth.camera import develop, sample_capture, write_jpeg
from pipeline.synth.config import StudyConfig
from pipeline.synth.errors import StudyExistsError
from pipeline.synth.fields import apply_h
from pipeline.synth.scene import LABELS, Visit, render_scene, sample_visit, scene_points
from pipeline.synth.scene_b import render_scene_b
from pipeline.synth.skin import SkinModel, build_skin
from pipeline.synth.skin_b import build_skin_b
from pipeline.synth.tissue import (
    SiteModel,
    TissueLayers,
    TissuePalette,
    build_palette,
    build_site,
    build_tissue_layers,
)

__all__ = ["Subject", "StudyResult", "plan_subjects", "generate_study", "PHOTO_COLUMNS",
           "MANIFEST_COLUMNS", "SUBJECT_COLUMNS"]

MANIFEST_COLUMNS = ("subject_id", "visit_day", "site", "file")
PHOTO_COLUMNS = ("file", "subject_id", "visit_day", "photo_index", "mask_file", "donor_area_mm2",
                 "epithelialized_area_mm2", "raw_area_mm2", "healed_percent", "skin_type",
                 "tilt_deg", "rotation_deg", "px_per_mm", "cct_k", "exposure_ev", "jpeg_quality",
                 "exif_orientation", "blur_sigma_px", "noise_sigma")
SUBJECT_COLUMNS = ("subject_id", "skin_type", "site", "heal_rate", "t95_day", "t100_day")
ARMS = ("msc", "control")
# stream identifiers of the random generators (never reuse one for another purpose)
_PLAN, _SITE, _SKIN, _PALETTE, _CRUST, _VISIT, _TISSUE, _CAMERA, _RENDER = range(9)


@dataclass(frozen=True)
class Subject:
    """A planned subject (everything the study draws before any photo)."""

    index: int
    subject_id: str
    arm: str
    skin_type: int
    site: str
    width_mm: float
    length_mm: float
    t95_days: float
    crust: bool


@dataclass(frozen=True)
class StudyResult:
    """Where the study went, how many photos it has and how long it took."""

    root: Path
    n_photos: int
    seconds: float


def _rng(seed: int, stream: int, *ids: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, stream, *ids]))


def _apportion(n: int, weights: tuple[float, ...]) -> list[int]:
    """Largest-remainder apportionment of ``n`` items to ``weights``."""
    w = np.asarray(weights, dtype=float) / sum(weights)
    base = np.floor(w * n).astype(int)
    order = np.argsort(-(w * n - base), kind="stable")
    base[order[: n - base.sum()]] += 1
    return base.tolist()


def plan_subjects(cfg: StudyConfig) -> list[Subject]:
    """Draw the subjects: arm (balanced 1:1), skin type (balanced to the weights), site,
    site size, healing speed.

    Examples
    --------
    >>> subjects = plan_subjects(StudyConfig(seed=1, n_subjects=4))
    >>> sorted(s.arm for s in subjects)
    ['control', 'control', 'msc', 'msc']
    """
    rng = _rng(cfg.seed, _PLAN)
    n = cfg.n_subjects
    arms = ["msc"] * (n // 2) + ["control"] * (n - n // 2)
    rng.shuffle(arms)
    types = [t + 1 for t, k in enumerate(_apportion(n, cfg.skin_type_weights)) for _ in range(k)]
    rng.shuffle(types)
    z = _stratified_normal_scores(arms, _rng(cfg.seed, _PLAN, 1))
    digits = max(2, len(str(n)))
    subjects = []
    for i in range(n):
        width = rng.uniform(*cfg.site_width_mm)
        lo, hi = cfg.site_length_mm
        length = rng.uniform(max(lo, 1.3 * width), max(hi, 1.3 * width))
        median = cfg.msc_t95_days if arms[i] == "msc" else cfg.control_t95_days
        subjects.append(Subject(
            index=i, subject_id=f"S{i + 1:0{digits}d}", arm=arms[i], skin_type=int(types[i]),
            site=str(rng.choice(cfg.sites)), width_mm=float(width), length_mm=float(length),
            t95_days=float(median * math.exp(cfg.t95_log_sd * z[i])),
            crust=bool(rng.uniform() < cfg.crust_probability)))
    return subjects


def _stratified_normal_scores(arms: list[str], rng: np.random.Generator) -> list[float]:
    """Standard-normal scores drawn by stratified sampling within each arm.

    Each arm's k subjects get one draw from each of k equal-probability strata of N(0, 1), in
    random order, so every arm's sample follows its designed healing-time distribution
    closely (a demo study of 10 subjects per arm then shows the designed arm effect instead
    of a chance reversal), while subjects still differ at random.
    """
    from scipy.stats import norm

    scores = [0.0] * len(arms)
    for arm in sorted(set(arms)):
        idx = [i for i, a in enumerate(arms) if a == arm]
        k = len(idx)
        u = (rng.permutation(k) + rng.uniform(0.05, 0.95, k)) / k
        for i, q in zip(idx, u, strict=True):
            scores[i] = float(norm.ppf(q))
    return scores


# --------------------------------------------------------------------------- per photo
@lru_cache(maxsize=2)
def _subject_assets(cfg: StudyConfig, subject: Subject
                    ) -> tuple[SiteModel, SkinModel, TissuePalette, StickerSpec]:
    """Site, skin, palette and sticker of a subject (appearance model B's own types for
    ``appearance="b"``; its draws use the same generator streams)."""
    s = subject.index
    if cfg.appearance == "b":
        site = build_site_b(_rng(cfg.seed, _SITE, s), width_mm=subject.width_mm,
                            length_mm=subject.length_mm, t95_days=subject.t95_days)
        skin_b = build_skin_b(_rng(cfg.seed, _SKIN, s), subject.skin_type, site)
        palette_b = build_palette_b(_rng(cfg.seed, _PALETTE, s), skin_b.base_rgb,
                                    crust=subject.crust)
        return site, skin_b, palette_b, load_sticker(cfg.sticker)  # type: ignore[return-value]
    wide = cfg.variety == "wide"
    site = build_site(_rng(cfg.seed, _SITE, s), width_mm=subject.width_mm,
                      length_mm=subject.length_mm, t95_days=subject.t95_days, wide=wide)
    skin = build_skin(_rng(cfg.seed, _SKIN, s), subject.skin_type, site)
    palette = build_palette(_rng(cfg.seed, _PALETTE, s), skin.base_rgb, crust=subject.crust,
                            wide=wide)
    return site, skin, palette, load_sticker(cfg.sticker)


@lru_cache(maxsize=1)
def _visit(cfg: StudyConfig, subject: Subject, visit: int) -> tuple[Visit, TissueLayers]:
    site, _, palette, spec = _subject_assets(cfg, subject)
    day = cfg.visit_days[visit]
    v = sample_visit(_rng(cfg.seed, _VISIT, subject.index, visit), site, spec, day=day,
                     drape_probability=cfg.drape_probability)
    build = build_layers_b if cfg.appearance == "b" else build_tissue_layers
    layers = build(_rng(cfg.seed, _TISSUE, subject.index, visit),
                   _rng(cfg.seed, _CRUST, subject.index), site, palette, day)
    return v, layers


@lru_cache(maxsize=1)
def _software() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"donorsite-synth {version('donorsite')}"
    except PackageNotFoundError:  # pragma: no cover - running from an uninstalled tree
        return "donorsite-synth 0+unknown"


def _make_photo(task: tuple[StudyConfig, Subject, int, int, str]) -> dict[str, Any]:
    cfg, subject, vi, pi, root_str = task
    root = Path(root_str)
    site, skin, palette, spec = _subject_assets(cfg, subject)
    visit, layers = _visit(cfg, subject, vi)
    s = subject.index
    plane_from_site = np.linalg.inv(visit.site_from_plane_h)
    centre = apply_h(plane_from_site, np.array([[0.0, 0.0], [1.0, 0.0]]))
    cap = sample_capture(_rng(cfg.seed, _CAMERA, s, vi, pi), cfg,
                         scene_pts=scene_points(site, spec, visit), site_centre=centre[0],
                         site_axis=centre[1] - centre[0],
                         card_centre=np.array([spec.card_width_mm / 2, spec.card_height_mm / 2]))
    rng = _rng(cfg.seed, _RENDER, s, vi, pi)
    render = render_scene_b if cfg.appearance == "b" else render_scene
    rgb, labels = render(site=site, skin=skin, palette=palette, layers=layers, visit=visit,
                         cap=cap, spec=spec, width=cfg.width, height=cfg.height, rng=rng)
    photo = develop(rgb, cap, rng)
    del rgb
    day = cfg.visit_days[vi]
    stem = f"{subject.subject_id}_D{day:03d}_{pi + 1}"
    file = f"photos/{subject.subject_id}/{stem}.jpg"
    mask_file = f"truth/masks/{stem}.png"
    (root / "photos" / subject.subject_id).mkdir(parents=True, exist_ok=True)
    write_jpeg(root / file, photo, quality=cap.jpeg_quality, orientation=cap.exif_orientation,
               software=_software())
    if not cv2.imwrite(str(root / mask_file), labels, [cv2.IMWRITE_PNG_COMPRESSION, 3]):
        raise OSError(f"{root / mask_file}: could not write the mask")
    donor, epi, raw = site.areas_mm2(day)
    row = {"file": file, "subject_id": subject.subject_id, "visit_day": day,
           "photo_index": pi + 1, "mask_file": mask_file, "donor_area_mm2": round(donor, 3),
           "epithelialized_area_mm2": round(epi, 3), "raw_area_mm2": round(raw, 3),
           "healed_percent": round(100.0 * epi / donor, 4), "skin_type": subject.skin_type,
           "tilt_deg": round(cap.tilt_deg, 3), "rotation_deg": round(cap.rotation_deg, 3),
           "px_per_mm": round(cap.px_per_mm, 4), "cct_k": round(cap.cct_k, 1),
           "exposure_ev": round(cap.exposure_ev, 4), "jpeg_quality": cap.jpeg_quality,
           "exif_orientation": cap.exif_orientation, "blur_sigma_px": round(cap.blur_sigma_px, 4),
           "noise_sigma": round(cap.noise_sigma, 6)}
    record = {
        **row, "homography_plane_to_image": cap.h.tolist(),
        "homography_note": "sticker card mm (origin card top-left, x right, y down) -> "
                           "oriented image px, pixel centres at integer coordinates",
        "image_size": {"width": cfg.width, "height": cfg.height},
        "site": subject.site, "site_from_plane": visit.site_from_plane_h.tolist(),
        "site_size_mm": {"width": subject.width_mm, "length": subject.length_mm},
        "drape": visit.drape is not None, "sticker": spec.name, "labels": LABELS,
        "capture": cap.to_dict()}
    (root / "truth" / "photos" / f"{stem}.json").write_text(json.dumps(record, indent=1) + "\n")
    return {"row": row, "t95": site.healed_day(0.95), "t100": site.healed_day(1.0)}


def _init_worker() -> None:
    cv2.setNumThreads(1)


# --------------------------------------------------------------------------- the study
def _check_target(out: Path, force: bool) -> None:
    if out.exists() and not out.is_dir():
        raise StudyExistsError(f"{out}: exists and is not a folder")
    if out.is_dir() and any(out.iterdir()):
        if not force:
            raise StudyExistsError(f"{out}: the folder already holds a study (or other files); "
                                   "pass --force (force=True) to replace it")
        if not ((out / "manifest.csv").exists() or (out / "study.json").exists()):
            raise StudyExistsError(f"{out}: the folder is not empty and does not look like a "
                                   "study (no manifest.csv or study.json); refusing to replace it")


def _write_csv(path: Path, columns: tuple[str, ...], rows: list[dict[str, Any]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns, extrasaction="raise", lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def generate_study(out_dir: str | Path, cfg: StudyConfig, *, jobs: int = 1, force: bool = False,
                   progress: bool = False) -> StudyResult:
    """Generate the study ``cfg`` into ``out_dir``.

    Parameters
    ----------
    out_dir : str or Path
        The study folder (created; must not exist or be empty unless ``force``).
    cfg : StudyConfig
    jobs : int, optional
        Worker processes; the result does not depend on it.
    force : bool, optional
        Replace an existing study in ``out_dir`` (never a folder that is not a study).
    progress : bool, optional
        Show a progress bar (tqdm) on stderr.

    Notes
    -----
    With ``jobs > 1`` the photos are made in ``spawn``-ed worker processes, so a calling
    script must guard its entry point with ``if __name__ == "__main__":`` (as always with
    multiprocessing).

    Returns
    -------
    StudyResult

    Raises
    ------
    StudyExistsError
        ``out_dir`` holds a study (or anything) and ``force`` is false, or it holds something
        that is not a study.

    Examples
    --------
    >>> import tempfile
    >>> cfg = StudyConfig(seed=5, n_subjects=2, visit_days=(0, 7), width=160, height=120)
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     generate_study(Path(tmp) / "s", cfg).n_photos
    4
    """
    from tqdm import tqdm

    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"jobs must be a positive integer, got {jobs!r}")
    t_start = time.perf_counter()
    out = Path(out_dir)
    _check_target(out, force)
    load_sticker(cfg.sticker)  # fail early on a bad sticker description
    subjects = plan_subjects(cfg)
    partial = out.parent / f".{out.name}.partial"
    if partial.exists():
        shutil.rmtree(partial)
    (partial / "truth" / "masks").mkdir(parents=True)
    (partial / "truth" / "photos").mkdir(parents=True)
    tasks = [(cfg, subj, vi, pi, str(partial)) for subj in subjects
             for vi in range(len(cfg.visit_days)) for pi in range(cfg.photos_per_visit)]
    results: list[dict[str, Any]] = []
    try:
        with tqdm(total=len(tasks), unit="photo", desc=f"synth {out.name}", disable=not progress,
                  leave=False) as bar:
            if jobs == 1:
                for task in tasks:
                    results.append(_make_photo(task))
                    bar.update()
            else:
                per_subject = len(cfg.visit_days) * cfg.photos_per_visit
                chunk = max(1, min(per_subject, math.ceil(len(tasks) / (4 * jobs))))
                ctx = multiprocessing.get_context("spawn")
                with ctx.Pool(min(jobs, len(tasks)), initializer=_init_worker) as pool:
                    for res in pool.imap_unordered(_make_photo, tasks, chunksize=chunk):
                        results.append(res)
                        bar.update()
        _write_tables(partial, cfg, subjects, results)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    finally:
        _subject_assets.cache_clear()
        _visit.cache_clear()
    if out.exists():
        shutil.rmtree(out)
    partial.rename(out)
    return StudyResult(root=out, n_photos=len(results), seconds=time.perf_counter() - t_start)


def _write_tables(root: Path, cfg: StudyConfig, subjects: list[Subject],
                  results: list[dict[str, Any]]) -> None:
    by_id = {s.subject_id: s for s in subjects}
    rows = sorted((r["row"] for r in results),
                  key=lambda r: (r["subject_id"], r["visit_day"], r["photo_index"]))
    _write_csv(root / "manifest.csv", MANIFEST_COLUMNS,
               [{"subject_id": r["subject_id"], "visit_day": r["visit_day"],
                 "site": by_id[r["subject_id"]].site, "file": r["file"]} for r in rows])
    _write_csv(root / "allocation.csv", ("subject_id", "arm"),
               [{"subject_id": s.subject_id, "arm": s.arm} for s in subjects])
    _write_csv(root / "truth" / "photos.csv", PHOTO_COLUMNS, rows)
    healing = {r["row"]["subject_id"]: (r["t95"], r["t100"]) for r in results}
    _write_csv(root / "truth" / "subjects.csv", SUBJECT_COLUMNS, [
        {"subject_id": s.subject_id, "skin_type": s.skin_type, "site": s.site,
         "heal_rate": round(cfg.control_t95_days / healing[s.subject_id][0], 4),
         "t95_day": round(healing[s.subject_id][0], 4),
         "t100_day": round(healing[s.subject_id][1], 4)} for s in subjects])
    study = {
        "generator": _software(), "seed": cfg.seed, "config": cfg.to_dict(),
        "n_subjects": cfg.n_subjects, "n_photos": len(rows), "arms": list(ARMS),
        "labels": LABELS, "sticker": load_sticker(cfg.sticker).to_dict(),
        "notes": {
            "heal_rate": "control arm's median t95 / this subject's t95 (1 = a typical "
                         "control subject; larger heals faster)",
            "t95_day, t100_day": "continuous day on which 95 % / 100 % of the donor area is "
                                 "epithelialized (truth grid of 0.1 mm)",
            "areas": "mm² in the skin plane; healed_percent = 100 * epi / (epi + raw)",
            "crust": "crust lies on raw tissue and is labelled raw (2)",
            "rotation_deg": "direction of the card's x axis in the oriented image, degrees "
                            "clockwise from the image's +x axis",
            "px_per_mm": "sqrt |det J| of plane -> oriented image at the donor site's centre"}}
    (root / "study.json").write_text(json.dumps(study, indent=1, ensure_ascii=False) + "\n",
                                     encoding="utf-8")
