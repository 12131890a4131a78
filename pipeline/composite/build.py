"""The two composite studies: FUSeg photos beside the sticker, and out-of-distribution
pictures (``skimage.data`` scenes, intact-skin crops) beside the sticker with no donor site.

Every photo is drawn from a generator seeded by ``(seed, stream, source)``, so a study does not
depend on which other photos it holds.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from calibration.sticker import load_sticker
from models.fuseg import SPLIT_SALT
from pipeline.composite.canvas import compose
from pipeline.composite.errors import CompositeError
from pipeline.composite.sources import (
    SCENES,
    fuseg_photos,
    photo_scale,
    read_fuseg,
    scene,
    skin_crop,
    stem_seed,
    trim_padding,
)
from pipeline.composite.study import PhotoItem, write_study
from pipeline.synth.scene import LABELS

__all__ = ["make_fuseg_study", "make_ood_study", "FUSEG_KIND", "OOD_KIND"]

FUSEG_KIND = "fuseg_composite"
OOD_KIND = "ood_composite"
_FUSEG, _SCENE, _SKIN = 1, 2, 3


def _check_scale(px_per_mm: float) -> None:
    if not 2.0 <= px_per_mm <= 40.0:
        raise CompositeError(f"px_per_mm must be between 2 and 40, got {px_per_mm}")


def make_fuseg_study(src: str | Path, out: str | Path, *, part: str = "held_out",
                     px_per_mm: float = 6.0, varied: bool = False, seed: int = 0,
                     limit: int | None = None, sticker: str | Path | None = None,
                     force: bool = False) -> int:
    """FUSeg photos of ``part`` composited beside the sticker; truth raw = the expert wound
    mask, epithelialized = none, background = everything else. Returns the photo count."""
    _check_scale(px_per_mm)
    src = Path(src)
    stems = fuseg_photos(src, part, limit=limit)
    spec = load_sticker(sticker)

    def items() -> Iterator[PhotoItem]:
        for stem in stems:
            rgb, wound = read_fuseg(src, stem)
            rng = np.random.default_rng([seed, _FUSEG, stem_seed(stem)])
            labels = np.where(wound, LABELS["raw"], LABELS["background"]).astype(np.uint8)
            raw_px = int(labels.astype(bool).sum())
            rgb, labels, box = trim_padding(rgb, labels)
            if int(labels.astype(bool).sum()) != raw_px:
                raise CompositeError(f"{src}: trimming the padding of {stem} cut its wound")
            comp = compose(rgb, labels, spec=spec, px_per_mm=px_per_mm,
                           content_px_per_mm=photo_scale(rng, varied), rng=rng, varied=varied)
            comp.meta["source_box"] = box
            yield f"FUSEG{stem}", "foot", f"fuseg/{stem}", "fuseg", comp

    n = write_study(out, items(), force=force, study={
        "kind": FUSEG_KIND, "source": str(src.resolve()), "part": part,
        "split_salt": SPLIT_SALT, "px_per_mm": px_per_mm, "varied": varied, "seed": seed,
        "limit": limit, "sticker": spec.to_dict(),
        "notes": {"truth": "raw (2) = FUSeg expert wound mask, epithelialized (1) = none, "
                           "background (0) = everything else (photo and canvas)",
                  "healed_percent": "0 for every photo (an ulcer is all raw)"}})
    return n


def make_ood_study(out: str | Path, *, src: str | Path | None = None, px_per_mm: float = 6.0,
                   placements: int = 3, skin_crops: int = 48, seed: int = 0,
                   scenes: tuple[str, ...] = SCENES, sticker: str | Path | None = None,
                   force: bool = False) -> int:
    """Pictures with a sticker and no donor site: each ``skimage.data`` scene in
    ``placements`` placements (the first plain, the others ``varied``), and up to
    ``skin_crops`` intact-skin crops of FUSeg held-out photos (from ``src``; none when it is
    None). Truth: background everywhere. Returns the photo count."""
    _check_scale(px_per_mm)
    if placements < 1:
        raise CompositeError(f"placements must be >= 1, got {placements}")
    spec = load_sticker(sticker)

    def items() -> Iterator[PhotoItem]:
        for name in scenes:
            img = scene(name)
            for k in range(placements):
                rng = np.random.default_rng([seed, _SCENE, stem_seed(name), k])
                long_px = rng.uniform(450, 800)  # the picture's long side on the canvas
                comp = compose(img, None, spec=spec, px_per_mm=px_per_mm,
                               content_px_per_mm=px_per_mm * max(img.shape[:2]) / long_px,
                               rng=rng, varied=k > 0)
                yield (f"OOD-{name.replace('_', '')}-{k + 1}", "scene", f"skimage.data/{name}",
                       "scene", comp)
        if src is None or skin_crops <= 0:
            return
        made = 0
        for stem in fuseg_photos(Path(src), "held_out"):
            rgb, wound = read_fuseg(Path(src), stem)
            crop = skin_crop(rgb, wound)
            if crop is None:
                continue
            rng = np.random.default_rng([seed, _SKIN, stem_seed(stem)])
            long_px = rng.uniform(450, 700)
            comp = compose(crop, None, spec=spec, px_per_mm=px_per_mm,
                           content_px_per_mm=px_per_mm * crop.shape[0] / long_px, rng=rng,
                           varied=made % 2 == 1)
            yield f"OOD-skin{stem}", "skin", f"fuseg/{stem}", "skin_crop", comp
            made += 1
            if made >= skin_crops:
                return

    return write_study(out, items(), force=force, study={
        "kind": OOD_KIND, "source": None if src is None else str(Path(src).resolve()),
        "px_per_mm": px_per_mm, "placements": placements, "skin_crops": skin_crops,
        "scenes": list(scenes), "seed": seed, "sticker": spec.to_dict(),
        "notes": {"truth": "no donor site: background (0) everywhere",
                  "target": ">= 95 % flagged (low_confidence / out_of_distribution) or "
                            "'no donor site found'"}})
