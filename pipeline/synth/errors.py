"""Exceptions of the synthetic study generator: one base class, specific subclasses."""

from __future__ import annotations

__all__ = ["SynthError", "StudyConfigError", "StudyExistsError"]


class SynthError(Exception):
    """Base class of everything the study generator raises."""


class StudyConfigError(SynthError, ValueError):
    """A study setting is invalid; the message names the setting and echoes the bad value."""


class StudyExistsError(SynthError, FileExistsError):
    """The output folder already holds a study (or other files) and may not be replaced."""
