"""Online augmentations of a classification batch that keep each image's class.

Each builder returns a ``BatchAugment``: ``(images [B, C, R, R] in [-1, 1], labels [B], generator) ->
images``, which :func:`latent_transforms.tasks.train_classifier` calls on every real training batch.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

from latent_transforms import GanBundle, LatentAugment, StandardDA

BatchAugment = Callable[[torch.Tensor, torch.Tensor, torch.Generator], torch.Tensor]


def _chosen(n: int, p: float, generator: torch.Generator) -> torch.Tensor:
    return torch.rand(n, generator=generator) < p


def standard_da(p: float, **options: Any) -> BatchAugment:
    """StandardDA (flip, rotation, translation, elastic deformation) with per-sample probability ``p``."""
    transform = StandardDA(p=p, **options)

    def augment(images: torch.Tensor, labels: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        transform.set_random_state(int(torch.randint(0, 2**31 - 1, (), generator=generator)))
        return transform(images)

    return augment


def sg2sample(bundle: GanBundle, p: float, *, truncation_psi: float = 1.0) -> BatchAugment:
    """Standard GAN augmentation: a chosen sample is replaced by ``G(z, c)`` with ``c`` its own class."""

    def augment(images: torch.Tensor, labels: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        chosen = _chosen(len(images), p, generator)
        if not bool(chosen.any()):
            return images
        c = F.one_hot(labels[chosen], bundle.config.c_dim).float()
        seed = int(torch.randint(0, 2**31 - 1, (), generator=generator))
        fake = bundle.sample(
            int(chosen.sum()), seed=seed, c=c, truncation_psi=truncation_psi, noise_mode="random"
        )
        out = images.clone()
        out[chosen] = fake.clamp(-1, 1).to(out.dtype)
        return out

    return augment


def latent_augment(transform: LatentAugment, bundle: GanBundle, p: float) -> BatchAugment:
    """LatentAugment from each chosen image's inverted latent (the conditional D is told its class)."""

    def augment(images: torch.Tensor, labels: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        chosen = _chosen(len(images), p, generator)
        if not bool(chosen.any()):
            return images
        c = F.one_hot(labels[chosen], bundle.config.c_dim).float()
        seed = int(torch.randint(0, 2**31 - 1, (), generator=generator))
        walked = transform.augment(images[chosen], c=c, generator=torch.Generator().manual_seed(seed))
        out = images.clone()
        out[chosen] = walked.detach().clamp(-1, 1).to(out.dtype)
        return out

    return augment
