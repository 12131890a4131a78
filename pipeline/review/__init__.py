"""Blinded review of processed photos in a browser (Flask; server-rendered pages and a little
vanilla JavaScript).

Assessors read photos under opaque codes — their own estimate of % epithelialized, a verdict
on the overlay, a reason, a comment, and brush corrections of the mask; coordinators build the
queue, set the study's reading settings and adjudicate disagreements. Everything lives in the
study store (tables ``review_*``); nothing here ever reads an allocation.

Entry points: :func:`create_app` (the WSGI app), :func:`serve`, and the ``donorsite review``
commands (``serve``, ``add-user``, ``reset-password``, ``settings``, ``build-queue``,
``export``).
"""

from __future__ import annotations

import importlib
from typing import Any

# Public names -> their modules, imported on first use (PEP 562), so that `donorsite` commands
# other than `review` never pay for Flask and argon2.
_LAZY = {
    "create_app": "app", "serve": "serve",
    "ServerConfig": "settings", "StudyReviewSettings": "settings",
    "load_study_settings": "settings", "save_study_settings": "settings",
    "ROLES": "accounts", "add_user": "accounts", "set_password": "accounts",
    "make_hasher": "accounts",
    "build_queue": "queue", "QueueBuild": "queue",
    "ReadInput": "reads", "VERDICTS": "reads", "REASONS": "reads", "READ_COLUMNS": "reads",
    "export_reads": "reads",
    "adjudication_items": "adjudication", "disagreements": "adjudication",
    "export_decisions": "adjudication",
    "ReviewError": "errors", "ReviewSettingsError": "errors", "AccountError": "errors",
    "LoginThrottledError": "errors", "QueueError": "errors", "ReadError": "errors",
    "ReviewImageError": "errors", "DraftError": "errors", "AppDB": "appdb",
}
__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'pipeline.review' has no attribute {name!r}")
    return getattr(importlib.import_module(f"pipeline.review.{_LAZY[name]}"), name)
