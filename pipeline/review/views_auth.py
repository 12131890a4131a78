"""Login, logout, password change, and the home page that sends each role to its start."""

from __future__ import annotations

import hmac
import re
import secrets

from flask import Blueprint, Response, g, redirect, render_template, request, url_for

from pipeline.review.accounts import (
    MIN_PASSWORD_LENGTH,
    authenticate,
    create_session,
    revoke_session,
    set_password,
)
from pipeline.review.context import LOGIN_COOKIE, SESSION_COOKIE, config, hasher, store, user
from pipeline.review.errors import AccountError, LoginThrottledError

bp = Blueprint("auth", __name__)


def _cookie(resp: Response, name: str, value: str, *, path: str = "/") -> None:
    """A browser-session cookie (no Expires: it ends with the browser; the server ends the
    session itself after ``session_hours`` or at logout)."""
    resp.set_cookie(name, value, path=path, httponly=True, samesite="Strict",
                    secure=config().secure_cookies)


_TOKEN = re.compile(r"[A-Za-z0-9_-]{32}")


def _login_page(message: str | None, status: int) -> Response:
    # keep the browser's token: another tab (or a favicon request redirected here) must not
    # invalidate a login form already on screen
    token = request.cookies.get(LOGIN_COOKIE, "")
    if not _TOKEN.fullmatch(token):
        token = secrets.token_urlsafe(24)
    resp = Response(render_template("login.html", csrf_token=token, message=message,
                                    user=None), status=status, mimetype="text/html")
    _cookie(resp, LOGIN_COOKIE, token, path="/login")
    return resp


@bp.route("/login", methods=["GET", "POST"])
def login() -> Response:
    if request.method == "GET":
        if g.get("user") is not None:
            return redirect(url_for("auth.home"))
        return _login_page(None, 200)
    sent = request.form.get("csrf_token", "")
    expected = request.cookies.get(LOGIN_COOKIE, "")
    if not expected or not hmac.compare_digest(sent.encode(), expected.encode()):
        return _login_page("The login form expired: please try again.", 400)
    name = request.form.get("name", "")
    password = request.form.get("password", "")
    s = store()
    try:
        with s.transaction() as c:
            u = authenticate(c, name, password, ip=request.remote_addr or "?",
                             config=config(), hasher=hasher())
            token = create_session(c, u, config=config()) if u is not None else None
    except LoginThrottledError:
        return _login_page("Too many failed logins: try again later.", 429)
    if token is None:
        return _login_page("Wrong name or password.", 401)
    resp = redirect(url_for("auth.home"))
    _cookie(resp, SESSION_COOKIE, token)
    resp.delete_cookie(LOGIN_COOKIE, path="/login")
    return resp


@bp.route("/logout", methods=["POST"])
def logout() -> Response:
    with store().transaction() as c:
        revoke_session(c, request.cookies.get(SESSION_COOKIE))
    resp = redirect(url_for("auth.login"))
    resp.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="Strict")
    return resp


@bp.route("/password", methods=["GET", "POST"])
def password() -> Response | str:
    u = user()
    message = None
    if request.method == "POST":
        current = request.form.get("current", "")
        new = request.form.get("new", "")
        if new != request.form.get("confirm", ""):
            message = "The new passwords do not match."
        elif new == current:
            message = "Choose a password different from the current one."
        else:
            row = store().conn.execute("SELECT password_hash FROM review_users WHERE "
                                       "user_id=?", (u.user_id,)).fetchone()
            try:
                hasher().verify(row[0], current)
            except Exception:
                message = "The current password is wrong."
            else:
                try:
                    with store().transaction() as c:
                        set_password(c, u.name, new, hasher=hasher())
                except AccountError as exc:
                    message = str(exc)
                else:
                    return redirect(url_for("auth.home"))
    return render_template("password.html", user=u, message=message,
                           min_length=MIN_PASSWORD_LENGTH)


@bp.route("/")
def home() -> Response:
    u = user()
    return redirect(url_for("assessor.queue" if u.role == "assessor" else "coordinator.home"))
