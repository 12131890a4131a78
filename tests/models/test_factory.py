import pytest
import torch

from models.errors import InputShapeError, ModelConfigError
from models.factory import build_model, check_input_shape, count_parameters


@pytest.mark.parametrize("arch, dec", [("unet", (16, 8, 8)), ("unetplusplus", (16, 8, 8)),
                                       ("fpn", (32, 32))])
def test_output_shape_and_classes_follow_config(make_cfg, arch, dec):
    cfg = make_cfg(architecture=arch, decoder_channels=dec,
                      classes=("background", "a", "b", "c"))
    net = build_model(cfg).eval()
    with torch.no_grad():
        out = net(torch.rand(2, 3, 64, 40))
    assert out.shape == (2, 4, 64, 40)
    assert count_parameters(net) > 0


def test_same_seed_same_weights(make_cfg):
    cfg = make_cfg()
    torch.manual_seed(3)
    a = build_model(cfg).state_dict()
    torch.manual_seed(3)
    b = build_model(cfg).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_unknown_encoder_is_a_config_error(make_cfg):
    with pytest.raises(ModelConfigError, match="'no-such-encoder'"):
        build_model(make_cfg(encoder="no-such-encoder"))


@pytest.mark.parametrize("shape, fragment", [
    ((3, 64, 64), "4-D batch"),
    ((1, 1, 64, 64), "3 channels"),
    ((1, 3, 50, 64), "pad to 56x64"),
])
def test_bad_input_shapes_name_the_fix(make_cfg, shape, fragment):
    cfg = make_cfg()
    with pytest.raises(InputShapeError, match=fragment):
        check_input_shape(shape, cfg)
    net = build_model(cfg)
    with pytest.raises(InputShapeError):
        net(torch.zeros(shape))
