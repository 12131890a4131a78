import cv2
import numpy as np
import pytest
import torch

from models.errors import InputShapeError, ModelConfigError
from models.factory import build_model
from models.predictor import Predictor


def _img(h, w, seed=0):
    return np.random.default_rng(seed).random((h, w, 3), dtype=np.float32)


@pytest.mark.parametrize("h, w", [(64, 64), (37, 51), (1, 70), (130, 97)])
def test_shape_preserved_for_any_size(make_cfg, h, w):
    cfg = make_cfg()
    pred = Predictor(build_model(cfg), cfg, device="cpu")
    labels = pred.predict(_img(h, w))
    assert labels.shape == (h, w) and labels.dtype == np.uint8
    assert labels.max() < cfg.n_classes
    proba = pred.predict_proba(_img(h, w))
    assert proba.shape == (3, h, w) and np.allclose(proba.sum(0), 1, atol=1e-5)


def test_constant_model_blends_to_an_exact_constant(make_cfg, constant_model):
    # Any seam (weights not normalised, a tile missed or counted twice) breaks constancy.
    cfg = make_cfg(tile_overlap=0.5)
    proba = Predictor(constant_model, cfg, device="cpu", batch_size=5).predict_proba(
        _img(200, 173))
    expected = torch.softmax(constant_model.logits.view(-1), 0).numpy()
    assert np.abs(proba - expected[:, None, None]).max() < 1e-6


@pytest.mark.parametrize("overlap", [0.0, 0.25, 0.5])
def test_tiled_equals_untiled_for_a_per_pixel_model(make_cfg, conv1x1_model, overlap):
    img = _img(150, 230, seed=1)
    tiled = Predictor(conv1x1_model, make_cfg(tile_overlap=overlap), device="cpu",
                      batch_size=3).predict_proba(img)
    whole = Predictor(conv1x1_model, make_cfg(tile_size=512), device="cpu").predict_proba(img)
    with torch.no_grad():
        direct = torch.softmax(conv1x1_model(torch.from_numpy(img).permute(2, 0, 1)[None]), 1)
    assert np.abs(tiled - whole).max() < 1e-5
    assert np.abs(tiled - direct[0].numpy()).max() < 1e-5


def test_output_shape_upsamples_probabilities_before_argmax(make_cfg, conv1x1_model):
    cfg = make_cfg()
    pred = Predictor(conv1x1_model, cfg, device="cpu")
    small = cv2.GaussianBlur(_img(40, 60, seed=2), (0, 0), 3)
    proba = pred.predict_proba(small)
    big = pred.predict(small, output_shape=(400, 600))
    ref = np.stack([cv2.resize(p, (600, 400), interpolation=cv2.INTER_LINEAR) for p in proba])
    assert big.shape == (400, 600)
    assert np.mean(big == ref.argmax(0)) > 0.999
    # smooth outlines: far fewer label changes than nearest-neighbour upsampling of the labels
    blocky = cv2.resize(proba.argmax(0).astype(np.uint8), (600, 400),
                        interpolation=cv2.INTER_NEAREST)
    assert np.count_nonzero(np.diff(big, axis=1)) <= np.count_nonzero(np.diff(blocky, axis=1))
    assert pred.predict_proba(small, output_shape=(80, 120)).shape == (3, 80, 120)


def test_predict_batch_matches_single_predictions(make_cfg):
    cfg = make_cfg()
    torch.manual_seed(0)
    pred = Predictor(build_model(cfg), cfg, device="cpu", batch_size=4)
    imgs = [_img(70, 90, 3), _img(64, 64, 4), _img(33, 130, 5)]
    batch = pred.predict_batch(imgs, output_shapes=[None, (128, 128), None])
    singles = [pred.predict(imgs[0]), pred.predict(imgs[1], output_shape=(128, 128)),
               pred.predict(imgs[2])]
    for a, b in zip(batch, singles, strict=False):
        assert a.shape == b.shape and np.mean(a == b) > 0.999


def test_uint8_input_equals_float_input(make_cfg, conv1x1_model):
    cfg = make_cfg()
    pred = Predictor(conv1x1_model, cfg, device="cpu")
    img8 = (np.random.default_rng(0).random((50, 50, 3)) * 255).astype(np.uint8)
    assert np.array_equal(pred.predict(img8), pred.predict(img8.astype(np.float32) / 255))


@pytest.mark.parametrize("bad", [np.zeros((20, 20)), np.zeros((20, 20, 4), np.float32),
                                 np.zeros((0, 20, 3), np.float32), np.zeros((5, 5, 3), np.int32)])
def test_bad_images_raise_input_shape_error(make_cfg, conv1x1_model, bad):
    pred = Predictor(conv1x1_model, make_cfg(), device="cpu")
    with pytest.raises(InputShapeError):
        pred.predict(bad)


def test_bad_options(make_cfg, conv1x1_model):
    cfg = make_cfg()
    with pytest.raises(ModelConfigError, match="'fp8'"):
        Predictor(conv1x1_model, cfg, precision="fp8")
    with pytest.raises(ModelConfigError, match="'gpu'"):
        Predictor(conv1x1_model, cfg, device="gpu")
    if not torch.cuda.is_available():
        with pytest.raises(ModelConfigError, match="CUDA is not available"):
            Predictor(conv1x1_model, cfg, device="cuda")
    pred = Predictor(conv1x1_model, cfg, device="cpu")
    with pytest.raises(InputShapeError, match="output_shape"):
        pred.predict(_img(10, 10), output_shape=(0, 5))
    with pytest.raises(InputShapeError, match="2 entries for 1 images"):
        pred.predict_batch([_img(10, 10)], output_shapes=[None, None])


def test_bf16_and_channels_last_run_on_cpu(make_cfg):
    cfg = make_cfg()
    net = build_model(cfg)
    a = Predictor(net, cfg, device="cpu").predict_proba(_img(64, 64))
    b = Predictor(net, cfg, device="cpu", precision="bf16",
                  channels_last=True).predict_proba(_img(64, 64))
    assert np.abs(a - b).max() < 0.1
