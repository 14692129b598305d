"""LatentAugment on labelled images with the generators' face, and its samples written as a folder.

``latent-transforms evaluate`` cannot run LatentAugment with a class-conditional GAN on labelled images:
its ``latentaugment`` policy walks the source images without their classes, and the fidelity term of a
conditional discriminator needs each image's class. :class:`InvertedTrainingImages` does the walk the way
the method defines it (Tronchin et al. 2023) with the class kept: each real training image is walked from
its own inverted latent, the discriminator told the image's class. It answers ``sample(n, labels,
seed=...)`` like a generator bundle, so the library's utility protocols and efficiency measurement take it
as they take the GAN and the diffusion model, and :func:`write_sample_folder` hands its samples to
``evaluate`` as a ``dir:`` policy, measured by the same code as every other row.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from latent_transforms import GanBundle, LatentAugment
from latent_transforms.export import write_slice


class InvertedTrainingImages:
    """LatentAugment walks of the real training images, each with its own class, as a generator.

    Args:
        transform: the :class:`~latent_transforms.LatentAugment` whose cache holds every image's latent.
        bundle: its GAN bundle (``config.c_dim`` classes).
        images: the real training images ``[N, C, R, R]`` in ``[-1, 1]`` (CPU).
        labels: their classes ``[N]``.
        keys: their dataset keys, when the cache is keyed by them (default: looked up by content).
        batch_size: images walked together.
        device: where the walk runs.
    """

    def __init__(
        self,
        transform: LatentAugment,
        bundle: GanBundle,
        images: torch.Tensor,
        labels: torch.Tensor,
        *,
        keys: Sequence[str] | None = None,
        batch_size: int = 16,
        device: torch.device | str = "cpu",
    ) -> None:
        if len(images) != len(labels) or (keys is not None and len(keys) != len(images)):
            raise ValueError(f"{len(images)} images, {len(labels)} labels and keys must match")
        self.transform = transform
        self.config = bundle.config
        self.images = images
        self.labels = labels.long().reshape(-1)
        self.keys = list(keys) if keys is not None else None
        self.batch_size = batch_size
        self.device = torch.device(device)

    def __repr__(self) -> str:
        return f"InvertedTrainingImages(images={len(self.images)}, transform={self.transform!r})"

    def pick(self, n: int, labels: torch.Tensor | int | None, seed: int) -> torch.Tensor:
        """Indices of ``n`` training images: in a seeded order, each once before any repeats; with
        ``labels``, the ``i``-th of the requested class."""
        g = torch.Generator().manual_seed(seed)
        if labels is None:
            cycles = -(-n // len(self.images))
            return torch.cat([torch.randperm(len(self.images), generator=g) for _ in range(cycles)])[:n]
        wanted = torch.as_tensor(labels).long().reshape(-1)
        if wanted.numel() == 1:
            wanted = wanted.expand(n)
        if len(wanted) != n:
            raise ValueError(f"expected one label or {n} labels, got {len(wanted)}")
        out = torch.empty(n, dtype=torch.long)
        for c in wanted.unique().tolist():
            members = (self.labels == c).nonzero().flatten()
            if len(members) == 0:
                raise ValueError(f"no training image of class {c}")
            slots = (wanted == c).nonzero().flatten()
            cycles = -(-len(slots) // len(members))
            order = torch.cat([members[torch.randperm(len(members), generator=g)] for _ in range(cycles)])
            out[slots] = order[: len(slots)]
        return out

    def sample(self, n: int, labels: torch.Tensor | int | None = None, *, seed: int = 0) -> torch.Tensor:
        """``n`` walked training images ``[n, C, R, R]`` in ``[-1, 1]`` on CPU, of the classes ``labels``
        (default: the training images' own, in a seeded order); the same seed gives the same images."""
        picks = self.pick(n, labels, seed)
        positions = torch.Generator().manual_seed(seed + 1)
        out = []
        for start in range(0, n, self.batch_size):
            idx = picks[start : start + self.batch_size]
            x = self.images[idx].to(self.device)
            c = F.one_hot(self.labels[idx], self.config.c_dim).float().to(self.device)
            keys = [self.keys[i] for i in idx.tolist()] if self.keys is not None else None
            walked = self.transform.augment(x, keys=keys, generator=positions, c=c)
            out.append(walked.detach().float().cpu().clamp(-1.0, 1.0))
        return torch.cat(out)


def write_sample_folder(images: torch.Tensor, bundle: GanBundle, folder: Path, note: dict[str, Any]) -> Path:
    """Write ``images`` (``[N, C, R, R]`` in ``[-1, 1]``) as a folder of NPZ slices in physical units, the
    layout ``evaluate`` reads as a ``dir:`` policy; ``note`` goes into its ``augment.json``. Replaces
    what was there."""
    if folder.exists():
        shutil.rmtree(folder)
    physical = bundle.denormalize(images)
    for i in range(len(images)):
        for c, modality in enumerate(bundle.modalities):
            write_slice(
                folder / modality / f"synthetic_{i:06d}", modality, physical[i, c], images[i, c], "npz"
            )
    manifest = {
        **note,
        "format": "npz",
        "modalities": list(bundle.modalities),
        "windows": {m.name: m.window.to_dict() for m in bundle.config.modalities},
        "count": len(images),
    }
    (folder / "augment.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return folder
