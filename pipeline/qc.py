"""QC flags shared by processing, the review app and the report.

A photo carrying one of :data:`HOLD_FOR_READ_FLAGS` was measured by a model that is unsure of
it, or that has not seen anything like it (issue 15). Such a photo goes to the blinded
assessors first and stays out of the endpoints until a read accepts it (the latest read, or the
adjudicated decision when there is one, with verdict ``accept``).
"""

from __future__ import annotations

__all__ = ["LOW_CONFIDENCE", "OUT_OF_DISTRIBUTION", "HOLD_FOR_READ_FLAGS"]

#: The model's per-photo confidence over the donor site is below its threshold.
LOW_CONFIDENCE = "low_confidence"
#: The photo is unlike the model's training data (out-of-distribution score above threshold).
OUT_OF_DISTRIBUTION = "out_of_distribution"
#: Flags that hold a photo out of the endpoints until a blinded read accepts it.
HOLD_FOR_READ_FLAGS: frozenset[str] = frozenset({LOW_CONFIDENCE, OUT_OF_DISTRIBUTION})
