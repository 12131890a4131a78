"""Opaque codes for everything a reviewer's browser sees besides task and item codes.

Pictures are served under their task's random code; the query string only has to change when
what is shown changes (a new result, a new read version), so that a cached picture is never
stale. It used to carry the result id (``?r=17``), which runs in subject-then-visit order and
is the same for a hidden repeat and its original. Now it carries
``HMAC-SHA256(key, purpose | task code | result | version)``, cut to 16 hex digits: it
changes with the result but tells nothing about it, differs between a repeat and its
original (their task codes differ), and cannot be inverted by trying small result ids without
the app's secret key (:meth:`pipeline.review.appdb.AppDB.secret`).
"""

from __future__ import annotations

import hashlib
import hmac

__all__ = ["opaque", "URL_KEY_NAME"]

#: Name of the app secret used for URL codes.
URL_KEY_NAME = "url-key"


def opaque(key: bytes, *parts: object, n_hex: int = 16) -> str:
    """A keyed, uninvertible code for ``parts`` (lower-case hex).

    Examples
    --------
    >>> a = opaque(b"k" * 32, "photo", "T0123456789", 17)
    >>> len(a), a == opaque(b"k" * 32, "photo", "T0123456789", 17)
    (16, True)
    >>> a == opaque(b"k" * 32, "photo", "T0123456789", 18)
    False
    """
    if len(key) < 16:
        raise ValueError("the URL key is too short")
    msg = "\x1f".join(str(p) for p in parts).encode()
    return hmac.new(key, msg, hashlib.sha256).hexdigest()[:n_hex]
