"""Score a staged starter once on held-out data and publish it with the figures in its card.

``python -m models.recipes.starter_eval`` (run by ``models.recipes.starter`` after training, or
alone on ``runs/starter/staged/starter.safetensors`` after a ``--skip-eval`` run). Held-out
data, each never used in development:

* **own generator**: a new study of ``donorsite synth`` appearance A, standard variety
  (seed :data:`~models.recipes.starter.EVAL_SEED`);
* **held-out generator**: a study of appearance model B (seed
  :data:`~models.recipes.starter.LOGO_EVAL_SEED`), which the starter never saw; skipped with
  a stated reason when this checkout's generator has no appearance B;
* **real wound tissue**: the held-out FUSeg split (``models.fuseg``: 146 foot-ulcer photos
  with expert wound masks) at a nominal scale, through the network (``models.realcheck``);
* **no-site scenes**: ``skimage.data`` scenes, never used in training.

The file scored is the file published (same bytes, checked by hash).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

from models.recipes.starter import (
    EVAL_SEED,
    EVAL_SUBJECTS,
    FUSEG,
    LIMITATIONS,
    LOGO_EVAL_SEED,
    LOGO_EVAL_SUBJECTS,
    ROOT,
    WEIGHTS,
    StudySpec,
    _group_gaps,
    synth_study,
)


def generator_has_appearance_b() -> bool:
    """Whether ``donorsite synth`` of this checkout offers ``--appearance b``."""
    out = subprocess.run([sys.executable, "-m", "pipeline.cli", "synth", "--help"],
                         capture_output=True, text=True, cwd=ROOT)
    return "--appearance" in out.stdout


def _real_markdown(real: dict[str, Any], scenes: dict[str, Any]) -> str:
    return "\n".join([
        "| check | photos | figure |", "|---|---|---|",
        f"| FUSeg held-out, raw Dice pooled (vs expert wound mask) | {real['n_photos']} | "
        f"{real['dice_raw_pooled']} (median per photo {real['dice_raw_median']}) |",
        f"| FUSeg held-out, healed % median (truth 0: an ulcer is all raw) | "
        f"{real['n_photos']} | {real['healed_percent_median']} |",
        f"| FUSeg held-out, photos with > 1 % of the frame called epithelialized | "
        f"{real['n_photos']} | {real['n_epi_over_limit']} ({real['n_epi_over_limit_unflagged']}"
        f" of them unflagged) |",
        f"| FUSeg held-out, photos flagged for a read | {real['n_photos']} | "
        f"{real['n_flagged']} |",
        f"| no-site scenes (skimage.data) caught: no site found or flagged | "
        f"{scenes['n_photos']} | {scenes['n_caught']} ({100 * scenes['caught_share']:.1f} %) |"])


def evaluate_and_publish(staged: Path, *, name: str = "starter", cache: Path,
                         out: Path, fuseg: Path = FUSEG, jobs: int = 2,
                         publish_to: Path = WEIGHTS) -> Path:
    """Score ``staged`` once on every held-out set, then publish it with the figures."""
    from models.baseline import LabBaseline
    from models.evaluate import evaluate_study, metrics_markdown
    from models.fuseg import prepare_fuseg
    from models.predictor import Predictor
    from models.realcheck import score_no_site_scenes, score_real_raw
    from models.registry import publish, sha256_file

    pred = Predictor.from_registry(staged, device="auto")
    bl_path = WEIGHTS / "baseline-lab.json"
    baseline = LabBaseline.from_json(bl_path) if bl_path.is_file() else None
    held_out: dict[str, Any] = {}
    specs = [("own_generator", StudySpec(EVAL_SEED, EVAL_SUBJECTS, "4000x3000"))]
    if generator_has_appearance_b():
        specs.append(("held_out_generator", StudySpec(LOGO_EVAL_SEED, LOGO_EVAL_SUBJECTS,
                                                      "2400x1800", "standard", "b")))
    else:
        held_out["held_out_generator"] = {"skipped": "this checkout's donorsite synth has no "
                                                     "--appearance b"}
    for key, spec in specs:
        eval_dir = synth_study(cache / f"ds-eval-{spec.name}", spec, jobs=jobs)
        ev = evaluate_study(eval_dir, pred, baseline=baseline, progress=True)
        (out / f"eval-{key}.json").write_text(json.dumps(ev, indent=2) + "\n")
        held_out[key] = {"study": asdict(spec), "n_photos": ev["n_photos"],
                         "n_failed_calibration": ev["n_failed"], "n_flagged": ev["n_flagged"],
                         "summary": ev["summary"], "markdown": metrics_markdown(ev)}
        print(key, metrics_markdown(ev), flush=True)
    ho = prepare_fuseg(fuseg, out / "prepared" / "fuseg-held-out", config=pred.config,
                       part="held_out", copies=1, seed=1, progress=True)
    real = score_real_raw(ho, pred, progress=True)
    scenes = score_no_site_scenes(pred)
    (out / "eval-real-tissue.json").write_text(json.dumps(real, indent=2) + "\n")
    (out / "eval-no-site-scenes.json").write_text(json.dumps(scenes, indent=2) + "\n")
    real_md = _real_markdown(real, scenes)
    print(real_md, flush=True)
    held_out["real_tissue_fuseg_held_out"] = {k: v for k, v in real.items() if k != "photos"}
    held_out["no_site_scenes"] = {k: v for k, v in scenes.items() if k != "photos"}
    md = [f"**{k.replace('_', ' ')}** (`donorsite synth` {v['study']}), full photo resolution, "
          f"scored once from the fp16 file that ships ({v['n_flagged']} photos flagged for a "
          f"read; `unet_used` = the rest):\n\n{v['markdown']}"
          for k, v in held_out.items() if "markdown" in v]
    md += [f"**held out generator**: not scored ({v['skipped']})."
           for k, v in held_out.items() if "skipped" in v]
    md.append("**Real wound tissue and no-site scenes** (network on working images at a "
              "nominal 3.5-9 px/mm, no sticker; `python -m models.recipes.starter_eval`). "
              "Foot ulcers are raw tissue only: these figures say nothing about real "
              "epithelium.\n\n" + real_md)
    updates: dict[str, Any] = {
        "metrics": {"held_out": held_out, "scored_file_sha256": sha256_file(staged),
                    "baseline": str(bl_path.relative_to(ROOT))},
        "metrics_markdown": "\n\n".join(md)}
    own = held_out.get("own_generator", {}).get("summary", {}).get("unet", {})
    updates["limitations"] = LIMITATIONS + _group_gaps(own)
    path = publish(staged, name, weights_dir=publish_to, dtype="fp16", card_updates=updates)
    if sha256_file(path) != sha256_file(staged):
        raise RuntimeError(f"{path} differs from the evaluated file {staged}; not publishing")
    print(f"published {path}", flush=True)
    return path


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m models.recipes.starter_eval",
                                 description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--staged", type=Path,
                    default=ROOT / "runs" / "starter" / "staged" / "starter.safetensors")
    ap.add_argument("--cache", type=Path, default=ROOT / "runs" / "cache")
    ap.add_argument("--out", type=Path, default=ROOT / "runs" / "starter")
    ap.add_argument("--fuseg", type=Path, default=FUSEG)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--name", default="starter")
    a = ap.parse_args(argv)
    evaluate_and_publish(a.staged, name=a.name, cache=a.cache, out=a.out, fuseg=a.fuseg,
                         jobs=a.jobs)


if __name__ == "__main__":  # pragma: no cover
    main()
