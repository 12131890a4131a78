"""Report options and errors.

:class:`ReportOptions` is the one validated configuration of a report (threshold,
confirmation, which QC flags exclude a photo from the endpoints, bootstrap settings). It is
built at the edge (the CLI, a notebook) and passed down; nothing here is global state.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pipeline.errors import PipelineError

__all__ = ["ReportError", "AllocationError", "ReportOptions", "DEFAULT_QC_EXCLUDE"]

#: QC flags that exclude a photo from the endpoints unless ``include_failed_qc`` is set.
#: Calibration flags that make the geometry or the colour untrustworthy, segmentation flags
#: that make the healed fraction meaningless (no site, site cut by the photo edge) and photo
#: flags that make the photo's identity uncertain. Advisory flags (``three_markers``,
#: ``steep_tilt``, ``low_resolution``, ``glare``, ``clipped_patches``, ``dark_patches``,
#: ``colour_overfit``, ``second_photo_for_visit``) do not exclude.
DEFAULT_QC_EXCLUDE: frozenset[str] = frozenset({
    "high_reprojection", "ruler_mismatch", "poor_colour_fit", "colour_uncorrected",
    "no_donor_site_found", "donor_site_touches_photo_edge",
    "dicom_subject_conflict", "dicom_day_conflict",
})


class ReportError(PipelineError):
    """The report cannot be made (no store, nothing processed, bad option)."""

    code = "report_error"


class AllocationError(ReportError, ValueError):
    """The allocation file is missing, malformed or does not cover the store's subjects."""

    code = "bad_allocation"


@dataclass(frozen=True)
class ReportOptions:
    """How endpoints are derived.

    Parameters
    ----------
    threshold : float
        Healed % at or above which a donor site counts as healed (usually 90, 95 or 100).
    confirm : bool
        Require the next visit to be at or above the threshold too (the event is then dated
        at the first visit of the confirmed pair).
    include_failed_qc : bool
        Use photos whose QC flags are in ``qc_exclude`` for the endpoints (they are still
        listed). Photos whose processing failed have no measurement and stay excluded.
    qc_exclude : frozenset of str
        QC flags that exclude a photo.
    include_held : bool
        Use photos held for a read (a flag of :data:`pipeline.qc.HOLD_FOR_READ_FLAGS`: low
        model confidence, out of distribution) that no read has accepted yet. By default
        such a photo stays out of the endpoints until the latest adjudication, or else the
        latest read, of it says ``accept``.
    alpha : float
        1 - confidence level of the intervals (0.05: 95 % intervals).
    bootstrap : int
        Bootstrap resamples for the interval-censored median's confidence interval (0: none).
    seed : int
        Seed of the bootstrap.

    Examples
    --------
    >>> ReportOptions(threshold=90, confirm=True).threshold
    90.0
    """

    threshold: float = 95.0
    confirm: bool = False
    include_failed_qc: bool = False
    qc_exclude: frozenset[str] = field(default_factory=lambda: DEFAULT_QC_EXCLUDE)
    include_held: bool = False
    alpha: float = 0.05
    bootstrap: int = 300
    seed: int = 0

    def __post_init__(self) -> None:
        try:
            threshold = float(self.threshold)
        except (TypeError, ValueError):
            raise ReportError(f"threshold must be a number, got {self.threshold!r}") from None
        if not 0.0 < threshold <= 100.0:
            raise ReportError(f"threshold must be in (0, 100] percent, got {self.threshold!r}")
        object.__setattr__(self, "threshold", threshold)
        object.__setattr__(self, "qc_exclude", frozenset(self.qc_exclude))
        if not 0.0 < float(self.alpha) < 1.0:
            raise ReportError(f"alpha must be in (0, 1), got {self.alpha!r}")
        if not isinstance(self.bootstrap, int) or self.bootstrap < 0:
            raise ReportError(f"bootstrap must be a non-negative integer, got {self.bootstrap!r}")
