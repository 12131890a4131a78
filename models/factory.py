"""Build the network a :class:`~models.config.ModelConfig` describes.

One small factory over segmentation_models_pytorch. Encoders are always built with
``encoder_weights=None``: nothing is ever downloaded; weights come from the registry.
"""

from __future__ import annotations

import torch
from torch import nn

from models.config import ModelConfig
from models.errors import InputShapeError, ModelConfigError

__all__ = ["SegmentationNet", "build_model", "check_input_shape", "count_parameters"]


class SegmentationNet(nn.Module):
    """An smp segmentation network with its input normalisation and shape checks.

    ``forward`` takes float images in [0, 1], shape ``(N, in_channels, H, W)`` with ``H`` and
    ``W`` multiples of ``config.stride``, and returns logits ``(N, n_classes, H, W)``.
    """

    def __init__(self, net: nn.Module, config: ModelConfig) -> None:
        super().__init__()
        self.net = net
        self.config = config
        shape = (1, config.in_channels, 1, 1)
        # Not persistent: they come from the config, so the weights file holds only weights.
        self.register_buffer("mean", torch.tensor(config.input_mean).view(shape),
                             persistent=False)
        self.register_buffer("std", torch.tensor(config.input_std).view(shape),
                             persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input_shape(tuple(x.shape), self.config)
        return self.net((x - self.mean.to(x.dtype)) / self.std.to(x.dtype))


def check_input_shape(shape: tuple[int, ...], config: ModelConfig) -> None:
    """Raise :class:`InputShapeError` unless ``shape`` is ``(N, C, H, W)`` the network takes.

    Examples
    --------
    >>> check_input_shape((1, 3, 64, 96), ModelConfig(encoder_depth=5,
    ...                   decoder_channels=(16, 16, 16, 16, 16)))
    """
    if len(shape) != 4:
        raise InputShapeError(f"network input must be a 4-D batch (N, C, H, W), got shape "
                              f"{shape}; add a batch axis (x[None]) or use Predictor.predict")
    n, c, h, w = shape
    if c != config.in_channels:
        raise InputShapeError(f"network input must have {config.in_channels} channels on "
                              f"axis 1 (N, C, H, W), got shape {shape}; for an (H, W, C) image "
                              f"use Predictor.predict, which transposes")
    s = config.stride
    if h % s or w % s or h == 0 or w == 0:
        raise InputShapeError(f"network input sides must be positive multiples of the output "
                              f"stride {s}, got {h}x{w}; pad to {-(-h // s) * s}x"
                              f"{-(-w // s) * s} (Predictor.predict pads and crops for you)")


def build_model(config: ModelConfig) -> SegmentationNet:
    """A freshly initialised network for ``config`` (random weights, nothing downloaded).

    Parameters
    ----------
    config : ModelConfig

    Returns
    -------
    SegmentationNet
        ``forward(x)`` maps ``(N, C, H, W)`` images in [0, 1] to class logits.

    Raises
    ------
    ModelConfigError
        The encoder is unknown to smp/timm or does not fit the architecture.

    Examples
    --------
    >>> cfg = ModelConfig(encoder="resnet18", encoder_depth=3, decoder_channels=(16, 8, 4),
    ...                   tile_size=64)
    >>> net = build_model(cfg).eval()
    >>> tuple(net(torch.zeros(1, 3, 64, 96)).shape)
    (1, 3, 64, 96)
    """
    import segmentation_models_pytorch as smp  # heavy: only when a model is built

    common = dict(encoder_name=config.encoder, encoder_weights=None,
                  encoder_depth=config.encoder_depth, in_channels=config.in_channels,
                  classes=config.n_classes)
    try:
        if config.architecture == "unet":
            net = smp.Unet(decoder_channels=config.decoder_channels, **common)
        elif config.architecture == "unetplusplus":
            net = smp.UnetPlusPlus(decoder_channels=config.decoder_channels, **common)
        else:  # fpn (the config validated the set)
            pyr, seg = config.decoder_channels
            # smp's FPN head upsamples by 4 assuming depth 5; keep the output at input size.
            net = smp.FPN(decoder_pyramid_channels=pyr, decoder_segmentation_channels=seg,
                          upsampling=2 ** (config.encoder_depth - 3), **common)
    except (KeyError, RuntimeError, ValueError, TypeError, AttributeError) as exc:
        why = str(exc).split(", supported encoders")[0][:300]
        raise ModelConfigError(
            f"model config: cannot build {config.architecture!r} with encoder "
            f"{config.encoder!r} (depth {config.encoder_depth}): {why}; encoders: "
            f"segmentation_models_pytorch.encoders.get_encoder_names() or 'tu-<timm name>'"
        ) from None
    return SegmentationNet(net, config)


def count_parameters(model: nn.Module) -> int:
    """Number of parameters (weights) of ``model``."""
    return sum(p.numel() for p in model.parameters())
