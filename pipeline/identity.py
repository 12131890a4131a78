"""Who and when a photo is: subject and visit day, never from patient identifiers.

Rules (issue 14):

- The **subject id always comes from the manifest**. A DICOM header's ``PatientID`` or
  ``PatientName`` is never read as an identity (it is a medical record number or a name); a
  header's ``ClinicalTrialSubjectID``, when present, is only compared with the manifest's id
  (flag ``dicom_subject_conflict`` when it differs or is malformed) and never stored.
- The **visit day** comes from the manifest when given. A DICOM row may leave it empty: the
  day is then the photo's date (``AcquisitionDateTime``, ``AcquisitionDate``, ``ContentDate``,
  ``SeriesDate``, ``StudyDate``, first present) minus the subject's **day 0**, a calendar date
  stored once per subject in the study store (table ``subject_day0``). Day 0 is anchored by
  the first manifest row (in any batch) that gives a DICOM photo of the subject both a
  ``visit_day`` and a date: day 0 = date − visit_day. It is never the first photo of the current
  batch. Without an anchor, or without a date, the row is refused with a message saying so.
  A DICOM photo whose date disagrees with the stored day 0 and its manifest day is flagged
  ``dicom_day_conflict``. Derived days outside 0..365 are refused.
"""

from __future__ import annotations

import datetime as dt
import io
from dataclasses import dataclass
from typing import Any

from pipeline.manifest import MAX_VISIT_DAY, valid_id

__all__ = ["DicomIdentity", "read_dicom_identity", "dicom_datetime", "DATE_ATTRIBUTES"]

#: DICOM (date, time) attributes tried in this order for the photo's date.
DATE_ATTRIBUTES = (("AcquisitionDate", "AcquisitionTime"), ("ContentDate", "ContentTime"),
                   ("SeriesDate", "SeriesTime"), ("StudyDate", "StudyTime"))


@dataclass(frozen=True)
class DicomIdentity:
    """What a DICOM header says about identity: only what the rules above may use."""

    trial_subject: str | None
    acquired: dt.datetime | None
    date_source: str | None

    def subject_conflict(self, subject: str) -> bool:
        """True when the header's trial subject id is malformed or differs from ``subject``."""
        return self.trial_subject is not None and (not valid_id(self.trial_subject)
                                                   or self.trial_subject != subject)


def read_dicom_identity(data: bytes) -> DicomIdentity | None:
    """The identity fields of a DICOM file's header, or None for other files."""
    if data[128:132] != b"DICM":
        return None
    import pydicom

    try:
        ds = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True)
    except Exception:  # the decode stage reports the damage with its own message
        return DicomIdentity(None, None, None)
    trial = str(ds.get("ClinicalTrialSubjectID", "") or "").strip() or None
    acquired, source = dicom_datetime(ds)
    return DicomIdentity(trial, acquired, source)


def dicom_datetime(ds: Any) -> tuple[dt.datetime | None, str | None]:
    """The photo's date and time from the first date attribute present, and its name."""
    text = str(ds.get("AcquisitionDateTime", "") or "").strip()
    if text:
        parsed = _parse(text)
        if parsed is not None:
            return parsed, "AcquisitionDateTime"
    for date_attr, time_attr in DATE_ATTRIBUTES:
        date = str(ds.get(date_attr, "") or "").strip()
        if date:
            parsed = _parse(date + str(ds.get(time_attr, "") or "").strip())
            if parsed is None:
                parsed = _parse(date)
            if parsed is not None:
                return parsed, date_attr
    return None, None


_FORMATS = {8: "%Y%m%d", 10: "%Y%m%d%H", 12: "%Y%m%d%H%M", 14: "%Y%m%d%H%M%S"}


def _parse(text: str) -> dt.datetime | None:
    """A DICOM DA/DT value (``YYYYMMDD[HH[MM[SS[.FFFFFF]]]][&ZZXX]``), chosen by length so
    that ``20260315`` is never read as 1 March 05:00."""
    text = text.strip()
    if len(text) > 8:
        for sign in "+-":
            if sign in text[8:]:
                text = text[:8] + text[8:].split(sign)[0]
    whole, _, frac = text.partition(".")
    fmt = _FORMATS.get(len(whole))
    if fmt is None or not whole.isascii() or not whole.isdigit():
        return None
    if frac and not (frac.isascii() and frac.isdigit() and len(whole) == 14):
        return None
    try:
        when = dt.datetime.strptime(whole, fmt)
    except ValueError:
        return None
    return when.replace(microsecond=int((frac + "000000")[:6])) if frac else when


def plausible_day(day: int) -> bool:
    """True for a visit day in 0..MAX_VISIT_DAY."""
    return 0 <= day <= MAX_VISIT_DAY
