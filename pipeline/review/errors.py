"""The review app's exceptions (all :class:`pipeline.errors.PipelineError` subclasses).

Messages never carry a subject identifier, an arm or a date: they may reach a browser.
"""

from __future__ import annotations

from pipeline.errors import PipelineError

__all__ = ["ReviewError", "ReviewSettingsError", "AccountError", "LoginThrottledError",
           "QueueError", "ReadError", "ReviewImageError"]


class ReviewError(PipelineError):
    """Base class of the review app's errors."""

    code = "review_error"


class ReviewSettingsError(ReviewError, ValueError):
    """A review setting is invalid; the message names it and echoes the bad value."""

    code = "bad_review_setting"


class AccountError(ReviewError):
    """A user account cannot be created or changed (duplicate name, bad role, weak password)."""

    code = "account_error"


class LoginThrottledError(ReviewError):
    """Too many failed logins for this user or from this address: try again later."""

    code = "login_throttled"


class QueueError(ReviewError):
    """The reading queue cannot be built (too few assessors, nothing to read)."""

    code = "queue_error"


class ReadError(ReviewError, ValueError):
    """A submitted read is invalid (estimate out of range, unknown verdict, bad mask)."""

    code = "bad_read"


class ReviewImageError(ReviewError):
    """A review picture or mask is missing or unreadable."""

    code = "review_image"


class DraftError(ReviewError, ValueError):
    """An autosaved draft is invalid (unknown fields, over-long text, too large)."""

    code = "bad_draft"
