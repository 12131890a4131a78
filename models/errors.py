"""The models package's exceptions: one base class, specific subclasses.

Every message echoes the bad value and names the file it came from, so the batch can record
it per photo and go on.
"""

from __future__ import annotations

__all__ = [
    "ModelError",
    "ModelConfigError",
    "WeightsError",
    "InputShapeError",
    "DatasetError",
]


class ModelError(Exception):
    """Base class of everything the models package raises."""


class ModelConfigError(ModelError, ValueError):
    """A model or training configuration is invalid (names the field and the bad value)."""


class WeightsError(ModelError):
    """A weights file is missing, corrupt, fails its sha256 check or does not fit the model."""


class InputShapeError(ModelError, ValueError):
    """An image has a shape or dtype the network cannot take (the message names the fix)."""


class DatasetError(ModelError):
    """A training folder is missing, empty, or holds labels the configuration cannot map."""
