import json

import numpy as np
import pytest
import torch

from models.errors import ModelConfigError, WeightsError
from models.factory import build_model
from models.predictor import Predictor
from models.registry import list_models, load_model, publish, save_model, sha256_file


@pytest.fixture
def saved(tmp_path, make_cfg):
    cfg = make_cfg()
    torch.manual_seed(0)
    net = build_model(cfg)
    path = save_model(net, cfg, "tiny", weights_dir=tmp_path,
                      card={"summary": "test model", "metrics": {"dice": 0.5}})
    return net, cfg, path


def test_round_trip_is_exact_and_card_is_complete(saved, tmp_path):
    net, cfg, path = saved
    loaded = load_model("tiny", weights_dir=tmp_path)
    assert loaded.config == cfg and list_models(tmp_path) == ["tiny"]
    for k, v in net.state_dict().items():
        assert torch.equal(v, loaded.model.state_dict()[k])
    card = json.loads(path.with_suffix(".json").read_text())
    assert card["sha256"] == sha256_file(path)
    assert card["file_size_bytes"] == path.stat().st_size
    assert card["n_parameters"] == sum(p.numel() for p in net.parameters())
    assert card["classes"] == list(cfg.classes) and "torch" in card["software"]
    md = path.with_suffix(".md").read_text()
    assert card["sha256"] in md and "test model" in md
    # the path form works too, and the predictor keeps the card for provenance
    pred = Predictor.from_registry(path, device="cpu")
    assert pred.card["sha256"] == card["sha256"]


def test_fp16_storage_loads_as_fp32(tmp_path, saved):
    net, cfg, _ = saved
    path = save_model(net, cfg, "half", weights_dir=tmp_path, dtype="fp16")
    assert path.stat().st_size < (tmp_path / "tiny.safetensors").stat().st_size * 0.6
    loaded = load_model(path)
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        a, b = net.eval()(x), loaded.model(x)
    assert loaded.model.state_dict()["net.segmentation_head.0.weight"].dtype == torch.float32
    assert (a - b).abs().max() < 0.05


def test_missing_weights_or_card(tmp_path, saved):
    with pytest.raises(WeightsError, match="not found.*nope.safetensors.*\\['tiny'\\]"):
        load_model("nope", weights_dir=tmp_path)
    (tmp_path / "tiny.json").unlink()
    with pytest.raises(WeightsError, match="model card not found.*tiny.json"):
        load_model("tiny", weights_dir=tmp_path)


def test_altered_file_fails_the_hash_check(tmp_path, saved):
    _, _, path = saved
    data = bytearray(path.read_bytes())
    data[-10] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(WeightsError, match="sha256 mismatch.*tiny.safetensors"):
        load_model("tiny", weights_dir=tmp_path)


def _rewrite_card(path, **changes):
    card_path = path.with_suffix(".json")
    card = json.loads(card_path.read_text())
    card.update(changes)
    card_path.write_text(json.dumps(card))


def test_corrupt_file_with_matching_hash(tmp_path, saved):
    _, _, path = saved
    path.write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{garbage")
    _rewrite_card(path, sha256=sha256_file(path))
    with pytest.raises(WeightsError, match="corrupt.*tiny.safetensors"):
        load_model("tiny", weights_dir=tmp_path)


def test_architecture_mismatch(tmp_path, saved, make_cfg):
    _, _, path = saved
    other = make_cfg(decoder_channels=(32, 16, 8), classes=("background", "wound"))
    _rewrite_card(path, config=other.to_dict())
    with pytest.raises(WeightsError, match="does not fit the architecture.*2 classes"):
        load_model("tiny", weights_dir=tmp_path)


def test_unreadable_card(tmp_path, saved):
    _, _, path = saved
    path.with_suffix(".json").write_text("{")
    with pytest.raises(WeightsError, match="unreadable"):
        load_model(path)


def test_publish_copies_a_verified_model_under_a_name(tmp_path, saved):
    _, _, path = saved
    out = publish(path, "shipped", weights_dir=tmp_path / "reg",
                  card_updates={"metrics": {"eval": 1}})
    card = json.loads(out.with_suffix(".json").read_text())
    assert card["name"] == "shipped" and card["storage_dtype"] == "fp16"
    assert card["metrics"] == {"dice": 0.5, "eval": 1} and card["summary"] == "test model"
    x = np.random.default_rng(0).random((64, 64, 3), dtype=np.float32)
    a = Predictor.from_registry(path, device="cpu").predict_proba(x)
    b = Predictor.from_registry("shipped", weights_dir=tmp_path / "reg",
                                device="cpu").predict_proba(x)
    assert np.abs(a - b).max() < 0.02


def test_publishing_an_evaluated_file_keeps_its_bytes(tmp_path, saved):
    # the starter recipe scores a staged fp16 file, then publishes that file: same sha256
    _, _, path = saved
    staged = publish(path, "staged", weights_dir=tmp_path / "stage")
    final = publish(staged, "starter", weights_dir=tmp_path / "final",
                    card_updates={"metrics": {"held_out": 1}})
    assert final.read_bytes() == staged.read_bytes()
    card = json.loads(final.with_suffix(".json").read_text())
    assert card["sha256"] == sha256_file(staged) and card["name"] == "starter"
    assert card["metrics"] == {"dice": 0.5, "held_out": 1}
    # the checkpoint it first came from, not the staging copy
    assert card["training"]["source_checkpoint"].endswith("tiny.safetensors")
    load_model("starter", weights_dir=tmp_path / "final")  # verifies the hash


def test_publish_converts_when_the_stored_precision_differs(tmp_path, saved):
    _, _, path = saved  # fp32
    out = publish(path, "p32", weights_dir=tmp_path / "a", dtype="fp32")
    assert out.read_bytes() == path.read_bytes()          # same precision: copied
    half = publish(path, "p16", weights_dir=tmp_path / "b", dtype="fp16")
    assert half.stat().st_size < path.stat().st_size     # re-written in fp16
    with pytest.raises(ModelConfigError, match="dtype must be one of"):
        publish(path, "bad", weights_dir=tmp_path / "c", dtype="int8")


def test_cards_carry_no_absolute_path_of_this_machine(tmp_path, saved, monkeypatch):
    _, _, path = saved
    monkeypatch.chdir(tmp_path)
    out = publish(path, "shipped", weights_dir=tmp_path / "reg")
    card = json.loads(out.with_suffix(".json").read_text())
    assert card["training"]["source_checkpoint"] == "tiny.safetensors"
    assert str(tmp_path) not in out.with_suffix(".json").read_text()
