"""The working image: the one definition of what the network sees.

A photo is resampled to the model's working scale (``ModelConfig.px_per_mm``), so a
millimetre of skin covers the same number of pixels in every photo, and colour-corrected by
its calibration, so sites with different cameras and light look alike. Training-data
preparation (:mod:`models.prepare`), evaluation and the pipeline all call these functions.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from models.config import ModelConfig
from models.errors import InputShapeError

__all__ = ["to_working", "working_image", "as_float_rgb"]


def as_float_rgb(image: np.ndarray, *, name: str = "image") -> np.ndarray:
    """``image`` as float32 (H, W, 3) in [0, 1] (uint8 is divided by 255).

    Raises
    ------
    InputShapeError
        Not an (H, W, 3) array of uint8 or float.

    Examples
    --------
    >>> float(as_float_rgb(np.full((2, 2, 3), 255, np.uint8)).max())
    1.0
    """
    a = np.asarray(image)
    if a.ndim != 3 or a.shape[2] != 3 or a.shape[0] < 1 or a.shape[1] < 1:
        raise InputShapeError(f"{name} must be an RGB array of shape (H, W, 3), got shape "
                              f"{a.shape}; convert grey or RGBA images to RGB first")
    if a.dtype == np.uint8:
        return a.astype(np.float32) / np.float32(255)
    if not np.issubdtype(a.dtype, np.floating):
        raise InputShapeError(f"{name} must be uint8 or float in [0, 1], got dtype {a.dtype}")
    return a.astype(np.float32, copy=False)


def to_working(image: np.ndarray, *, mm_per_px: float | None,
               config: ModelConfig) -> tuple[np.ndarray, float]:
    """Resample a (colour-corrected) image to the model's working scale.

    Parameters
    ----------
    image : ndarray, shape (H, W, 3)
        Float RGB in [0, 1] (uint8 is accepted and divided by 255).
    mm_per_px : float or None
        Millimetres of skin per image pixel (``Calibration.mm_per_px``). Ignored (may be
        ``None``) when the model has no physical scale (``config.px_per_mm is None``).
    config : ModelConfig

    Returns
    -------
    working : ndarray, float32 (h, w, 3)
        The image at ``config.px_per_mm`` (area-averaged when shrinking, bilinear when
        enlarging).
    scale : float
        Working pixels per input pixel (``mm_per_px * px_per_mm``; 1.0 without a scale).

    Examples
    --------
    >>> cfg = ModelConfig(px_per_mm=2.5)
    >>> w, s = to_working(np.zeros((300, 400, 3), np.float32), mm_per_px=0.1, config=cfg)
    >>> w.shape, s
    ((75, 100, 3), 0.25)
    """
    img = as_float_rgb(image)
    if config.px_per_mm is None:
        return img, 1.0
    if mm_per_px is None or not np.isfinite(mm_per_px) or mm_per_px <= 0:
        raise InputShapeError(f"mm_per_px must be a positive number for a model with a working "
                              f"scale ({config.px_per_mm} px/mm), got {mm_per_px!r}")
    scale = float(mm_per_px) * config.px_per_mm
    h, w = img.shape[:2]
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    if size == (w, h):
        return img, scale
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    out = cv2.resize(img, size, interpolation=interp)
    return np.clip(out, 0.0, 1.0, out=out), scale


def working_image(image_rgb: np.ndarray, calibration: Any, *,
                  config: ModelConfig) -> tuple[np.ndarray, float]:
    """The working image of a photo: resampled to the working scale, then colour-corrected.

    Resampling comes first because the colour correction is a per-pixel map
    (``Calibration.correct`` takes any resolution of the photo): correcting the few hundred
    thousand working pixels costs milliseconds, correcting 12 million photo pixels seconds,
    and area-averaging neighbours before or after a smooth per-pixel map differs only where
    neighbouring pixels differ strongly. Every user (training-data preparation, evaluation,
    the pipeline) calls this function, so the model always sees the same working image.

    Parameters
    ----------
    image_rgb : ndarray, uint8 (H, W, 3)
        The oriented photo (EXIF orientation applied), sRGB.
    calibration : calibration.Calibration
        Its ``.mm_per_px`` and ``.correct(image)`` are used.
    config : ModelConfig

    Returns
    -------
    working : ndarray, float32 (h, w, 3)
        Colour-corrected sRGB in [0, 1] at ``config.px_per_mm``.
    scale : float
        Working pixels per photo pixel.

    Examples
    --------
    >>> class Cal:  # a stand-in with the Calibration interface used here
    ...     mm_per_px = 0.2
    ...     def correct(self, image):
    ...         return np.clip(as_float_rgb(image) * 1.1, 0, 1)
    >>> w, s = working_image(np.zeros((100, 100, 3), np.uint8), Cal(), config=ModelConfig())
    >>> w.shape, s
    ((50, 50, 3), 0.5)
    """
    small, scale = to_working(image_rgb, mm_per_px=calibration.mm_per_px, config=config)
    corrected = as_float_rgb(calibration.correct(small), name="corrected image")
    return np.clip(corrected, 0.0, 1.0), scale
