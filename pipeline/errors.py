"""The pipeline package's exceptions.

``IngestError`` and its subclasses describe one bad input (a manifest row or a photo); the batch
records them per photo (``code`` is the stable reason used in summaries and the store) and goes
on. ``StoreError`` is about the study store itself and stops the batch.
"""

from __future__ import annotations

__all__ = [
    "PipelineError",
    "ManifestError",
    "IngestError",
    "UnsafePathError",
    "MissingFileError",
    "NotRegularFileError",
    "RunLockedError",
    "EmptyFileError",
    "NotAnImageError",
    "CorruptImageError",
    "ImageTooLargeError",
    "DicomError",
    "BadRowError",
    "StoreError",
]


class PipelineError(Exception):
    """Base class of the pipeline's own errors."""

    code = "error"


class ManifestError(PipelineError, ValueError):
    """The manifest as a whole is unusable (missing, unreadable, wrong columns)."""

    code = "bad_manifest"


class IngestError(PipelineError):
    """One photo or manifest row cannot be ingested; the batch records it and goes on."""

    code = "ingest_error"


class BadRowError(IngestError):
    """A manifest row has an unknown or malformed subject, day or site."""

    code = "bad_row"


class UnsafePathError(IngestError):
    """A file name would escape the study folder or has characters we refuse."""

    code = "unsafe_path"


class MissingFileError(IngestError):
    """The manifest lists a file that does not exist."""

    code = "missing_file"


class NotRegularFileError(IngestError):
    """The listed path is a folder, a FIFO or a device, not a regular file."""

    code = "not_regular_file"


class EmptyFileError(IngestError):
    """A zero-byte file."""

    code = "empty_file"


class NotAnImageError(IngestError):
    """The bytes are not an image format we read."""

    code = "not_an_image"


class CorruptImageError(IngestError):
    """A truncated or otherwise undecodable image."""

    code = "corrupt_image"


class ImageTooLargeError(IngestError):
    """The header promises more pixels than the limit (refused before decoding)."""

    code = "image_too_large"


class DicomError(IngestError):
    """A DICOM file we cannot use (no pixel data, unsupported class or syntax)."""

    code = "bad_dicom"


class StoreError(PipelineError):
    """The study store is unusable (schema too new, corrupt, locked)."""

    code = "store_error"


class RunLockedError(PipelineError):
    """Another ``donorsite process`` holds the output folder's run lock."""

    code = "run_locked"
