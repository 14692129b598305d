"""Sample grids of a bundle as PNG: one row per modality, one column per sample."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torchvision.utils import make_grid, save_image

if TYPE_CHECKING:
    from latent_transforms.networks.bundle import GanBundle


def sample_grid(images: torch.Tensor, padding: int = 2) -> torch.Tensor:
    """Arrange ``images`` [N, C, H, W] in ``[-1, 1]`` as one grayscale grid in ``[0, 1]``, rows = channels."""
    n, c = images.shape[:2]
    tiles = images.detach().float().cpu().clamp(-1, 1).add(1).div(2)
    tiles = tiles.transpose(0, 1).reshape(c * n, 1, *images.shape[2:])
    return make_grid(tiles, nrow=n, padding=padding, pad_value=1.0)[:1]


def save_sample_grid(
    bundle: GanBundle, path: str | Path, *, n: int = 8, seed: int = 0, truncation_psi: float = 1.0
) -> Path:
    """Draw ``n`` samples (seeded) and save them as a PNG grid (rows = modalities)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    images = bundle.sample(n, seed=seed, truncation_psi=truncation_psi)
    save_image(sample_grid(images), path)
    return path
