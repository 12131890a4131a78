"""Per-request helpers shared by the review app's views: the store, the user, role guards,
responses that carry no metadata and no identifying names.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from argon2 import PasswordHasher
from flask import Response, abort, current_app, g

from pipeline.review.accounts import User
from pipeline.review.appdb import AppDB
from pipeline.review.opaque import opaque
from pipeline.review.settings import ServerConfig, StudyReviewSettings, load_study_settings
from pipeline.store import Store

__all__ = ["config", "hasher", "store", "appdb", "code_for", "user", "study", "role_required",
           "image_response", "SESSION_COOKIE", "LOGIN_COOKIE", "EXTENSION"]

SESSION_COOKIE = "ds_session"
LOGIN_COOKIE = "ds_login"
EXTENSION = "donorsite_review"


def config() -> ServerConfig:
    return current_app.extensions[EXTENSION]["config"]


def hasher() -> PasswordHasher:
    return current_app.extensions[EXTENSION]["hasher"]


def store() -> Store:
    """The request's store connection (opened on first use, closed at teardown)."""
    if "store" not in g:
        g.store = Store.open(config().store_path)
    return g.store


def appdb() -> AppDB:
    """The request's connection to the review app's own database (drafts, secrets)."""
    if "appdb" not in g:
        g.appdb = AppDB.open(config().out_dir)
    return g.appdb


def code_for(*parts: object) -> str:
    """An opaque code for ``parts`` under the app's URL key (see :mod:`pipeline.review.opaque`)."""
    return opaque(current_app.extensions[EXTENSION]["url_key"], *parts)


def user() -> User:
    """The logged-in user (the guard has already turned anonymous requests away)."""
    u = g.get("user")
    if u is None:  # pragma: no cover - the guard prevents this
        abort(401)
    return u


def study() -> StudyReviewSettings:
    return load_study_settings(store().conn)


def role_required(role: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Views of one role; for anyone else they do not exist (404, nothing revealed)."""

    def deco(view: Callable[..., Any]) -> Callable[..., Any]:
        @wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            if g.get("user") is None or g.user.role != role:
                abort(404)
            return view(*args, **kwargs)

        return wrapped

    return deco


def image_response(data: bytes, mimetype: str) -> Response:
    """Image bytes with no file name, no Last-Modified, private caching (for preloading)."""
    resp = Response(data, mimetype=mimetype)
    resp.headers["Cache-Control"] = "private, max-age=3600"
    return resp
