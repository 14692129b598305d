"""StyleGAN2 mapping network: z (and an optional class label) -> w, with w_avg tracking and truncation."""

from __future__ import annotations

import torch
from torch import nn

from latent_transforms.networks.layers import FullyConnectedLayer, normalize_2nd_moment


class MappingNetwork(nn.Module):
    """MLP from ``z`` [B, z_dim] (and one-hot/soft labels ``c`` [B, c_dim]) to ``w``.

    ``z`` is normalised to unit mean square, the embedded label likewise, and they are concatenated.
    Layers use an equalised learning rate with ``lr_multiplier`` (0.01 in StyleGAN2) and leaky ReLU.
    ``w_avg`` is the moving average of ``w`` (updated when ``update_w_avg=True``) and is the centre
    of the truncation trick ``w' = w_avg + psi * (w - w_avg)``.

    Output: ``[B, w_dim]`` when ``num_ws`` is ``None``, else ``[B, num_ws, w_dim]`` (W broadcast to
    every synthesis layer). With ``truncation_cutoff=k`` only the first ``k`` layers are truncated.

    Example:
        >>> m = MappingNetwork(z_dim=16, c_dim=0, w_dim=16, num_ws=6, num_layers=2)
        >>> m(torch.randn(4, 16)).shape
        torch.Size([4, 6, 16])
    """

    # Declared for type checkers: ``fc0`` and the ``w_avg`` buffer are registered by name in __init__.
    fc0: FullyConnectedLayer
    w_avg: torch.Tensor

    def __init__(
        self,
        z_dim: int,
        c_dim: int,
        w_dim: int,
        num_ws: int | None,
        *,
        num_layers: int = 2,
        embed_features: int | None = None,
        layer_features: int | None = None,
        lr_multiplier: float = 0.01,
        w_avg_beta: float | None = 0.995,
    ) -> None:
        super().__init__()
        self.z_dim = z_dim
        self.c_dim = c_dim
        self.w_dim = w_dim
        self.num_ws = num_ws
        self.num_layers = num_layers
        self.w_avg_beta = w_avg_beta
        embed = (embed_features if embed_features is not None else w_dim) if c_dim > 0 else 0
        hidden = layer_features if layer_features is not None else w_dim
        features = [z_dim + embed] + [hidden] * (num_layers - 1) + [w_dim]
        if c_dim > 0:
            self.embed = FullyConnectedLayer(c_dim, embed)
        for idx in range(num_layers):
            layer = FullyConnectedLayer(
                features[idx], features[idx + 1], lrelu=True, lr_multiplier=lr_multiplier
            )
            self.add_module(f"fc{idx}", layer)
        if num_ws is not None and w_avg_beta is not None:
            self.register_buffer("w_avg", torch.zeros(w_dim))

    def forward(
        self,
        z: torch.Tensor | None,
        c: torch.Tensor | None = None,
        *,
        truncation_psi: float = 1.0,
        truncation_cutoff: int | None = None,
        update_w_avg: bool = False,
    ) -> torch.Tensor:
        parts = []
        if self.z_dim > 0:
            if z is None or z.ndim != 2 or z.shape[1] != self.z_dim:
                raise ValueError(f"z must be [B, {self.z_dim}], got {None if z is None else tuple(z.shape)}")
            parts.append(normalize_2nd_moment(z.float()))
        if self.c_dim > 0:
            if c is None or c.ndim != 2 or c.shape[1] != self.c_dim:
                raise ValueError(
                    f"this network is conditional: c must be [B, {self.c_dim}] (one-hot labels), "
                    f"got {None if c is None else tuple(c.shape)}"
                )
            parts.append(normalize_2nd_moment(self.embed(c.float())))
        x = torch.cat(parts, dim=1) if len(parts) > 1 else parts[0]
        for idx in range(self.num_layers):
            x = getattr(self, f"fc{idx}")(x)

        if update_w_avg and self.w_avg_beta is not None:
            with torch.no_grad():
                self.w_avg.copy_(x.detach().float().mean(dim=0).lerp(self.w_avg, self.w_avg_beta))
        if self.num_ws is not None:
            x = x.unsqueeze(1).expand(-1, self.num_ws, -1)
        if truncation_psi != 1.0:
            x = self.truncate(x, truncation_psi, truncation_cutoff)
        return x

    def truncate(self, w: torch.Tensor, psi: float, cutoff: int | None = None) -> torch.Tensor:
        """Pull ``w`` ([B, w_dim] or [B, num_ws, w_dim]) towards ``w_avg`` by ``psi`` (1 = unchanged)."""
        if not hasattr(self, "w_avg"):
            raise ValueError("truncation needs w_avg, which this mapping network does not track")
        if cutoff is None or w.ndim == 2:
            return self.w_avg.to(w.dtype).lerp(w, psi)
        w = w.clone()
        w[:, :cutoff] = self.w_avg.to(w.dtype).lerp(w[:, :cutoff], psi)
        return w

    def extra_repr(self) -> str:
        return (
            f"z_dim={self.z_dim}, c_dim={self.c_dim}, w_dim={self.w_dim}, num_ws={self.num_ws}, "
            f"num_layers={self.num_layers}"
        )
