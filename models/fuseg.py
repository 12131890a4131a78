"""The project's fixed split of the FUSeg 2021 training photos, and their training preparation.

The photos are ``../shared/datasets/fuseg/train`` (real foot ulcers with expert wound masks).
FUSeg's own test split is not held by the project (and will be used by others to judge it), so
the 810 training photos are split here, once and for all, by a hash of each photo's stem:
**development** photos (about 80 %) may be used for anything — training, real textures for the
synthetic generator, tuning — and **held-out** photos (about 20 %) are used only to score a
finished model, once. The split depends on nothing but the stem, so it is the same on every
machine and does not change when photos are added.

Examples
--------
>>> fuseg_split("0011") in ("development", "held_out")
True
>>> fuseg_split("0011") == fuseg_split("0011.jpg")
True
"""

from __future__ import annotations

import hashlib
from pathlib import Path

__all__ = ["fuseg_split", "fuseg_stems", "fuseg_part", "prepare_fuseg", "SPLIT_SALT",
           "HELD_OUT_FRACTION", "FUSEG_DEFAULT", "NOMINAL_PX_PER_MM"]

#: Salt of the hash: changing it would make a new split (never do that silently).
SPLIT_SALT = "donorsite-fuseg-split-v1"
#: Share of the photos held out (one in five buckets).
HELD_OUT_FRACTION = 0.2
#: Where the FUSeg training photos usually are, relative to a checkout (CI: beside it).
FUSEG_DEFAULT = Path("../shared/datasets/fuseg/train")


def fuseg_split(stem: str) -> str:
    """``'held_out'`` or ``'development'`` for a FUSeg photo stem such as ``'0011'``."""
    stem = Path(str(stem)).stem
    bucket = int(hashlib.sha256(f"{SPLIT_SALT}:{stem}".encode()).hexdigest(), 16) % 5
    return "held_out" if bucket == 0 else "development"


def fuseg_stems(folder: str | Path, split: str) -> list[str]:
    """Sorted stems of the photos of ``folder/images`` in ``split`` (that have a label)."""
    if split not in ("development", "held_out"):
        raise ValueError(f"split must be 'development' or 'held_out', got {split!r}")
    root = Path(folder)
    if not (root / "images").is_dir() or not (root / "labels").is_dir():
        raise FileNotFoundError(f"{root}: not a FUSeg folder (needs images/ and labels/)")
    labels = {p.stem for p in (root / "labels").glob("*.png")}
    return sorted(p.stem for p in (root / "images").glob("*.jpg")
                  if p.stem in labels and fuseg_split(p.stem) == split)


# ---------------------------------------------------------------------------- preparation
#: Nominal scales (px/mm of the photo) FUSeg photos are assumed to have when prepared for
#: training: the challenge publishes none, and a foot photo 512 px wide spans about 5-15 cm.
NOMINAL_PX_PER_MM = (3.5, 9.0)
#: Development photos kept for checkpoint selection (one in ten, by another hash).
VAL_SALT = "donorsite-fuseg-val-v1"
PREPARE_VERSION = 1


def fuseg_part(stem: str) -> str:
    """``'train'`` or ``'val'`` (checkpoint selection) for a *development* photo stem."""
    stem = Path(str(stem)).stem
    bucket = int(hashlib.sha256(f"{VAL_SALT}:{stem}".encode()).hexdigest(), 16) % 10
    return "val" if bucket == 0 else "train"


def prepare_fuseg(src: str | Path, out: str | Path, *, config, part: str = "train",
                  copies: int = 2, seed: int = 0, progress: bool = False) -> Path:
    """Write a label folder of development FUSeg photos at the model's working scale.

    Each photo is given ``copies`` nominal scales drawn log-uniformly from
    :data:`NOMINAL_PX_PER_MM` (seeded by ``seed`` and the stem) and resampled to
    ``config.px_per_mm`` exactly as the pipeline resamples a calibrated photo (area
    averaging); the wound mask becomes the ``raw`` class and everything else background.
    ``part`` ``'train'`` or ``'val'`` takes that part of the development split (see
    :func:`fuseg_part`); ``'held_out'`` takes the held-out split, for scoring only. Reused
    as is when ``out/prepared.json`` records the same settings.

    Returns
    -------
    Path
        ``out``, a label folder (``images/``, ``labels/``, ``photos.csv``).
    """
    import csv
    import json

    import cv2
    import numpy as np

    from models.errors import DatasetError
    from models.prepare import resample_labels

    if part not in ("train", "val", "held_out"):
        raise DatasetError(f"part must be 'train', 'val' or 'held_out', got {part!r}")
    if "raw" not in config.classes or config.px_per_mm is None:
        raise DatasetError(f"FUSeg preparation needs a model with a 'raw' class and a working "
                           f"scale, got classes {config.classes}, px_per_mm {config.px_per_mm}")
    src, out = Path(src), Path(out)
    if part == "held_out":  # scoring only: never passed to training by the recipe
        stems = fuseg_stems(src, "held_out")
    else:
        stems = [s for s in fuseg_stems(src, "development") if fuseg_part(s) == part]
    stamp = {"version": PREPARE_VERSION, "source": str(src.resolve()), "part": part,
             "copies": copies, "seed": seed, "px_per_mm": config.px_per_mm,
             "nominal_px_per_mm": list(NOMINAL_PX_PER_MM), "n_photos": len(stems)}
    done = out / "prepared.json"
    if done.is_file() and json.loads(done.read_text()) == stamp:
        return out
    (out / "images").mkdir(parents=True, exist_ok=True)
    (out / "labels").mkdir(parents=True, exist_ok=True)
    raw = config.classes.index("raw")
    lo, hi = np.log(NOMINAL_PX_PER_MM[0]), np.log(NOMINAL_PX_PER_MM[1])
    rows = []
    it = stems
    if progress:
        from tqdm import tqdm

        it = tqdm(stems, desc=f"prepare FUSeg {part}", unit="photo")
    for stem in it:
        bgr = cv2.imread(str(src / "images" / f"{stem}.jpg"), cv2.IMREAD_COLOR)
        mask = cv2.imread(str(src / "labels" / f"{stem}.png"), cv2.IMREAD_GRAYSCALE)
        if bgr is None or mask is None or mask.shape != bgr.shape[:2]:
            raise DatasetError(f"{src}: photo or mask of {stem} unreadable or of another size")
        labels = np.where(mask > 127, raw, 0).astype(np.uint8)
        rng = np.random.default_rng([seed, int(stem) if stem.isdigit() else
                                     int(hashlib.sha256(stem.encode()).hexdigest()[:8], 16)])
        for k in range(copies):
            nominal = float(np.exp(rng.uniform(lo, hi)))
            f = config.px_per_mm / nominal
            h, w = (max(1, round(n * f)) for n in bgr.shape[:2])
            img = cv2.resize(bgr, (w, h), interpolation=cv2.INTER_AREA if f < 1
                             else cv2.INTER_LINEAR)
            name = f"fuseg{stem}_{k}"
            cv2.imwrite(str(out / "images" / f"{name}.png"), img)
            cv2.imwrite(str(out / "labels" / f"{name}.png"),
                        resample_labels(labels, (h, w), config.n_classes))
            rows.append({"stem": name, "file": f"images/{stem}.jpg", "skin_type": "",
                         "nominal_px_per_mm": round(nominal, 4), "scale": round(f, 6),
                         "height": h, "width": w})
    with open(out / "photos.csv", "w", newline="") as fh:
        wr = csv.DictWriter(fh, fieldnames=list(rows[0]) if rows else ["stem"])
        wr.writeheader()
        wr.writerows(rows)
    done.write_text(json.dumps(stamp, indent=2) + "\n")
    return out
