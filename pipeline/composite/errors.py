"""Errors of the composite studies."""

from __future__ import annotations

__all__ = ["CompositeError"]


class CompositeError(Exception):
    """A composite study cannot be made (bad source folder, unreadable photo, bad option)."""
