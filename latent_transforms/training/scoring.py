"""Scoring generators during and after training: FID (for checkpoint selection) and precision/recall."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch.utils.data import Dataset
from tqdm.auto import tqdm

from latent_transforms.errors import ConfigError
from latent_transforms.features.extractor import FeatureExtractor
from latent_transforms.features.registry import feature_network
from latent_transforms.metrics.fid import fid
from latent_transforms.metrics.precision_recall import precision_recall
from latent_transforms.networks.generator import Generator


def _reference_indices(n: int, limit: int | None) -> list[int]:
    if limit is None or n <= limit:
        return list(range(n))
    return torch.linspace(0, n - 1, limit).round().long().tolist()  # evenly spread: every patient counts


@torch.no_grad()
def embed_dataset(
    images: Dataset,
    extractor: FeatureExtractor,
    *,
    limit: int | None = None,
    batch_size: int = 64,
    device: torch.device | str | None = None,
    progress: bool = False,
) -> torch.Tensor:
    """Embeddings ``[N, C', D]`` (CPU, float32) of a dataset of ``(image [C, R, R] in [-1, 1], label)``.

    ``limit`` takes that many images spread evenly over the dataset (``None`` = all).
    """
    indices = _reference_indices(len(images), limit)
    device = torch.device(device) if device is not None else extractor.device
    out = []
    for start in tqdm(range(0, len(indices), batch_size), desc="embedding real images", disable=not progress):
        batch = torch.stack([images[i][0] for i in indices[start : start + batch_size]]).to(device)
        out.append(extractor.embed(batch).float().cpu())
    return torch.cat(out)


@torch.no_grad()
def embed_generator(
    G: Generator,
    extractor: FeatureExtractor,
    n: int,
    *,
    seed: int = 0,
    batch_size: int = 64,
    truncation_psi: float = 1.0,
    labels: torch.Tensor | None = None,
    progress: bool = False,
) -> torch.Tensor:
    """Embeddings ``[n, C', D]`` of ``n`` seeded samples of ``G`` (constant noise; labels drawn from
    ``labels``, the real label list, when ``G`` is conditional)."""
    device = next(G.parameters()).device
    gen = torch.Generator().manual_seed(seed)
    was_training = G.training
    G.eval()
    out = []
    try:
        for start in tqdm(range(0, n, batch_size), desc="embedding samples", disable=not progress):
            b = min(batch_size, n - start)
            z = torch.randn(b, G.z_dim, generator=gen).to(device)
            c = None
            if G.c_dim > 0:
                pool = labels if labels is not None and len(labels) else torch.arange(G.c_dim)
                pick = pool[torch.randint(len(pool), (b,), generator=gen)]
                c = F.one_hot(pick.long(), G.c_dim).float().to(device)
            images = G(z, c, truncation_psi=truncation_psi)
            out.append(extractor.embed(images.to(extractor.device)).float().cpu())
    finally:
        G.train(was_training)
    return torch.cat(out)


@torch.no_grad()
def embed_samples(
    model: Any,
    extractor: FeatureExtractor,
    n: int,
    *,
    seed: int = 0,
    batch_size: int = 64,
    labels: torch.Tensor | None = None,
    num_classes: int = 0,
    progress: bool = False,
) -> torch.Tensor:
    """Embeddings ``[n, C', D]`` of ``n`` seeded samples of any generator with the library's common face,
    ``model.sample(b, labels=..., generator=...)`` in ``[-1, 1]`` (a diffusion bundle, a GAN bundle).

    For a conditional model (``num_classes > 0``) the classes are drawn from ``labels`` (the real label
    list, so the class balance matches the real images) or uniformly.

    Example:
        >>> from latent_transforms.features.registry import feature_network
        >>> class Noise:
        ...     def sample(self, n, labels=None, *, generator=None):
        ...         return torch.rand(n, 1, 16, 16, generator=generator) * 2 - 1
        >>> embed_samples(Noise(), feature_network("random"), 5, batch_size=2).shape[0]
        5
    """
    gen = torch.Generator().manual_seed(seed)
    out = []
    for start in tqdm(range(0, n, batch_size), desc="embedding samples", disable=not progress):
        b = min(batch_size, n - start)
        pick = None
        if num_classes > 0:
            pool = labels if labels is not None and len(labels) else torch.arange(num_classes)
            pick = pool[torch.randint(len(pool), (b,), generator=gen)].long()
        images = model.sample(b, labels=pick, generator=gen)
        out.append(extractor.embed(images.to(extractor.device)).float().cpu())
    return torch.cat(out)


class FidScorer:
    """Scores a generator by FID against fixed real images, per modality and their mean (``"fid"``).

    The generator is a StyleGAN2 :class:`Generator`, or anything with the library's common sampling face,
    ``sample(n, labels=..., generator=...)`` in ``[-1, 1]`` and a ``config.c_dim`` (e.g. a
    :class:`~latent_transforms.DiffusionBundle`; the diffusion trainer scores its EMA model so).

    The real embeddings are computed once (first call) and reused; the generated samples use a fixed
    seed, so successive checkpoints are compared on the same latents.

    Args:
        reference: dataset of ``(image [C, R, R] in [-1, 1], label)`` (e.g. the training images, or
            held-out patients).
        extractor: a feature network name (``"efficientnet-lite0"`` works offline) or extractor.
        modalities: channel names for the result keys.
        n_samples: generated images per score.
        max_reference: at most this many real images (evenly spread).
        device: where the feature network runs.
        seed: seed of the generated samples.

    Example:
        >>> from latent_transforms.training.data import TensorImages
        >>> from latent_transforms.networks.config import GanConfig
        >>> ref = TensorImages(torch.rand(16, 2, 16, 16) * 2 - 1, torch.zeros(16, dtype=torch.long))
        >>> scorer = FidScorer(ref, "random", ["mri", "ct"], n_samples=16)
        >>> G = Generator(GanConfig(resolution=16, channel_base=128, channel_max=16, z_dim=8, w_dim=8))
        >>> sorted(scorer(G))
        ['ct', 'fid', 'mri']
    """

    def __init__(
        self,
        reference: Dataset,
        extractor: str | FeatureExtractor = "efficientnet-lite0",
        modalities: Sequence[str] | None = None,
        *,
        n_samples: int = 2_000,
        max_reference: int | None = 10_000,
        device: torch.device | str | None = None,
        seed: int = 0,
        batch_size: int = 64,
        progress: bool = False,
    ) -> None:
        if isinstance(extractor, str) and extractor.strip().lower() == "discriminator":
            raise ConfigError(
                "the discriminator changes during training, so its features cannot compare checkpoints; "
                "score with 'efficientnet-lite0' (offline) or another fixed network."
            )
        self.reference = reference
        self.extractor = feature_network(extractor, device=device)
        self.modalities = list(modalities) if modalities is not None else None
        self.n_samples = n_samples
        self.max_reference = max_reference
        self.seed = seed
        self.batch_size = batch_size
        self.progress = progress
        self._real: torch.Tensor | None = None
        self._labels: torch.Tensor | None = None

    def real_features(self) -> torch.Tensor:
        """The real embeddings ``[N, C', D]`` (computed on first use)."""
        if self._real is None:
            self._real = embed_dataset(
                self.reference,
                self.extractor,
                limit=self.max_reference,
                batch_size=self.batch_size,
                progress=self.progress,
            )
            idx = _reference_indices(len(self.reference), self.max_reference)
            self._labels = torch.tensor([int(self.reference[i][1]) for i in idx])
        return self._real

    def modality_names(self, count: int) -> list[str]:
        """The result keys for ``count`` embedding channels: the modalities, ``"mri+ct"`` for one joint
        embedding, ``channel<i>`` without modality names."""
        if self.modalities is None:
            return [f"channel{i}" for i in range(count)]
        if count == 1 and len(self.modalities) > 1:
            return ["+".join(self.modalities)]
        return list(self.modalities)

    def fake_features(self, G: Any) -> torch.Tensor:
        """Embeddings ``[n_samples, C', D]`` of the generator's seeded samples."""
        real = self.real_features()
        del real
        return self._embed_fakes(G, self.n_samples, self.batch_size, progress=self.progress)

    def _embed_fakes(self, G: Any, n: int, batch_size: int, *, progress: bool = False) -> torch.Tensor:
        if not isinstance(G, Generator):
            return embed_samples(
                G,
                self.extractor,
                n,
                seed=self.seed,
                batch_size=batch_size,
                labels=self._labels,
                num_classes=int(G.config.c_dim),
                progress=progress,
            )
        return embed_generator(
            G,
            self.extractor,
            n,
            seed=self.seed,
            batch_size=batch_size,
            labels=self._labels,
            progress=progress,
        )

    def estimate_seconds(self, G: Any) -> float:
        """About how long a call takes from now on, without making one: the real embeddings are computed
        (once, as the first call would), then one batch of samples is embedded and one FID computed, and
        the time is scaled to ``n_samples`` and every channel. ``Trainer.run(max_minutes=...)`` and
        ``DiffusionTrainer.run(max_minutes=...)`` keep this much of their budget for the last scoring.
        ``G`` is what a call takes: a :class:`Generator` or a model with the common sampling face.

        Example:
            >>> from latent_transforms.training.data import TensorImages
            >>> from latent_transforms.networks.config import GanConfig
            >>> ref = TensorImages(torch.rand(8, 2, 16, 16) * 2 - 1, torch.zeros(8, dtype=torch.long))
            >>> scorer = FidScorer(ref, "random", ["mri", "ct"], n_samples=16, batch_size=4)
            >>> G = Generator(GanConfig(resolution=16, channel_base=128, channel_max=16, z_dim=8, w_dim=8))
            >>> scorer.estimate_seconds(G) > 0
            True
        """
        real = self.real_features()
        batch = min(self.batch_size, self.n_samples)
        started = time.perf_counter()
        self._embed_fakes(G, batch, batch)
        sampling = (time.perf_counter() - started) * math.ceil(self.n_samples / batch)
        started = time.perf_counter()
        fid(real[:, 0], real[:, 0])  # what one channel's FID costs (its matrix square root)
        return sampling + (time.perf_counter() - started) * real.shape[1]

    def __call__(self, G: Any) -> dict[str, float]:
        real = self.real_features()
        fake = self.fake_features(G)
        names = self.modality_names(real.shape[1])
        scores = {name: fid(real[:, c], fake[:, c]) for c, name in enumerate(names)}
        scores["fid"] = sum(scores.values()) / len(names)
        return scores

    def __repr__(self) -> str:
        return (
            f"FidScorer(extractor={self.extractor.name!r}, reference={len(self.reference)}, "
            f"n_samples={self.n_samples}, max_reference={self.max_reference}, seed={self.seed})"
        )


def evaluate_generator(G: Generator, scorer: FidScorer, *, k: int = 3) -> dict[str, Any]:
    """FID, improved precision/recall (k-NN, ``k`` = 3) and F1 per modality, plus their means.

    Example:
        >>> from latent_transforms.training.data import TensorImages
        >>> from latent_transforms.networks.config import GanConfig
        >>> ref = TensorImages(torch.rand(16, 2, 16, 16) * 2 - 1, torch.zeros(16, dtype=torch.long))
        >>> G = Generator(GanConfig(resolution=16, channel_base=128, channel_max=16, z_dim=8, w_dim=8))
        >>> result = evaluate_generator(G, FidScorer(ref, "random", ["mri", "ct"], n_samples=16))
        >>> sorted(result["mean"])
        ['f1', 'fid', 'precision', 'recall']
    """
    real = scorer.real_features()
    fake = scorer.fake_features(G)
    names = scorer.modality_names(real.shape[1])
    result: dict[str, Any] = {}
    for c, name in enumerate(names):
        pr = precision_recall(real[:, c], fake[:, c], k=k)
        result[name] = {"fid": fid(real[:, c], fake[:, c]), **pr}
    result["mean"] = {
        key: sum(result[n][key] for n in names) / len(names) for key in ("fid", "precision", "recall", "f1")
    }
    result["feature_network"] = scorer.extractor.name
    result["n_real"] = int(real.shape[0])
    result["n_generated"] = int(fake.shape[0])
    return result
