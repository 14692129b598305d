"""StyleGAN2 ResNet discriminator with minibatch standard deviation and projection conditioning."""

from __future__ import annotations

import math

import torch
from torch import nn

from latent_transforms.networks.config import GanConfig
from latent_transforms.networks.layers import Conv2dLayer, FullyConnectedLayer
from latent_transforms.networks.mapping import MappingNetwork

_SQRT_HALF = math.sqrt(0.5)


class DiscriminatorBlock(nn.Module):
    """ResNet block: (fromRGB on the first block) -> conv -> down-conv, plus a 1x1 down-sampled skip.

    Shapes: ``[B, C_in, r, r] -> [B, C_out, r/2, r/2]``; the first block takes the image instead.
    """

    def __init__(
        self,
        in_channels: int,
        tmp_channels: int,
        out_channels: int,
        img_channels: int,
        *,
        conv_clamp: float | None = None,
    ) -> None:
        super().__init__()
        self.in_channels = in_channels
        if in_channels == 0:
            self.fromrgb = Conv2dLayer(img_channels, tmp_channels, 1, lrelu=True, conv_clamp=conv_clamp)
        self.conv0 = Conv2dLayer(tmp_channels, tmp_channels, 3, lrelu=True, conv_clamp=conv_clamp)
        self.conv1 = Conv2dLayer(tmp_channels, out_channels, 3, lrelu=True, down=2, conv_clamp=conv_clamp)
        self.skip = Conv2dLayer(tmp_channels, out_channels, 1, bias=False, down=2)

    def forward(self, x: torch.Tensor | None, img: torch.Tensor) -> torch.Tensor:
        if self.in_channels == 0:
            x = self.fromrgb(img)
        assert x is not None
        y = self.skip(x, gain=_SQRT_HALF)
        x = self.conv1(self.conv0(x), gain=_SQRT_HALF)
        return y + x


class MinibatchStdLayer(nn.Module):
    """Append the mean (over channels and pixels) of the within-group standard deviation as channels.

    Samples ``i`` and ``j`` share a group when ``i % n == j % n`` with ``n = B / G``. When the batch
    size is not a multiple of ``group_size`` the largest divisor of ``B`` not above it is used (the
    original implementation fails there instead).
    """

    def __init__(self, group_size: int, num_channels: int = 1) -> None:
        super().__init__()
        self.group_size = group_size
        self.num_channels = num_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        g = min(self.group_size, n)
        while n % g:
            g -= 1
        f = self.num_channels
        y = x.reshape(g, -1, f, c // f, h, w).float()
        y = (y.var(dim=0, unbiased=False) + 1e-8).sqrt().mean(dim=(2, 3, 4))  # [n/g, F]
        y = y.to(x.dtype).reshape(-1, f, 1, 1).repeat(g, 1, h, w)
        return torch.cat([x, y], dim=1)

    def extra_repr(self) -> str:
        return f"group_size={self.group_size}, num_channels={self.num_channels}"


class DiscriminatorEpilogue(nn.Module):
    """4x4 head: minibatch std -> conv -> fc -> out (1 logit, or a projection on the label embedding)."""

    def __init__(
        self,
        in_channels: int,
        cmap_dim: int,
        *,
        mbstd_group_size: int = 4,
        mbstd_channels: int = 1,
        conv_clamp: float | None = None,
    ) -> None:
        super().__init__()
        self.cmap_dim = cmap_dim
        self.mbstd = MinibatchStdLayer(mbstd_group_size, mbstd_channels) if mbstd_channels > 0 else None
        self.conv = Conv2dLayer(
            in_channels + mbstd_channels, in_channels, 3, lrelu=True, conv_clamp=conv_clamp
        )
        self.fc = FullyConnectedLayer(in_channels * 16, in_channels, lrelu=True)
        self.out = FullyConnectedLayer(in_channels, 1 if cmap_dim == 0 else cmap_dim)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        if self.mbstd is not None:
            x = self.mbstd(x)
        return self.conv(x)

    def head(self, x: torch.Tensor, cmap: torch.Tensor | None) -> torch.Tensor:
        x = self.out(self.fc(x.flatten(1)))
        if cmap is not None:
            x = (x * cmap).sum(dim=1, keepdim=True) * (1.0 / math.sqrt(self.cmap_dim))
        return x


class Discriminator(nn.Module):
    """StyleGAN2 ResNet discriminator: image [B, C, R, R] in ``[-1, 1]`` -> realness logits [B, 1].

    ``softplus(-D(x))`` is the generator's non-saturating loss (LatentAugment's fidelity term). When
    ``config.c_dim > 0``, ``D(x, c)`` projects the features on an embedding of the label ``c``.
    :meth:`features` returns the intermediate maps (a domain-specific perceptual feature network).

    Example:
        >>> cfg = GanConfig(resolution=16, channel_base=256, channel_max=32, z_dim=16, w_dim=16)
        >>> D = Discriminator(cfg).eval()
        >>> D(torch.zeros(4, 2, 16, 16)).shape
        torch.Size([4, 1])
        >>> feats = D.features(torch.zeros(4, 2, 16, 16))
        >>> len(feats), tuple(feats[0].shape)
        (3, (4, 32, 8, 8))
    """

    def __init__(self, config: GanConfig) -> None:
        super().__init__()
        self.config = config
        self.c_dim = config.c_dim
        self.img_resolution = config.resolution
        self.img_channels = config.img_channels
        self.block_resolutions = [2**i for i in range(int(math.log2(config.resolution)), 2, -1)]
        ch = config.d_channels_at
        for res in self.block_resolutions:
            in_ch = ch(res) if res < config.resolution else 0
            block = DiscriminatorBlock(
                in_ch, ch(res), ch(res // 2), config.img_channels, conv_clamp=config.conv_clamp
            )
            self.add_module(f"b{res}", block)
        cmap_dim = ch(4) if config.c_dim > 0 else 0
        if config.c_dim > 0:
            self.mapping = MappingNetwork(
                0, config.c_dim, cmap_dim, None, num_layers=config.d_mapping_layers, w_avg_beta=None
            )
        self.b4 = DiscriminatorEpilogue(
            ch(4),
            cmap_dim,
            mbstd_group_size=config.mbstd_group_size,
            mbstd_channels=config.mbstd_channels,
            conv_clamp=config.conv_clamp,
        )

    def _check(self, img: torch.Tensor, c: torch.Tensor | None) -> None:
        expected = (self.img_channels, self.img_resolution, self.img_resolution)
        if img.ndim != 4 or tuple(img.shape[1:]) != expected:
            raise ValueError(f"D expects images [B, {', '.join(map(str, expected))}], got {tuple(img.shape)}")
        if self.c_dim > 0 and (c is None or c.shape != (img.shape[0], self.c_dim)):
            got = None if c is None else tuple(c.shape)
            raise ValueError(f"this discriminator is conditional: c must be [B, {self.c_dim}], got {got}")

    def features(self, img: torch.Tensor, c: torch.Tensor | None = None) -> list[torch.Tensor]:
        """Intermediate maps: each block's output [B, C_r, r/2, r/2] (r = R ... 8), then the 4x4 conv's."""
        self._check(img, c)
        feats = []
        x = None
        for res in self.block_resolutions:
            x = getattr(self, f"b{res}")(x, img)
            feats.append(x)
        assert x is not None  # there is always a block above 4x4
        feats.append(self.b4.features(x))
        return feats

    def forward(self, img: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        last = self.features(img, c)[-1]
        cmap = self.mapping(None, c) if self.c_dim > 0 else None
        return self.b4.head(last, cmap)

    def extra_repr(self) -> str:
        c = self.config
        return f"resolution={c.resolution}, img_channels={c.img_channels}, c_dim={c.c_dim}"
