"""``donorsite composite fuseg|ood``: write composite studies (thin; the work is in
:mod:`pipeline.composite.build`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

composite_app = typer.Typer(
    help="Real (FUSeg) and out-of-distribution pictures composited beside the sticker, as "
         "studies `donorsite process` processes and `python -m pipeline.evaluate` scores.",
    no_args_is_help=True)

_FUSEG = Path("../shared/datasets/fuseg/train")


def _fail(message: str) -> None:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(2)


@composite_app.command("fuseg")
def fuseg_cmd(
    src: Annotated[Path, typer.Argument(help="FUSeg training folder (images/, labels/).")],
    out: Annotated[Path, typer.Argument(help="Folder to create the study in.")],
    part: Annotated[str, typer.Option(help="The project's fixed split: held_out or development.")] = "held_out",
    px_per_mm: Annotated[float, typer.Option(help="Nominal scale of the composite (px/mm).")] = 6.0,
    varied: Annotated[bool, typer.Option(help="Random tilt, sticker placement, lighting, noise and JPEG quality.")] = False,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    limit: Annotated[int | None, typer.Option(help="Only the first N photos of the part.")] = None,
    sticker: Annotated[Path | None, typer.Option(help="Sticker description (default DS-CAL-1).")] = None,
    force: Annotated[bool, typer.Option(help="Replace an existing study in OUT.")] = False,
) -> None:
    """FUSeg photos beside the sticker; truth raw = the expert wound mask, no epithelium."""
    from pipeline.composite import CompositeError, make_fuseg_study
    from pipeline.synth import SynthError

    if part not in ("held_out", "development"):
        _fail(f"--part must be held_out or development, got {part!r}")
    try:
        n = make_fuseg_study(src, out, part=part, px_per_mm=px_per_mm, varied=varied,
                             seed=seed, limit=limit, sticker=sticker, force=force)
    except (CompositeError, SynthError, ValueError, OSError) as exc:
        _fail(str(exc))
    typer.echo(f"study: {out} ({n} photos, kind fuseg_composite, part {part})")


@composite_app.command("ood")
def ood_cmd(
    out: Annotated[Path, typer.Argument(help="Folder to create the study in.")],
    src: Annotated[Path | None, typer.Option(help="FUSeg training folder for intact-skin crops of held-out photos (none: scenes only).")] = _FUSEG,
    px_per_mm: Annotated[float, typer.Option(help="Nominal scale of the composite (px/mm).")] = 6.0,
    placements: Annotated[int, typer.Option(help="Placements per skimage.data scene.")] = 3,
    skin_crops: Annotated[int, typer.Option(help="Intact-skin crops (at most one per held-out photo).")] = 48,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    sticker: Annotated[Path | None, typer.Option(help="Sticker description (default DS-CAL-1).")] = None,
    force: Annotated[bool, typer.Option(help="Replace an existing study in OUT.")] = False,
) -> None:
    """Pictures with a sticker and no donor site (skimage.data scenes, intact-skin crops)."""
    from pipeline.composite import CompositeError, make_ood_study
    from pipeline.synth import SynthError

    if src is not None and not src.is_dir():
        _fail(f"{src}: no such folder (pass --src, or --skin-crops 0)")
    try:
        n = make_ood_study(out, src=src if skin_crops > 0 else None, px_per_mm=px_per_mm,
                           placements=placements, skin_crops=skin_crops, seed=seed,
                           sticker=sticker, force=force)
    except (CompositeError, SynthError, ValueError, OSError) as exc:
        _fail(str(exc))
    typer.echo(f"study: {out} ({n} photos, kind ood_composite)")
