"""The coordinator's pages: progress, queue building, study settings, adjudication.

Coordinators are as blind as assessors: photos appear under opaque item codes, reads by
assessor name, estimate and verdict; no subject, arm or date anywhere.
"""

from __future__ import annotations

import re

from flask import Blueprint, Response, abort, redirect, render_template, request, url_for

from pipeline.review.adjudication import (
    Item,
    adjudication_items,
    decisions_csv,
    get_item,
    save_decision,
)
from pipeline.review.appdb import DecisionDetails
from pipeline.review.assign import deactivate, reassign_unread
from pipeline.review.context import (
    appdb,
    code_for,
    config,
    image_response,
    role_required,
    store,
    study,
    user,
)
from pipeline.review.dictionary import dictionary_csv
from pipeline.review.errors import QueueError, ReadError, ReviewError, ReviewImageError
from pipeline.review.images import (
    browser_mask,
    labels_to_browser_png,
    picture_size,
    read_labels,
    review_picture,
    strip_jpeg_metadata,
)
from pipeline.review.queue import build_queue, progress
from pipeline.review.reads import (
    REASONS,
    VERDICTS,
    PhotoView,
    Read,
    ReadInput,
    photo_view,
    reads_csv,
)
from pipeline.review.settings import StudyReviewSettings, save_study_settings
from pipeline.review.views_assessor import planimetry_of, review_mm_per_px, viewer_config

bp = Blueprint("coordinator", __name__, url_prefix="/coord")
_ITEM = re.compile(r"J[0-9A-F]{10}")


@bp.route("/")
@role_required("coordinator")
def home() -> str:
    conn = store().conn
    assessors = [r[0] for r in conn.execute(
        "SELECT name FROM review_users WHERE role='assessor' AND active=1 ORDER BY name")]
    rows = [(a, *progress(conn, a)) for a in assessors]
    inactive = [r[0] for r in conn.execute(
        "SELECT name FROM review_users WHERE role='assessor' AND active=0 ORDER BY name")]
    s = study()
    n_open = len(adjudication_items(conn, threshold=s.disagreement_threshold))
    n_photos = conn.execute("SELECT COUNT(*) FROM review_items").fetchone()[0]
    return render_template("coord_home.html", user=user(), rows=rows, settings=s,
                           inactive=inactive, assessors=assessors,
                           n_open=n_open, n_photos=n_photos, message=request.args.get("m"))


@bp.route("/queue", methods=["POST"])
@role_required("coordinator")
def queue() -> Response:
    try:
        built = build_queue(store(), settings=study(), created_by=user().name)
        m = f"added {built.n_tasks} tasks ({built.n_repeats} hidden repeats)"
        if built.n_moved:
            m += f"; {built.n_moved} unread tasks moved to new assessors"
    except QueueError as exc:
        m = str(exc)
    return redirect(url_for("coordinator.home", m=m))


@bp.route("/users/<name>/deactivate", methods=["POST"])
@role_required("coordinator")
def deactivate_user(name: str) -> Response:
    """Deactivate an assessor: no more logins, reads kept, unread tasks to the others."""
    if name == user().name:
        return redirect(url_for("coordinator.home", m="you cannot deactivate yourself"))
    try:
        moved = deactivate(store(), name, created_by=user().name)
        m = f"{name} deactivated; {moved.n_moved} unread tasks moved"
        if moved.stuck:
            m += f", {moved.stuck} could not move (every other assessor has those photos)"
    except QueueError as exc:
        m = str(exc)
    return redirect(url_for("coordinator.home", m=m))


@bp.route("/users/<name>/reassign", methods=["POST"])
@role_required("coordinator")
def reassign_user(name: str) -> Response:
    """Move an assessor's unread tasks to another assessor (or spread them)."""
    target = request.form.get("to") or None
    try:
        moved = reassign_unread(store(), source=name, target=target, created_by=user().name)
        m = f"{moved.n_moved} unread tasks of {name} moved"
        if moved.stuck:
            m += f", {moved.stuck} could not move"
    except QueueError as exc:
        m = str(exc)
    return redirect(url_for("coordinator.home", m=m))


@bp.route("/settings", methods=["POST"])
@role_required("coordinator")
def settings() -> Response:
    f = request.form
    try:
        new = StudyReviewSettings(
            show_visit_day=f.get("show_visit_day") == "on",
            disagreement_threshold=float(f.get("disagreement_threshold", "10")),
            reads_per_photo=int(f.get("reads_per_photo", "2")),
            repeat_fraction=float(f.get("repeat_fraction", "0.05")),
            queue_seed=int(f.get("queue_seed", "0")),
            show_live_numbers=f.get("show_live_numbers") == "on")
    except (ValueError, ReviewError) as exc:
        return redirect(url_for("coordinator.home", m=f"not saved: {exc}"))
    with store().transaction() as c:
        save_study_settings(c, new)
    return redirect(url_for("coordinator.home", m="settings saved"))


def _item(code: str) -> Item:
    if not _ITEM.fullmatch(code):
        abort(404)
    item = get_item(store().conn, code, threshold=study().disagreement_threshold)
    if item is None:
        abort(404)
    return item


def _current(item: Item) -> PhotoView:
    view = photo_view(store().conn, item.photo_id, show_visit_day=study().show_visit_day)
    if view is None:
        abort(404)
    return view


@bp.route("/adjudication")
@role_required("coordinator")
def adjudication() -> str:
    items = adjudication_items(store().conn, threshold=study().disagreement_threshold,
                               include_closed=True)
    details = appdb().decision_details()
    read_names = {r.read_id: f"{r.assessor}'s correction" for it in items for r in it.reads}
    adopted = {}
    for it in items:
        d = it.decision and details.get(it.decision.adjudication_id)
        if d:
            adopted[it.item_code] = (read_names.get(d.adopted_read_id, "a correction")
                                     if d.adopted_mask == "read" else
                                     {"model": "model's", "none": "none"}[d.adopted_mask])
    return render_template("adjudication_list.html", user=user(), items=items,
                           adopted=adopted)


@bp.route("/adjudication/<code>", methods=["GET", "POST"])
@role_required("coordinator")
def adjudicate(code: str) -> Response | str:
    item = _item(code)
    message = None
    if request.method == "POST":
        f = request.form
        try:
            decision = ReadInput(estimate_percent=f.get("estimate_percent") or None,
                                 verdict=f.get("verdict", ""), reason=f.get("reason") or None,
                                 comment=f.get("comment"))
            details = _adopted(item, f.get("adopted_mask", ""), decision.reason)
            saved = save_decision(store(), coordinator=user().name, item_code=code,
                                  decision=decision, threshold=study().disagreement_threshold)
            appdb().save_decision_details(saved.adjudication_id, details)
            return redirect(url_for("coordinator.adjudication"))
        except ReadError as exc:
            message = str(exc)
    cur = _current(item)
    try:
        size = picture_size(review_picture(config().out_dir, cur.overlay_file)[0])
    except ReviewImageError:
        abort(404)
    # an opaque code that changes with the result, so a new result is never hidden by a
    # cached picture (no result id in any URL)
    k = code_for("item", code, cur.result_id)
    cfg = viewer_config(photo_url=url_for("coordinator.photo", code=code, k=k),
                        mask_url=url_for("coordinator.mask", code=code, k=k),
                        model_mask_url=url_for("coordinator.mask", code=code, k=k), size=size,
                        mm_per_px=review_mm_per_px(cur.mm_per_px, cur.full_width, size[0]),
                        editable=False, preload=[])
    cfg["read_masks"] = {read_code(r): url_for("coordinator.read_mask", code=code,
                                               rcode=read_code(r))
                         for r in item.reads if r.corrected_mask_file}
    cfg["planimetry"] = planimetry_of(cur)   # areas of the masks compared
    return render_template("adjudicate.html", user=user(), item=item, cfg=cfg,
                           verdicts=VERDICTS, reasons=REASONS, message=message,
                           visit_day=cur.visit_day, read_code=read_code)


def _adopted(item: Item, choice: str, reason: str | None) -> DecisionDetails:
    """The mask a decision adopts: ``model``, ``none`` or a read's code (``R…``)."""
    if choice in ("model", "none"):
        return DecisionDetails(choice, None, reason)
    read = next((r for r in item.reads if r.corrected_mask_file and read_code(r) == choice),
                None)
    if read is None:
        raise ReadError("choose which mask the decision adopts")
    return DecisionDetails("read", read.read_id, reason)


@bp.route("/adjudication/<code>/photo.jpg")
@role_required("coordinator")
def photo(code: str) -> Response:
    cur = _current(_item(code))
    try:
        path, _ = review_picture(config().out_dir, cur.overlay_file)
        return image_response(strip_jpeg_metadata(path.read_bytes()), "image/jpeg")
    except (ReviewImageError, OSError):
        abort(404)


@bp.route("/adjudication/<code>/mask.png")
@role_required("coordinator")
def mask(code: str) -> Response:
    cur = _current(_item(code))
    out = config().out_dir
    try:
        size = picture_size(review_picture(out, cur.overlay_file)[0])
        return image_response(browser_mask(out, cur.mask_file, size), "image/png")
    except ReviewImageError:
        abort(404)


def read_code(read: Read) -> str:
    """An opaque code naming one read version in the coordinator's pages (not its row id)."""
    return "R" + code_for("read", read.read_id, read.task_code)[:10].upper()


@bp.route("/adjudication/<code>/reads/<rcode>/mask.png")
@role_required("coordinator")
def read_mask(code: str, rcode: str) -> Response:
    item = _item(code)
    read = next((r for r in item.reads if read_code(r) == rcode), None)
    if read is None or not read.corrected_mask_file:
        abort(404)
    try:
        data = labels_to_browser_png(read_labels(config().out_dir / read.corrected_mask_file))
    except ReviewImageError:
        abort(404)
    return image_response(data, "image/png")


_EXPORTS = {"reads.csv", "adjudications.csv", "data-dictionary.csv"}


@bp.route("/export/<name>")
@role_required("coordinator")
def export(name: str) -> Response:
    """The analysts' CSVs as downloads (the same as ``donorsite review export``)."""
    if name not in _EXPORTS:
        abort(404)
    if name == "reads.csv":
        data, _ = reads_csv(store().conn)
    elif name == "adjudications.csv":
        data, _ = decisions_csv(store().conn, appdb().decision_details())
    else:
        data = dictionary_csv()
    resp = Response(data, mimetype="text/csv")
    resp.headers["Content-Disposition"] = f'attachment; filename="{name}"'
    return resp
