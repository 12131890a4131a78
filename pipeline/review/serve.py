"""Run the review app with waitress (a production WSGI server; no debug mode, ever)."""

from __future__ import annotations

from pipeline.review.app import create_app
from pipeline.review.errors import ReviewError
from pipeline.review.settings import ServerConfig

__all__ = ["serve"]


def serve(config: ServerConfig, *, host: str = "127.0.0.1", port: int = 8000,
          threads: int = 8) -> None:
    """Serve the review app until interrupted.

    Raises
    ------
    ReviewError
        No study store in ``config.out_dir``.
    """
    from waitress import serve as waitress_serve

    if not config.store_path.is_file():
        raise ReviewError(f"{config.store_path}: no study store (run donorsite process first)")
    app = create_app(config)
    waitress_serve(app, host=host, port=port, threads=threads, ident="donorsite-review")
