"""``donorsite review …``: the review app's commands (registered in :mod:`pipeline.cli`).

Thin: parse, call the library, print. Heavy imports (Flask, argon2) happen inside commands.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pipeline.config import PROJECT_ROOT

review_app = typer.Typer(name="review", no_args_is_help=True,
                         help="Blinded review of overlays in a browser: server, users, queue, "
                              "export.")

_PROCESSED = PROJECT_ROOT / "data" / "processed"
Processed = Annotated[Path, typer.Option("--processed",
                                         help="Processing output folder (holds study.sqlite).")]


def _fail(message: str, code: int = 2) -> None:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


def _open(processed: Path):
    from pipeline.review.settings import ServerConfig
    from pipeline.store import Store

    cfg = ServerConfig(out_dir=processed)
    if not cfg.store_path.is_file():
        _fail(f"{cfg.store_path}: no study store (run donorsite process first)")
    return cfg, Store.open(cfg.store_path)


@review_app.command()
def serve(
    processed: Processed = _PROCESSED,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 8000,
    threads: Annotated[int, typer.Option(help="Worker threads.")] = 8,
    secure_cookies: Annotated[bool, typer.Option(
        help="Mark cookies Secure (behind HTTPS).")] = False,
) -> None:
    """Serve the review app (Ctrl+C stops it)."""
    from pipeline.review.errors import ReviewError
    from pipeline.review.serve import serve as run_server
    from pipeline.review.settings import ServerConfig

    cfg = ServerConfig(out_dir=processed, secure_cookies=secure_cookies)
    typer.echo(f"review app on http://{host}:{port}/ (study store {cfg.store_path})")
    try:
        run_server(cfg, host=host, port=port, threads=threads)
    except ReviewError as exc:
        _fail(str(exc))


@review_app.command("add-user")
def add_user_cmd(
    name: Annotated[str, typer.Argument(help="Login name.")],
    role: Annotated[str, typer.Option(help="assessor or coordinator.")] = "assessor",
    processed: Processed = _PROCESSED,
) -> None:
    """Create a user and print a one-time password (to be changed at the first login)."""
    from pipeline.review.accounts import add_user, make_hasher
    from pipeline.review.errors import AccountError

    cfg, store = _open(processed)
    with store:
        try:
            with store.transaction() as c:
                password = add_user(c, name, role=role, hasher=make_hasher(cfg))
        except AccountError as exc:
            _fail(str(exc))
    typer.echo(f"{role} {name} created; one-time password: {password}")


@review_app.command("reset-password")
def reset_password(
    name: Annotated[str, typer.Argument(help="Login name.")],
    processed: Processed = _PROCESSED,
) -> None:
    """Give a user a new one-time password (ends their sessions)."""
    import secrets

    from pipeline.review.accounts import make_hasher, set_password
    from pipeline.review.errors import AccountError

    cfg, store = _open(processed)
    password = secrets.token_urlsafe(12)
    with store:
        try:
            with store.transaction() as c:
                set_password(c, name, password, hasher=make_hasher(cfg), must_change=True)
        except AccountError as exc:
            _fail(str(exc))
    typer.echo(f"{name}: new one-time password: {password}")


@review_app.command()
def settings(
    processed: Processed = _PROCESSED,
    show_visit_day: Annotated[bool | None, typer.Option(
        "--show-visit-day/--hide-visit-day", help="Whether assessors see the visit day.")] = None,
    threshold: Annotated[float | None, typer.Option(
        help="Adjudication threshold in percentage points.")] = None,
    reads_per_photo: Annotated[int | None, typer.Option(help="Assessors per photo.")] = None,
    repeat_fraction: Annotated[float | None, typer.Option(help="Hidden repeats.")] = None,
    seed: Annotated[int | None, typer.Option(help="Queue seed.")] = None,
    show_live_numbers: Annotated[bool | None, typer.Option(
        "--show-live-numbers/--hide-live-numbers",
        help="Whether assessors see the live cm² and healed % of the mask.")] = None,
) -> None:
    """Show (and with options, change) the study's reading settings."""
    from dataclasses import asdict, replace

    from pipeline.review.errors import ReviewSettingsError
    from pipeline.review.settings import load_study_settings, save_study_settings

    _, store = _open(processed)
    changes = {k: v for k, v in (("show_visit_day", show_visit_day),
                                 ("disagreement_threshold", threshold),
                                 ("reads_per_photo", reads_per_photo),
                                 ("repeat_fraction", repeat_fraction),
                                 ("queue_seed", seed),
                                 ("show_live_numbers", show_live_numbers)) if v is not None}
    with store:
        try:
            with store.transaction() as c:
                current = replace(load_study_settings(c), **changes)
                if changes:
                    save_study_settings(c, current)
        except ReviewSettingsError as exc:
            _fail(str(exc))
    for k, v in asdict(current).items():
        typer.echo(f"{k}: {v}")


@review_app.command("build-queue")
def build_queue_cmd(processed: Processed = _PROCESSED,
                    tiles: Annotated[bool, typer.Option(
                        help="Also make the deep-zoom tiles of the queued photos now (1-3 s "
                             "each at 12 MP), so that no assessor waits for them.")] = True,
                    ) -> None:
    """Assign processed photos that still lack reads to assessors, in a seeded random order."""
    from pipeline.review.errors import QueueError
    from pipeline.review.queue import build_queue
    from pipeline.review.settings import load_study_settings

    cfg, store = _open(processed)
    with store:
        try:
            built = build_queue(store, settings=load_study_settings(store.conn),
                                created_by="cli")
        except QueueError as exc:
            _fail(str(exc))
        typer.echo(f"build {built.build_id}: {built.n_tasks} tasks ({built.n_repeats} hidden "
                   f"repeats) over {built.n_photos} readable photos")
        for name, n in built.per_assessor:
            typer.echo(f"  {name}: +{n}")
        if tiles:
            from pipeline.review.prebuild import prebuild_pyramids

            def tick(i: int, n: int) -> None:
                if i == n or i % 20 == 0:
                    typer.echo(f"  deep-zoom tiles: {i}/{n} photos")

            done, problems = prebuild_pyramids(store.conn, cfg.out_dir, on_photo=tick)
            typer.echo(f"deep-zoom tiles ready for {done} photos")
            for p in problems:
                typer.echo(f"  no tiles (review picture only): {p}", err=True)


@review_app.command()
def export(
    out: Annotated[Path, typer.Option(
        help="CSV file to write (all read versions).")] = Path("reads.csv"),
    processed: Processed = _PROCESSED,
    adjudications: Annotated[Path | None, typer.Option(
        help="Also write the adjudication decisions to this CSV.")] = None,
) -> None:
    """Write every version of every read as CSV for analysts."""
    from pipeline.review.reads import export_reads

    cfg, store = _open(processed)
    with store:
        n = export_reads(store.conn, out)
        typer.echo(f"{n} read versions written to {out}")
        if adjudications is not None:
            from pipeline.review.adjudication import export_decisions
            from pipeline.review.appdb import AppDB

            db = AppDB.open(cfg.out_dir)
            try:
                details = db.decision_details()
            finally:
                db.close()
            m = export_decisions(store.conn, adjudications, details)
            typer.echo(f"{m} adjudication decisions written to {adjudications}")
