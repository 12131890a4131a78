"""``donorsite train-from-reads`` and ``donorsite finetune``: the corrections loop (issue 19).

Thin, like :mod:`pipeline.cli`: the work is in :mod:`pipeline.corrections` and
:mod:`pipeline.finetune`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

__all__ = ["register_commands"]


def train_from_reads(
    processed: Annotated[Path, typer.Argument(help="Processed folder with the review's reads.")],
    out: Annotated[Path, typer.Argument(help="New folder: train/, heldout/, reads.json.")],
    model: Annotated[str, typer.Option(help="The model to be fine-tuned (sets the working scale).")] = "starter",
    heldout_fraction: Annotated[float, typer.Option(help="Share of subjects held out (by subject).")] = 0.3,
    seed: Annotated[int, typer.Option(help="Seed of the held-out split.")] = 0,
    threshold: Annotated[float, typer.Option(help="Estimates further apart than this disagree.")] = 10.0,
) -> None:
    """Assessors' accepted, corrected and adjudicated masks -> a training folder."""
    from models.errors import ModelError
    from models.registry import load_model
    from pipeline.corrections import CorrectionsError, export_training_data

    try:
        config = load_model(model).config
        res = export_training_data(processed, out, config=config, seed=seed,
                                   heldout_fraction=heldout_fraction, threshold=threshold)
    except (CorrectionsError, ModelError) as exc:
        _fail(str(exc))
    typer.echo(f"training photos: {res.n_train}  held-out photos: {res.n_heldout}  skipped: "
               f"{len(res.skipped)}  -> {res.out_dir} (reads.json says which reads)")
    for pid, why in sorted(res.skipped.items()):
        typer.echo(f"  skipped {pid}: {why}")


def finetune_cmd(
    corrections: Annotated[Path, typer.Argument(help="Folder written by train-from-reads.")],
    base: Annotated[str, typer.Option(help="Registered model to start from.")] = "starter",
    out: Annotated[Path, typer.Option(help="Run folder.")] = Path("runs/finetune"),
    original: Annotated[list[Path] | None, typer.Option(help="Original training data mixed in (label folder or synth study; repeatable).")] = None,
    guard_study: Annotated[Path | None, typer.Option(help="The original held-out study (synthetic, with truth) for the guard.")] = None,
    register: Annotated[str | None, typer.Option(help="Register as this NEW name if the guard passes.")] = None,
    epochs: Annotated[int, typer.Option()] = 4,
    steps_per_epoch: Annotated[int, typer.Option()] = 25,
    batch_size: Annotated[int, typer.Option()] = 4,
    lr: Annotated[float, typer.Option()] = 3e-4,
    new_share: Annotated[float, typer.Option(help="Share of crops from the corrections.")] = 0.5,
    threads: Annotated[int, typer.Option(help="torch CPU threads.")] = 1,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "cpu",
    max_dice_drop: Annotated[float, typer.Option()] = 0.01,
    max_p95_rise: Annotated[float, typer.Option()] = 0.5,
) -> None:
    """Fine-tune a registered model on corrections; guard it; register it under a new name.

    Registering changes no result: switch with ``donorsite process STUDY --reprocess --reason
    ... --model NAME`` (new result versions).
    """
    from models.errors import ModelError
    from pipeline.corrections import CorrectionsError
    from pipeline.finetune import FinetuneRecipe, finetune, guard, register_checked

    if register and guard_study is None:
        _fail("--register needs --guard-study (the original held-out study)")
    if not original:
        typer.echo("warning: no --original data mixed in; the model may forget what it knew "
                   "(the guard will tell)", err=True)
    try:
        recipe = FinetuneRecipe(epochs=epochs, steps_per_epoch=steps_per_epoch,
                                batch_size=batch_size, lr=lr, new_share=new_share,
                                threads=threads, device=device)
        res = finetune(base, corrections, out, original=original or (), recipe=recipe,
                       progress=True)
        typer.echo(f"fine-tuned: {res.weights} (best epoch {res.best_epoch}, held-out "
                   f"corrections score {res.best_score:.4f})")
        if guard_study is not None:
            g = guard(base, res.weights, guard_study, max_dice_drop=max_dice_drop,
                      max_p95_rise=max_p95_rise)
            for line in g.lines():
                typer.echo(line)
            if register:
                if not g.passed:
                    _fail("not registered (guard refused)", code=1)
                typer.echo(f"registered: {register_checked(res.weights, register, g)} "
                           f"(endpoints unchanged until --reprocess --model {register})")
    except (CorrectionsError, ModelError, ValueError) as exc:
        _fail(str(exc))


def _fail(message: str, code: int = 2) -> None:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


def register_commands(app: typer.Typer) -> None:
    """Add the two commands to the ``donorsite`` app."""
    app.command("train-from-reads")(train_from_reads)
    app.command("finetune")(finetune_cmd)
