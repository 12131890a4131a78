"""The project's fixed split of the FUSeg 2021 training photos (``../shared/datasets/fuseg``).

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

__all__ = ["fuseg_split", "fuseg_stems", "SPLIT_SALT", "HELD_OUT_FRACTION", "FUSEG_DEFAULT"]

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
