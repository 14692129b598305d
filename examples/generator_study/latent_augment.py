"""LatentAugment's walks of the real training images with a generator's face (utility and sample grid).

The study measures LatentAugment (Tronchin et al. 2023) over the class-conditional GAN the way Xing et al.
2023 measure a generator: its fidelity, variety and efficiency with ``evaluate_policies`` (a
``latentaugment`` policy walks the inverted training images, each with its own class), and its utility with a
labelled synthetic set of walks, added to the real training images (augmentation) or pretrained on
(feature extraction). :func:`~latent_transforms.tasks.classifier_utility` draws such a set from anything
that answers ``sample(n, labels, seed=...)``; LatentAugment is a transform of the images it is given, so
the library applies it online to the training batches instead (``evaluate --utility classifier``) and has
no feature-extraction utility for it. :class:`InvertedTrainingImages` gives LatentAugment that face: the
walks of training images of the requested classes, made by
:func:`~latent_transforms.evaluation.generate_samples` (each image walked from its own inverted latent,
the discriminator told its class).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from latent_transforms import ConfigError, RandomTransform
from latent_transforms.checks import check_class_labels
from latent_transforms.evaluation import generate_samples


class InvertedTrainingImages:
    """Walks of the real training images, each with its own class, answering ``sample(n, labels, seed=...)``.

    Args:
        transform: the :class:`~latent_transforms.LatentAugment` whose cache holds every image's latent
            (``p = 1``, ``value_range="generator"``).
        images: the real training images ``[N, C, R, R]`` in ``[-1, 1]`` (CPU).
        labels: their classes ``[N]`` int64.
        keys: their dataset keys, when the cache is keyed by them (default: looked up by content).
        batch_size: images walked together.
        device: where the walk runs.

    Example:
        Any transform of images answers this way; StandardDA (which has no use for the classes) keeps it
        short:

        >>> from latent_transforms import StandardDA
        >>> images = torch.rand(6, 1, 8, 8) * 2 - 1
        >>> walks = InvertedTrainingImages(StandardDA(), images, torch.tensor([0, 1, 1, 0, 1, 1]))
        >>> walks.sample(5, 1, seed=0).shape, torch.equal(walks.sample(3, seed=2), walks.sample(3, seed=2))
        (torch.Size([5, 1, 8, 8]), True)
    """

    def __init__(
        self,
        transform: RandomTransform,
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
        self.images = images
        self.labels = torch.as_tensor(labels).long().reshape(-1).cpu()
        self.keys = list(keys) if keys is not None else None
        self.batch_size = batch_size
        self.device = torch.device(device)

    def __repr__(self) -> str:
        return f"InvertedTrainingImages(images={len(self.images)}, transform={self.transform!r})"

    def walks(self, members: torch.Tensor, n: int, seed: int) -> torch.Tensor:
        """``n`` walks of the training images ``members`` (indices), each once before any repeats."""
        return generate_samples(
            self.transform,
            n,
            sources=self.images[members],
            source_keys=[self.keys[i] for i in members.tolist()] if self.keys is not None else None,
            source_labels=self.labels[members],
            batch_size=self.batch_size,
            seed=seed,
            device=self.device,
        )

    def sample(self, n: int, labels: torch.Tensor | int | None = None, *, seed: int = 0) -> torch.Tensor:
        """``n`` walked training images ``[n, C, R, R]`` in ``[-1, 1]`` on CPU; with ``labels`` (one class
        or ``n``), the ``i``-th a walk of a training image of class ``labels[i]``, else of the training
        images in a seeded order. The same seed gives the same images."""
        if labels is None:
            return self.walks(torch.arange(len(self.images)), n, seed)
        wanted = check_class_labels(labels, n, int(self.labels.max()) + 1)
        assert wanted is not None
        classes = wanted.unique().tolist()
        # one seed per class, drawn from ``seed``: the walks of one class do not repeat another's draws
        seeds = torch.randint(2**62, (max(classes) + 1,), generator=torch.Generator().manual_seed(seed))
        out: torch.Tensor | None = None
        for c in classes:
            members = (self.labels == c).nonzero().flatten()
            if len(members) == 0:
                raise ConfigError(f"no training image of class {c}")
            slots = (wanted == c).nonzero().flatten()
            walked = self.walks(members, len(slots), int(seeds[c]))
            if out is None:
                out = walked.new_empty((n, *walked.shape[1:]))
            out[slots] = walked
        assert out is not None
        return out
