"""``make bench``: benchmarks that write JSON and print a table (never timed tests).

Today: calibration time per 4000×3000 photo on one core (decode excluded). The engine's
end-to-end benchmark (naive loop vs engine, stage by stage) is added by the engine issue.
"""

from __future__ import annotations

import json
import platform
from pathlib import Path
from typing import Any

__all__ = ["run_benchmarks"]


def _bench_photos(n: int, *, work_dir: Path, seed: int = 7) -> list[Path]:
    """A few default-size synthetic photos (generated once into ``work_dir``)."""
    from pipeline.synth import StudyConfig, generate_study

    study = work_dir / f"bench-study-{seed}"
    if not (study / "manifest.csv").exists():
        cfg = StudyConfig.from_cli(seed=seed, subjects=2, days="0,7,14", photos_per_visit=1,
                                   size="4000x3000")
        generate_study(study, cfg, jobs=2, force=True, progress=False)
    import csv

    with (study / "manifest.csv").open() as fh:
        files = [study / r["file"] for r in csv.DictReader(fh)]
    return files[:n]


def run_benchmarks(out_dir: Path, *, n_photos: int = 6) -> dict[str, Any]:
    import numpy as np

    from calibration import load_sticker
    from pipeline.decode import decode_photo

    out_dir.mkdir(parents=True, exist_ok=True)
    sticker = load_sticker()
    photos = _bench_photos(n_photos, work_dir=out_dir)
    results: dict[str, Any] = {"machine": platform.platform(), "processor": platform.processor(),
                               "photos": len(photos)}
    try:
        from calibration.bench import bench_calibration
    except ImportError:
        results["calibration"] = "nothing yet"
    else:
        per_photo = []
        for p in photos:
            rgb = decode_photo(p.read_bytes(), name=p.name).rgb
            per_photo.append(bench_calibration(rgb, sticker, repeats=5))
        ms = [r["median_ms"] for r in per_photo]
        results["calibration"] = {"median_ms_per_photo": float(np.median(ms)),
                                  "max_ms_per_photo": float(np.max(ms)),
                                  "threads": 1, "size": "4000x3000", "per_photo": per_photo}
    results["engine"] = "nothing yet (the inference-engine issue adds it)"
    (out_dir / "bench.json").write_text(json.dumps(results, indent=2, default=float))
    return results
