"""QC flags shared by processing, the review app and the report.

A photo carrying one of :data:`HOLD_FOR_READ_FLAGS` was measured by a model that is unsure of
it, or that has not seen anything like it (issue 15; raised by :mod:`models.assess`). Such a
photo goes to the blinded assessors first and stays out of the endpoints until a read accepts
it (the latest read, or the adjudicated decision when there is one, with verdict ``accept``).
"""

from __future__ import annotations

from models.assess import LOW_CONFIDENCE, OUT_OF_DISTRIBUTION

__all__ = ["LOW_CONFIDENCE", "OUT_OF_DISTRIBUTION", "GRAYSCALE_PHOTO", "HOLD_FOR_READ_FLAGS"]

#: A photo without colour (issue 14): colour calibration and tissue classes cannot be trusted.
GRAYSCALE_PHOTO = "grayscale_photo"
#: Flags that hold a photo out of the endpoints until a blinded read accepts it.
HOLD_FOR_READ_FLAGS: frozenset[str] = frozenset({LOW_CONFIDENCE, OUT_OF_DISTRIBUTION,
                                                 GRAYSCALE_PHOTO})
