"""The CPU fast path: the network exported to ONNX and run with ONNX Runtime.

:func:`export_onnx` writes a network built by :func:`models.factory.build_model` (with its
input normalisation) as an ONNX graph whose batch, height and width are dynamic, so the same
file serves every tile size. :class:`OrtRunner` runs it on the CPU with a fixed number of
intra-op threads and *without spinning* (``session.intra_op.allow_spinning = 0``): in a
pipeline whose other stages share the cores, spinning threads would burn the time those
stages need. The engine only uses this path when a timed warm-up shows it beats PyTorch
(:mod:`models.autotune`); both give the same logits to ~1e-5.
"""

from __future__ import annotations

import os
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from models.config import ModelConfig
from models.errors import ModelError

__all__ = ["OPSET", "export_onnx", "OrtRunner", "onnxruntime_available"]

#: ONNX opset of exported graphs.
OPSET = 17


def onnxruntime_available() -> bool:
    """Whether ``onnxruntime`` can be imported."""
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def export_onnx(model: nn.Module, config: ModelConfig, path: str | Path, *,
                opset: int = OPSET) -> Path:
    """Export ``model`` (``(N, C, H, W)`` in [0, 1] -> logits) to an ONNX file, atomically.

    Parameters
    ----------
    model : nn.Module
        A network from :func:`models.factory.build_model` (weights loaded).
    config : ModelConfig
        Its configuration (channels, tile size, stride).
    path : str or Path
        Where to write the ``.onnx`` file (written to a temporary file, then renamed).
    opset : int, optional
        ONNX opset version.

    Returns
    -------
    Path

    Raises
    ------
    ModelError
        The export failed (the message names ``path``).

    Examples
    --------
    >>> import tempfile
    >>> from models.factory import build_model
    >>> cfg = ModelConfig(encoder="tu-resnet10t", encoder_depth=3,
    ...                   decoder_channels=(16, 8, 8), tile_size=64)
    >>> p = export_onnx(build_model(cfg), cfg, tempfile.mkdtemp() + "/tiny.onnx")
    >>> p.suffix, p.stat().st_size > 0
    ('.onnx', True)
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    was_training = model.training
    cpu_model = model.eval()
    params = list(cpu_model.parameters())
    if params and params[0].device.type != "cpu":
        raise ModelError(f"export_onnx needs a CPU model (got parameters on "
                         f"{params[0].device}); writing {path}")
    example = torch.rand(1, config.in_channels, config.tile_size, config.tile_size)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".onnx")
    os.close(fd)
    try:
        with warnings.catch_warnings(), torch.inference_mode():
            warnings.simplefilter("ignore")  # tracer warnings about the shape checks
            torch.onnx.export(cpu_model, (example,), tmp, input_names=["image"],
                              output_names=["logits"], opset_version=opset, dynamo=False,
                              dynamic_axes={"image": {0: "n", 2: "h", 3: "w"},
                                            "logits": {0: "n", 2: "h", 3: "w"}})
        os.replace(tmp, path)
    except Exception as exc:
        Path(tmp).unlink(missing_ok=True)
        raise ModelError(f"ONNX export to {path} failed: {type(exc).__name__}: {exc}"
                         ) from exc
    finally:
        cpu_model.train(was_training)
    return path


class OrtRunner:
    """Run an exported network with ONNX Runtime on the CPU: tiles in, logits out.

    Parameters
    ----------
    onnx_path : str or Path
        A file written by :func:`export_onnx`.
    threads : int
        Intra-op threads (the cores the network may use).
    spinning : bool
        Let idle threads spin (faster alone, wasteful when other stages share the cores).

    Examples
    --------
    >>> import tempfile
    >>> from models.factory import build_model
    >>> cfg = ModelConfig(encoder="tu-resnet10t", encoder_depth=3,
    ...                   decoder_channels=(16, 8, 8), tile_size=64)
    >>> p = export_onnx(build_model(cfg), cfg, tempfile.mkdtemp() + "/tiny.onnx")
    >>> OrtRunner(p, threads=1)(np.zeros((2, 3, 64, 64), np.float32)).shape
    (2, 3, 64, 64)
    """

    name = "onnxruntime"

    def __init__(self, onnx_path: str | Path, *, threads: int = 1,
                 spinning: bool = False) -> None:
        import onnxruntime as ort

        if not isinstance(threads, int) or threads < 1:
            raise ModelError(f"threads must be a positive integer, got {threads!r}")
        self.path = Path(onnx_path)
        if not self.path.is_file():
            raise ModelError(f"ONNX file not found: {self.path}")
        if hasattr(ort, "disable_telemetry_events"):  # nothing written outside --out
            ort.disable_telemetry_events()
        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        so.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
        so.add_session_config_entry("session.inter_op.allow_spinning", "0")
        try:
            self.session = ort.InferenceSession(str(self.path), so,
                                                providers=["CPUExecutionProvider"])
        except Exception as exc:
            raise ModelError(f"ONNX Runtime cannot load {self.path}: {exc}") from exc
        self.threads = threads
        self._input = self.session.get_inputs()[0].name

    def __call__(self, tiles_nchw: np.ndarray | torch.Tensor) -> np.ndarray:
        """Logits ``(N, K, H, W)`` float32 for float32 tiles ``(N, C, H, W)`` in [0, 1]."""
        x = tiles_nchw.numpy() if isinstance(tiles_nchw, torch.Tensor) else tiles_nchw
        x = np.ascontiguousarray(x, dtype=np.float32)
        return self.session.run(None, {self._input: x})[0]

    def describe(self) -> dict[str, Any]:
        """What runs: for provenance and the benchmark."""
        import onnxruntime as ort

        return {"backend": self.name, "onnxruntime": ort.__version__, "threads": self.threads,
                "file": self.path.name}
