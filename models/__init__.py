"""donorsite.models: the segmentation network, its training, and the model registry.

Imports ``calibration`` at most, never ``pipeline``. The public names below are loaded lazily
(torch is imported only when one of them is first used)::

    from models import ModelConfig, Predictor, build_model, to_working, working_image
    predictor = Predictor.from_registry("starter")
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["ModelConfig", "TrainConfig", "preset", "build_model", "Predictor", "to_working",
           "working_image", "load_model", "save_model", "ModelError",
           "ModelConfigError", "WeightsError", "InputShapeError", "DatasetError"]

_WHERE = {"ModelConfig": "config", "TrainConfig": "config", "preset": "config",
          "build_model": "factory", "Predictor": "predictor", "to_working": "preprocess",
          "working_image": "preprocess", "load_model": "registry", "save_model": "registry",
          "ModelError": "errors", "ModelConfigError": "errors",
          "WeightsError": "errors", "InputShapeError": "errors", "DatasetError": "errors"}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(f"models.{_WHERE[name]}"), name)
    raise AttributeError(f"module 'models' has no attribute {name!r}")
