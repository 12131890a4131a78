"""The training loop behind ``donorsite train``.

``train(config, train_cfg, data_dirs, out_dir)`` trains on label folders and/or synthetic
studies (prepared on the fly into ``out_dir/prepared``), validates each epoch on whole held-out
images through the same tiled :class:`~models.predictor.Predictor` used at inference (Dice per
class), keeps the best checkpoint as ``out_dir/best.safetensors`` + card, writes
``history.json`` and ``curve.png``, and resumes after an interruption from
``out_dir/last.pt``. Repeatable by seed (weights from ``torch.manual_seed``; crops and
augmentations depend only on ``(seed, epoch, index)``, whatever the number of workers;
``TrainConfig.deterministic`` adds ``torch.use_deterministic_algorithms``); bf16 autocast on
CUDA.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from models.config import ModelConfig, TrainConfig
from models.datasets import (
    CropDataset,
    Sample,
    find_samples,
    read_image,
    read_labels,
    skin_type_weights,
    split_samples,
)
from models.errors import DatasetError, ModelConfigError
from models.factory import build_model
from models.losses import DiceCELoss
from models.predictor import Predictor, resolve_device
from models.prepare import is_synth_study, prepare_synth_study
from models.registry import portable_path, save_model

__all__ = ["EpochRecord", "TrainResult", "train", "resolve_samples", "evaluate_dice",
           "plot_history", "crop_weights"]

CHECKPOINT = "last.pt"
# Fields that may change between an interrupted run and its resumption.
_RESUMABLE = {"num_workers", "device", "max_val_images", "cache_images", "deterministic",
              "num_threads"}


@dataclass(frozen=True)
class EpochRecord:
    """One epoch: mean training loss, held-out Dice per class (pooled over images)."""

    epoch: int
    train_loss: float
    val_dice: dict[str, float]
    score: float
    lr: float
    seconds: float


@dataclass(frozen=True)
class TrainResult:
    """The run: its folder, best epoch and score, history, best weights."""

    out_dir: Path
    best_epoch: int
    best_score: float
    history: tuple[EpochRecord, ...]
    weights: Path
    resumed_from: int
    n_train: int
    n_val: int


def resolve_samples(data_dirs: Sequence[str | Path], config: ModelConfig, *,
                    cache_dir: Path, prepare_mode: str = "calibrated",
                    progress: bool = False) -> list[Sample]:
    """Samples of label folders and synthetic studies (the latter prepared into ``cache_dir``)."""
    return [s for group in _samples_per_dir(data_dirs, config, cache_dir=cache_dir,
                                            prepare_mode=prepare_mode, progress=progress)
            for s in group]


def _samples_per_dir(data_dirs: Sequence[str | Path], config: ModelConfig, *, cache_dir: Path,
                     prepare_mode: str, progress: bool) -> list[list[Sample]]:
    groups = []
    for d in data_dirs:
        d = Path(d)
        if is_synth_study(d):
            res = prepare_synth_study(d, cache_dir / d.resolve().name, config=config,
                                      mode=prepare_mode, progress=progress)
            d = res.out_dir
        groups.append(find_samples(d))
    return groups


def crop_weights(groups: Sequence[Sequence[Sample]], train_cfg: TrainConfig) -> np.ndarray | None:
    """Probability of drawing each sample (groups concatenated) for a crop, or ``None``.

    ``train_cfg.data_weights`` gives each group (training folder) its share of the crops;
    within a group the skin-type weights apply. Without either, ``None`` (uniform).

    Examples
    --------
    >>> g = [[Sample(Path("/x/images/a.png"), Path("/x/labels/a.png"))] * 3,
    ...      [Sample(Path("/y/images/b.png"), Path("/y/labels/b.png"))]]
    >>> crop_weights(g, TrainConfig(data_weights=(1, 1))).round(3).tolist()
    [0.167, 0.167, 0.167, 0.5]
    """
    dw, sw = train_cfg.data_weights, train_cfg.skin_type_weights
    if dw is None and sw is None:
        return None
    if dw is not None and len(dw) != len(groups):
        raise ModelConfigError(f"data_weights has {len(dw)} entries but {len(groups)} training "
                               f"folders were given; give one weight per folder")
    parts = []
    for i, g in enumerate(groups):
        w = skin_type_weights(g, sw) if sw is not None else np.full(len(g), 1.0 / len(g))
        share = dw[i] if dw is not None else len(g)
        parts.append(w * share)
    p = np.concatenate(parts)
    return p / p.sum()


def evaluate_dice(predictor: Predictor, samples: Sequence[Sample]) -> dict[str, float]:
    """Dice per foreground class, pooled over ``samples`` (whole images, tiled inference)."""
    cfg = predictor.config
    inter = np.zeros(cfg.n_classes)
    total = np.zeros(cfg.n_classes)
    for s in samples:
        truth = read_labels(s.labels, cfg)
        pred = predictor.predict(read_image(s.image))
        for k in range(1, cfg.n_classes):
            t, p = truth == k, pred == k
            inter[k] += np.count_nonzero(t & p)
            total[k] += np.count_nonzero(t) + np.count_nonzero(p)
    return {cfg.classes[k]: float(2 * inter[k] / total[k]) if total[k] else 1.0
            for k in range(1, cfg.n_classes)}


def _lr_lambda(total: int) -> Callable[[int], float]:
    warm = max(1, min(100, total // 20))

    def f(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        t = (step - warm) / max(1, total - warm)
        return 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(1.0, t)))
    return f


def _atomic_save(obj: Any, path: Path) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def _worker_init(_: int) -> None:
    torch.set_num_threads(1)


def train(config: ModelConfig, train_cfg: TrainConfig, data_dirs: Sequence[str | Path],
          out_dir: str | Path, *, val_dirs: Sequence[str | Path] = (), resume: bool = True,
          progress: bool = True, card: dict[str, Any] | None = None,
          prepare_mode: str = "calibrated",
          callback: Callable[[EpochRecord], None] | None = None) -> TrainResult:
    """Train a segmentation network; keep the best checkpoint by held-out Dice.

    Parameters
    ----------
    config : ModelConfig
    train_cfg : TrainConfig
    data_dirs : sequence of path
        Label folders (``images/`` + ``labels/``) or studies made by ``donorsite synth``.
    out_dir : path
        Run folder: ``best.safetensors`` (+ card), ``last.pt``, ``history.json``, ``curve.png``.
    val_dirs : sequence of path
        Validation folders/studies; without them ``train_cfg.val_fraction`` of the training
        images is held out (fixed by ``split_seed``).
    resume : bool
        Continue from ``out_dir/last.pt`` when present (same configuration required).
    card : dict, optional
        Extra model-card fields (``training.command``, ``summary`` ...).
    prepare_mode : {'calibrated', 'truth'}
        How synthetic studies are prepared (see :func:`models.prepare.prepare_synth_study`).
    callback : callable, optional
        Called with each :class:`EpochRecord` after its checkpoint is written.

    Returns
    -------
    TrainResult
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    cache = out / "prepared"
    groups = _samples_per_dir(data_dirs, config, cache_dir=cache, prepare_mode=prepare_mode,
                              progress=progress)
    samples = [s for g in groups for s in g]
    if val_dirs:
        train_s = samples
        val_s = resolve_samples(val_dirs, config, cache_dir=cache, prepare_mode=prepare_mode,
                                progress=progress)
    else:
        train_s, val_s = split_samples(samples, train_cfg.val_fraction, train_cfg.split_seed)
        held = set(val_s)
        groups = [[s for s in g if s not in held] for g in groups]
    if train_cfg.max_val_images:
        val_s = val_s[:train_cfg.max_val_images]
    crop = train_cfg.crop_size or config.tile_size
    if crop % config.stride:
        raise ModelConfigError(f"crop_size must be a multiple of the stride {config.stride}, "
                               f"got {crop}")
    device = resolve_device(train_cfg.device)
    cuda = device.type == "cuda"

    prev_det = torch.are_deterministic_algorithms_enabled()
    prev_threads = torch.get_num_threads()
    torch.use_deterministic_algorithms(train_cfg.deterministic, warn_only=True)
    if train_cfg.num_threads:
        torch.set_num_threads(train_cfg.num_threads)
    try:
        torch.manual_seed(train_cfg.seed)
        np.random.seed(train_cfg.seed % 2**32)
        model = build_model(config)
        if train_cfg.init_from:
            _init_weights(model, config, train_cfg.init_from)
        model = model.to(device)
        opt = torch.optim.AdamW(model.parameters(), lr=train_cfg.lr,
                                weight_decay=train_cfg.weight_decay)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, _lr_lambda(train_cfg.total_steps))
        loss_fn = DiceCELoss(config.n_classes, class_weights=train_cfg.class_weights,
                             dice_weight=train_cfg.dice_weight,
                             ce_weight=train_cfg.ce_weight).to(device)
        history: list[EpochRecord] = []
        start, best_score, best_epoch = 0, -math.inf, -1
        ckpt_path = out / CHECKPOINT
        if resume and ckpt_path.is_file():
            ck = torch.load(ckpt_path, map_location=device, weights_only=False)
            _check_same_run(ck, config, train_cfg, ckpt_path)
            model.load_state_dict(ck["model"])
            opt.load_state_dict(ck["optimizer"])
            sched.load_state_dict(ck["scheduler"])
            torch.set_rng_state(ck["torch_rng"])
            start, best_score, best_epoch = ck["epoch"] + 1, ck["best_score"], ck["best_epoch"]
            history = [EpochRecord(**r) for r in ck["history"]]
        resumed_from = start
        ds = CropDataset(train_s, config, crop_size=crop,
                         length=train_cfg.steps_per_epoch * train_cfg.batch_size,
                         seed=train_cfg.seed, augment=train_cfg.augment,
                         foreground_crop_p=train_cfg.foreground_crop_p,
                         scale_jitter=train_cfg.scale_jitter,
                         rotation_jitter_deg=train_cfg.rotation_jitter_deg,
                         cache=train_cfg.cache_images,
                         sample_weights=crop_weights(groups, train_cfg),
                         augment_level=train_cfg.augment_level)
        loader = torch.utils.data.DataLoader(
            ds, batch_size=train_cfg.batch_size, shuffle=False, drop_last=True,
            num_workers=train_cfg.num_workers, pin_memory=cuda,
            worker_init_fn=_worker_init if train_cfg.num_workers else None)
        amp = cuda and train_cfg.amp
        for epoch in range(start, train_cfg.epochs):
            t0 = time.time()
            ds.set_epoch(epoch)
            model.train()
            losses = []
            bar = _bar(loader, progress, f"epoch {epoch + 1}/{train_cfg.epochs}")
            for x, y in bar:
                x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
                with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
                    logits = model(x)
                loss = loss_fn(logits.float(), y)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
                losses.append(float(loss.detach()))
                if progress:
                    bar.set_postfix(loss=f"{np.mean(losses[-20:]):.4f}")
            model.eval()
            if val_s:
                dice = evaluate_dice(Predictor(model, config, device=device,
                                               channels_last=False), val_s)
                score = float(np.mean(list(dice.values())))
            else:
                dice, score = {}, -float(np.mean(losses))
            rec = EpochRecord(epoch + 1, float(np.mean(losses)), dice, score,
                              float(sched.get_last_lr()[0]), round(time.time() - t0, 2))
            history.append(rec)
            if score > best_score:
                best_score, best_epoch = score, epoch + 1
                save_model(model, config, out / "best.safetensors",
                           card=_card(card, train_cfg, data_dirs, val_dirs, rec, train_s,
                                      val_s))
            _atomic_save({"model": model.state_dict(), "optimizer": opt.state_dict(),
                          "scheduler": sched.state_dict(), "torch_rng": torch.get_rng_state(),
                          "epoch": epoch, "best_score": best_score, "best_epoch": best_epoch,
                          "history": [asdict(r) for r in history],
                          "config": config.to_dict(), "train_config": train_cfg.to_dict()},
                         ckpt_path)
            (out / "history.json").write_text(json.dumps(
                {"classes": list(config.classes), "best_epoch": best_epoch,
                 "history": [asdict(r) for r in history]}, indent=2) + "\n")
            if progress:
                print(f"epoch {epoch + 1}: loss {rec.train_loss:.4f} val Dice "
                      + " ".join(f"{k} {v:.4f}" for k, v in dice.items()), flush=True)
            if callback is not None:
                callback(rec)
    finally:
        torch.use_deterministic_algorithms(prev_det)
        torch.set_num_threads(prev_threads)
    if history:
        plot_history(history, out / "curve.png")
    if best_epoch < 0:
        raise DatasetError(f"{out}: no epoch was run (epochs={train_cfg.epochs})")
    return TrainResult(out, best_epoch, best_score, tuple(history), out / "best.safetensors",
                       resumed_from, len(train_s), len(val_s))


def _init_weights(model: torch.nn.Module, config: ModelConfig, source: str) -> None:
    """Copy a registered model's weights into ``model`` (same architecture and classes)."""
    from models.registry import load_model

    loaded = load_model(source)
    if loaded.config.to_dict() != config.to_dict():
        diff = sorted(k for k, v in config.to_dict().items() if loaded.config.to_dict().get(k) != v)
        raise ModelConfigError(f"init_from {source!r} has another model config (differs in "
                               f"{diff}); start from a model of the same architecture/classes")
    model.load_state_dict(loaded.model.state_dict())


def _bar(loader: Any, progress: bool, desc: str) -> Any:
    if not progress:
        return loader
    from tqdm import tqdm

    return tqdm(loader, desc=desc, unit="batch", leave=False)


def _check_same_run(ck: dict, config: ModelConfig, train_cfg: TrainConfig, path: Path) -> None:
    if ck.get("config") != config.to_dict():
        raise ModelConfigError(f"{path} was written with another model config; resume with "
                               f"the same config, pick a new out_dir, or pass resume=False")
    old = {k: v for k, v in ck.get("train_config", {}).items() if k not in _RESUMABLE}
    new = {k: v for k, v in train_cfg.to_dict().items() if k not in _RESUMABLE}
    if old != new:
        diff = sorted(k for k in new if old.get(k) != new[k])
        raise ModelConfigError(f"{path} was written with another training config (differs in "
                               f"{diff}); use the same settings, a new out_dir, or resume=False")


def _card(card: dict | None, train_cfg: TrainConfig, data_dirs, val_dirs, rec: EpochRecord,
          train_s: Sequence[Sample], val_s: Sequence[Sample]) -> dict:
    base = dict(card or {})
    training = dict(base.get("training", {}))
    training.update({"data": [portable_path(d) for d in data_dirs],
                     "validation": [portable_path(d) for d in val_dirs]
                     or f"{train_cfg.val_fraction:.0%} of the training images "
                        f"(split_seed {train_cfg.split_seed})",
                     "n_train_images": len(train_s), "n_val_images": len(val_s),
                     "train_config": train_cfg.to_dict(), "best_epoch": rec.epoch})
    base["training"] = training
    base.setdefault("metrics", {})
    base["metrics"] = {**base["metrics"], "validation_dice": rec.val_dice,
                       "validation_epoch": rec.epoch}
    return base


def plot_history(history: Sequence[EpochRecord], path: str | Path, *,
                 title: str = "training curve") -> Path:
    """Training loss and held-out Dice per class against epoch, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ep = [r.epoch for r in history]
    fig, ax1 = plt.subplots(figsize=(6, 3.6), dpi=110)
    ax1.plot(ep, [r.train_loss for r in history], "k--", label="train loss")
    ax1.set_xlabel("epoch")
    ax1.set_ylabel("loss")
    ax2 = ax1.twinx()
    for name in history[-1].val_dice:
        ax2.plot(ep, [r.val_dice.get(name, np.nan) for r in history], "o-",
                 label=f"validation Dice {name}")
    ax2.set_ylabel("Dice")
    ax2.set_ylim(0, 1)
    lines = ax1.get_legend_handles_labels()
    lines2 = ax2.get_legend_handles_labels()
    ax2.legend(lines[0] + lines2[0], lines[1] + lines2[1], loc="center right", fontsize=8)
    ax1.set_title(title)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return Path(path)
