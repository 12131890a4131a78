"""One ``donorsite process`` per output folder at a time.

The lock is ``OUT/.donorsite-process.lock``, held with ``flock`` for the whole batch and
holding the owner's PID, start time and command. A second run on the same ``--out`` is
refused with :class:`~pipeline.errors.RunLockedError` ("in use by PID …, started …"). The
kernel drops an ``flock`` when its process dies (even by ``kill -9``), so a lock left by a dead
run never blocks: the next run takes it over and says so (:attr:`RunLock.note`).
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import os
import sys
from pathlib import Path

from pipeline.errors import RunLockedError

__all__ = ["RunLock", "LOCK_NAME"]

LOCK_NAME = ".donorsite-process.lock"


class RunLock:
    """The output folder's run lock; a context manager.

    Parameters
    ----------
    out_dir : Path
        The output folder (created when missing).

    Examples
    --------
    >>> import tempfile
    >>> d = Path(tempfile.mkdtemp())
    >>> with RunLock(d) as lock:
    ...     try:
    ...         RunLock(d).acquire()
    ...     except RunLockedError as exc:
    ...         print("in use by PID" in str(exc))
    True
    """

    def __init__(self, out_dir: Path) -> None:
        self.path = Path(out_dir) / LOCK_NAME
        self.note: str | None = None
        self._fd: int | None = None

    def acquire(self) -> RunLock:
        """Take the lock or raise :class:`RunLockedError` naming its holder."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = _read(fd)
            os.close(fd)
            raise RunLockedError(
                f"{self.path.parent} is in use by PID {holder.get('pid', '?')}, started "
                f"{holder.get('started_utc', '?')} ({holder.get('command', '?')}); wait for "
                "it to finish or use another --out") from None
        previous = _read(fd)
        if previous.get("pid"):
            alive = _alive(int(previous["pid"]))
            self.note = (f"took over the run lock of {self.path.parent} left by PID "
                         f"{previous['pid']} (started {previous.get('started_utc', '?')}), "
                         + ("which no longer holds it" if alive else "which is no longer "
                            "running") + "; its committed results are kept")
        info = {"pid": os.getpid(), "started_utc": dt.datetime.now(dt.UTC).isoformat(
            timespec="seconds"), "command": " ".join(sys.argv)[:300]}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(info).encode(), 0)
        os.fsync(fd)
        self._fd = fd
        return self

    def release(self) -> None:
        """Empty the lock file and drop the lock (the file stays, so no unlink race)."""
        if self._fd is None:
            return
        try:
            os.ftruncate(self._fd, 0)
        finally:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def _read(fd: int) -> dict:
    try:
        return json.loads(os.pread(fd, 4096, 0).decode() or "{}")
    except (ValueError, OSError):
        return {}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
