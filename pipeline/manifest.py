"""The study's input contract: ``manifest.csv`` with ``subject_id,visit_day,site,file``.

``file`` is relative to the manifest's folder. Rows are validated one by one: a bad row becomes
a :class:`ManifestRow` carrying its :class:`~pipeline.errors.IngestError`, so the batch records
it and goes on. Only a manifest that cannot be read at all, or lacks the contract's columns,
raises :class:`~pipeline.errors.ManifestError`.

For DICOM photos ``subject_id`` and ``visit_day`` may be left empty: they are then taken from
the file (see :mod:`pipeline.decode`).
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path

from pipeline.errors import (
    BadRowError,
    IngestError,
    ManifestError,
    MissingFileError,
    UnsafePathError,
)

__all__ = ["ManifestRow", "read_manifest", "resolve_input", "REQUIRED_COLUMNS"]

REQUIRED_COLUMNS = ("subject_id", "visit_day", "site", "file")
MAX_VISIT_DAY = 3650
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_PATH_PART = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_. -]{0,127}$")


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
        One per data row, in file order; invalid rows carry their error.

    Raises
    ------
    ManifestError
        The file is missing, not UTF-8 CSV, or lacks a required column.

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
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            header = [h.strip() for h in (reader.fieldnames or [])]
            missing = [c for c in REQUIRED_COLUMNS if c not in header]
            if missing:
                raise ManifestError(f"{path}: missing column(s) {missing}; the contract is "
                                    f"{','.join(REQUIRED_COLUMNS)} (got {header})")
            raw_rows = [{(k or "").strip(): (v or "").strip() for k, v in r.items()}
                        for r in reader]
    except UnicodeDecodeError as exc:
        raise ManifestError(f"{path}: not UTF-8 text ({exc.reason})") from exc
    except csv.Error as exc:
        raise ManifestError(f"{path}: not valid CSV ({exc})") from exc
    return [_validate_row(r, line=i + 2, root=root, manifest=path)
            for i, r in enumerate(raw_rows)]


def _validate_row(r: dict[str, str], *, line: int, root: Path, manifest: Path) -> ManifestRow:
    where = f"{manifest.name} line {line}"
    file, site = r.get("file", ""), r.get("site", "")
    subject = r.get("subject_id") or None
    day_text = r.get("visit_day", "")
    day: int | None = None
    try:
        path = safe_join(root, file, where=where)
        if subject is not None and not _ID.match(subject):
            raise BadRowError(f"{where}: malformed subject_id {subject!r} (letters, digits, "
                              "'_', '-', '.'; at most 64)")
        if day_text:
            try:
                day = int(day_text)
            except ValueError:
                raise BadRowError(f"{where}: visit_day {day_text!r} is not a whole number of "
                                  "days") from None
            if not 0 <= day <= MAX_VISIT_DAY:
                raise BadRowError(f"{where}: visit_day {day} outside 0..{MAX_VISIT_DAY}")
        if not site or not _ID.match(site):
            raise BadRowError(f"{where}: malformed or empty site {site!r}")
        is_dicom = path.suffix.lower() in (".dcm", ".dicom")
        if not is_dicom and (subject is None or day is None):
            raise BadRowError(f"{where}: subject_id and visit_day are required for non-DICOM "
                              f"file {file!r}")
        if not path.is_file():
            raise MissingFileError(f"{where}: listed file {file!r} does not exist")
        return ManifestRow(line, subject, day, site, file, path)
    except IngestError as exc:
        return ManifestRow(line, subject, day, site, file, None, exc)


def safe_join(root: Path, relative: str, *, where: str) -> Path:
    """``root / relative`` if it is a plain relative path that stays inside ``root``.

    Refuses absolute paths, ``..``, empty parts, control or odd characters, and symbolic links
    that lead outside ``root``.
    """
    if not relative:
        raise UnsafePathError(f"{where}: empty file name")
    if "\\" in relative or relative.startswith("/") or re.match(r"^[A-Za-z]:", relative):
        raise UnsafePathError(f"{where}: file {relative!r} must be a relative path with '/'")
    parts = relative.split("/")
    for part in parts:
        if part in ("", ".", "..") or not _PATH_PART.match(part):
            raise UnsafePathError(f"{where}: unsafe file name {relative!r} (part {part!r})")
    candidate = root.joinpath(*parts)
    try:
        resolved = candidate.resolve()
    except OSError as exc:
        raise UnsafePathError(f"{where}: cannot resolve {relative!r}: {exc}") from exc
    if resolved != root and root not in resolved.parents:
        raise UnsafePathError(f"{where}: file {relative!r} leads outside the study folder")
    return candidate
