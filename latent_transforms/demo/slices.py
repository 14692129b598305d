"""What the demo works on: its bundle, the held-out phantom slices, their StandardDA versions, the projector.

:mod:`latent_transforms.demo.run` (the job) and :mod:`latent_transforms.demo.latents` (the latents shipped
for its default settings) both take their inputs from here, so the two cannot drift apart.
"""

from __future__ import annotations

import torch

from latent_transforms.data.items import stack_modalities
from latent_transforms.data.open import open_paired_dataset
from latent_transforms.data.splits import split_dataset
from latent_transforms.inversion.projector import Projector
from latent_transforms.networks.bundle import GanBundle
from latent_transforms.transforms.standard_da import StandardDA

__all__ = [
    "DEMO_DATA",
    "DEMO_GAN",
    "DEMO_N",
    "DEMO_STEPS",
    "demo_projector",
    "held_out_slices",
    "standard_da",
]

#: The bundle the demo runs on.
DEMO_GAN = "builtin:pelvis-phantom-64"
#: The phantom the built-in bundle was trained on (its config's ``training.data``), split by patient
#: 0.7 / 0.2 / 0.1 with seed 0; the demo takes its slices from the validation patients.
DEMO_DATA = "phantom:patients=48,slices=32,seed=0"
#: The demo's default number of slices and projector steps (``latent-transforms demo --n``, ``--steps``).
DEMO_N = 8
DEMO_STEPS = 150


def held_out_slices(
    bundle: GanBundle, n: int, *, data: str = DEMO_DATA, split: str = "val"
) -> tuple[torch.Tensor, list[str]]:
    """``n`` slices of the held-out phantom patients, spread evenly over the split.

    Returns:
        ``(images, keys)``: ``[n, C, R, R]`` in ``[-1, 1]`` (the bundle's channels and windows) and their
        dataset keys ``"<patient>/<slice>"``.

    Example:
        >>> from latent_transforms import GanBundle, GanConfig
        >>> bundle = GanBundle.random(GanConfig(resolution=16, channel_base=256, channel_max=32))
        >>> images, keys = held_out_slices(bundle, 2, data="phantom:patients=10,slices=4")
        >>> images.shape, len(keys)
        (torch.Size([2, 2, 16, 16]), 2)
    """
    dataset = open_paired_dataset(data, resolution=bundle.resolution)
    subset = split_dataset(dataset, (0.7, 0.2, 0.1), seed=0)[split]
    if n < 1 or n > len(subset):
        raise ValueError(f"n must be in [1, {len(subset)}] (slices in the {split} split), got {n}.")
    picks = torch.linspace(0, len(subset) - 1, n).round().long().tolist()
    windows = [m.window for m in bundle.config.modalities]
    items = [subset[i] for i in picks]
    images = torch.stack([stack_modalities(item, bundle.modalities, windows) for item in items])
    return images, [str(item["key"]) for item in items]


def standard_da(images: torch.Tensor, seed: int) -> torch.Tensor:
    """The demo's StandardDA row: every slice augmented (``p = 1``) with the draws of ``seed``.

    Example:
        >>> x = torch.rand(2, 2, 16, 16) * 2 - 1
        >>> torch.equal(standard_da(x, 0), standard_da(x, 0)), standard_da(x, 0).shape
        (True, torch.Size([2, 2, 16, 16]))
    """
    return StandardDA(p=1.0, seed=seed)(images)


def demo_projector(
    bundle: GanBundle,
    steps: int = DEMO_STEPS,
    device: torch.device | str | None = None,
    progress: bool = False,
) -> Projector:
    """The demo's projector: ``steps`` steps of pixel loss in W from ``w_avg``, no early stop.

    Example:
        >>> from latent_transforms import GanBundle, GanConfig
        >>> bundle = GanBundle.random(GanConfig(resolution=16, channel_base=256, channel_max=32))
        >>> demo_projector(bundle, 5).settings()["perceptual"] is None
        True
    """
    return Projector(bundle, steps=steps, perceptual=None, patience=None, device=device, progress=progress)
