"""ONNX export and the ONNX Runtime runner: same logits as PyTorch, dynamic sizes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from models.errors import ModelError
from models.factory import build_model
from models.onnx_export import OrtRunner, export_onnx
from tests.models.conftest import tiny_config

pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    torch.manual_seed(0)
    cfg = tiny_config()
    model = build_model(cfg).eval()
    path = export_onnx(model, cfg, tmp_path_factory.mktemp("onnx") / "tiny.onnx")
    return model, cfg, path


@pytest.mark.parametrize("shape", [(1, 3, 64, 64), (3, 3, 32, 96)])
def test_same_logits_as_torch_any_size(exported, shape):
    model, _, path = exported
    x = torch.rand(*shape, generator=torch.Generator().manual_seed(2))
    with torch.inference_mode():
        ref = model(x).numpy()
    out = OrtRunner(path, threads=1)(x.numpy())
    assert out.shape == ref.shape
    np.testing.assert_allclose(out, ref, atol=1e-4)
    assert (out.argmax(1) == ref.argmax(1)).mean() >= 0.999


def test_errors_name_the_file(tmp_path, exported):
    _, cfg, _ = exported
    with pytest.raises(ModelError, match="missing.onnx"):
        OrtRunner(tmp_path / "missing.onnx")
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a graph")
    with pytest.raises(ModelError, match="bad.onnx"):
        OrtRunner(bad)
    with pytest.raises(ModelError, match="threads"):
        OrtRunner(exported[2], threads=0)


def test_describe(exported):
    d = OrtRunner(exported[2], threads=2).describe()
    assert d["backend"] == "onnxruntime" and d["threads"] == 2
