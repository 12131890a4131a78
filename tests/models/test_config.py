import json

import pytest

from models.config import ModelConfig, TrainConfig, preset
from models.errors import ModelConfigError


def test_defaults_and_derived_values():
    cfg = ModelConfig()
    assert cfg.classes[0] == "background"
    assert cfg.n_classes == 3 and cfg.stride == 32
    assert cfg.label_map == {0: 0, 1: 1, 2: 2}


@pytest.mark.parametrize("field, value, fragment", [
    ("architecture", "segformer", "'segformer'"),
    ("encoder_depth", 7, "7"),
    ("decoder_channels", (16, 8), "(16, 8)"),
    ("classes", ("background",), "('background',)"),
    ("classes", ("a", "a"), "unique"),
    ("label_values", {0: 0, 255: 5}, "255: 5"),
    ("label_values", {300: 0}, "300"),
    ("px_per_mm", -1.0, "-1.0"),
    ("tile_size", 100, "100"),
    ("tile_overlap", 0.9, "0.9"),
    ("input_std", (1, 1), "(1, 1)"),
])
def test_bad_values_are_echoed(field, value, fragment):
    with pytest.raises(ModelConfigError, match=field) as exc:
        ModelConfig(**{field: value})
    assert fragment in str(exc.value)


def test_fpn_takes_two_decoder_channels():
    assert ModelConfig(architecture="fpn", decoder_channels=(64, 32)).decoder_channels == (64, 32)
    with pytest.raises(ModelConfigError, match="2 positive integers"):
        ModelConfig(architecture="fpn")
    with pytest.raises(ModelConfigError, match="divisible by 32"):
        ModelConfig(architecture="fpn", decoder_channels=(64, 16))


def test_json_round_trip(tmp_path):
    cfg = preset("fuseg")
    path = tmp_path / "cfg.json"
    cfg.to_json(path)
    assert json.loads(path.read_text())["label_values"] == {"0": 0, "255": 1}
    assert ModelConfig.from_json(path) == cfg
    assert preset(path) == cfg


def test_unknown_key_and_bad_file(tmp_path):
    with pytest.raises(ModelConfigError, match="'colour'"):
        ModelConfig.from_dict({"colour": 1})
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ModelConfigError, match="bad.json"):
        ModelConfig.from_json(bad)
    with pytest.raises(ModelConfigError, match="'nope'"):
        preset("nope")


def test_train_config_validation_and_round_trip():
    tc = TrainConfig(epochs=3, steps_per_epoch=4, class_weights=[0.5, 1, 1])
    assert tc.total_steps == 12 and tc.class_weights == (0.5, 1.0, 1.0)
    assert TrainConfig.from_dict(tc.to_dict()) == tc
    with pytest.raises(ModelConfigError, match="epochs.*0"):
        TrainConfig(epochs=0)
    with pytest.raises(ModelConfigError, match="'gpu'"):
        TrainConfig(device="gpu")
    with pytest.raises(ModelConfigError, match="val_fraction"):
        TrainConfig(val_fraction=1.0)
    with pytest.raises(ModelConfigError, match="num_threads.*0"):
        TrainConfig(num_threads=0)


def test_skin_type_weights_validated_and_round_trip():
    tc = TrainConfig(skin_type_weights=[2, 2, 1, 1, 1, 1])
    assert tc.skin_type_weights == (2.0, 2.0, 1.0, 1.0, 1.0, 1.0)
    assert TrainConfig.from_dict(tc.to_dict()) == tc
    with pytest.raises(ModelConfigError, match=r"skin_type_weights.*\(1, 1\)"):
        TrainConfig(skin_type_weights=(1, 1))
    with pytest.raises(ModelConfigError, match="skin_type_weights"):
        TrainConfig(skin_type_weights=(0,) * 6)
