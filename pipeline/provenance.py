"""Provenance: which software produced a result.

Nothing here runs ``git`` or reads ``.git``: a run must not touch the project's checkout.
The commit is taken, in this order, from the ``DONORSITE_GIT_COMMIT`` environment variable
(set it when building a release or container) or a ``pipeline/_build_commit.txt`` written at
packaging time; otherwise it is ``"unknown"`` and the software version identifies the code.
"""

from __future__ import annotations

import os
from functools import lru_cache
from importlib import metadata
from pathlib import Path

__all__ = ["software_version", "git_commit", "COMMIT_ENV"]

#: Environment variable that names the source commit, when the deployer knows it.
COMMIT_ENV = "DONORSITE_GIT_COMMIT"
_BUILD_COMMIT = Path(__file__).with_name("_build_commit.txt")


@lru_cache(maxsize=1)
def software_version() -> str:
    try:
        return metadata.version("donorsite")
    except metadata.PackageNotFoundError:
        return "0+unknown"


def git_commit() -> str:
    """The source commit as declared by the deployer (never by running git); else 'unknown'.

    Examples
    --------
    >>> os.environ[COMMIT_ENV] = "abc123"; git_commit()
    'abc123'
    >>> del os.environ[COMMIT_ENV]
    """
    declared = os.environ.get(COMMIT_ENV, "").strip()
    if declared:
        return declared[:64]
    try:
        text = _BUILD_COMMIT.read_text(encoding="utf-8").strip()
    except OSError:
        return "unknown"
    return text[:64] or "unknown"
