"""StyleGAN2 synthesis network (skip architecture): ws [B, num_ws, w_dim] -> image [B, C, R, R]."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import torch
from torch import nn

from latent_transforms.networks.layers import FullyConnectedLayer, bias_act
from latent_transforms.networks.modconv import MODULATION_PATHS, modulated_conv2d
from latent_transforms.networks.resample import upsample2d

NoiseMode = Literal["const", "random", "none"]
NOISE_MODES: tuple[str, ...] = ("const", "random", "none")

#: Memory format used by ``channels_last="auto"`` per device type (``True``: channels_last). Measured
#: (benchmarks/results/README.md): on a 2-core CPU channels_last makes the non-fused forward 1.27-1.29x
#: faster and a LatentAugment walk 1.11-1.24x; on an H100 it made the fp32 forward 0.84x as fast.
DEFAULT_CHANNELS_LAST: dict[str, bool] = {"cpu": True, "cuda": False}


def resolve_channels_last(setting: bool | str, device: torch.device) -> bool:
    """Turn ``"auto"`` into the memory format for ``device``; ``True`` / ``False`` pass through.

    Example:
        >>> cpu = torch.device("cpu")
        >>> resolve_channels_last("auto", cpu), resolve_channels_last(False, cpu)
        (True, False)
    """
    if setting == "auto":
        return DEFAULT_CHANNELS_LAST.get(device.type, False)
    if not isinstance(setting, bool):
        raise ValueError(f"channels_last must be True, False or 'auto', got {setting!r}")
    return setting


class SynthesisLayer(nn.Module):
    """Modulated 3x3 convolution (optionally 2x up-sampling), per-pixel noise, bias, leaky ReLU, clamp.

    Shapes: ``x`` [B, in, R/up, R/up], ``w`` [B, w_dim] -> [B, out, R, R].
    """

    noise_const: torch.Tensor  # a buffer registered in __init__ (declared for type checkers)

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        w_dim: int,
        resolution: int,
        *,
        up: bool = False,
        conv_clamp: float | None = None,
    ) -> None:
        super().__init__()
        self.resolution = resolution
        self.up = up
        self.conv_clamp = conv_clamp
        self.modulation = "auto"
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, 3, 3))
        self.register_buffer("noise_const", torch.randn(resolution, resolution))
        self.noise_strength = nn.Parameter(torch.zeros([]))
        self.bias = nn.Parameter(torch.zeros(out_channels))

    def forward(
        self,
        x: torch.Tensor,
        w: torch.Tensor,
        *,
        noise_mode: str = "const",
        noise: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        styles = self.affine(w)
        x = modulated_conv2d(x, self.weight, styles, up=self.up, path=self.modulation)
        if noise is None:
            if noise_mode == "random":
                shape = (x.shape[0], 1, self.resolution, self.resolution)
                noise = torch.randn(shape, device=x.device, dtype=x.dtype, generator=generator)
            elif noise_mode == "const":
                noise = self.noise_const
        if noise is not None:
            x = x + noise.to(x.dtype) * self.noise_strength.to(x.dtype)
        return bias_act(x, self.bias, lrelu=True, clamp=self.conv_clamp)

    def extra_repr(self) -> str:
        out_ch, in_ch = self.weight.shape[:2]
        return f"{in_ch}, {out_ch}, resolution={self.resolution}, up={self.up}, conv_clamp={self.conv_clamp}"


class ToRGBLayer(nn.Module):
    """Modulated 1x1 convolution (no demodulation) from features to image channels, bias, clamp."""

    def __init__(
        self, in_channels: int, out_channels: int, w_dim: int, *, conv_clamp: float | None = None
    ) -> None:
        super().__init__()
        self.conv_clamp = conv_clamp
        self.modulation = "auto"
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, 1, 1))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.weight_gain = 1.0 / math.sqrt(in_channels)

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        styles = self.affine(w) * self.weight_gain
        x = modulated_conv2d(x, self.weight, styles, demodulate=False, path=self.modulation)
        return bias_act(x, self.bias, lrelu=False, clamp=self.conv_clamp)


class SynthesisBlock(nn.Module):
    """One resolution of the synthesis network: (const | up-conv) -> conv -> toRGB, skip image path.

    The first block (4x4) starts from a learned constant; later blocks up-sample. Each block adds its
    toRGB output to the up-sampled image of the previous block (skip architecture).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        w_dim: int,
        resolution: int,
        img_channels: int,
        *,
        conv_clamp: float | None = None,
    ) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.resolution = resolution
        if in_channels == 0:
            self.const = nn.Parameter(torch.randn(out_channels, resolution, resolution))
        else:
            self.conv0 = SynthesisLayer(
                in_channels, out_channels, w_dim, resolution, up=True, conv_clamp=conv_clamp
            )
        self.conv1 = SynthesisLayer(out_channels, out_channels, w_dim, resolution, conv_clamp=conv_clamp)
        self.torgb = ToRGBLayer(out_channels, img_channels, w_dim, conv_clamp=conv_clamp)
        self.num_conv = 1 if in_channels == 0 else 2

    def noise_layers(self) -> list[SynthesisLayer]:
        return [self.conv1] if self.in_channels == 0 else [self.conv0, self.conv1]

    def forward(
        self,
        x: torch.Tensor | None,
        img: torch.Tensor | None,
        ws: torch.Tensor,
        *,
        noise_mode: str,
        noise: Sequence[torch.Tensor | None],
        generator: torch.Generator | None,
        channels_last: bool,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if x is None:
            x = self.const.unsqueeze(0).expand(ws.shape[0], -1, -1, -1)
            if channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
        for i, layer in enumerate(self.noise_layers()):
            x = layer(x, ws[:, i], noise_mode=noise_mode, noise=noise[i], generator=generator)
        y = self.torgb(x, ws[:, self.num_conv]).float()
        img = y if img is None else upsample2d(img) + y
        return x, img


class SynthesisNetwork(nn.Module):
    """The StyleGAN2 synthesis network, skip architecture, any resolution ``2**k`` and channel count.

    Consumes ``ws`` [B, num_ws, w_dim] (W+); block ``b{r}`` uses rows ``i .. i + num_conv`` where
    its toRGB shares the first row of the next block, as in StyleGAN2. Returns float32 images
    [B, img_channels, R, R], nominally in ``[-1, 1]``.

    Noise: ``noise_mode="const"`` (default; deterministic: the stored per-layer maps),
    ``"random"`` (fresh maps drawn from ``generator``) or ``"none"``; or pass explicit per-layer maps
    ``noise`` (list of [B or 1, 1, r, r] tensors, one per entry of :meth:`noise_layers`; ``None``
    entries fall back to ``noise_mode``), e.g. from :meth:`make_noise`.
    """

    def __init__(
        self,
        w_dim: int,
        img_resolution: int,
        img_channels: int,
        *,
        channel_base: int = 16384,
        channel_max: int = 512,
        conv_clamp: float | None = None,
    ) -> None:
        super().__init__()
        self.w_dim = w_dim
        self.img_resolution = img_resolution
        self.img_channels = img_channels
        self.block_resolutions = [2**i for i in range(2, int(math.log2(img_resolution)) + 1)]
        self.channels_last: bool | str = "auto"
        channels = {r: min(channel_base // r, channel_max) for r in self.block_resolutions}
        self.num_ws = 0
        for res in self.block_resolutions:
            in_ch = channels[res // 2] if res > 4 else 0
            block = SynthesisBlock(in_ch, channels[res], w_dim, res, img_channels, conv_clamp=conv_clamp)
            self.add_module(f"b{res}", block)
            self.num_ws += block.num_conv
        self.num_ws += 1  # the last toRGB

    def blocks(self) -> list[SynthesisBlock]:
        return [getattr(self, f"b{r}") for r in self.block_resolutions]

    def noise_layers(self) -> list[SynthesisLayer]:
        """All layers that take a noise input, in the order of ``noise`` lists."""
        return [layer for block in self.blocks() for layer in block.noise_layers()]

    def make_noise(
        self,
        batch_size: int,
        *,
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
    ) -> list[torch.Tensor]:
        """Draw one standard-normal noise map [B, 1, r, r] per noise layer from ``generator``."""
        device = device if device is not None else self.noise_layers()[0].noise_const.device
        return [
            torch.randn(batch_size, 1, layer.resolution, layer.resolution, generator=generator, device=device)
            for layer in self.noise_layers()
        ]

    def set_modulation(self, path: str) -> None:
        """Choose the modulated-convolution path for every layer: ``auto``, ``grouped`` or ``nonfused``."""
        if path not in MODULATION_PATHS:
            raise ValueError(f"modulation must be one of {MODULATION_PATHS}, got {path!r}")
        for module in self.modules():
            if isinstance(module, SynthesisLayer | ToRGBLayer):
                module.modulation = path

    def forward(
        self,
        ws: torch.Tensor,
        *,
        noise_mode: str = "const",
        noise: Sequence[torch.Tensor | None] | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        if ws.ndim != 3 or ws.shape[1:] != (self.num_ws, self.w_dim):
            raise ValueError(
                f"ws must be [B, {self.num_ws}, {self.w_dim}] (W+), got {tuple(ws.shape)}; "
                "broadcast a single w with w.unsqueeze(1).expand(-1, num_ws, -1)."
            )
        if noise_mode not in NOISE_MODES:
            raise ValueError(f"noise_mode must be one of {NOISE_MODES}, got {noise_mode!r}")
        n_noise = len(self.noise_layers())
        noise = list(noise) if noise is not None else [None] * n_noise
        if len(noise) != n_noise:
            raise ValueError(f"noise must have {n_noise} entries (one per noise layer), got {len(noise)}")
        channels_last = resolve_channels_last(self.channels_last, ws.device)
        x = img = None
        w_idx = n_idx = 0
        for block in self.blocks():
            block_ws = ws[:, w_idx : w_idx + block.num_conv + 1]
            block_noise = noise[n_idx : n_idx + block.num_conv]
            x, img = block(
                x,
                img,
                block_ws,
                noise_mode=noise_mode,
                noise=block_noise,
                generator=generator,
                channels_last=channels_last,
            )
            w_idx += block.num_conv
            n_idx += block.num_conv
        assert img is not None
        return img
