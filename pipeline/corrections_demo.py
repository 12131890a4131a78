"""The corrections loop shown on a "new site": ``python -m pipeline.corrections_demo OUT``.

A site whose photos look unlike the base model's training data (``donorsite synth --variety
wide``) is processed with the base model; simulated assessors correct N = 10, 20, 40 of its
photos (truth masks written through the review app's own storage); each N is exported,
fine-tuned (the original kind of data mixed in), guarded on the original held-out study, and
scored on the site's held-out subjects, whom no assessor read. Writes ``curve.json`` and
``curve.png`` (Dice and healed % error p95 against N) into OUT and, with ``--docs``, copies
them to ``docs/``.
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["run_demo", "subset_study", "plot_curve", "main"]


def subset_study(study: Path, out: Path, subjects: set[str]) -> Path:
    """A synthetic study holding only ``subjects``'s photos (files linked, not copied)."""
    with open(study / "truth" / "photos.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["subject_id"] in subjects]
    (out / "truth").mkdir(parents=True, exist_ok=True)
    with open(out / "truth" / "photos.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    with open(study / "manifest.csv", newline="") as f:
        man = [r for r in csv.DictReader(f) if r["subject_id"] in subjects]
    with open(out / "manifest.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(man[0]))
        w.writeheader()
        w.writerows(man)
    for r in rows:
        for rel in (r["file"], r["mask_file"]):
            dst = out / rel
            dst.parent.mkdir(parents=True, exist_ok=True)
            if not dst.exists():
                dst.symlink_to((study / rel).resolve())
    return out


def plot_curve(curve: dict[str, Any], path: Path) -> Path:
    """Dice and healed % error p95 on the site's held-out subjects against N."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ns = [0] + [p["n"] for p in curve["points"]]
    site = [curve["base"]["site"]] + [p["site"] for p in curve["points"]]
    fig, ax1 = plt.subplots(figsize=(5.5, 3.4), dpi=100)
    ax1.plot(ns, [s["dice"] for s in site], "o-", color="tab:blue", label="Dice (site)")
    ax1.set_xlabel("corrected photos from the new site (N)")
    ax1.set_ylabel("Dice", color="tab:blue")
    ax1.set_ylim(0, 1)
    ax2 = ax1.twinx()
    ax2.plot(ns, [s["healed_p95"] for s in site], "s--", color="tab:red",
             label="healed % error p95 (site)")
    ax2.set_ylabel("healed % abs. error p95", color="tab:red")
    ax1.set_xticks(ns)
    ax1.set_title("new site, held-out subjects (N = 0: base model)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def run_demo(out: Path, *, base: str = "starter", ns: Sequence[int] = (10, 20, 40),
             size: str = "1200x900", days: str = "0,7,14,21", site_subjects: int = 12,
             heldout_subjects: int = 2, epochs: int = 2, steps: int = 15,
             batch_size: int = 4, crop: int = 256, lr: float = 3e-4) -> dict[str, Any]:
    """Run the loop; returns (and writes) ``curve.json``."""
    from models.registry import load_model
    from pipeline.config import Settings
    from pipeline.corrections import export_training_data
    from pipeline.corrections_sim import simulate_corrected_reads, truth_by_photo
    from pipeline.finetune import FinetuneRecipe, finetune, guard, heldout_score
    from pipeline.process import process_study
    from pipeline.store import Store
    from pipeline.synth import StudyConfig, generate_study

    t0 = time.time()
    out.mkdir(parents=True, exist_ok=True)
    log = print
    studies = {
        "orig-train": dict(seed=101, subjects=2, variety="standard"),
        "orig-heldout": dict(seed=104, subjects=2, variety="standard"),
        "site": dict(seed=301, subjects=site_subjects, variety="wide"),
    }
    for name, kw in studies.items():
        if not (out / name / "manifest.csv").is_file():
            generate_study(out / name, StudyConfig.from_cli(days=days, size=size, **kw),
                           jobs=1, progress=False)
    log(f"studies generated ({time.time() - t0:.0f} s)")
    site = out / "site"
    settings = Settings(out_dir=out / "site-processed", model=base, jobs=1, device="cpu")
    process_study(site, settings, progress=False)
    log(f"site processed with {base} ({time.time() - t0:.0f} s)")
    with Store.open(settings.store_path) as s:
        truth = truth_by_photo(s, site)
    subjects = sorted({t[2] for t in truth.values()})
    held = set(subjects[-heldout_subjects:])
    pool = sorted(p for p, t in truth.items() if t[2] not in held)
    order = [pool[i] for i in np.random.default_rng(0).permutation(len(pool))]
    site_held = subset_study(site, out / "site-heldout", held)
    config = load_model(base).config
    base_score = {"site": heldout_score(base, site_held),
                  "original": heldout_score(base, out / "orig-heldout")}
    log(f"base: {base_score} ({time.time() - t0:.0f} s)")
    points = []
    done = 0
    for n in ns:
        n = min(n, len(order))
        with Store.open(settings.store_path) as s:
            simulate_corrected_reads(s, site, order[done:n], out_dir=settings.out_dir)
        done = n
        corr = out / f"corrections-{n}"
        if corr.exists():
            shutil.rmtree(corr)
        export_training_data(settings.out_dir, corr, config=config, heldout_subjects=0)
        recipe = FinetuneRecipe(epochs=epochs, steps_per_epoch=steps, batch_size=batch_size,
                                crop_size=crop, lr=lr)
        run = finetune(base, corr, out / f"run-{n}", original=[out / "orig-train"],
                       recipe=recipe)
        g = guard(base, run.weights, out / "orig-heldout", base_score=base_score["original"])
        point = {"n": n, "site": heldout_score(run.weights, site_held),
                 "original": g.candidate, "guard_passed": g.passed,
                 "guard_reasons": list(g.reasons)}
        points.append(point)
        log(f"N={n}: {point} ({time.time() - t0:.0f} s)")
    curve = {"base_model": base, "site": "synth --variety wide, seed 301, " + size,
             "heldout_subjects": len(held), "n_heldout_photos": base_score["site"]["n_photos"],
             "recipe": {"epochs": epochs, "steps_per_epoch": steps, "batch_size": batch_size,
                        "crop": crop, "lr": lr, "new_share": 0.5,
                        "original_data": "synth standard seed 101, 2 subjects"},
             "guard_study": "synth standard seed 104, 2 subjects",
             "base": base_score, "points": points, "seconds": round(time.time() - t0)}
    (out / "curve.json").write_text(json.dumps(curve, indent=2) + "\n")
    plot_curve(curve, out / "curve.png")
    return curve


def register_demo_model(out: Path, curve: dict[str, Any]) -> Path | None:
    """Register the middle N's candidate (if its guard passed) in ``OUT/weights`` with the
    curve in its card (``corrections_curve``); None when the guard refused it."""
    from pipeline.finetune import GuardResult, register_checked

    point = curve["points"][len(curve["points"]) // 2]
    g = GuardResult(point["guard_passed"], curve["base"]["original"], point["original"],
                    tuple(point["guard_reasons"]))
    if not g.passed:
        return None
    summary = {k: v for k, v in curve.items() if k != "seconds"}
    return register_checked(out / f"run-{point['n']}" / "best.safetensors",
                            f"site-finetune-n{point['n']}", g, weights_dir=out / "weights",
                            extra={"corrections_curve": {**summary,
                                                         "plot": "docs/corrections-curve.png"}})


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--base", default="starter")
    ap.add_argument("--ns", default="10,20,40")
    ap.add_argument("--size", default="1200x900")
    ap.add_argument("--site-subjects", type=int, default=12)
    ap.add_argument("--days", default="0,7,14,21")
    ap.add_argument("--heldout-subjects", type=int, default=2)
    ap.add_argument("--crop", type=int, default=256)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--steps", type=int, default=15)
    ap.add_argument("--docs", action="store_true", help="copy curve.json/png into docs/")
    a = ap.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    curve = run_demo(a.out, base=a.base, ns=[int(x) for x in a.ns.split(",")], size=a.size,
                     days=a.days, site_subjects=a.site_subjects,
                     heldout_subjects=a.heldout_subjects, epochs=a.epochs, steps=a.steps,
                     crop=a.crop)
    registered = register_demo_model(a.out, curve)
    print(f"registered: {registered}" if registered else "guard refused the middle N")
    if a.docs:
        docs = Path(__file__).resolve().parent.parent / "docs"
        shutil.copyfile(a.out / "curve.json", docs / "corrections-curve.json")
        shutil.copyfile(a.out / "curve.png", docs / "corrections-curve.png")
    return curve


if __name__ == "__main__":  # pragma: no cover
    main()
