"""Equalised-learning-rate building blocks shared by the StyleGAN2 generator and discriminator."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from latent_transforms.networks.resample import blur, downsample2d

LRELU_SLOPE = 0.2
LRELU_GAIN = math.sqrt(2.0)


def normalize_2nd_moment(x: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Scale each row of ``x`` [B, D] to unit mean square."""
    return x * (x.square().mean(dim=1, keepdim=True) + eps).rsqrt()


def bias_act(
    x: torch.Tensor,
    bias: torch.Tensor | None,
    lrelu: bool,
    gain: float = 1.0,
    clamp: float | None = None,
) -> torch.Tensor:
    """Add a per-channel bias (dim 1), apply leaky ReLU (slope 0.2, gain sqrt 2) if asked, scale, clamp."""
    if bias is not None:
        shape = [1, -1] + [1] * (x.ndim - 2)
        x = x + bias.to(x.dtype).view(shape)
    if lrelu:
        x = F.leaky_relu(x, LRELU_SLOPE)
        gain = gain * LRELU_GAIN
    if gain != 1.0:
        x = x * gain
    if clamp is not None:
        x = x.clamp(-clamp, clamp)
    return x


class FullyConnectedLayer(nn.Module):
    """Linear layer with an equalised learning rate.

    The stored weight is ``N(0, 1) / lr_multiplier``; at run time it is scaled by
    ``lr_multiplier / sqrt(in_features)`` (and the bias by ``lr_multiplier``).

    Shapes: ``[B, in_features] -> [B, out_features]``.

    Example:
        >>> fc = FullyConnectedLayer(8, 4, lrelu=True)
        >>> fc(torch.randn(2, 8)).shape
        torch.Size([2, 4])
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        *,
        bias: bool = True,
        lrelu: bool = False,
        lr_multiplier: float = 1.0,
        bias_init: float = 0.0,
    ) -> None:
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        self.lrelu = lrelu
        self.lr_multiplier = lr_multiplier
        self.weight = nn.Parameter(torch.randn(out_features, in_features) / lr_multiplier)
        self.bias = nn.Parameter(torch.full((out_features,), float(bias_init))) if bias else None
        self.weight_gain = lr_multiplier / math.sqrt(in_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weight * self.weight_gain
        b = self.bias * self.lr_multiplier if self.bias is not None else None
        if not self.lrelu:
            return F.linear(x, w, b)
        return bias_act(F.linear(x, w), b, lrelu=True)

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, lrelu={self.lrelu}, "
            f"lr_multiplier={self.lr_multiplier}"
        )


class Conv2dLayer(nn.Module):
    """Equalised-lr convolution with optional 2x down-sampling (blur first), bias, leaky ReLU, clamp.

    Shapes: ``[B, in, H, W] -> [B, out, H / down, W / down]``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        *,
        bias: bool = True,
        lrelu: bool = False,
        down: int = 1,
        conv_clamp: float | None = None,
    ) -> None:
        super().__init__()
        if down not in (1, 2):
            raise ValueError(f"down must be 1 or 2, got {down}")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = kernel_size
        self.lrelu = lrelu
        self.down = down
        self.conv_clamp = conv_clamp
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        self.weight_gain = 1.0 / math.sqrt(in_channels * kernel_size * kernel_size)

    def forward(self, x: torch.Tensor, gain: float = 1.0) -> torch.Tensor:
        w = (self.weight * self.weight_gain).to(x.dtype)
        if self.down == 1:
            x = F.conv2d(x, w, padding=self.kernel_size // 2)
        elif self.kernel_size == 1:
            x = F.conv2d(downsample2d(x), w)
        else:
            # Blur with enough padding for a 'same' convolution, then a stride-2 valid convolution.
            pad = (self.kernel_size - 1) // 2 + 1
            x = F.conv2d(blur(x, (pad, pad)), w, stride=2)
        clamp = self.conv_clamp * gain if self.conv_clamp is not None else None
        return bias_act(x, self.bias, lrelu=self.lrelu, gain=gain, clamp=clamp)

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, down={self.down}, "
            f"lrelu={self.lrelu}, bias={self.bias is not None}, conv_clamp={self.conv_clamp}"
        )
