"""The review web app (Flask): server-rendered pages and a little vanilla JavaScript.

``create_app(config)`` builds the app for one study's output folder. Every request opens the
study store, finds the user from the session cookie, and is turned away unless it is the
login page or a static asset. Every state-changing request must carry the session's CSRF token
(a form field ``csrf_token`` or an ``X-CSRF-Token`` header); the login form carries a token
bound to a short-lived cookie. Responses get a strict Content-Security-Policy (no inline
script), ``no-store`` for pages, and generic error pages that echo nothing.

Blinding by construction: nothing here takes an allocation; views receive opaque task and
item codes only; the visit day is shown only when the study's setting says so.
"""

from __future__ import annotations

import hmac
from pathlib import Path

from argon2 import PasswordHasher
from flask import Flask, Response, g, jsonify, redirect, render_template, request, url_for
from werkzeug.exceptions import HTTPException

from pipeline.review.accounts import make_hasher, session_user
from pipeline.review.appdb import AppDB
from pipeline.review.context import EXTENSION, SESSION_COOKIE, store
from pipeline.review.opaque import URL_KEY_NAME
from pipeline.review.settings import ServerConfig
from pipeline.store import Store

__all__ = ["create_app"]

HERE = Path(__file__).resolve().parent
_PUBLIC = {"auth.login", "static"}
_SAFE = {"GET", "HEAD", "OPTIONS"}
_MESSAGES = {
    400: "The request was not accepted (a form may have expired: reload the page).",
    401: "Please log in.",
    403: "Not allowed.",
    404: "Not found.",
    405: "Not allowed.",
    413: "The request is too large.",
    429: "Too many attempts: try again later.",
    500: "Something went wrong on the server.",
}
_CSP = ("default-src 'self'; img-src 'self' data: blob:; script-src 'self'; "
        "style-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
        "frame-ancestors 'none'")


def create_app(config: ServerConfig, *, hasher: PasswordHasher | None = None) -> Flask:
    """The review app for the study store in ``config.out_dir``.

    Examples
    --------
    >>> app = create_app(ServerConfig(out_dir=tmp))  # doctest: +SKIP
    >>> app.test_client().get("/").status_code  # doctest: +SKIP
    302
    """
    from pipeline.review import views_assessor, views_auth, views_coordinator, views_drafts

    app = Flask("pipeline.review", template_folder=str(HERE / "templates"),
                static_folder=str(HERE / "static"), static_url_path="/static")
    app.config.update(MAX_CONTENT_LENGTH=8 * 1024 * 1024, JSON_SORT_KEYS=False)
    Store.open(config.store_path).close()  # create or migrate once, before serving
    adb = AppDB.open(config.out_dir)
    try:
        url_key = adb.secret(URL_KEY_NAME)
    finally:
        adb.close()
    app.extensions[EXTENSION] = {"config": config, "hasher": hasher or make_hasher(config),
                                 "url_key": url_key}
    app.register_blueprint(views_auth.bp)
    app.register_blueprint(views_assessor.bp)
    app.register_blueprint(views_coordinator.bp)
    app.register_blueprint(views_drafts.bp)
    app.before_request(_guard)
    app.teardown_request(_close_store)
    app.after_request(_headers)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _server_error)
    return app


def _wants_json() -> bool:
    return request.path.startswith("/api/") or request.is_json


def _guard() -> Response | None:
    g.user = session_user(store().conn, request.cookies.get(SESSION_COOKIE))
    endpoint = request.endpoint
    if endpoint in _PUBLIC:
        return None
    if g.user is None:
        if _wants_json():
            return _error(401)
        return redirect(url_for("auth.login"))
    if request.method not in _SAFE:
        sent = request.headers.get("X-CSRF-Token") or request.form.get("csrf_token") or ""
        if not hmac.compare_digest(sent.encode(), g.user.csrf_token.encode()):
            return _error(400, "Missing or invalid security token: reload the page.")
    if g.user.must_change and endpoint not in ("auth.password", "auth.logout"):
        return redirect(url_for("auth.password"))
    return None


def _close_store(exc: BaseException | None) -> None:
    for name in ("store", "appdb"):
        s = g.pop(name, None)
        if s is not None:
            s.close()


def _headers(resp: Response) -> Response:
    resp.headers["Content-Security-Policy"] = _CSP
    resp.headers["X-Content-Type-Options"] = "nosniff"
    resp.headers["X-Frame-Options"] = "DENY"
    resp.headers["Referrer-Policy"] = "no-referrer"
    resp.headers.setdefault("Cache-Control", "no-store")
    resp.headers.pop("Last-Modified", None)
    return resp


def _error(status: int, message: str | None = None) -> Response:
    text = message or _MESSAGES.get(status, "Error.")
    if _wants_json():
        resp = jsonify(error=text)
    else:
        resp = Response(render_template("error.html", status=status, message=text,
                                        user=g.get("user")), mimetype="text/html")
    resp.status_code = status
    return resp


def _http_error(exc: HTTPException) -> Response:
    return _error(exc.code or 500)


def _server_error(exc: Exception) -> Response:  # pragma: no cover - exercised by bugs only
    import logging

    logging.getLogger("pipeline.review").exception("unhandled error")
    return _error(500)
