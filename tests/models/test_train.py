import json

import pytest
import torch

from models.config import TrainConfig
from models.datasets import CropDataset, find_samples
from models.errors import ModelConfigError
from models.losses import DiceCELoss
from models.registry import load_model
from models.train import train


def _tc(**kw):
    base = dict(epochs=2, steps_per_epoch=4, batch_size=4, lr=5e-3, val_fraction=0.34, seed=1,
                crop_size=64, num_threads=1)
    base.update(kw)
    return TrainConfig(**base)


def _fixed_batch_loss(model, samples, cfg):
    ds = CropDataset(samples, cfg, crop_size=64, length=8, seed=99, augment=False)
    x = torch.stack([ds[i][0] for i in range(8)])
    y = torch.stack([ds[i][1] for i in range(8)])
    with torch.no_grad():
        return float(DiceCELoss(cfg.n_classes)(model.eval()(x), y))


def test_smoke_run_lowers_the_loss_and_writes_the_run(tmp_path, label_folder, wound_cfg):
    torch.manual_seed(1)
    from models.factory import build_model

    before = _fixed_batch_loss(build_model(wound_cfg), find_samples(label_folder), wound_cfg)
    threads = torch.get_num_threads()
    res = train(wound_cfg, _tc(epochs=3), [label_folder], tmp_path / "run", progress=False,
                card={"training": {"command": "test"}})
    after = _fixed_batch_loss(load_model(res.weights).model, find_samples(label_folder),
                              wound_cfg)
    assert after < 0.7 * before
    assert torch.get_num_threads() == threads  # num_threads=1 applied during training only
    assert res.history[-1].train_loss < res.history[0].train_loss
    assert res.n_train == 4 and res.n_val == 2 and res.resumed_from == 0
    assert set(res.history[0].val_dice) == {"wound"}
    hist = json.loads((tmp_path / "run" / "history.json").read_text())
    assert len(hist["history"]) == 3 and hist["best_epoch"] == res.best_epoch
    assert (tmp_path / "run" / "curve.png").stat().st_size > 0
    card = load_model(res.weights).card
    assert card["training"]["command"] == "test"
    assert card["metrics"]["validation_epoch"] == res.best_epoch


def test_resume_after_interruption_matches_an_uninterrupted_run(tmp_path, label_folder,
                                                                wound_cfg):
    full = train(wound_cfg, _tc(), [label_folder], tmp_path / "full", progress=False)

    class Stop(Exception):
        pass

    def interrupt(rec):
        if rec.epoch == 1:
            raise Stop

    with pytest.raises(Stop):
        train(wound_cfg, _tc(), [label_folder], tmp_path / "cut", progress=False,
              callback=interrupt)
    resumed = train(wound_cfg, _tc(), [label_folder], tmp_path / "cut", progress=False)
    assert resumed.resumed_from == 1 and len(resumed.history) == 2
    assert resumed.history[-1].train_loss == pytest.approx(full.history[-1].train_loss,
                                                           rel=1e-5)
    a = torch.load(tmp_path / "full" / "last.pt", weights_only=False)["model"]
    b = torch.load(tmp_path / "cut" / "last.pt", weights_only=False)["model"]
    assert all(torch.allclose(a[k].float(), b[k].float(), atol=1e-6) for k in a)
    # a different configuration refuses to resume into the same folder
    with pytest.raises(ModelConfigError, match="differs in \\['lr'\\]"):
        train(wound_cfg, _tc(lr=1e-3), [label_folder], tmp_path / "cut", progress=False)


def test_cli_train_command(tmp_path, label_folder):
    from typer.testing import CliRunner

    from pipeline.cli import app

    r = CliRunner().invoke(app, ["train", str(label_folder), "--out", str(tmp_path / "r"),
                                 "--model-config", "fuseg", "--epochs", "1",
                                 "--steps-per-epoch", "1", "--batch-size", "2",
                                 "--crop-size", "64", "--val-fraction", "0.34",
                                 "--max-val-images", "1"])
    assert r.exit_code == 0, r.output
    assert "best epoch 1" in r.output and (tmp_path / "r" / "best.safetensors").is_file()
    r = CliRunner().invoke(app, ["train", str(tmp_path), "--out", str(tmp_path / "r2")])
    assert r.exit_code == 2 and "needs images/ and labels/" in r.output
