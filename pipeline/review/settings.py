"""Review settings.

Two validated, frozen values:

- :class:`StudyReviewSettings` — decisions about the study's reading, stored in the study
  store (``review_settings``) so that every server and command agrees: whether assessors see
  the visit day (default hidden), the disagreement threshold that sends a photo to
  adjudication, reads per photo, the fraction of hidden repeats, the queue seed.
- :class:`ServerConfig` — how one server runs: where the output folder is, cookie and session
  options, login throttling, password-hash cost.
"""

from __future__ import annotations

import sqlite3
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from pipeline.review.errors import ReviewSettingsError
from pipeline.store import utc_now

__all__ = ["StudyReviewSettings", "ServerConfig", "load_study_settings", "save_study_settings"]


@dataclass(frozen=True)
class StudyReviewSettings:
    """Study-level reading decisions (stored in the study store).

    Parameters
    ----------
    show_visit_day : bool
        Whether assessors see the visit day of a photo (default: hidden).
    disagreement_threshold : float
        Two reads of a photo whose estimates differ by more than this many percentage points
        (or whose verdicts differ) go to adjudication.
    reads_per_photo : int
        Independent assessors per photo.
    repeat_fraction : float
        Fraction of each assessor's queue added again later as hidden repeats, in [0, 0.5].
    queue_seed : int
        Seed of the randomized queue order.
    show_live_numbers : bool
        Whether the viewer shows the live planimetry of the mask being read (epithelialized,
        raw and donor-site cm², healed %) — the model's numbers until the assessor edits the
        mask. Default hidden, so that the typed estimate stays blind to them.

    Examples
    --------
    >>> StudyReviewSettings().disagreement_threshold
    10.0
    """

    show_visit_day: bool = False
    disagreement_threshold: float = 10.0
    reads_per_photo: int = 2
    repeat_fraction: float = 0.05
    queue_seed: int = 20260
    show_live_numbers: bool = False

    def __post_init__(self) -> None:
        for name in ("show_visit_day", "show_live_numbers"):
            if not isinstance(getattr(self, name), bool):
                raise ReviewSettingsError(f"{name} must be true or false, got "
                                          f"{getattr(self, name)!r}")
        if not 0.0 <= float(self.disagreement_threshold) <= 100.0:
            raise ReviewSettingsError(f"disagreement_threshold must be within [0, 100] "
                                      f"points, got {self.disagreement_threshold!r}")
        object.__setattr__(self, "disagreement_threshold", float(self.disagreement_threshold))
        if not isinstance(self.reads_per_photo, int) or not 1 <= self.reads_per_photo <= 10:
            raise ReviewSettingsError(f"reads_per_photo must be an integer in 1..10, got "
                                      f"{self.reads_per_photo!r}")
        if not 0.0 <= float(self.repeat_fraction) <= 0.5:
            raise ReviewSettingsError(f"repeat_fraction must be within [0, 0.5], got "
                                      f"{self.repeat_fraction!r}")
        object.__setattr__(self, "repeat_fraction", float(self.repeat_fraction))
        if not isinstance(self.queue_seed, int) or self.queue_seed < 0:
            raise ReviewSettingsError(f"queue_seed must be a non-negative integer, got "
                                      f"{self.queue_seed!r}")


_PARSERS = {"show_visit_day": lambda v: v == "1", "disagreement_threshold": float,
            "reads_per_photo": int, "repeat_fraction": float, "queue_seed": int,
            "show_live_numbers": lambda v: v == "1"}


def load_study_settings(conn: sqlite3.Connection) -> StudyReviewSettings:
    """The stored settings (defaults for keys never set)."""
    stored = {r[0]: r[1] for r in conn.execute("SELECT key, value FROM review_settings")}
    values = {k: _PARSERS[k](v) for k, v in stored.items() if k in _PARSERS}
    return StudyReviewSettings(**values)


def save_study_settings(conn: sqlite3.Connection, settings: StudyReviewSettings) -> None:
    """Store every field of ``settings`` (call inside a transaction)."""
    now = utc_now()
    for k, v in asdict(settings).items():
        text = ("1" if v else "0") if isinstance(v, bool) else repr(v)
        conn.execute("INSERT INTO review_settings VALUES (?, ?, ?) ON CONFLICT(key) DO UPDATE "
                     "SET value=excluded.value, updated_utc=excluded.updated_utc",
                     (k, text, now))


@dataclass(frozen=True)
class ServerConfig:
    """How one review server runs.

    Parameters
    ----------
    out_dir : Path
        The processing output folder (``study.sqlite``, ``masks/``, ``review/``).
    secure_cookies : bool
        Mark cookies ``Secure`` (set when served over HTTPS).
    session_hours : float
        Lifetime of a login session.
    max_user_failures, max_ip_failures : int
        Failed logins allowed per user name and per client address within
        ``lockout_minutes`` before further attempts are refused.
    lockout_minutes : float
        The throttling window.
    argon2_time_cost, argon2_memory_kib : int
        Cost of new password hashes (argon2id).

    Examples
    --------
    >>> ServerConfig(out_dir=Path("data/processed")).store_path.name
    'study.sqlite'
    """

    out_dir: Path
    secure_cookies: bool = False
    session_hours: float = 12.0
    max_user_failures: int = 5
    max_ip_failures: int = 20
    lockout_minutes: float = 15.0
    argon2_time_cost: int = 3
    argon2_memory_kib: int = 65536

    def __post_init__(self) -> None:
        object.__setattr__(self, "out_dir", Path(self.out_dir))
        for name in ("max_user_failures", "max_ip_failures", "argon2_time_cost",
                     "argon2_memory_kib"):
            v = getattr(self, name)
            if not isinstance(v, int) or v < 1:
                raise ReviewSettingsError(f"{name} must be a positive integer, got {v!r}")
        for name in ("session_hours", "lockout_minutes"):
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or v <= 0:
                raise ReviewSettingsError(f"{name} must be > 0, got {v!r}")

    @property
    def store_path(self) -> Path:
        return self.out_dir / "study.sqlite"

    def with_(self, **changes: object) -> ServerConfig:
        return replace(self, **changes)  # type: ignore[arg-type]
