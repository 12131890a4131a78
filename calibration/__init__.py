"""donorsite.calibration: everything about the calibration sticker.

Finds the sticker in a photo, estimates the photo<->sticker-plane homography, measures areas
in the skin plane in mm², and fits and applies a colour correction. Imports neither
``models`` nor ``pipeline``.
"""

from calibration.calibrate import QC_FLAGS, Calibration, CalibrationOptions, calibrate
from calibration.colour import COLOUR_METHODS, ColourCorrection
from calibration.errors import CalibrationError, StickerSpecError
from calibration.geometry import PlaneGeometry
from calibration.sticker import StickerSpec, load_sticker, render_sticker

__all__ = ["CalibrationError", "StickerSpecError", "StickerSpec", "load_sticker",
           "render_sticker", "calibrate", "Calibration", "CalibrationOptions", "QC_FLAGS",
           "ColourCorrection", "COLOUR_METHODS", "PlaneGeometry"]
