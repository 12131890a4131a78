"""The assessor's pages: the queue, the viewer, the pictures, and read submission.

Every URL names a task by its opaque per-assessor code; a task that is not the logged-in
assessor's does not exist (404), whether it is someone else's or made up.
"""

from __future__ import annotations

import base64
import binascii
import re
from pathlib import Path

from flask import Blueprint, Response, abort, jsonify, redirect, render_template, request, url_for

from pipeline.errors import PipelineError
from pipeline.manifest import safe_join
from pipeline.overlay import CLASS_COLOURS
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
from pipeline.review.errors import ReadError, ReviewImageError
from pipeline.review.images import (
    browser_mask,
    decode_browser_mask,
    labels_to_browser_png,
    picture_size,
    read_labels,
    review_picture,
    strip_jpeg_metadata,
)
from pipeline.review.planimetry import planimetry_config
from pipeline.review.queue import held_sql, next_task, progress
from pipeline.review.reads import (
    REASONS,
    VERDICTS,
    PhotoView,
    Read,
    ReadInput,
    TaskView,
    latest_read,
    my_reads,
    save_read,
    task_view,
)
from pipeline.review.tiles import TILE, ensure_pyramid, pyramid_levels, tile_path

bp = Blueprint("assessor", __name__)
_CODE = re.compile(r"T[0-9A-F]{10}")


def _task(code: str) -> TaskView:
    if not _CODE.fullmatch(code):
        abort(404)
    view = task_view(store().conn, user().name, code, show_visit_day=study().show_visit_day)
    if view is None:
        abort(404)
    return view


@bp.route("/queue")
@role_required("assessor")
def queue() -> str:
    conn = store().conn
    done, total = progress(conn, user().name)
    return render_template("queue.html", user=user(), done=done, total=total,
                           next_code=next_task(conn, user().name),
                           reads=my_reads(conn, user().name), reasons=REASONS)


@bp.route("/next")
@role_required("assessor")
def next_photo() -> Response:
    code = next_task(store().conn, user().name)
    return redirect(url_for("assessor.viewer", code=code) if code else url_for("assessor.queue"))


def viewer_config(*, photo_url: str, mask_url: str, model_mask_url: str, size: tuple[int, int],
                  mm_per_px: float | None, editable: bool, preload: list[str]) -> dict:
    """The JSON the viewer script reads (no identifiers beyond the opaque URLs)."""
    return {"photo": photo_url, "mask": mask_url, "model_mask": model_mask_url,
            "width": size[0], "height": size[1], "mm_per_px": mm_per_px,
            "colours": {str(k): list(v) for k, v in CLASS_COLOURS.items()},
            "editable": editable, "preload": preload}


def planimetry_of(photo: PhotoView) -> dict | None:
    """The viewer's live-planimetry config of a photo (None without a calibration)."""
    full = (photo.full_height, photo.full_width) if photo.full_height and photo.full_width \
        else None
    return planimetry_config(photo.calibration_record, mm_per_px=photo.mm_per_px,
                             full_shape=full)


def review_mm_per_px(view_mm_per_px: float | None, full_width: int | None,
                     review_width: int) -> float | None:
    """mm per pixel of the review picture (the calibration is at full resolution)."""
    if not view_mm_per_px or not full_width:
        return None
    return float(view_mm_per_px) * full_width / review_width


def _urls(view: TaskView, previous: Read | None) -> tuple[str, str, str]:
    """Photo, mask and model-mask URLs. The query changes with the result and read version
    shown, so a browser may cache them (and preload the next photo's), but it is an opaque
    keyed code: no result id, no order, different for a hidden repeat and its original."""
    r, v = view.photo.result_id, previous.version if previous else 0
    code = view.task_code
    return (url_for("assessor.photo", code=code, k=code_for("photo", code, r)),
            url_for("assessor.mask", code=code, k=code_for("mask", code, r, v)),
            url_for("assessor.mask", code=code, k=code_for("model", code, r), model=1))


@bp.route("/read/<code>")
@role_required("assessor")
def viewer(code: str) -> str:
    view = _task(code)
    conn = store().conn
    try:
        path, plain = review_picture(config().out_dir, view.photo.overlay_file)
        size = picture_size(path)
    except ReviewImageError:
        abort(404)
    previous = latest_read(conn, user().name, code)
    nxt = next_task(conn, user().name, exclude=code)
    nxt_view = task_view(conn, user().name, nxt, show_visit_day=False) if nxt else None
    preload = [*_urls(nxt_view, None)[:2]] if nxt_view else []
    photo_url, mask_url, model_url = _urls(view, previous)
    done, total = progress(conn, user().name)
    cfg = viewer_config(photo_url=photo_url, mask_url=mask_url, model_mask_url=model_url,
                        size=size, editable=True, preload=preload,
                        mm_per_px=review_mm_per_px(view.photo.mm_per_px, view.photo.full_width,
                                                   size[0]))
    cfg["initial_is_correction"] = bool(previous and previous.corrected_mask_file)
    cfg["deepzoom"] = deepzoom_of(view, size)
    model_interval = None
    if study().show_live_numbers:
        cfg["planimetry"] = planimetry_of(view.photo)
        row = conn.execute("SELECT healed_percent_low, healed_percent_high FROM assessments "
                           "WHERE result_id=?", (view.photo.result_id,)).fetchone()
        if row and row[0] is not None and row[1] is not None:
            model_interval = (float(row[0]), float(row[1]))
    # "the model is unsure" (never its numbers unless the study shows live numbers)
    unsure = bool(conn.execute(f"SELECT {held_sql('?')}", (view.photo.photo_id,)).fetchone()[0])
    cfg["submit"] = url_for("assessor.submit", code=code)
    cfg["draft"] = url_for("drafts.draft", code=code)
    return render_template("viewer.html", user=user(), code=code, cfg=cfg, plain=plain,
                           visit_day=view.photo.visit_day, previous=previous,
                           verdicts=VERDICTS, reasons=REASONS, done=done, total=total,
                           position=view.position, model_unsure=unsure, editable=True,
                           model_interval=model_interval)


@bp.route("/read/<code>/photo.jpg")
@role_required("assessor")
def photo(code: str) -> Response:
    view = _task(code)
    try:
        path, _ = review_picture(config().out_dir, view.photo.overlay_file)
        return image_response(strip_jpeg_metadata(path.read_bytes()), "image/jpeg")
    except (ReviewImageError, OSError):
        abort(404)


@bp.route("/read/<code>/tiles/<int:level>/<int:tx>_<int:ty>.jpg")
@role_required("assessor")
def tile(code: str, level: int, tx: int, ty: int) -> Response:
    """A tile of the full-resolution photo (the pyramid is made on first request)."""
    view = _task(code)
    out = config().out_dir
    found = _original(view)
    if found is None:
        abort(404)
    try:
        review_w = picture_size(review_picture(out, view.photo.overlay_file)[0])[0]
        pyramid = ensure_pyramid(out, photo_id=view.photo.photo_id,
                                 result_id=view.photo.result_id, original=found[0],
                                 sha256=found[1],
                                 record_json=view.photo.calibration_record,
                                 review_width=review_w)
        if not 0 <= level < pyramid.levels:
            abort(404)
        path = tile_path(out, view.photo.photo_id, view.photo.result_id, level, tx, ty)
        return image_response(path.read_bytes(), "image/jpeg")
    except (ReviewImageError, PipelineError, OSError):
        abort(404)


def _original(view: TaskView) -> tuple[Path, str] | None:
    """The original photo file and its registered sha256, when it is still there."""
    row = store().conn.execute("SELECT manifest, source_name, sha256 FROM photos WHERE "
                               "photo_id=?", (view.photo.photo_id,)).fetchone()
    try:
        path = safe_join(Path(row["manifest"]).parent, row["source_name"],
                         where="the original photo")
    except PipelineError:
        return None
    return (path, row["sha256"]) if path.is_file() else None


def deepzoom_of(view: TaskView, review_size: tuple[int, int]) -> dict | None:
    """The viewer's deep-zoom config: a tile URL pattern under the task's opaque code."""
    w, h = view.photo.full_width, view.photo.full_height
    if not w or not h:
        return None
    levels = pyramid_levels(w, review_size[0])
    if levels == 0 or _original(view) is None:
        return None
    k = code_for("tiles", view.task_code, view.photo.result_id)
    url = url_for("assessor.tile", code=view.task_code, level=0, tx=0, ty=0, k=k)
    return {"url": url.replace("/tiles/0/0_0.jpg", "/tiles/{level}/{x}_{y}.jpg"),
            "full_width": w, "full_height": h, "levels": levels, "tile": TILE}


@bp.route("/read/<code>/mask.png")
@role_required("assessor")
def mask(code: str) -> Response:
    """The assessor's latest corrected mask of this task, else the model's (``?model=1``:
    always the model's)."""
    view = _task(code)
    out = config().out_dir
    try:
        size = picture_size(review_picture(out, view.photo.overlay_file)[0])
        prev = latest_read(store().conn, user().name, code)
        if prev is not None and prev.corrected_mask_file and not request.args.get("model"):
            data = labels_to_browser_png(read_labels(out / prev.corrected_mask_file))
        else:
            data = browser_mask(out, view.photo.mask_file, size)
    except ReviewImageError:
        abort(404)
    return image_response(data, "image/png")


@bp.route("/api/read/<code>", methods=["POST"])
@role_required("assessor")
def submit(code: str) -> Response:
    view = _task(code)
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        return _bad("send the read as a JSON object")
    try:
        read = ReadInput(estimate_percent=body.get("estimate_percent"),
                         verdict=str(body.get("verdict", "")), reason=body.get("reason"),
                         comment=body.get("comment"))
        labels = None
        if body.get("mask_png"):
            size = picture_size(review_picture(config().out_dir, view.photo.overlay_file)[0])
            try:
                png = base64.b64decode(str(body["mask_png"]), validate=True)
            except (binascii.Error, ValueError):
                return _bad("the corrected mask is not valid base64")
            labels = decode_browser_mask(png, size)
        saved = save_read(store(), assessor=user().name, task_code=code, read=read,
                          corrected_labels=labels, out_dir=config().out_dir)
    except (ReadError, ReviewImageError) as exc:
        return _bad(str(exc))
    appdb().discard_draft(user().name, code)  # the read now holds this work
    nxt = next_task(store().conn, user().name)
    return jsonify(saved=True, version=saved.version,
                   next_url=url_for("assessor.viewer", code=nxt) if nxt
                   else url_for("assessor.queue"))


def _bad(message: str) -> Response:
    resp = jsonify(error=message)
    resp.status_code = 422
    return resp
