"""Place a photo (or any picture) and the DS-CAL-1 sticker side by side on an extended canvas.

The picture is resampled so that its assumed scale becomes the canvas's stated scale
(``px_per_mm``), the canvas is filled with a plausible neutral, skin-like background, and the
sticker is drawn flat beside the picture (never over it) with the same renderer as
``donorsite synth`` (:func:`pipeline.synth.scene._draw_sticker`). With ``varied`` the whole
canvas is seen through a random perspective (tilt) and gets random lighting, noise and JPEG
quality; without it the canvas is fronto-parallel, so the sticker's scale is exactly
``px_per_mm``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from calibration.colour import linear_to_srgb, srgb_to_linear
from calibration.sticker import StickerSpec
from pipeline.synth.fields import apply_h, scaling, smooth_noise, translation, warp
from pipeline.synth.scene import _draw_sticker

__all__ = ["Composite", "compose", "STANDARD_JPEG_QUALITY"]

#: JPEG quality of a composite without ``varied``.
STANDARD_JPEG_QUALITY = 92


@dataclass(frozen=True)
class Composite:
    """A composited photo (8-bit sRGB), its label mask and what was drawn."""

    image: np.ndarray
    labels: np.ndarray
    meta: dict[str, Any]


def _rotation(deg: float) -> np.ndarray:
    c, s = math.cos(math.radians(deg)), math.sin(math.radians(deg))
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def _background(rng: np.random.Generator, shape: tuple[int, int], content_lin: np.ndarray,
                content_labels: np.ndarray | None, px_per_mm: float) -> np.ndarray:
    """A neutral, skin-like field: the picture's own border colour pulled towards a pale
    sheet grey, with soft blotches and a gentle gradient (linear RGB)."""
    ring = np.concatenate([content_lin[:8].reshape(-1, 3), content_lin[-8:].reshape(-1, 3),
                           content_lin[:, :8].reshape(-1, 3), content_lin[:, -8:].reshape(-1, 3)])
    if content_labels is not None:
        keep = np.concatenate([content_labels[:8].ravel(), content_labels[-8:].ravel(),
                               content_labels[:, :8].ravel(), content_labels[:, -8:].ravel()]) == 0
        ring = ring[keep] if keep.any() else ring
    border = np.median(ring, axis=0)
    sheet = np.array([0.42, 0.40, 0.37], np.float32) * rng.uniform(0.8, 1.15)
    base = (rng.uniform(0.3, 0.7) * border + (1 - rng.uniform(0.3, 0.7)) * sheet).astype(
        np.float32)
    h, w = shape
    blotch = smooth_noise(rng, shape, 25.0 * px_per_mm)[..., None]
    grain = smooth_noise(rng, shape, 1.5)[..., None]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    a = rng.uniform(0, 2 * math.pi)
    grad = (math.cos(a) * (xx / w - 0.5) + math.sin(a) * (yy / h - 0.5))[..., None]
    field = base * (1 + 0.06 * blotch + 0.015 * grain + 0.15 * grad)
    return np.clip(field, 0.0, 1.0).astype(np.float32)


def _perspective(rng: np.random.Generator, w: int, h: int, max_tilt_deg: float) -> np.ndarray:
    """A homography seeing the canvas plane tilted by up to ``max_tilt_deg`` about a random
    axis through its centre (pinhole camera, focal length 1.5 x the canvas's long side)."""
    tilt = math.radians(rng.uniform(0.0, max_tilt_deg))
    axis = rng.uniform(0, math.pi)
    f = 1.5 * max(w, h)
    k = np.array([[f, 0, w / 2], [0, f, h / 2], [0, 0, 1.0]])
    u = np.array([math.cos(axis), math.sin(axis), 0.0])
    rot, _ = cv2.Rodrigues(u * tilt)
    # plane point (x, y) -> 3D (x - w/2, y - h/2, 0) at depth f -> camera
    plane = np.array([[1.0, 0, -w / 2], [0, 1.0, -h / 2], [0, 0, 0.0]])
    m = rot @ plane + np.array([[0, 0, 0], [0, 0, 0], [0, 0, f]])
    return k @ m / f


def compose(content_rgb: np.ndarray, content_labels: np.ndarray | None, *, spec: StickerSpec,
            px_per_mm: float, content_px_per_mm: float, rng: np.random.Generator,
            varied: bool = False) -> Composite:
    """Composite ``content_rgb`` (8-bit sRGB) and the sticker on an extended canvas.

    Parameters
    ----------
    content_rgb : ndarray of uint8, shape (H, W, 3)
    content_labels : ndarray of uint8, shape (H, W), or None
        Labels of the picture (0 background, 1 epithelialized, 2 raw); None: all background.
    spec : StickerSpec
        The sticker to draw.
    px_per_mm : float
        The canvas's nominal scale (image px per mm in the plane).
    content_px_per_mm : float
        The scale the picture is assumed to have; it is resampled by
        ``px_per_mm / content_px_per_mm``.
    rng : numpy.random.Generator
    varied : bool, optional
        Random sticker rotation, placement, perspective tilt (up to 25°), lighting, noise and
        JPEG quality (55-95).

    Returns
    -------
    Composite
        ``meta`` holds the plane -> image homography of the sticker card, the picture's box,
        the nominal scale at the picture's centre, the tilt and the JPEG quality.
    """
    if content_rgb.ndim != 3 or content_rgb.shape[2] != 3 or content_rgb.dtype != np.uint8:
        raise ValueError(f"content must be 8-bit RGB (H, W, 3), got {content_rgb.dtype} "
                         f"{content_rgb.shape}")
    if px_per_mm <= 0 or content_px_per_mm <= 0:
        raise ValueError(f"scales must be > 0, got {px_per_mm}, {content_px_per_mm}")
    f = px_per_mm / content_px_per_mm
    h0, w0 = content_rgb.shape[:2]
    ph, pw = max(1, round(h0 * f)), max(1, round(w0 * f))
    interp = cv2.INTER_CUBIC if f > 1 else cv2.INTER_AREA
    pic = srgb_to_linear(cv2.resize(content_rgb, (pw, ph), interpolation=interp))
    lab = (np.zeros((ph, pw), np.uint8) if content_labels is None else
           cv2.resize(content_labels, (pw, ph), interpolation=cv2.INTER_NEAREST))
    # layout: the card (maybe rotated in its plane) in a slot beside the picture
    rot_deg = float(rng.uniform(-25, 25)) if varied else 0.0
    card = np.array([[0, 0], [spec.card_width_mm, 0], [spec.card_width_mm, spec.card_height_mm],
                     [0, spec.card_height_mm]], float)
    rc = apply_h(_rotation(rot_deg) @ scaling(px_per_mm), card)
    sw, sh = (rc.max(0) - rc.min(0))
    margin = px_per_mm * (rng.uniform(5, 15) if varied else 8.0)
    gap = px_per_mm * (rng.uniform(5, 25) if varied else 10.0)
    side = str(rng.choice(["right", "left", "below", "above"])) if varied else "right"
    m = int(round(margin))
    if side in ("right", "left"):
        w = int(math.ceil(2 * margin + pw + gap + sw))
        h = int(math.ceil(2 * margin + max(ph, sh)))
        px0 = m if side == "right" else w - m - pw
        py0 = (h - ph) // 2
        sx = px0 + pw + gap if side == "right" else px0 - gap - sw
        sy = (h - sh) / 2 + (rng.uniform(-0.5, 0.5) * max(0.0, ph - sh) if varied else 0.0)
    else:
        w = int(math.ceil(2 * margin + max(pw, sw)))
        h = int(math.ceil(2 * margin + ph + gap + sh))
        px0 = (w - pw) // 2
        py0 = m if side == "below" else h - m - ph
        sy = py0 + ph + gap if side == "below" else py0 - gap - sh
        sx = (w - sw) / 2 + (rng.uniform(-0.5, 0.5) * max(0.0, pw - sw) if varied else 0.0)
    canvas = _background(rng, (h, w), pic, lab, px_per_mm)
    canvas[py0:py0 + ph, px0:px0 + pw] = pic
    labels = np.zeros((h, w), np.uint8)
    labels[py0:py0 + ph, px0:px0 + pw] = lab
    # card mm -> canvas px; pixel centres at integer coordinates
    img_from_plane = (translation(sx - rc.min(0)[0] - 0.5, sy - rc.min(0)[1] - 0.5)
                      @ _rotation(rot_deg) @ scaling(px_per_mm))
    _draw_sticker(canvas, spec, img_from_plane, rng)
    tilt_h = np.eye(3)
    quality = STANDARD_JPEG_QUALITY
    if varied:
        tilt_h = _perspective(rng, w, h, 25.0)
        corners = apply_h(tilt_h, np.array([[0, 0], [w - 1, 0], [w - 1, h - 1], [0, h - 1]],
                                           float))
        lo, hi = np.floor(corners.min(0)), np.ceil(corners.max(0))
        tilt_h = translation(-lo[0], -lo[1]) @ tilt_h
        box = (0, 0, int(hi[0] - lo[0]) + 1, int(hi[1] - lo[1]) + 1)
        fill = tuple(float(v) for v in np.median(canvas[:4].reshape(-1, 3), axis=0))
        canvas = warp(canvas, tilt_h, box, border=cv2.BORDER_CONSTANT, border_value=fill)
        labels = warp(labels, tilt_h, box, border=cv2.BORDER_CONSTANT, nearest=True)
        img_from_plane = tilt_h @ img_from_plane
        # mostly dimmer than the plain composite: brighter would clip the card's white
        gain = 2.0 ** rng.uniform(-0.8, 0.1) * rng.uniform(0.92, 1.08, 3)
        hh, ww = canvas.shape[:2]
        light = 1 + 0.15 * smooth_noise(rng, (hh, ww), 0.5 * max(hh, ww))[..., None]
        canvas = canvas * np.float32(gain) * np.clip(light, 0.75, 1.15).astype(np.float32)
        canvas += rng.normal(0, rng.uniform(0.002, 0.01), canvas.shape).astype(np.float32)
        quality = int(rng.integers(55, 96))
    image = (linear_to_srgb(canvas) * 255 + 0.5).astype(np.uint8)
    centre = np.array([px0 + pw / 2 - 0.5, py0 + ph / 2 - 0.5])
    jac = _jacobian(tilt_h, centre)
    meta = {"px_per_mm": float(px_per_mm * math.sqrt(abs(np.linalg.det(jac)))),
            "nominal_px_per_mm": float(px_per_mm), "content_px_per_mm": float(content_px_per_mm),
            "content_box": [int(px0), int(py0), int(px0 + pw), int(py0 + ph)],
            "sticker_side": side, "rotation_deg": rot_deg,
            "tilt_deg": _tilt_deg(tilt_h, w, h) if varied else 0.0,
            "jpeg_quality": quality, "homography_plane_to_image": img_from_plane.tolist(),
            "image_size": {"width": int(image.shape[1]), "height": int(image.shape[0])}}
    return Composite(image=image, labels=labels, meta=meta)


def _jacobian(h: np.ndarray, p: np.ndarray, eps: float = 0.5) -> np.ndarray:
    d = [(apply_h(h, p + e) - apply_h(h, p - e))[0] / (2 * eps)
         for e in (np.array([eps, 0.0]), np.array([0.0, eps]))]
    return np.column_stack(d)


def _tilt_deg(h: np.ndarray, w: int, hgt: int) -> float:
    """Rough tilt: the angle whose cosine is the ratio of the smallest to the largest local
    scale at the canvas centre."""
    s = np.linalg.svd(_jacobian(h, np.array([w / 2, hgt / 2])), compute_uv=False)
    return float(math.degrees(math.acos(min(1.0, s[1] / s[0]))))
