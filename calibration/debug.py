"""Debug output of ``donorsite calibrate``: a text summary and a picture.

The picture shows the photo (reduced) with the detected markers and their ids, the card
outline, the patch sampling boxes, the ruler's expected tick positions and the length
measured in the photo, and a side table per patch: photo colour, corrected colour,
reference colour and CIEDE2000 before / after / leave-one-out.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from calibration.calibrate import Calibration
from calibration.colour import linear_to_srgb
from calibration.errors import CalibrationError
from calibration.sticker import StickerSpec

__all__ = ["load_image_rgb", "summary_lines", "debug_image", "write_debug_image",
           "ImageReadError"]


class ImageReadError(CalibrationError):
    """A photo cannot be read (missing, not an image)."""


def load_image_rgb(path: str | Path) -> np.ndarray:
    """Decode a photo to uint8 RGB with its EXIF orientation applied.

    Examples
    --------
    >>> import tempfile
    >>> from PIL import Image
    >>> p = Path(tempfile.mkdtemp()) / "a.png"
    >>> Image.new("RGB", (4, 3)).save(p)
    >>> load_image_rgb(p).shape
    (3, 4, 3)
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    p = Path(path)
    try:
        with Image.open(p) as im:
            return np.asarray(ImageOps.exif_transpose(im).convert("RGB"))
    except (OSError, UnidentifiedImageError) as exc:
        raise ImageReadError(f"{p}: cannot read the photo ({exc})") from exc


def summary_lines(cal: Calibration) -> list[str]:
    """Human-readable lines of a calibration's result."""
    c = cal.colour
    lines = [
        f"photo:        {cal.source} ({cal.image_shape[1]}x{cal.image_shape[0]})",
        f"sticker:      {cal.sticker_name}, markers found {list(cal.markers_found)}",
        f"scale:        {cal.mm_per_px:.4f} mm/px at the sticker ({1 / cal.mm_per_px:.2f} px/mm)",
        f"tilt:         {cal.tilt_deg:.1f} deg (focal {cal.focal_px:.0f} px, "
        f"{'estimated' if cal.focal_estimated else 'assumed'})",
        f"reprojection: {cal.reprojection_error_px:.3f} px RMS, "
        f"{cal.reprojection_error_mm:.4f} mm RMS",
    ]
    if cal.ruler_expected_mm is not None:
        got = "not found" if cal.ruler_length_mm is None else f"{cal.ruler_length_mm:.2f} mm"
        lines.append(f"ruler check:  {got} measured vs {cal.ruler_expected_mm:.2f} mm described")
    lines.append(f"colour:       {c.method}" + (f" (degree {c.degree})" if c.method ==
                                                "root-polynomial" else "")
                 + f", {int(c.used.sum())}/{len(c.used)} patches used")
    lines.append(f"CIEDE2000:    before mean {c.mean_before:.2f} max {c.max_before:.2f}")
    lines.append(f"              after  mean {c.mean_after:.2f} max {c.max_after:.2f}")
    lines.append(f"              leave-one-out mean {c.mean_loo:.2f} max {c.max_loo:.2f}")
    lines.append(f"QC flags:     {', '.join(cal.qc_flags) if cal.qc_flags else 'none'}")
    return lines


def _put(img: np.ndarray, text: str, org: tuple[int, int], scale: float,
         colour: tuple[int, int, int] = (0, 0, 0), thick: int = 1) -> None:
    cv2.putText(img, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, colour, thick, cv2.LINE_AA)


def debug_image(image_rgb: np.ndarray, cal: Calibration, sticker: StickerSpec, *,
                max_side: int = 1600) -> np.ndarray:
    """The debug picture (uint8 RGB): annotated photo plus a CIEDE2000 table.

    Examples
    --------
    >>> from calibration.calibrate import calibrate
    >>> from calibration.sticker import load_sticker
    >>> from calibration.synthetic import render_scene
    >>> spec = load_sticker()
    >>> img = render_scene(spec, size=(640, 480), px_per_mm=5).image_rgb
    >>> debug_image(img, calibrate(img, spec), spec).shape[0] >= 480
    True
    """
    h, w = image_rgb.shape[:2]
    s = min(1.0, max_side / max(h, w))
    view = cv2.resize(image_rgb, (round(w * s), round(h * s)), interpolation=cv2.INTER_AREA)
    view = np.ascontiguousarray(view)
    geo = cal.geometry
    lw = max(1, round(view.shape[1] / 800))
    fs = 0.4 * lw

    def to_view(pts: np.ndarray) -> np.ndarray:
        return np.round((np.asarray(pts) + 0.5) * s - 0.5).astype(np.int32)

    card = np.array([[0, 0], [sticker.card_width_mm, 0],
                     [sticker.card_width_mm, sticker.card_height_mm],
                     [0, sticker.card_height_mm]], float)
    cv2.polylines(view, [to_view(geo.plane_to_image(card))], True, (0, 160, 255), lw,
                  cv2.LINE_AA)
    for mid, corners in zip(cal.markers_found, cal.marker_corners_px, strict=True):
        cv2.polylines(view, [to_view(corners)], True, (0, 255, 0), lw, cv2.LINE_AA)
        cv2.circle(view, tuple(to_view(corners[0])), 2 * lw, (255, 0, 0), -1)
        _put(view, f"id {mid}", tuple(to_view(corners[0]) + [0, -4 * lw]), fs, (0, 200, 0), lw)
    used = cal.colour.used
    for i, box in enumerate(cal.patches.boxes_px):
        col = (0, 255, 0) if used[i] else (255, 0, 0)
        cv2.polylines(view, [to_view(box)], True, col, 1, cv2.LINE_AA)
    if sticker.ruler is not None:
        r = sticker.ruler
        for k in range(int(r.length_mm // 10) + 1):
            x = r.x0_mm + 10 * k
            a, b = geo.plane_to_image(np.array([[x, r.y_mm + 0.5], [x, r.y_mm + 1.5]]))
            cv2.line(view, tuple(to_view(a)), tuple(to_view(b)), (255, 0, 255), lw, cv2.LINE_AA)
        got = "ruler: not found" if cal.ruler_length_mm is None else (
            f"ruler {cal.ruler_length_mm:.2f} / {cal.ruler_expected_mm:.2f} mm")
        org = to_view(geo.plane_to_image(np.array([[r.x0_mm, r.y_mm + 8.0]]))[0])
        _put(view, got, (int(org[0]), int(org[1])), fs, (255, 0, 255), lw)
    panel = np.concatenate([_card_view(image_rgb, cal, sticker, width=640),
                            _table(cal, sticker, height=0, lines=summary_lines(cal))], axis=0)
    # pad the shorter side (a portrait or square photo is taller than the panel)
    height = max(panel.shape[0], view.shape[0])
    view, panel = (np.concatenate([a, np.full((height - a.shape[0], a.shape[1], 3), 255,
                                              np.uint8)], axis=0) for a in (view, panel))
    return np.concatenate([view, panel], axis=1)


def _table(cal: Calibration, sticker: StickerSpec, *, height: int,
           lines: list[str]) -> np.ndarray:
    c = cal.colour
    n = len(c.used)
    row = 22
    width = 640
    panel = np.full((max(height, 20 * (len(lines) + 2) + row * (n + 2)), width, 3), 255,
                    np.uint8)
    y = 18
    for line in lines:
        _put(panel, line[:88], (6, y), 0.36)
        y += 18
    y += 6
    _put(panel, "patch            photo corr  ref    dE00 before  after  loo", (6, y), 0.4)
    y += 6
    photo = linear_to_srgb(np.nan_to_num(cal.patches.rgb_linear))
    corrected = linear_to_srgb(np.nan_to_num(c.apply_linear(np.nan_to_num(
        cal.patches.rgb_linear))))
    names = c.patch_names or tuple(f"patch {i + 1}" for i in range(n))
    status = _patch_status(cal)
    ref = linear_to_srgb(np.clip(sticker.reference_rgb_linear, 0, 1))
    for i in range(n):
        y0 = y + i * row
        for j, rgb in enumerate((photo[i], corrected[i], ref[i])):
            x0 = 130 + j * 42
            col = tuple(int(v) for v in np.clip(np.round(rgb * 255), 0, 255))
            cv2.rectangle(panel, (x0, y0 + 2), (x0 + 36, y0 + row - 2), col, -1)
        mark = "" if c.used[i] else f"  (not used: {status[i]})"
        if c.used[i] and cal.patches.floored_fraction[i] >= cal.options.clipped_fraction:
            mark = "  (a channel at 0)"
        txt = (f"{_f(c.delta_e_before[i]):>6} {_f(c.delta_e_after[i]):>6} "
               f"{_f(c.delta_e_loo[i]):>6}{mark}")
        _put(panel, names[i][:16], (6, y0 + row - 6), 0.36)
        _put(panel, txt, (270, y0 + row - 6), 0.36)
    return panel


def _patch_status(cal: Calibration) -> list[str]:
    """Why each patch was left out of the fit (same rules as the calibration)."""
    o, p = cal.options, cal.patches
    lum = p.rgb_linear @ np.array([0.2126, 0.7152, 0.0722])
    out = []
    for i in range(len(lum)):
        if not np.isfinite(lum[i]):
            out.append("unreadable")
        elif p.clipped_fraction[i] >= o.clipped_fraction:
            out.append("clipped")
        elif lum[i] < o.dark_level:
            out.append("dark")
        elif p.specular_fraction[i] >= o.glare_fraction:
            out.append("glare")
        else:
            out.append("ok")
    return out


def _card_view(image_rgb: np.ndarray, cal: Calibration, sticker: StickerSpec, *,
               width: int) -> np.ndarray:
    """The card rectified through the homography, with the sampling boxes and markers."""
    margin = 3.0
    k = (width - 20) / (sticker.card_width_mm + 2 * margin)
    h = int(round((sticker.card_height_mm + 2 * margin) * k))
    to_view = np.array([[k, 0, k * margin], [0, k, k * margin], [0, 0, 1.0]])
    m = cal.geometry.plane_to_image_h @ np.linalg.inv(to_view)  # view px -> image px
    card = cv2.warpPerspective(image_rgb, m, (width - 20, h),
                               flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                               borderMode=cv2.BORDER_CONSTANT, borderValue=(255, 255, 255))
    card = np.ascontiguousarray(card)

    def pv(pts_mm: np.ndarray) -> np.ndarray:
        return np.round((np.asarray(pts_mm) + margin) * k).astype(np.int32)

    for corners in cal.marker_corners_px:
        cv2.polylines(card, [pv(cal.geometry.image_to_plane(corners))], True, (0, 220, 0), 1,
                      cv2.LINE_AA)
    used = cal.colour.used
    for i, p in enumerate(sticker.patches):
        cx, cy = p.centre_mm
        half = cal.options.inner_fraction * p.size_mm / 2
        box = np.array([[cx - half, cy - half], [cx + half, cy + half]])
        a, b = pv(box)
        cv2.rectangle(card, tuple(a), tuple(b), (0, 220, 0) if used[i] else (255, 0, 0), 1)
    out = np.full((h + 10, width, 3), 255, np.uint8)
    out[5:5 + h, 10:10 + card.shape[1]] = card
    return out


def _f(v: float) -> str:
    return "  -  " if not np.isfinite(v) else f"{v:.2f}"


def write_debug_image(path: str | Path, image_rgb: np.ndarray, cal: Calibration,
                      sticker: StickerSpec) -> Path:
    """Write :func:`debug_image` to ``path`` (PNG or JPEG)."""
    from PIL import Image

    p = Path(path)
    img = debug_image(image_rgb, cal, sticker)
    if img.shape[0] < 1:
        raise ImageReadError(f"{p}: empty debug picture")
    try:
        Image.fromarray(img).save(p)
    except (OSError, ValueError) as exc:
        raise ImageReadError(f"{p}: cannot write the debug picture ({exc})") from exc
    return p
