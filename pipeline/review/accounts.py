"""Accounts, login sessions and login throttling, all in the study store.

- Passwords are hashed with argon2id (argon2-cffi); ``add_user`` makes a one-time password
  that must be changed at the first login.
- A session is a random token in an HttpOnly, SameSite=Strict cookie; the store keeps only its
  sha256 and the session's CSRF token. Logout revokes the row, so a stolen cookie dies with it.
- Failed logins are counted per user name and per client address in a sliding window; past
  the limit, further attempts are refused (even with the right password) until the window
  has passed.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
import sqlite3
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from pipeline.review.errors import AccountError, LoginThrottledError
from pipeline.review.settings import ServerConfig
from pipeline.store import utc_now

__all__ = ["User", "ROLES", "make_hasher", "add_user", "set_password", "authenticate",
           "create_session", "session_user", "revoke_session", "MIN_PASSWORD_LENGTH"]

#: The kinds of review users.
ROLES = ("assessor", "coordinator")
MIN_PASSWORD_LENGTH = 10


@dataclass(frozen=True)
class User:
    """A logged-in (or looked-up) review user."""

    user_id: int
    name: str
    role: str
    must_change: bool
    csrf_token: str = ""


def make_hasher(config: ServerConfig) -> PasswordHasher:
    """The argon2id hasher with the server's cost settings."""
    return PasswordHasher(time_cost=config.argon2_time_cost,
                          memory_cost=config.argon2_memory_kib, parallelism=1)


def _valid_name(name: str) -> bool:
    return (1 <= len(name) <= 40 and name[0].isalnum()
            and all(c.isalnum() or c in "._-" for c in name))


def add_user(conn: sqlite3.Connection, name: str, *, role: str, hasher: PasswordHasher,
             password: str | None = None, must_change: bool = True) -> str:
    """Create a user and return its password (a fresh one-time password unless given).

    Examples
    --------
    >>> import sqlite3  # doctest: +SKIP
    >>> add_user(conn, "alice", role="assessor", hasher=hasher)  # doctest: +SKIP
    'kR3...'
    """
    if role not in ROLES:
        raise AccountError(f"role must be one of {ROLES}, got {role!r}")
    if not _valid_name(name):
        raise AccountError(f"user name must be 1-40 letters, digits, '.', '_' or '-', "
                           f"got {name!r}")
    password = password if password is not None else secrets.token_urlsafe(12)
    _check_strength(password)
    try:
        conn.execute("INSERT INTO review_users (name, role, password_hash, must_change, "
                     "created_utc) VALUES (?,?,?,?,?)",
                     (name, role, hasher.hash(password), int(must_change), utc_now()))
    except sqlite3.IntegrityError as exc:
        raise AccountError(f"user {name!r} already exists") from exc
    return password


def _check_strength(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError(f"a password needs at least {MIN_PASSWORD_LENGTH} characters")


def set_password(conn: sqlite3.Connection, name: str, password: str, *,
                 hasher: PasswordHasher, must_change: bool = False) -> None:
    """Replace a user's password (and revoke their sessions when it is a reset)."""
    _check_strength(password)
    cur = conn.execute("UPDATE review_users SET password_hash=?, must_change=? WHERE name=?",
                       (hasher.hash(password), int(must_change), name))
    if cur.rowcount != 1:
        raise AccountError(f"no user {name!r}")
    if must_change:
        conn.execute("UPDATE review_sessions SET revoked_utc=? WHERE revoked_utc IS NULL AND "
                     "user_id=(SELECT user_id FROM review_users WHERE name=?)",
                     (utc_now(), name))


def _iso(t: dt.datetime) -> str:
    return t.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _failures_since(conn: sqlite3.Connection, column: str, value: str, since: str) -> int:
    return conn.execute(f"SELECT COUNT(*) FROM review_login_attempts WHERE {column}=? AND "
                        "ok=0 AND created_utc>=?", (value, since)).fetchone()[0]


def authenticate(conn: sqlite3.Connection, name: str, password: str, *, ip: str,
                 config: ServerConfig, hasher: PasswordHasher) -> User | None:
    """Check a login; record the attempt. Returns the user, or None for a wrong login.

    Raises
    ------
    LoginThrottledError
        Too many failures for this name or this address within the window (the attempt is
        refused without checking the password).
    """
    now = dt.datetime.now(dt.UTC)
    since = _iso(now - dt.timedelta(minutes=config.lockout_minutes))
    name = name.strip()[:80]
    if (_failures_since(conn, "username", name, since) >= config.max_user_failures
            or _failures_since(conn, "ip", ip, since) >= config.max_ip_failures):
        raise LoginThrottledError("too many failed logins: try again later")
    row = conn.execute("SELECT user_id, name, role, password_hash, must_change FROM "
                       "review_users WHERE name=? AND active=1", (name,)).fetchone()
    ok = False
    if row is None:
        # spend about the time of a real check, so timing does not tell which names exist
        hasher.hash(password)
    else:
        try:
            ok = hasher.verify(row["password_hash"], password)
        except (VerificationError, InvalidHashError):
            ok = False
    conn.execute("INSERT INTO review_login_attempts (username, ip, ok, created_utc) VALUES "
                 "(?,?,?,?)", (name, ip, int(ok), utc_now()))
    if not ok:
        return None
    return User(row["user_id"], row["name"], row["role"], bool(row["must_change"]))


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_session(conn: sqlite3.Connection, user: User, *, config: ServerConfig) -> str:
    """Open a session for ``user``; returns the cookie token (only its hash is stored)."""
    token = secrets.token_urlsafe(32)
    now = dt.datetime.now(dt.UTC)
    conn.execute("INSERT INTO review_sessions VALUES (?,?,?,?,?,NULL)",
                 (_token_hash(token), user.user_id, secrets.token_urlsafe(32), _iso(now),
                  _iso(now + dt.timedelta(hours=config.session_hours))))
    return token


def session_user(conn: sqlite3.Connection, token: str | None) -> User | None:
    """The user of a live session token, with the session's CSRF token; None otherwise."""
    if not token or len(token) > 200:
        return None
    row = conn.execute(
        "SELECT u.user_id, u.name, u.role, u.must_change, s.csrf_token FROM review_sessions s "
        "JOIN review_users u USING (user_id) WHERE s.token_sha256=? AND s.revoked_utc IS NULL "
        "AND s.expires_utc>? AND u.active=1", (_token_hash(token), utc_now())).fetchone()
    if row is None:
        return None
    return User(row["user_id"], row["name"], row["role"], bool(row["must_change"]),
                row["csrf_token"])


def revoke_session(conn: sqlite3.Connection, token: str | None) -> None:
    """End a session (logout)."""
    if token:
        conn.execute("UPDATE review_sessions SET revoked_utc=? WHERE token_sha256=?",
                     (utc_now(), _token_hash(token)))
