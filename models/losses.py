"""Dice + cross-entropy loss with class weights."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from models.errors import ModelConfigError

__all__ = ["DiceCELoss", "soft_dice"]


def soft_dice(logits: torch.Tensor, target: torch.Tensor, *, include_background: bool = False,
              eps: float = 1.0) -> torch.Tensor:
    """Per-class soft Dice of softmax(logits) vs integer ``target``, pooled over the batch.

    Parameters
    ----------
    logits : Tensor (N, K, H, W)
    target : Tensor (N, H, W) of class indices
    include_background : bool
        Whether class 0 is scored too.
    eps : float
        Smoothing added to numerator and denominator (keeps absent classes finite).

    Returns
    -------
    Tensor (K,) or (K - 1,)

    Examples
    --------
    >>> t = torch.tensor([[[0, 1], [1, 1]]])
    >>> logits = 20.0 * torch.nn.functional.one_hot(t, 2).permute(0, 3, 1, 2).float()
    >>> bool(soft_dice(logits, t)[0] > 0.99)
    True
    """
    k = logits.shape[1]
    proba = torch.softmax(logits.float(), dim=1)
    onehot = F.one_hot(target.long(), k).permute(0, 3, 1, 2).to(proba.dtype)
    dims = (0, 2, 3)
    inter = (proba * onehot).sum(dims)
    denom = proba.sum(dims) + onehot.sum(dims)
    dice = (2 * inter + eps) / (denom + eps)
    return dice if include_background else dice[1:]


class DiceCELoss(nn.Module):
    """``ce_weight * CE(class_weights) + dice_weight * (1 - mean foreground soft Dice)``.

    Parameters
    ----------
    n_classes : int
    class_weights : sequence of float, optional
        Cross-entropy weight per class (default all 1).
    dice_weight, ce_weight : float

    Examples
    --------
    >>> loss = DiceCELoss(3, class_weights=(0.5, 1.0, 1.0))
    >>> x, t = torch.zeros(2, 3, 8, 8), torch.zeros(2, 8, 8, dtype=torch.long)
    >>> float(loss(x, t)) > 0
    True
    """

    def __init__(self, n_classes: int, *, class_weights: Sequence[float] | None = None,
                 dice_weight: float = 1.0, ce_weight: float = 1.0) -> None:
        super().__init__()
        w = torch.ones(n_classes) if class_weights is None else \
            torch.tensor([float(v) for v in class_weights])
        if w.numel() != n_classes:
            raise ModelConfigError(f"class_weights must have {n_classes} entries (one per "
                                   f"class), got {list(class_weights or [])}")
        self.register_buffer("class_weights", w)
        self.dice_weight = float(dice_weight)
        self.ce_weight = float(ce_weight)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        loss = logits.new_zeros((), dtype=torch.float32)
        if self.ce_weight:
            loss = loss + self.ce_weight * F.cross_entropy(
                logits.float(), target.long(), weight=self.class_weights.to(logits.device))
        if self.dice_weight:
            loss = loss + self.dice_weight * (1 - soft_dice(logits, target).mean())
        return loss
