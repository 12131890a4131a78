"""Batched tiled inference: the same answers as the Predictor, for any runner and batch."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from models.factory import build_model
from models.fastpath import PendingLabels, TiledSegmenter, TorchRunner
from models.predictor import Predictor
from tests.models.conftest import tiny_config


@pytest.fixture(scope="module")
def net():
    torch.manual_seed(0)
    cfg = tiny_config()
    return build_model(cfg).eval(), cfg


def _images():
    rng = np.random.default_rng(3)
    shapes = [(70, 45), (150, 200), (64, 64), (130, 97)]
    return [np.clip(rng.normal(0.5, 0.2, (*s, 3)), 0, 1).astype(np.float32) for s in shapes]


@pytest.mark.parametrize("batch", [3, 16])
def test_matches_predictor(net, batch):
    model, cfg = net
    pred = Predictor(model, cfg, device="cpu", channels_last=False)
    seg = TiledSegmenter(TorchRunner(model, channels_last=False), cfg, batch_size=batch)
    images = _images()
    probas = seg.proba(images)
    for img, p in zip(images, probas, strict=True):
        ref = pred.predict_proba(img)
        assert p.shape == ref.shape
        np.testing.assert_allclose(p.numpy(), ref, atol=1e-5)
    shapes = [(2 * i.shape[0], 3 * i.shape[1]) for i in images]
    labels = [pl.result() for pl in seg.segment(images, shapes)]
    for img, lab, shape in zip(images, labels, shapes, strict=True):
        assert lab.shape == shape
        assert (lab == pred.predict(img, output_shape=shape)).mean() >= 0.999


def test_channels_last_runner_same_logits(net):
    model, cfg = net
    x = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    a = TorchRunner(model, channels_last=False)(x)
    b = TorchRunner(model, channels_last=True)(x)
    torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)


def test_numpy_runner_and_pending_labels(net):
    model, cfg = net
    torch_runner = TorchRunner(model, channels_last=False)
    seg = TiledSegmenter(lambda x: torch_runner(x).numpy(), cfg, batch_size=2)
    out = seg.segment([_images()[1]], [None])
    assert isinstance(out[0], PendingLabels)
    lab = out[0].result()
    assert lab.shape == (150, 200) and lab.dtype == np.uint8 and lab.max() < cfg.n_classes


def test_bad_options(net):
    model, cfg = net
    with pytest.raises(ValueError, match="batch_size"):
        TiledSegmenter(TorchRunner(model), cfg, batch_size=0)
    with pytest.raises(ValueError, match="precision"):
        TorchRunner(model, precision="fp8")
    with pytest.raises(ValueError, match="compile_mode"):
        TorchRunner(model, compile_mode="fastest")
