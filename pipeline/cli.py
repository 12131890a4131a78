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
    variety: Annotated[str, typer.Option(help="Tissue and camera variety: standard (the demo's) or wide (for training robust models).")] = "standard",
    appearance: Annotated[str, typer.Option(help="Appearance model of tissue and skin: a (the demo's) or b (written independently, for held-out scoring).")] = "a",
) -> None:
    """Generate a synthetic, trial-shaped donor-site study with ground truth."""
    from pipeline.synth import StudyConfig, SynthError, generate_study

    try:
        cfg = StudyConfig.from_cli(seed=seed, subjects=subjects, days=days,
                                   photos_per_visit=photos_per_visit, size=size,
                                   variety=variety, appearance=appearance)
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
    allocation: Annotated[Path | None, typer.Option(
        help="allocation.csv: also write the unblinded report (the analyst's choice; "
             "without it only the blinded report is written).")] = None,
) -> None:
    """The main job: generate the demo study when RAW holds none, then process every study."""
    settings = Settings(raw_dir=raw, out_dir=out, jobs=jobs)
    manifests = find_studies(settings.raw_dir)
    if not manifests:
        typer.echo(f"{settings.raw_dir} holds no study: generating the demo study (seed {DEMO_SEED})")
        synth(settings.raw_dir / "demo", seed=DEMO_SEED, subjects=20, days="0,3,5,7,10,14,21",
              photos_per_visit=1, size=size, jobs=jobs, force=False)
        manifests = find_studies(settings.raw_dir)
    from pipeline.errors import PipelineError
    from pipeline.process import process_study

    failed = 0
    for m in manifests:
        typer.echo(f"processing study {m.parent}")
        try:
            summary = process_study(m, settings, progress=True)
        except (PipelineError, ValueError) as exc:
            _fail(str(exc))
        failed += summary.n_failed
        typer.echo(f"  new: {summary.new}  unchanged: {summary.unchanged}  failed: "
                   f"{summary.n_failed}  ({summary.seconds:.1f} s)")
    typer.echo(f"results: {settings.out_dir / 'measurements.csv'} (per photo), "
               f"{settings.out_dir / 'visits.csv'} (per visit), masks/ and overlays/ beside "
               f"them, study store {settings.store_path}")
    if failed:
        typer.echo(f"{failed} photo(s) failed: see `donorsite status --out {settings.out_dir}`")
    # the analysts' report: blinded; unblinded only when the analyst passes --allocation
    report(out=settings.out_dir / "report" / "blinded", processed=settings.out_dir)
    if allocation is not None:
        report(out=settings.out_dir / "report" / "unblinded", processed=settings.out_dir,
               allocation=allocation)
    else:
        found = [m.parent / "allocation.csv" for m in manifests
                 if (m.parent / "allocation.csv").is_file()]
        if found:
            typer.echo(f"unblinded report (analyst only): donorsite report --allocation "
                       f"{found[0]} --out {settings.out_dir / 'report' / 'unblinded'}")


# ------------------------------------------------------------------------------- process
@app.command()
def process(
    target: Annotated[Path, typer.Argument(help="manifest.csv or a study folder holding one.")],
    out: Annotated[Path, typer.Option(help="Output folder (study store, masks, tables).")] = PROJECT_ROOT / "data" / "processed",
    jobs: Annotated[int, typer.Option(help="Worker processes for decoding and calibration.")] = 2,
    model: Annotated[str, typer.Option(help="Registered model name or .safetensors path.")] = "starter",
    sticker: Annotated[Path | None, typer.Option(help="Sticker description (default DS-CAL-1).")] = None,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
    reprocess: Annotated[bool, typer.Option(help="New result versions for photos already done.")] = False,
    reason: Annotated[str | None, typer.Option(help="Why you reprocess (required with --reprocess).")] = None,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
    engine: Annotated[str, typer.Option(help="Where the stages run: local (this machine) or ray (a Ray cluster; pip install 'donorsite\\[ray]').")] = "local",
    reduced_decode: Annotated[bool, typer.Option(help="Decode JPEGs at 1/2-1/8 size where the working resolution allows (~20 % faster on 2 cores; masks and healed % differ slightly from a full decode, see pipeline/engine_prepare.py).")] = False,
    backend: Annotated[str, typer.Option(help="CPU network back-end: auto (the faster, measured once per machine and cached), torch or onnxruntime. Pin it to compare runs bit for bit.")] = "auto",
    ray_address: Annotated[str | None, typer.Option(help="Ray cluster to join with --engine ray (e.g. auto, HOST:6379, ray://HOST:10001); default: a local Ray instance.")] = None,
) -> None:
    """Process a study's photos into the study store; exit status 1 if any photo failed."""
    from pipeline.errors import PipelineError
    from pipeline.process import ENGINES, process_study

    if engine not in ENGINES:
        _fail(f"--engine must be one of {', '.join(ENGINES)}, got {engine!r}")
    if ray_address is not None and engine != "ray":
        _fail("--ray-address needs --engine ray")
    try:
        from pipeline.engine import EngineOptions

        settings = Settings(out_dir=out, jobs=jobs, model=model, sticker=sticker, device=device)
        engine_options = EngineOptions(backend=backend, reduce="auto" if reduced_decode else 1)
        ray_options = None
        if engine == "ray":
            from pipeline.engine_ray import RayOptions

            ray_options = RayOptions(address=ray_address)
        summary = process_study(target, settings, reprocess=reprocess, reason=reason,
                                progress=progress, engine=engine, ray_options=ray_options,
                                engine_options=engine_options)
    except (PipelineError, ValueError) as exc:
        _fail(str(exc))
    typer.echo(f"new: {summary.new}  unchanged: {summary.unchanged}  failed: {summary.n_failed}"
               f"  ({summary.seconds:.1f} s, {summary.photos_per_second:.2f} photos/s)")
    for code, n in sorted(summary.failed.items()):
        typer.echo(f"  failed {code}: {n}")
    for note in summary.notes:
        typer.echo(f"note: {note}", err=True)
    if summary.failures:
        typer.echo("failed (file, manifest line, reason):")
        for name, line, code, message in summary.failures:
            where = f"line {line}" if line is not None else "line ?"
            typer.echo(f"  {name!r} ({where}) {code}: {message}")
    typer.echo(f"results: {settings.out_dir / 'measurements.csv'}")
    if summary.n_failed:
        raise typer.Exit(1)


@app.command()
def status(
    out: Annotated[Path, typer.Option(help="Output folder holding the study store.")] = PROJECT_ROOT / "data" / "processed",
    check: Annotated[bool, typer.Option(help="Also check the store's consistency.")] = False,
) -> None:
    """Show counts of photos by state (ok, failed, pending) in the study store."""
    from pipeline.process import iter_failures
    from pipeline.store import Store

    settings = Settings(out_dir=out)
    if not settings.store_path.exists():
        _fail(f"{settings.store_path}: no study store yet (run donorsite process first)")
    with Store.open(settings.store_path) as store:
        counts = store.counts_by_state()
        typer.echo("  ".join(f"{k}: {v}" for k, v in counts.items()))
        for _name, code, message in iter_failures(store):
            typer.echo(f"  {code}: {message}")
        if check:
            problems = store.integrity_problems()
            typer.echo("store consistent" if not problems else "\n".join(problems))
            if problems:
                raise typer.Exit(1)


# ------------------------------------------------------------------- sticker / calibrate
_STICKER_HELP = "Sticker description (default DS-CAL-1)."


@app.command("sticker")
def sticker_cmd(
    out: Annotated[Path, typer.Option(help="Output file: .svg or .pdf (true size).")],
    sticker: Annotated[Path | None, typer.Option(help=_STICKER_HELP)] = None,
) -> None:
    """Draw a printable sticker at true size from a sticker description."""
    from calibration import CalibrationError, load_sticker
    from calibration.svg import write_sticker

    try:
        spec = load_sticker(sticker)
        path = write_sticker(spec, out)
    except CalibrationError as exc:
        _fail(str(exc))
    typer.echo(f"sticker {spec.name}: {path} ({spec.card_width_mm:g} x "
               f"{spec.card_height_mm:g} mm; print at 100 % and check the ruler)")


@app.command("calibrate")
def calibrate_cmd(
    photo: Annotated[Path, typer.Argument(help="A photo with the sticker in it.")],
    sticker: Annotated[Path | None, typer.Option(help=_STICKER_HELP)] = None,
    debug: Annotated[Path | None, typer.Option(help="Write a debug picture (PNG) here.")] = None,
    method: Annotated[str, typer.Option(
        help="Colour correction: linear or root-polynomial.")] = "linear",
    json_out: Annotated[Path | None, typer.Option(
        "--json", help="Write the JSON record here.")] = None,
) -> None:
    """Calibrate one photo: scale, tilt, reprojection error, colour ΔE, QC flags."""
    import json

    from calibration import CalibrationError, CalibrationOptions, calibrate, load_sticker
    from calibration.debug import summary_lines, write_debug_image
    from pipeline.decode import decode_photo, read_bytes
    from pipeline.errors import IngestError

    try:
        spec = load_sticker(sticker)
        options = CalibrationOptions(method=method)
        # the same hardened decoding as `process`: bombs, special files, DICOM, HEIC, ICC
        decoded = decode_photo(read_bytes(photo), name=str(photo))
        rgb = decoded.rgb
        cal = calibrate(rgb, spec, options=options, source=str(photo))
        if debug is not None:
            write_debug_image(debug, rgb, cal, spec)
    except (CalibrationError, IngestError) as exc:
        _fail(str(exc), code=1)
    except MemoryError:
        _fail(f"{photo}: out of memory decoding the photo", code=1)
    for line in summary_lines(cal):
        typer.echo(line)
    if decoded.flags:
        typer.echo(f"photo flags: {', '.join(decoded.flags)}")
    if debug is not None:
        typer.echo(f"debug picture: {debug}")
    if json_out is not None:
        json_out.write_text(json.dumps(cal.to_dict(), indent=2))
        typer.echo(f"record: {json_out}")


# --------------------------------------------------------------------------------- bench
@app.command()
def bench(
    out: Annotated[Path, typer.Option(help="Folder for bench.json.")] = PROJECT_ROOT / "data" / "processed" / "bench",
    photos: Annotated[int, typer.Option(help="Photos (demo study's, else synthetic).")] = 12,
    repeats: Annotated[int, typer.Option(help="Runs of naive loop and engine (median).")] = 3,
    jobs: Annotated[int | None, typer.Option(help="Worker processes (default: cores).")] = None,
    cpu: Annotated[bool, typer.Option("--cpu", help="Only the CPU accounting: CPU ms per photo per stage and process, bytes between processes, start-up; real network and a GPU stand-in; jobs 1, 2 .. cores (bench-cpu.json).")] = False,
    standin_ms: Annotated[float, typer.Option(help="--cpu: the GPU stand-in's ms per batch (0: none).")] = 20.0,
    size: Annotated[str | None, typer.Option(help="Synthetic photo size WxH instead of the demo study's (e.g. 1200x900).")] = None,
) -> None:
    """Benchmarks (not tests): naive loop vs engine, stages, network; bench.json + a table."""
    from pipeline.bench import format_table, run_benchmarks

    if cpu:
        import os

        from pipeline.bench import run_cpu_benchmark
        from pipeline.bench_cpu import format_cpu_table

        cores = os.cpu_count() or 1
        jobs_list = sorted({1, 2, cores} if jobs is None else {jobs})
        res = run_cpu_benchmark(out, n_photos=photos, jobs=jobs_list,
                                standin_ms=standin_ms or None, size=size)
        typer.echo(format_cpu_table(res["runs"]))
        typer.echo(f"healed % max difference between layouts: "
                   f"{res['healed_abs_diff_max_between_layouts']:.4f}")
        typer.echo(f"written: {out / 'bench-cpu.json'}")
        return
    res = run_benchmarks(out, n_photos=photos, repeats=repeats, jobs=jobs)
    typer.echo(format_table(res))
    typer.echo(f"written: {out / 'bench.json'}")


# --------------------------------------------------------------------------------- train
@app.command()
def train(
    data: Annotated[list[Path], typer.Argument(help="Label folders (images/ + labels/) or synth studies.")],
    out: Annotated[Path, typer.Option(help="Run folder (best.safetensors, last.pt, history.json, curve.png).")] = PROJECT_ROOT / "runs" / "train",
    model_config: Annotated[str, typer.Option(help="Preset (starter, fuseg) or a ModelConfig JSON file.")] = "starter",
    val: Annotated[list[Path] | None, typer.Option(help="Validation folder/study (repeatable).")] = None,
    val_fraction: Annotated[float, typer.Option(help="Held-out fraction when no --val is given.")] = 0.1,
    split_seed: Annotated[int, typer.Option(help="Seed of the held-out split.")] = 0,
    epochs: Annotated[int, typer.Option()] = 20,
    steps_per_epoch: Annotated[int, typer.Option()] = 100,
    batch_size: Annotated[int, typer.Option()] = 8,
    crop_size: Annotated[int | None, typer.Option(help="Crop side (default: the tile size).")] = None,
    lr: Annotated[float, typer.Option()] = 2e-3,
    class_weights: Annotated[str | None, typer.Option(help="Cross-entropy weights, e.g. 0.5,1,1.")] = None,
    seed: Annotated[int, typer.Option(help="Training seed.")] = 0,
    workers: Annotated[int, typer.Option(help="DataLoader workers.")] = 0,
    threads: Annotated[int | None, typer.Option(help="torch CPU threads (1 is fastest on a busy shared CPU).")] = None,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
    max_val_images: Annotated[int | None, typer.Option(help="Cap on validation images.")] = None,
    resume: Annotated[bool, typer.Option(help="Continue from OUT/last.pt when present.")] = True,
    register: Annotated[str | None, typer.Option(help="Publish the best weights as models/weights/NAME.")] = None,
    prepare_mode: Annotated[str, typer.Option(help="Synth studies: calibrated, or truth (development only).")] = "calibrated",
) -> None:
    """Train a segmentation model (see models/train.py); keeps the best checkpoint."""
    import sys

    from models.config import TrainConfig, preset
    from models.errors import ModelError
    from models.registry import publish
    from models.train import train as run_training

    try:
        cfg = preset(model_config)
        weights = None if class_weights is None else tuple(float(w) for w in class_weights.split(","))
        tcfg = TrainConfig(epochs=epochs, steps_per_epoch=steps_per_epoch, batch_size=batch_size,
                           crop_size=crop_size, lr=lr, class_weights=weights, seed=seed,
                           val_fraction=0.0 if val else val_fraction, split_seed=split_seed,
                           num_workers=workers, device=device, max_val_images=max_val_images,
                           num_threads=threads)
        command = "donorsite " + " ".join(sys.argv[1:])
        res = run_training(cfg, tcfg, data, out, val_dirs=val or (), resume=resume,
                           prepare_mode=prepare_mode, card={"training": {"command": command}})
        if register:
            typer.echo(f"registered: {publish(res.weights, register)}")
    except (ModelError, ValueError) as exc:
        _fail(str(exc))
    typer.echo(f"best epoch {res.best_epoch} (score {res.best_score:.4f}); weights {res.weights}")


# -------------------------------------------------------------------------------- report
@app.command()
def report(
    out: Annotated[Path, typer.Option(help="Report folder (replaced whole).")] = (
        PROJECT_ROOT / "data" / "processed" / "report"),
    processed: Annotated[Path, typer.Option(
        help="Processing output folder holding study.sqlite.")] = (
        PROJECT_ROOT / "data" / "processed"),
    allocation: Annotated[Path | None, typer.Option(
        help="allocation.csv (subject_id,arm); without it the report is blinded.")] = None,
    threshold: Annotated[float, typer.Option(
        help="Healed % that counts as healed (90, 95, 100).")] = 95.0,
    confirm: Annotated[bool, typer.Option(
        help="Require confirmation at the next visit.")] = False,
    include_failed_qc: Annotated[bool, typer.Option(
        help="Use photos with excluding QC flags for the endpoints.")] = False,
    include_held: Annotated[bool, typer.Option(
        help="Use photos held for a read (low confidence, out of distribution) that no read "
             "has accepted yet.")] = False,
    qc_exclude: Annotated[str | None, typer.Option(
        help="Comma-separated QC flags that exclude a photo (default: built-in set).")] = None,
    bootstrap: Annotated[int, typer.Option(
        help="Bootstrap resamples for the interval-censored median's CI.")] = 300,
) -> None:
    """Healing curves, time to healing and agreement: tables, figures, HTML and JSON."""
    from pipeline.report import DEFAULT_QC_EXCLUDE, ReportError, ReportOptions, build_report

    try:
        flags = DEFAULT_QC_EXCLUDE if qc_exclude is None else frozenset(
            f.strip() for f in qc_exclude.split(",") if f.strip())
        options = ReportOptions(threshold=threshold, confirm=confirm,
                                include_failed_qc=include_failed_qc, qc_exclude=flags,
                                include_held=include_held, bootstrap=bootstrap)
        res = build_report(processed, out, allocation=allocation, options=options)
    except ReportError as exc:
        _fail(str(exc))
    kind = "blinded" if res.blinded else f"unblinded ({allocation})"
    typer.echo(f"report, {kind}: {res.html} (summary {res.summary.name}, {len(res.files)} "
               f"files; {res.n_excluded} photo(s) excluded from the endpoints)")


# -------------------------------------------------------------------------------- review
from pipeline.review.cli import review_app  # noqa: E402  (typer only; Flask loads on use)

app.add_typer(review_app, name="review")

# ----------------------------------------------------------------------------- composite
from pipeline.composite.cli import composite_app  # noqa: E402  (typer only)

app.add_typer(composite_app, name="composite")

# ------------------------------------------------------------- corrections loop (issue 19)
from pipeline.cli_corrections import register_commands  # noqa: E402

register_commands(app)


def main() -> None:  # pragma: no cover - console entry point
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
