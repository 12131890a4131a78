"""Fine-tune a registered model on assessors' corrections, guard it, register it (issue 19).

* :class:`FinetuneRecipe` — fewer steps and a lower learning rate than training from
  scratch, the original training data mixed in (``TrainConfig.data_weights``) so that
  nothing is forgotten, starting from the registered weights (``TrainConfig.init_from``),
  validated on the corrections' held-out subjects.
* :func:`guard` — the candidate is compared with its base on the *original* held-out study;
  a Dice drop above ``max_dice_drop`` (0.01) or a healed % error p95 rise above
  ``max_p95_rise`` (0.5 points) refuses it, with the figures.
* :func:`register_checked` — publishes a guarded candidate under a new name (never over an
  existing model). Registering changes nothing that endpoints use: results change only by an
  explicit ``donorsite process --reprocess --reason ... --model NAME``, which writes new result
  versions; :func:`models_used` says which model produced the current numbers.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from pipeline.corrections import READS_FILE, CorrectionsError

__all__ = ["FinetuneRecipe", "finetune", "GuardResult", "guard", "register_checked",
           "models_used", "models_used_line", "heldout_score"]


@dataclass(frozen=True)
class FinetuneRecipe:
    """How to fine-tune (defaults: a short, gentle run on one CPU thread).

    ``new_share`` is the share of crops drawn from the corrections; the rest come from the
    original training data.
    """

    epochs: int = 4
    steps_per_epoch: int = 25
    batch_size: int = 4
    lr: float = 3e-4
    new_share: float = 0.5
    crop_size: int | None = None
    seed: int = 0
    threads: int = 1
    device: str = "cpu"

    def __post_init__(self) -> None:
        if not 0 < self.new_share <= 1:
            raise CorrectionsError(f"new_share must be in (0, 1], got {self.new_share}")
        if self.lr <= 0 or self.epochs < 1 or self.steps_per_epoch < 1 or self.batch_size < 1:
            raise CorrectionsError("epochs, steps_per_epoch, batch_size and lr must be positive")


def finetune(base: str, corrections: str | Path, out: str | Path, *,
             original: Sequence[str | Path] = (), recipe: FinetuneRecipe = FinetuneRecipe(),
             progress: bool = False) -> Any:
    """Fine-tune ``base`` on an exported corrections folder (``train/``, ``heldout/``).

    Returns the :class:`models.train.TrainResult`; the run's ``best.safetensors`` card holds
    the corrections' ``reads.json`` under ``corrections``.
    """
    from models.config import TrainConfig
    from models.registry import load_model
    from models.train import train

    corrections = Path(corrections)
    reads_file = corrections / READS_FILE
    if not reads_file.is_file():
        raise CorrectionsError(f"{corrections}: not an exported corrections folder (no "
                               f"{READS_FILE}; run `donorsite train-from-reads` first)")
    reads = json.loads(reads_file.read_text())
    config = load_model(base).config
    if reads.get("px_per_mm") != config.px_per_mm:
        raise CorrectionsError(f"{corrections} was exported at {reads.get('px_per_mm')} px/mm "
                               f"but {base} works at {config.px_per_mm}; export again")
    data = [corrections / "train", *original]
    weights = (recipe.new_share, 1 - recipe.new_share) if original else None
    if weights is not None and len(original) > 1:
        rest = (1 - recipe.new_share) / len(original)
        weights = (recipe.new_share, *([rest] * len(original)))
    heldout = corrections / "heldout"
    tc = TrainConfig(epochs=recipe.epochs, steps_per_epoch=recipe.steps_per_epoch,
                     batch_size=recipe.batch_size, lr=recipe.lr, crop_size=recipe.crop_size,
                     seed=recipe.seed, num_threads=recipe.threads, device=recipe.device,
                     init_from=base, data_weights=weights,
                     val_fraction=0.0)
    card = {"summary": f"{base} fine-tuned on assessors' corrections",
            "corrections": {k: v for k, v in reads.items() if k != "processed"},
            "finetune": {"base": base, "recipe": asdict(recipe)}}
    return train(config, tc, data, out, val_dirs=[heldout] if heldout.is_dir() else [],
                 resume=False, progress=progress, card=card)


def heldout_score(model: str | Path, study: str | Path) -> dict[str, float]:
    """Dice (mean of the epithelialized and raw pooled Dice) and healed % error p95 of
    ``model`` on a synthetic held-out study, at full resolution (models.evaluate)."""
    from models.evaluate import evaluate_study
    from models.predictor import Predictor

    pred = Predictor.from_registry(str(model), device="cpu")
    s = evaluate_study(study, pred)["summary"]["unet"]["all"]
    dice = (s["dice_epithelialized_pooled"] + s["dice_raw_pooled"]) / 2
    return {"dice": round(float(dice), 4), "healed_p95": float(s["healed_abs_error_p95"]),
            "healed_median": float(s["healed_abs_error_median"]), "n_photos": s["n_photos"]}


@dataclass(frozen=True)
class GuardResult:
    """The guard's verdict and the figures it was based on."""

    passed: bool
    base: dict[str, float]
    candidate: dict[str, float]
    reasons: tuple[str, ...]

    def lines(self) -> list[str]:
        b, c = self.base, self.candidate
        out = [f"original held-out study ({c.get('n_photos')} photos):",
               f"  Dice      base {b['dice']:.4f}  candidate {c['dice']:.4f}  "
               f"change {c['dice'] - b['dice']:+.4f}",
               f"  healed % error p95  base {b['healed_p95']:.2f}  candidate "
               f"{c['healed_p95']:.2f}  change {c['healed_p95'] - b['healed_p95']:+.2f}"]
        out.append("guard: PASSED" if self.passed else
                   "guard: REFUSED (" + "; ".join(self.reasons) + ")")
        return out


def guard(base: str | Path, candidate: str | Path, original_heldout: str | Path, *,
          max_dice_drop: float = 0.01, max_p95_rise: float = 0.5,
          base_score: dict[str, float] | None = None) -> GuardResult:
    """Compare ``candidate`` with ``base`` on the original held-out study."""
    b = base_score or heldout_score(base, original_heldout)
    c = heldout_score(candidate, original_heldout)
    reasons = []
    if b["dice"] - c["dice"] > max_dice_drop:
        reasons.append(f"Dice drops by {b['dice'] - c['dice']:.4f} > {max_dice_drop}")
    if c["healed_p95"] - b["healed_p95"] > max_p95_rise:
        reasons.append(f"healed % p95 rises by {c['healed_p95'] - b['healed_p95']:.2f} > "
                       f"{max_p95_rise}")
    return GuardResult(not reasons, b, c, tuple(reasons))


def register_checked(candidate: str | Path, name: str, result: GuardResult, *,
                     weights_dir: str | Path | None = None,
                     extra: dict[str, Any] | None = None) -> Path:
    """Publish a candidate that passed the guard as a *new* registered model ``name``.

    Raises
    ------
    CorrectionsError
        The guard refused it, or ``name`` is already registered (nothing is overwritten).
    """
    from models.registry import publish, resolve_weights

    if not result.passed:
        raise CorrectionsError("not registered: " + "; ".join(result.reasons))
    weights, card = resolve_weights(name, weights_dir)
    if weights.exists() or card.exists():
        raise CorrectionsError(f"{weights}: a model named {name!r} exists; choose a new name")
    updates = {"guard": {"base": result.base, "candidate": result.candidate,
                         "passed": True}, **(extra or {})}
    return publish(candidate, name, weights_dir=weights_dir, card_updates=updates)


def models_used(store: Any) -> list[dict[str, Any]]:
    """Which model produced the current results: name, sha256 (12), photos, run reasons.

    For the report (one line per model, see :func:`models_used_line`).
    """
    counts: dict[tuple[str, str], int] = {}
    for r in store.current_results():
        if r["status"] == "ok" and r["model_name"]:
            key = (r["model_name"], r["model_sha256"] or "")
            counts[key] = counts.get(key, 0) + 1
    out = []
    for (name, sha), n in sorted(counts.items()):
        reasons = [row[0] for row in store.conn.execute(
            "SELECT DISTINCT u.reason FROM segmentations s JOIN results r USING (result_id) "
            "JOIN runs u ON u.run_id = r.run_id WHERE s.model_name=? AND s.model_sha256=? "
            "AND u.reason IS NOT NULL", (name, sha))]
        out.append({"model": name, "sha256": sha[:12], "n_results": n, "reasons": reasons})
    return out


def models_used_line(store: Any) -> str:
    """``models_used: starter (sha 1a2b3c4d5e6f, 40 results); ...`` for the report."""
    parts = [f"{m['model']} (sha {m['sha256']}, {m['n_results']} results"
             + (f"; reprocessed: {'; '.join(m['reasons'])}" if m["reasons"] else "") + ")"
             for m in models_used(store)]
    return "models_used: " + ("; ".join(parts) if parts else "none")
