"""Provenance: which software produced a result."""

from __future__ import annotations

import subprocess
from functools import lru_cache
from importlib import metadata

from pipeline.config import PROJECT_ROOT

__all__ = ["software_version", "git_commit"]


@lru_cache(maxsize=1)
def software_version() -> str:
    try:
        return metadata.version("donorsite")
    except metadata.PackageNotFoundError:
        return "0+unknown"


@lru_cache(maxsize=1)
def git_commit() -> str:
    """The source checkout's commit (with ``-dirty`` when it has local changes)."""
    try:
        sha = subprocess.run(["git", "-C", str(PROJECT_ROOT), "rev-parse", "HEAD"],
                             capture_output=True, text=True, timeout=5, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(PROJECT_ROOT), "status", "--porcelain",
                                "--untracked-files=no"], capture_output=True, text=True,
                               timeout=5).stdout.strip()
        return sha + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"
