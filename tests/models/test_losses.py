import pytest
import torch

from models.errors import ModelConfigError
from models.losses import DiceCELoss, soft_dice


def _onehot_logits(t, k, scale=20.0):
    return scale * torch.nn.functional.one_hot(t, k).permute(0, 3, 1, 2).float()


def test_perfect_prediction_has_near_zero_loss_and_wrong_has_high():
    t = torch.randint(0, 3, (2, 16, 16))
    loss = DiceCELoss(3)
    good = float(loss(_onehot_logits(t, 3), t))
    bad = float(loss(_onehot_logits((t + 1) % 3, 3), t))
    assert good < 1e-3 and bad > 10
    d = soft_dice(_onehot_logits(t, 3), t)
    assert d.shape == (2,) and torch.all(d > 0.999)


def test_class_weights_change_the_loss_and_are_checked():
    t = torch.zeros(1, 8, 8, dtype=torch.long)
    t[0, :2] = 1
    logits = torch.zeros(1, 2, 8, 8)
    a = DiceCELoss(2, class_weights=(1, 1), dice_weight=0)(logits, t)
    b = DiceCELoss(2, class_weights=(1, 5), dice_weight=0)(logits, t)
    assert float(a) == pytest.approx(float(b))  # uniform logits: weighted mean is unchanged
    logits[:, 1] = 1.0
    a = DiceCELoss(2, class_weights=(1, 1), dice_weight=0)(logits, t)
    b = DiceCELoss(2, class_weights=(1, 5), dice_weight=0)(logits, t)
    assert float(b) < float(a)
    with pytest.raises(ModelConfigError, match="3 entries"):
        DiceCELoss(3, class_weights=(1, 2))
