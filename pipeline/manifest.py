"""The study's input contract: ``manifest.csv`` with ``subject_id,visit_day,site,file``.

``file`` is relative to the manifest's folder. Rows are validated one by one: a bad row becomes
a :class:`ManifestRow` carrying its :class:`~pipeline.errors.IngestError`, so the batch records
it and goes on — a row with too many fields (an unquoted comma), too few, a malformed day or
an unsafe name is one row's error, named by its manifest line. Only a manifest that cannot be
read at all, lacks the contract's columns or names a column twice raises
:class:`~pipeline.errors.ManifestError` (a duplicated ``file`` column would otherwise file
photos under the wrong subject or day).

``visit_day`` is strict: ASCII decimal digits only (``1_0``, ``+3``, ``٣`` and ``3.0`` are
refused). File names may use any printable Unicode (``photé.jpg``); refused are absolute paths,
backslashes, ``.``/``..``/empty parts, control and format characters (e.g. U+202E) and paths
that lead outside the study folder.

For DICOM photos ``visit_day`` may be left empty (it is then derived from the file's dates,
see :mod:`pipeline.identity`); ``subject_id`` is always required — a DICOM header's patient
identifiers are never used as the subject id.
"""

from __future__ import annotations

import csv
import os
import re
import stat
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from pipeline.errors import (
    BadRowError,
    IngestError,
    ManifestError,
    MissingFileError,
    NotRegularFileError,
    UnsafePathError,
)

__all__ = ["ManifestRow", "read_manifest", "resolve_input", "safe_join", "check_regular_file",
           "REQUIRED_COLUMNS", "MAX_VISIT_DAY", "valid_id"]

REQUIRED_COLUMNS = ("subject_id", "visit_day", "site", "file")
#: The largest visit day accepted (a year of follow-up).
MAX_VISIT_DAY = 365
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_DAY = re.compile(r"^-?[0-9]{1,6}$")
_MAX_PART_BYTES = 255


@dataclass(frozen=True)
class ManifestRow:
    """One validated manifest row (or the reason it is unusable, in ``error``)."""

    line: int
    subject_id: str | None
    visit_day: int | None
    site: str
    file: str
    path: Path | None
    error: IngestError | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def valid_id(text: str) -> bool:
    """True for a subject or site id: ASCII letters, digits, ``_ - .``, at most 64, starting
    with a letter or digit (so never a path, markup or a spreadsheet formula)."""
    return bool(_ID.match(text))


def resolve_input(target: str | Path) -> Path:
    """A manifest path from a manifest file or a study folder containing ``manifest.csv``."""
    p = Path(target)
    if p.is_dir():
        p = p / "manifest.csv"
    if not p.is_file():
        raise ManifestError(f"{p}: no manifest here (expected a manifest.csv or a folder "
                            "holding one)")
    return p


def read_manifest(manifest: str | Path) -> list[ManifestRow]:
    """Read and validate a manifest.

    Parameters
    ----------
    manifest : str or Path
        ``manifest.csv`` or a folder containing one.

    Returns
    -------
    list of ManifestRow
        One per non-blank data row, in file order; invalid rows carry their error.

    Raises
    ------
    ManifestError
        The file is missing, not UTF-8 CSV, lacks a required column or names one twice.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (d / "manifest.csv").write_text("subject_id,visit_day,site,file\\nS01,0,thigh,a.jpg\\n")
    >>> rows = read_manifest(d)
    >>> rows[0].subject_id, rows[0].visit_day, rows[0].error.code
    ('S01', 0, 'missing_file')
    """
    path = resolve_input(manifest)
    root = path.parent.resolve()
    raw: list[tuple[int, list[str]]] = []
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            reader = csv.reader(fh)
            header = [h.strip() for h in next(reader, [])]
            seen = reader.line_num
            for fields in reader:
                line, seen = seen + 1, reader.line_num
                if any(f.strip() for f in fields):
                    raw.append((line, fields))
    except UnicodeDecodeError as exc:
        raise ManifestError(f"{path}: not UTF-8 text ({exc.reason})") from exc
    except csv.Error as exc:
        raise ManifestError(f"{path}: not valid CSV ({exc})") from exc
    dup = sorted({h for h in header if h and header.count(h) > 1})
    if dup:
        raise ManifestError(f"{path}: column(s) {dup} appear more than once in the header "
                            f"{header}; each column must be named once")
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        raise ManifestError(f"{path}: missing column(s) {missing}; the contract is "
                            f"{','.join(REQUIRED_COLUMNS)} (got {header})")
    return [_row(fields, header, line=line, root=root, manifest=path) for line, fields in raw]


def _row(fields: list[str], header: list[str], *, line: int, root: Path,
         manifest: Path) -> ManifestRow:
    where = f"{manifest.name} line {line}"
    values = {h: f.strip() for h, f in zip(header, fields, strict=False) if h}
    file = values.get("file", "")
    if len(fields) != len(header):
        if len(fields) > len(header):
            why = (f"{len(fields)} fields but the header has {len(header)} (an unquoted comma "
                   "in a name or site? quote such fields)")
        else:
            lacking = [h for h in header[len(fields):] if h in REQUIRED_COLUMNS]
            why = (f"{len(fields)} fields but the header has {len(header)}; missing column(s) "
                   f"{lacking or header[len(fields):]}")
        err = BadRowError(f"{where}: {why}")
        return ManifestRow(line, None, None, values.get("site", ""), file, None, err)
    return _validate_row(values, where=where, line=line, root=root)


def _validate_row(r: dict[str, str], *, where: str, line: int, root: Path) -> ManifestRow:
    file, site = r.get("file", ""), r.get("site", "")
    subject = r.get("subject_id") or None
    day_text = r.get("visit_day", "")
    day: int | None = None
    try:
        path = safe_join(root, file, where=where)
        if subject is not None and not valid_id(subject):
            raise BadRowError(f"{where}: malformed subject_id {subject!r} (letters, digits, "
                              "'_', '-', '.'; at most 64)")
        if day_text:
            if not _DAY.match(day_text):
                raise BadRowError(f"{where}: visit_day {day_text!r} is not a whole number of "
                                  "days (decimal digits only)")
            day = int(day_text)
            if not 0 <= day <= MAX_VISIT_DAY:
                raise BadRowError(f"{where}: visit_day {day} outside 0..{MAX_VISIT_DAY}")
        if not site or not valid_id(site):
            raise BadRowError(f"{where}: malformed or empty site {site!r}")
        is_dicom = path.suffix.lower() in (".dcm", ".dicom")
        if subject is None:
            raise BadRowError(f"{where}: subject_id is required for {file!r} (a DICOM header's "
                              "patient id is never used as the subject id)")
        if day is None and not is_dicom:
            raise BadRowError(f"{where}: visit_day is required for non-DICOM file {file!r}")
        check_regular_file(path, name=file, where=where)
        return ManifestRow(line, subject, day, site, file, path)
    except IngestError as exc:
        return ManifestRow(line, subject, day, site, file, None, exc)


def check_regular_file(path: Path, *, name: str, where: str) -> None:
    """Refuse a missing file, a folder, a FIFO or a device (without opening it).

    Raises
    ------
    MissingFileError, NotRegularFileError
    """
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise MissingFileError(f"{where}: listed file {name!r} does not exist") from None
    except OSError as exc:
        raise MissingFileError(f"{where}: cannot read {name!r} ({exc.strerror})") from None
    if not stat.S_ISREG(mode):
        kind = ("a folder" if stat.S_ISDIR(mode) else "a FIFO (named pipe)"
                if stat.S_ISFIFO(mode) else "a device or socket")
        raise NotRegularFileError(f"{where}: {name!r} is not a regular file ({kind})")


def safe_join(root: Path, relative: str, *, where: str) -> Path:
    """``root / relative`` if it is a plain relative path that stays inside ``root``.

    Refuses absolute paths, backslashes, ``.``/``..``/empty parts, control and format
    characters, parts over 255 bytes, and symbolic links that lead outside ``root``. Any
    other printable Unicode is fine (``photé.jpg``).
    """
    if not relative:
        raise UnsafePathError(f"{where}: no file name (the file column is empty)")
    if "\\" in relative or relative.startswith("/") or re.match(r"^[A-Za-z]:", relative):
        raise UnsafePathError(f"{where}: file {relative!r} must be a relative path with '/'")
    parts = relative.split("/")
    for part in parts:
        if part in ("", ".", ".."):
            raise UnsafePathError(f"{where}: unsafe file name {relative!r} (part {part!r})")
        bad = [c for c in part if unicodedata.category(c)[0] in ("C", "Z") and c != " "]
        if bad or part != part.strip() or len(part.encode("utf-8")) > _MAX_PART_BYTES:
            why = (f"character {bad[0]!r}" if bad else "too long" if
                   len(part.encode("utf-8")) > _MAX_PART_BYTES else "leading/trailing space")
            raise UnsafePathError(f"{where}: unsafe file name {relative!r} ({why})")
    candidate = root.joinpath(*parts)
    try:
        resolved = candidate.resolve()
    except OSError as exc:
        raise UnsafePathError(f"{where}: cannot resolve {relative!r}: {exc}") from exc
    if resolved != root and root not in resolved.parents:
        raise UnsafePathError(f"{where}: file {relative!r} leads outside the study folder")
    return candidate
