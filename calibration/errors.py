"""The calibration package's exceptions: one base class, specific subclasses.

Every message names the file (or photo) and the problem, so a batch can record it per photo
and go on.
"""

from __future__ import annotations

__all__ = [
    "CalibrationError",
    "StickerSpecError",
    "StickerNotFoundError",
    "TooFewMarkersError",
    "DuplicateMarkerError",
    "ForeignMarkerError",
    "StickerOutOfFrameError",
    "HomographyError",
    "MarkerRotationError",
    "StrayMarkerError",
    "ColourFitError",
]


class CalibrationError(Exception):
    """Base class of everything the calibration raises."""


class StickerSpecError(CalibrationError, ValueError):
    """A sticker description is missing, unreadable or invalid (names the file and field)."""


class StickerNotFoundError(CalibrationError):
    """No marker of the sticker was found in the photo."""


class TooFewMarkersError(CalibrationError):
    """Fewer markers than a reliable homography needs (at least 3)."""


class DuplicateMarkerError(CalibrationError):
    """The same marker id was detected more than once (two copies of the sticker, a stray
    marker with one of its ids, or a reflection): the pose is ambiguous."""


class ForeignMarkerError(CalibrationError):
    """Only markers that the sticker description does not have (another sticker), or such a
    marker on the sticker's own card (the description does not match the sticker)."""


class StickerOutOfFrameError(CalibrationError):
    """The sticker is partly outside the photo."""


class HomographyError(CalibrationError):
    """The homography could not be estimated or is degenerate."""


class MarkerRotationError(HomographyError):
    """A marker is where the description puts it but turned: its rotation is described
    wrongly (or this is another sticker)."""


class StrayMarkerError(HomographyError):
    """A marker with one of the sticker's ids lies far from where the sticker's other
    markers place it (a stray marker): the pose is ambiguous."""


class ColourFitError(CalibrationError):
    """The colour correction could not be fitted."""
