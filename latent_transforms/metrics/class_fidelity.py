"""Fidelity of a class-conditional generator per class: FID and improved precision / recall of each class's
samples against the real images of that class, and over all classes.

A conditional generator can be faithful overall yet cover a minority class poorly; per-class numbers show
it (Xue et al. 2021 choose checkpoints per class; Xing et al. 2023 read precision and recall as fidelity
and variety). Each class gets as many samples as it has real images, so the overall numbers compare sets
of the same class mix.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Protocol

import torch

from latent_transforms.errors import ConfigError
from latent_transforms.metrics.fid import fid
from latent_transforms.metrics.precision_recall import precision_recall

__all__ = ["ClassSampler", "class_fidelity"]


class _Embedder(Protocol):
    def embed(self, images: torch.Tensor) -> torch.Tensor: ...


#: ``sample(n, label, seed)`` -> ``[n, C, H, W]`` images of class ``label`` in ``[-1, 1]``.
ClassSampler = Callable[[int, int, int], torch.Tensor]


@torch.no_grad()
def class_fidelity(
    sample: ClassSampler,
    real: torch.Tensor,
    labels: torch.Tensor,
    extractor: _Embedder,
    *,
    k: int = 3,
    seed: int = 0,
) -> dict[str, Any]:
    """FID, precision, recall and F1 per class and over all classes.

    Args:
        sample: ``sample(n, label, seed) -> [n, C, H, W]`` in ``[-1, 1]``: ``n`` generated images of class
            ``label`` (called once per class with ``seed + label``; clamped to ``[-1, 1]`` here).
        real: the real images ``[N, C, H, W]`` in ``[-1, 1]``.
        labels: their classes ``[N]`` (integers).
        extractor: a feature network with ``embed(images) -> [B, M, D]`` (M modalities; the first is used,
            as for single-modality images), e.g. ``feature_network("efficientnet-lite0")`` or the task
            classifier's ``classifier_features(model)``.
        k: the neighbour of the precision / recall radii (3 in Kynkäänniemi et al. 2019). Every class needs
            more than ``k`` real images.
        seed: base seed of the draws.

    Returns:
        ``{"fid", "precision", "recall", "f1", "per_class": {"<label>": {"fid", "precision", "recall",
        "f1", "n"}}, "seconds_per_1000"}``: ``seconds_per_1000`` is the sampling time per 1,000 images.

    Example:
        >>> from latent_transforms.features import feature_network
        >>> g = torch.Generator().manual_seed(0)
        >>> real = torch.rand(24, 1, 16, 16, generator=g) * 2 - 1
        >>> labels = torch.arange(24) % 2
        >>> same = lambda n, label, seed: real[labels == label]  # a "generator" that copies the data
        >>> out = class_fidelity(same, real, labels, feature_network("random"), k=3)
        >>> scores = out["per_class"].get("1")
        >>> scores["precision"], scores["recall"], scores["n"]
        (1.0, 1.0, 12)
    """
    labels = torch.as_tensor(labels).long().flatten()
    if real.ndim != 4 or len(real) != len(labels):
        raise ConfigError(
            f"expected real images [N, C, H, W] and N labels; got {tuple(real.shape)} and "
            f"{len(labels)} labels."
        )
    per_class: dict[str, Any] = {}
    all_real, all_fake = [], []
    seconds = 0.0
    for label in sorted(set(labels.tolist())):
        x = real[labels == label]
        if len(x) <= k:
            raise ConfigError(
                f"class {label} has {len(x)} real images; precision / recall with k = {k} need more than {k}."
            )
        start = time.perf_counter()
        fake = sample(len(x), int(label), seed + int(label))
        seconds += time.perf_counter() - start
        if fake.shape != x.shape:
            raise ConfigError(
                f"sample({len(x)}, {label}, ...) gave {tuple(fake.shape)}; expected {tuple(x.shape)} like "
                "the real images of the class."
            )
        fr = extractor.embed(x)[:, 0]
        ff = extractor.embed(fake.float().clamp(-1, 1))[:, 0]
        per_class[str(label)] = {"fid": fid(fr, ff), **precision_recall(fr, ff, k=k), "n": len(x)}
        all_real.append(fr)
        all_fake.append(ff)
    fr, ff = torch.cat(all_real), torch.cat(all_fake)
    return {
        "fid": fid(fr, ff),
        **precision_recall(fr, ff, k=k),
        "per_class": per_class,
        "seconds_per_1000": 1000 * seconds / len(fr),
    }
