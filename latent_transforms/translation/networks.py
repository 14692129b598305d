"""The CycleGAN networks (Zhu et al. 2017), in our own words: ResNet-block generators and PatchGAN
discriminators, and the task predictor a DUIIT translator (Yang & Xie) trains with them.

Generator (Zhu et al., §4 and their appendix: "c7s1-64, d128, d256, R256 x 6-9, u128, u64, c7s1-3"):
a 7x7 convolution on a reflection-padded input, ``downsamplings`` 3x3 stride-2 convolutions that double
the channels, ``blocks`` residual blocks (two reflection-padded 3x3 convolutions each), as many 3x3
fractionally-strided (stride 1/2) convolutions that halve them, and a 7x7 convolution to the output
channels with ``tanh``. Every hidden convolution is followed by instance normalisation and ReLU.

Discriminator: the PatchGAN of Isola et al. and Zhu et al. — ``layers`` 4x4 stride-2 convolutions
(channels doubling from ``width``, capped at ``8 · width``; no normalisation on the first), one 4x4
stride-1 convolution and a 4x4 stride-1 convolution to one channel, LeakyReLU(0.2) and instance
normalisation in between. Each output value judges one patch of the input; three layers give the
70x70 patches of the paper (:func:`patch_receptive_field`).

Weights start from ``N(0, 0.02)`` (Zhu et al.'s initialisation); biases from zero.
"""

from __future__ import annotations

import torch
from torch import nn

from latent_transforms.checks import check_int
from latent_transforms.tasks.classifier import ResNetClassifier
from latent_transforms.tasks.regressor import ResNetRegressor
from latent_transforms.translation.config import TranslatorConfig

__all__ = [
    "PatchDiscriminator",
    "ResidualBlock",
    "ResnetGenerator",
    "build_predictor",
    "init_weights",
    "patch_receptive_field",
]


def patch_receptive_field(layers: int) -> int:
    """Side in pixels of the input patch one output of a :class:`PatchDiscriminator` sees: ``9 · 2^L - 2``.

    Going back from one output: the last two 4x4 stride-1 convolutions see 4, then 7 pixels; each
    4x4 stride-2 convolution before them doubles that and adds 2 (``r -> 2r + 2``).

    Example:
        >>> tuple(patch_receptive_field(n) for n in (1, 2, 3))
        (16, 34, 70)
    """
    check_int("layers", layers, low=0)
    return 9 * 2**layers - 2


def init_weights(module: nn.Module, std: float = 0.02) -> nn.Module:
    """Convolution and linear weights from ``N(0, std)``, biases zero (Zhu et al.'s ``normal`` init).

    Example:
        >>> _ = torch.manual_seed(0)
        >>> conv = init_weights(nn.Conv2d(1, 64, 3))
        >>> round(conv.weight.std().item(), 2), conv.bias.abs().max().item()
        (0.02, 0.0)
    """
    for m in module.modules():
        if isinstance(m, nn.Conv2d | nn.ConvTranspose2d | nn.Linear):
            nn.init.normal_(m.weight, 0.0, std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    return module


def _norm(channels: int) -> nn.Module:
    return nn.InstanceNorm2d(channels, affine=False, track_running_stats=False)


class ResidualBlock(nn.Module):
    """``x + conv(relu(norm(conv(x))))`` with reflection-padded 3x3 convolutions and instance norm.

    Example:
        >>> ResidualBlock(8)(torch.zeros(2, 8, 4, 4)).shape
        torch.Size([2, 8, 4, 4])
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.ReflectionPad2d(1),
            nn.Conv2d(channels, channels, 3),
            _norm(channels),
            nn.ReLU(inplace=True),
            nn.ReflectionPad2d(1),
            nn.Conv2d(channels, channels, 3),
            _norm(channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class ResnetGenerator(nn.Module):
    """Zhu et al.'s ResNet-block generator: ``[B, in_channels, R, R]`` in ``[-1, 1]`` -> ``[B, out_channels,
    R, R]`` in ``(-1, 1)`` (``tanh``), ``R`` a multiple of ``2 ** downsamplings``.

    Args:
        in_channels: input channels.
        out_channels: output channels.
        width: channels of the first convolution (Zhu et al.: 64); they double at each down-sampling.
        blocks: residual blocks at the lowest resolution (Zhu et al.: 6 at 128 px, 9 from 256 px).
        downsamplings: stride-2 convolutions (and as many fractionally-strided ones; Zhu et al.: 2).

    Example:
        >>> _ = torch.manual_seed(0)
        >>> g = ResnetGenerator(1, 1, width=4, blocks=2)
        >>> y = g(torch.zeros(2, 1, 32, 32))
        >>> y.shape, bool(y.abs().max() < 1)
        (torch.Size([2, 1, 32, 32]), True)
        >>> g
        ResnetGenerator(in_channels=1, out_channels=1, width=4, blocks=2, downsamplings=2)
    """

    def __init__(
        self, in_channels: int, out_channels: int, *, width: int = 64, blocks: int = 6, downsamplings: int = 2
    ) -> None:
        super().__init__()
        self.in_channels = check_int("in_channels", in_channels, low=1)
        self.out_channels = check_int("out_channels", out_channels, low=1)
        self.width = check_int("width", width, low=1)
        self.blocks = check_int("blocks", blocks, low=0)
        self.downsamplings = check_int("downsamplings", downsamplings, low=0)
        layers: list[nn.Module] = [
            nn.ReflectionPad2d(3),
            nn.Conv2d(in_channels, width, 7),
            _norm(width),
            nn.ReLU(inplace=True),
        ]
        channels = width
        for _ in range(downsamplings):
            layers += [nn.Conv2d(channels, 2 * channels, 3, stride=2, padding=1), _norm(2 * channels)]
            layers.append(nn.ReLU(inplace=True))
            channels *= 2
        layers += [ResidualBlock(channels) for _ in range(blocks)]
        for _ in range(downsamplings):
            layers.append(
                nn.ConvTranspose2d(channels, channels // 2, 3, stride=2, padding=1, output_padding=1)
            )
            layers += [_norm(channels // 2), nn.ReLU(inplace=True)]
            channels //= 2
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(channels, out_channels, 7), nn.Tanh()]
        self.model = nn.Sequential(*layers)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)

    def __repr__(self) -> str:
        return (
            f"ResnetGenerator(in_channels={self.in_channels}, out_channels={self.out_channels}, "
            f"width={self.width}, blocks={self.blocks}, downsamplings={self.downsamplings})"
        )


class PatchDiscriminator(nn.Module):
    """The CycleGAN PatchGAN: ``[B, in_channels, R, R]`` -> per-patch scores ``[B, 1, h, w]`` (raw values,
    for the least-squares loss).

    Args:
        in_channels: image channels.
        width: channels of the first layer (Zhu et al.: 64), doubling per layer up to ``8 · width``.
        layers: stride-2 layers (3: the 70x70 PatchGAN; see :func:`patch_receptive_field`).

    Example:
        >>> d = PatchDiscriminator(1, width=4, layers=2)
        >>> d(torch.zeros(2, 1, 64, 64)).shape, d.receptive_field
        (torch.Size([2, 1, 14, 14]), 34)
    """

    def __init__(self, in_channels: int, *, width: int = 64, layers: int = 3) -> None:
        super().__init__()
        self.in_channels = check_int("in_channels", in_channels, low=1)
        self.width = check_int("width", width, low=1)
        self.layers = check_int("layers", layers, low=1)
        seq: list[nn.Module] = [
            nn.Conv2d(in_channels, width, 4, stride=2, padding=1),
            nn.LeakyReLU(0.2, True),
        ]
        channels = width
        for n in range(1, layers + 1):
            out = width * min(2**n, 8)
            stride = 2 if n < layers else 1
            seq += [
                nn.Conv2d(channels, out, 4, stride=stride, padding=1),
                _norm(out),
                nn.LeakyReLU(0.2, True),
            ]
            channels = out
        seq.append(nn.Conv2d(channels, 1, 4, stride=1, padding=1))
        self.model = nn.Sequential(*seq)
        init_weights(self)

    @property
    def receptive_field(self) -> int:
        """Side of the input patch each output judges (70 for 3 layers)."""
        return patch_receptive_field(self.layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)

    def __repr__(self) -> str:
        return f"PatchDiscriminator(in_channels={self.in_channels}, width={self.width}, layers={self.layers})"


def build_predictor(config: TranslatorConfig) -> ResNetClassifier | None:
    """DUIIT's task predictor for a config: a :class:`~latent_transforms.tasks.ResNetRegressor`
    (``task="regression"``) or :class:`~latent_transforms.tasks.ResNetClassifier`
    (``"classification"``, no dropout) on target images; ``None`` for a plain CycleGAN.

    Example:
        >>> build_predictor(TranslatorConfig(resolution=32, task="regression", predictor_depth=10,
        ...                                  predictor_width=4))
        ResNetRegressor(in_channels=1, outputs=1, depth=10, width=4, dropout=0.0)
    """
    depth, width = config.predictor_depth, config.predictor_width
    if config.task == "regression":
        return ResNetRegressor(config.target_channels, config.outputs, depth=depth, width=width, dropout=0.0)
    if config.task == "classification":
        return ResNetClassifier(config.target_channels, config.outputs, depth=depth, width=width, dropout=0.0)
    return None
