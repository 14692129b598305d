"""The StyleGAN2 generator: mapping network + synthesis network, built from a :class:`GanConfig`."""

from __future__ import annotations

import torch
from torch import nn

from latent_transforms.networks.config import GanConfig
from latent_transforms.networks.mapping import MappingNetwork
from latent_transforms.networks.synthesis import SynthesisNetwork


class Generator(nn.Module):
    """StyleGAN2 generator in plain PyTorch (no custom CUDA ops): runs on CPU, CUDA, fp32 and bf16.

    ``G(z, c)`` maps latents ``z`` [B, z_dim] (and labels ``c`` [B, c_dim] when ``config.c_dim > 0``)
    to images [B, C, R, R] in nominally ``[-1, 1]``, float32, channels in ``config.modalities`` order.
    ``G.mapping`` gives ``ws`` [B, num_ws, w_dim]; ``G.synthesis(ws)`` renders them.

    Args:
        config: the architecture.

    Example:
        >>> cfg = GanConfig(resolution=16, channel_base=256, channel_max=32, z_dim=16, w_dim=16)
        >>> G = Generator(cfg).eval()
        >>> z = torch.randn(2, 16, generator=torch.Generator().manual_seed(0))
        >>> G(z).shape
        torch.Size([2, 2, 16, 16])
    """

    def __init__(self, config: GanConfig) -> None:
        super().__init__()
        self.config = config
        self.z_dim = config.z_dim
        self.c_dim = config.c_dim
        self.w_dim = config.w_dim
        self.img_resolution = config.resolution
        self.img_channels = config.img_channels
        self.synthesis = SynthesisNetwork(
            config.w_dim,
            config.resolution,
            config.img_channels,
            channel_base=config.channel_base,
            channel_max=config.channel_max,
            conv_clamp=config.conv_clamp,
        )
        self.num_ws = self.synthesis.num_ws
        self.mapping = MappingNetwork(
            config.z_dim,
            config.c_dim,
            config.w_dim,
            self.num_ws,
            num_layers=config.mapping_layers,
            lr_multiplier=config.mapping_lr_multiplier,
            w_avg_beta=config.w_avg_beta,
        )

    @property
    def modulation(self) -> str:
        """Modulated-convolution path: ``auto`` (per device, the default), ``grouped`` or ``nonfused``."""
        return self.synthesis.noise_layers()[0].modulation

    @modulation.setter
    def modulation(self, path: str) -> None:
        self.synthesis.set_modulation(path)

    @property
    def channels_last(self) -> bool | str:
        """The synthesis network's activations in ``torch.channels_last`` memory format: ``True``,
        ``False`` or ``"auto"`` (the default: per device, ``synthesis.DEFAULT_CHANNELS_LAST``: channels_last
        on CPU, contiguous on CUDA). The outputs agree to float rounding.
        """
        return self.synthesis.channels_last

    @channels_last.setter
    def channels_last(self, value: bool | str) -> None:
        if value != "auto" and not isinstance(value, bool):
            raise ValueError(f"channels_last must be True, False or 'auto', got {value!r}")
        self.synthesis.channels_last = value

    def sample_z(
        self, n: int, *, generator: torch.Generator | None = None, device: torch.device | str | None = None
    ) -> torch.Tensor:
        """``n`` standard-normal latents [n, z_dim] from ``generator``."""
        device = device if device is not None else self.mapping.fc0.weight.device
        return torch.randn(n, self.z_dim, generator=generator, device=device)

    def forward(
        self,
        z: torch.Tensor,
        c: torch.Tensor | None = None,
        *,
        truncation_psi: float = 1.0,
        truncation_cutoff: int | None = None,
        noise_mode: str = "const",
        generator: torch.Generator | None = None,
        update_w_avg: bool = False,
    ) -> torch.Tensor:
        ws = self.mapping(
            z,
            c,
            truncation_psi=truncation_psi,
            truncation_cutoff=truncation_cutoff,
            update_w_avg=update_w_avg,
        )
        return self.synthesis(ws, noise_mode=noise_mode, generator=generator)

    def extra_repr(self) -> str:
        c = self.config
        return (
            f"resolution={c.resolution}, modalities={c.modality_names}, z_dim={c.z_dim}, w_dim={c.w_dim}, "
            f"c_dim={c.c_dim}, num_ws={self.num_ws}"
        )
