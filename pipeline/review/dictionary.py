"""The data dictionary of the review exports (``reads.csv``, ``adjudications.csv``): one
row per column with its type and meaning, served beside the exports and kept in step with
:data:`pipeline.review.reads.READ_COLUMNS` and
:data:`pipeline.review.adjudication.DECISION_COLUMNS` (a test checks)."""

from __future__ import annotations

import csv
import io

__all__ = ["DICTIONARY", "dictionary_csv"]

_R, _A = "reads.csv", "adjudications.csv"
#: (file, column, type, meaning)
DICTIONARY: tuple[tuple[str, str, str, str], ...] = (
    (_R, "read_id", "integer", "Row id of this read version (unique, in saving order)."),
    (_R, "photo_id", "text", "Opaque photo code of the study store (not the file name)."),
    (_R, "assessor", "text", "Account name of the assessor."),
    (_R, "version", "integer", "Version of this assessor's read of the task (1, 2, ...); "
                               "every change is a new version, none is overwritten."),
    (_R, "estimate_percent", "number 0-100 or empty",
     "The assessor's visual estimate of % epithelialized (empty when unassessable)."),
    (_R, "verdict", "accept | needs_correction | unassessable", "Verdict on the overlay."),
    (_R, "reason", "code or empty", "blurred, lighting, not_visible, no_scale, covered, other."),
    (_R, "comment", "text", "Free text (at most 2000 characters)."),
    (_R, "corrected_mask_file", "path or empty",
     "The assessor's corrected label mask (0 background, 1 epithelialized, 2 raw), PNG at "
     "the review picture's size, relative to the output folder."),
    (_R, "is_repeat", "0 | 1", "1 for a hidden repeat (intra-rater agreement); repeats are "
                               "not counted as a second assessor."),
    (_R, "created_utc", "ISO 8601 UTC", "When this version was saved."),
    (_R, "task_code", "text", "Opaque code of the assessor's task."),
    (_R, "result_id", "integer", "The processing result read (its mask and calibration)."),
    (_A, "adjudication_id", "integer", "Row id of this decision version."),
    (_A, "photo_id", "text", "Opaque photo code of the study store."),
    (_A, "coordinator", "text", "Account name of the coordinator who decided."),
    (_A, "version", "integer", "Version of the decision on this photo (1, 2, ...)."),
    (_A, "estimate_percent", "number 0-100 or empty", "The adjudicated % epithelialized."),
    (_A, "verdict", "accept | needs_correction | unassessable", "The adjudicated verdict."),
    (_A, "comment", "text", "The coordinator's comment (the reason is its own column)."),
    (_A, "read_ids", "JSON list of integers", "The read versions considered (read_id)."),
    (_A, "created_utc", "ISO 8601 UTC", "When this decision was saved."),
    (_A, "reason", "code or empty", "As in reads.csv."),
    (_A, "adopted_mask", "model | read N | none | empty",
     "The mask the decision adopts: the model's, the correction of read N, or none "
     "(empty for decisions made before this was recorded)."),
    (_A, "adopted_mask_file", "path or empty", "The adopted correction's mask file."),
)


def dictionary_csv() -> bytes:
    """The dictionary as CSV (file, column, type, meaning)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(("file", "column", "type", "meaning"))
    w.writerows(DICTIONARY)
    return buf.getvalue().encode()
