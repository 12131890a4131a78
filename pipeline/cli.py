"""The ``donorsite`` command line: thin — parse, call, print.

Every command's work lives in a library function; this module only turns options into
arguments and results into lines on the terminal.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pipeline.config import DEMO_SEED, PROJECT_ROOT, Settings

app = typer.Typer(
    name="donorsite",
    help="Clinical photographs of skin-graft donor sites -> calibrated masks -> trial endpoints.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _fail(message: str, code: int = 2) -> None:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


def find_studies(raw_dir: Path) -> list[Path]:
    """Manifests of the studies under ``raw_dir`` (a study is a folder with manifest.csv)."""
    if not raw_dir.is_dir():
        return []
    return sorted(p for p in raw_dir.rglob("manifest.csv") if p.is_file())


# --------------------------------------------------------------------------------- synth
@app.command()
def synth(
    out: Annotated[Path, typer.Argument(help="Folder to create the study in.")],
    seed: Annotated[int, typer.Option(help="Random seed; the same seed gives the same study.")] = DEMO_SEED,
    subjects: Annotated[int, typer.Option(help="Number of subjects (randomized 1:1).")] = 20,
    days: Annotated[str, typer.Option(help="Visit days, comma-separated.")] = "0,3,5,7,10,14,21",
    photos_per_visit: Annotated[int, typer.Option(help="Photos per visit.")] = 1,
    size: Annotated[str, typer.Option(help="Photo size WIDTHxHEIGHT (landscape).")] = "4000x3000",
    jobs: Annotated[int, typer.Option(help="Worker processes.")] = 2,
    force: Annotated[bool, typer.Option(help="Replace an existing study in OUT.")] = False,
) -> None:
    """Generate a synthetic, trial-shaped donor-site study with ground truth."""
    from pipeline.synth import StudyConfig, SynthError, generate_study

    try:
        cfg = StudyConfig.from_cli(seed=seed, subjects=subjects, days=days,
                                   photos_per_visit=photos_per_visit, size=size)
        result = generate_study(out, cfg, jobs=jobs, force=force, progress=True)
    except (SynthError, ValueError) as exc:
        _fail(str(exc))
    typer.echo(f"study: {result.root} ({result.n_photos} photos, {result.seconds:.1f} s)")


# ----------------------------------------------------------------------------------- run
@app.command()
def run(
    raw: Annotated[Path, typer.Option(help="Input studies (immutable).")] = PROJECT_ROOT / "data" / "raw",
    out: Annotated[Path, typer.Option(help="Where results are written.")] = PROJECT_ROOT / "data" / "processed",
    size: Annotated[str, typer.Option(help="Photo size of a generated demo study.")] = "4000x3000",
    jobs: Annotated[int, typer.Option(help="Worker processes.")] = 2,
) -> None:
    """The main job: generate the demo study when RAW holds none, then process every study."""
    settings = Settings(raw_dir=raw, out_dir=out, jobs=jobs)
    manifests = find_studies(settings.raw_dir)
    if not manifests:
        typer.echo(f"{settings.raw_dir} holds no study: generating the demo study (seed {DEMO_SEED})")
        synth(settings.raw_dir / "demo", seed=DEMO_SEED, subjects=20, days="0,3,5,7,10,14,21",
              photos_per_visit=1, size=size, jobs=jobs, force=False)
        manifests = find_studies(settings.raw_dir)
    for m in manifests:
        typer.echo(f"study: {m.parent}")
    typer.echo("processing is not implemented yet (issue: batch processing); stopping after "
               "generation.")


def main() -> None:  # pragma: no cover - console entry point
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
