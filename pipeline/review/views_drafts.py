"""Drafts: an assessor's unsaved work on a task, autosaved by the viewer (issue 18).

``GET /api/draft/<code>`` returns the assessor's own draft of their own task (or
``{"draft": null}``), ``POST`` replaces it, ``DELETE`` discards it. Saving the read discards
the draft. A task that is not the logged-in assessor's does not exist (404), so nobody sees
another's draft. The mask is validated like a submitted correction (a grey-coded PNG at the
review picture's size) and stored as sent.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from flask import Blueprint, Response, jsonify, request

from pipeline.review.context import appdb, config, role_required, user
from pipeline.review.errors import DraftError, ReviewImageError
from pipeline.review.images import decode_browser_mask, picture_size, review_picture
from pipeline.review.reads import REASONS, VERDICTS
from pipeline.review.views_assessor import _bad, _task

__all__ = ["bp", "clean_form"]

bp = Blueprint("drafts", __name__)
_LIMITS = {"estimate_percent": 12, "verdict": 32, "reason": 32, "comment": 2000}


def clean_form(form: Any) -> dict[str, str]:
    """The draft's form fields as strings, checked (unknown fields, wrong types, over-long
    values and unknown verdicts or reasons are refused).

    Examples
    --------
    >>> clean_form({"estimate_percent": "40", "verdict": "accept"})["estimate_percent"]
    '40'
    """
    if not isinstance(form, dict):
        raise DraftError("the draft's form must be a JSON object")
    unknown = set(form) - set(_LIMITS)
    if unknown:
        raise DraftError(f"unknown draft fields {sorted(unknown)}")
    out = {}
    for k, limit in _LIMITS.items():
        v = form.get(k)
        v = "" if v is None else v
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            v = format(v, "g")
        if not isinstance(v, str) or len(v) > limit:
            raise DraftError(f"draft field {k!r} must be text of at most {limit} characters")
        out[k] = v
    if out["verdict"] not in ("", *VERDICTS):
        raise DraftError(f"unknown verdict {out['verdict']!r}")
    if out["reason"] not in ("", *REASONS):
        raise DraftError(f"unknown reason {out['reason']!r}")
    return out


@bp.route("/api/draft/<code>", methods=["GET", "POST", "DELETE"])
@role_required("assessor")
def draft(code: str) -> Response:
    view = _task(code)
    db = appdb()
    if request.method == "DELETE":
        db.discard_draft(user().name, code)
        return jsonify(discarded=True)
    if request.method == "GET":
        d = db.draft(user().name, code)
        if d is None:
            return jsonify(draft=None)
        mask = base64.b64encode(d.mask_png).decode() if d.mask_png else None
        return jsonify(draft={"form": d.form, "mask_png": mask, "saved_utc": d.updated_utc})
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        return _bad("send the draft as a JSON object")
    try:
        form = clean_form(body.get("form", {}))
        png = None
        if body.get("mask_png"):
            try:
                png = base64.b64decode(str(body["mask_png"]), validate=True)
            except (binascii.Error, ValueError):
                return _bad("the draft's mask is not valid base64")
            size = picture_size(review_picture(config().out_dir, view.photo.overlay_file)[0])
            decode_browser_mask(png, size)  # refuse anything that is not a mask of this size
        saved = db.save_draft(user().name, code, form=form, mask_png=png)
    except (DraftError, ReviewImageError) as exc:
        return _bad(str(exc))
    return jsonify(saved=True, saved_utc=saved)
