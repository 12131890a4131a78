"""Review pictures: the colour-corrected photo with translucent classes, outlines and a
scale bar in millimetres. They carry no metadata (encoded from pixels only) and are written
under opaque names by the caller.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

__all__ = ["render_overlay", "CLASS_COLOURS", "nice_scale_bar_mm"]

#: RGB colours of the classes in overlays (epithelialized: cyan-blue, raw: amber).
CLASS_COLOURS = {1: (0, 190, 255), 2: (255, 190, 0)}


def nice_scale_bar_mm(width_px: int, mm_per_px: float, *, fraction: float = 0.2) -> float:
    """A round length (1, 2 or 5 × 10^k mm) close to ``fraction`` of the image width."""
    target = width_px * mm_per_px * fraction
    k = 10 ** math.floor(math.log10(max(target, 1e-6)))
    return max(m * k for m in (1, 2, 5) if m * k <= target) if target >= 1 else 1.0


def render_overlay(rgb: np.ndarray, labels: np.ndarray, *, mm_per_px: float,
                   opacity: float = 0.35, outline_px: int = 2) -> np.ndarray:
    """Draw the classes over a colour-corrected photo.

    Parameters
    ----------
    rgb : ndarray, (H, W, 3)
        Colour-corrected sRGB, float in [0, 1] or uint8.
    labels : ndarray of uint8, (h, w)
        Label map of the same photo at any resolution (resized with nearest neighbour).
    mm_per_px : float
        Millimetres per pixel of ``rgb`` (for the scale bar).
    opacity : float, optional
        Fill opacity in [0, 1].
    outline_px : int, optional
        Outline width in pixels.

    Returns
    -------
    ndarray of uint8, (H, W, 3)

    Examples
    --------
    >>> img = np.full((60, 80, 3), 0.5, np.float32); lab = np.zeros((60, 80), np.uint8)
    >>> lab[20:40, 20:60] = 2
    >>> render_overlay(img, lab, mm_per_px=0.5).shape
    (60, 80, 3)
    """
    if not 0.0 <= opacity <= 1.0:
        raise ValueError(f"opacity must be within [0, 1], got {opacity!r}")
    if mm_per_px <= 0:
        raise ValueError(f"mm_per_px must be > 0, got {mm_per_px!r}")
    base = rgb if rgb.dtype == np.uint8 else np.clip(rgb * 255.0 + 0.5, 0, 255).astype(np.uint8)
    h, w = base.shape[:2]
    if labels.shape != (h, w):
        labels = cv2.resize(labels, (w, h), interpolation=cv2.INTER_NEAREST)
    out = base.astype(np.float32)
    for cls, colour in CLASS_COLOURS.items():
        m = labels == cls
        out[m] = (1 - opacity) * out[m] + opacity * np.array(colour, np.float32)
    out = out.astype(np.uint8)
    for cls, colour in CLASS_COLOURS.items():
        contours, _ = cv2.findContours((labels == cls).astype(np.uint8), cv2.RETR_LIST,
                                       cv2.CHAIN_APPROX_SIMPLE)
        cv2.drawContours(out, contours, -1, colour, outline_px, lineType=cv2.LINE_AA)
    _scale_bar(out, mm_per_px)
    return out


def _scale_bar(img: np.ndarray, mm_per_px: float) -> None:
    h, w = img.shape[:2]
    mm = nice_scale_bar_mm(w, mm_per_px)
    length = int(round(mm / mm_per_px))
    thick = max(3, h // 150)
    x0, y0 = int(0.04 * w), int(0.95 * h)
    font = max(0.4, h / 1200)
    label = f"{mm:g} mm"
    (tw, th), _ = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, font, 2)
    pad = thick * 2
    cv2.rectangle(img, (x0 - pad, y0 - th - 3 * pad), (x0 + max(length, tw) + pad, y0 + pad),
                  (0, 0, 0), -1)
    cv2.rectangle(img, (x0, y0 - thick), (x0 + length, y0), (255, 255, 255), -1)
    cv2.putText(img, label, (x0, y0 - thick - pad), cv2.FONT_HERSHEY_SIMPLEX, font,
                (255, 255, 255), 2, cv2.LINE_AA)
