"""StyleGAN2 losses: non-saturating logistic loss, lazy R1 and path-length regularisation.

Written from the StyleGAN2 and StyleGAN2-ADA papers (Karras et al. 2020): every function takes the
networks and returns a scalar loss to back-propagate; the caller owns optimisers and schedules.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from contextlib import nullcontext

import torch
import torch.nn.functional as F

from latent_transforms.networks.discriminator import Discriminator
from latent_transforms.networks.generator import Generator

Augment = Callable[[torch.Tensor], torch.Tensor]


def autocast(device: torch.device, precision: str) -> torch.autocast | nullcontext:
    """bf16 autocast on ``device`` when ``precision == "bf16"``, else a no-op context."""
    if precision == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return nullcontext()


def mix_styles(
    G: Generator,
    z: torch.Tensor,
    c: torch.Tensor | None,
    *,
    style_mixing: float,
    generator: torch.Generator,
    update_w_avg: bool = False,
) -> torch.Tensor:
    """``ws`` [B, num_ws, w_dim] for ``z``; with probability ``style_mixing`` the layers from a random
    cutoff on come from a second latent (one draw per batch, as in StyleGAN2)."""
    ws = G.mapping(z, c, update_w_avg=update_w_avg)
    if style_mixing > 0:
        draw = torch.rand((), generator=generator, device=generator.device)
        cutoff = int(torch.randint(1, ws.shape[1], (), generator=generator, device=generator.device))
        z2 = torch.randn(z.shape, generator=generator, device=generator.device).to(z.device)
        if float(draw) < style_mixing:
            ws2 = G.mapping(z2, c)
            ws = torch.cat([ws[:, :cutoff], ws2[:, cutoff:]], dim=1)
    return ws


def generate(
    G: Generator,
    z: torch.Tensor,
    c: torch.Tensor | None,
    *,
    style_mixing: float,
    generator: torch.Generator,
    update_w_avg: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Images [B, C, R, R] with random per-pixel noise, and the ``ws`` that made them."""
    ws = mix_styles(G, z, c, style_mixing=style_mixing, generator=generator, update_w_avg=update_w_avg)
    noise = [
        n.to(z.device)
        for n in G.synthesis.make_noise(z.shape[0], generator=generator, device=generator.device)
    ]
    return G.synthesis(ws, noise=noise), ws


def generator_loss(
    D: Discriminator, fake: torch.Tensor, c: torch.Tensor | None, augment: Augment
) -> torch.Tensor:
    """Non-saturating loss ``mean softplus(−D(aug(G(z))))``."""
    return F.softplus(-D(augment(fake), c)).mean()


def discriminator_loss(
    D: Discriminator,
    real: torch.Tensor,
    fake: torch.Tensor,
    c_real: torch.Tensor | None,
    c_fake: torch.Tensor | None,
    augment: Augment,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``mean softplus(D(aug(fake))) + mean softplus(−D(aug(real)))``, and the real logits (for ADA)."""
    fake_logits = D(augment(fake.detach()), c_fake)
    real_logits = D(augment(real), c_real)
    return F.softplus(fake_logits).mean() + F.softplus(-real_logits).mean(), real_logits.detach()


def r1_penalty(
    D: Discriminator, real: torch.Tensor, c: torch.Tensor | None, augment: Augment
) -> tuple[torch.Tensor, torch.Tensor]:
    """R1: ``‖∇_y D(y)‖²`` at the augmented real images ``y = aug(x)`` (fp32, needs a double backward).

    The gradient is taken with respect to what the discriminator sees (the augmented image), so the
    double backward never runs through the augmentation's ``grid_sample``, whose second derivative
    PyTorch does not implement on CUDA. Returns the penalty per sample [B] and the real logits
    (detached).
    """
    with torch.no_grad():
        augmented = augment(real.detach().float())
    x = augmented.detach().requires_grad_(True)
    logits = D(x, c)
    (grad,) = torch.autograd.grad(logits.sum(), x, create_graph=True)
    return grad.square().sum(dim=(1, 2, 3)), logits.detach()


def path_length_penalty(
    G: Generator,
    z: torch.Tensor,
    c: torch.Tensor | None,
    pl_mean: torch.Tensor,
    *,
    style_mixing: float,
    generator: torch.Generator,
    decay: float = 0.01,
) -> torch.Tensor:
    """Path-length regulariser: ``(‖J_wᵀ y‖ − a)²`` per sample, ``a`` the running mean (updated in place).

    ``y`` is Gaussian noise scaled by ``1/√(R²)``; ``pl_mean`` is a 0-d buffer.
    """
    fake, ws = generate(G, z, c, style_mixing=style_mixing, generator=generator)
    y = torch.randn(fake.shape, generator=generator, device=generator.device).to(fake.device)
    y = y / math.sqrt(fake.shape[2] * fake.shape[3])
    (grad,) = torch.autograd.grad((fake * y).sum(), ws, create_graph=True)
    lengths = grad.square().sum(dim=2).mean(dim=1).sqrt()
    with torch.no_grad():
        pl_mean.copy_(pl_mean.lerp(lengths.mean(), decay))
    return (lengths - pl_mean).square()


@torch.no_grad()
def update_ema(ema: Generator, G: Generator, beta: float) -> None:
    """``ema ← β·ema + (1−β)·G`` for parameters; buffers (``w_avg``, noise) are copied."""
    for p_ema, p in zip(ema.parameters(), G.parameters(), strict=True):
        p_ema.copy_(p.detach().lerp(p_ema, beta))
    for b_ema, b in zip(ema.buffers(), G.buffers(), strict=True):
        b_ema.copy_(b)


def ema_beta(batch_size: int, cur_nimg: int, ema_kimg: float, rampup: float | None) -> float:
    """Per-step EMA decay for a half-life of ``ema_kimg`` (shortened early on by ``rampup``).

    Example:
        >>> round(ema_beta(16, 10**6, 5.0, None), 6)
        0.997784
    """
    ema_nimg = ema_kimg * 1000
    if rampup is not None:
        ema_nimg = min(ema_nimg, cur_nimg * rampup)
    return 0.5 ** (batch_size / max(ema_nimg, 1e-8))
