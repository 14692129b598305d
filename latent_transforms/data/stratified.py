"""Stratified splits of labelled data: every part keeps the class proportions of the whole."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch.utils.data import Subset

from latent_transforms.errors import ConfigError

__all__ = ["stratified_indices", "stratified_split"]


def _labels_of(data: Any) -> torch.Tensor:
    labels = getattr(data, "labels", data)
    return torch.as_tensor(labels).reshape(-1).long()


def stratified_indices(labels: Any, fractions: Sequence[float], *, seed: int = 0) -> list[list[int]]:
    """Split the indices ``0..N-1`` into ``len(fractions)`` parts with the class proportions kept.

    Within each class the indices are shuffled with ``seed`` and cut by ``fractions`` (largest
    remainder, so the parts of a class add up to its size); each part is returned sorted.

    Args:
        labels: ``[N]`` class indices, or a dataset with a ``labels`` attribute.
        fractions: non-negative shares summing to 1 (e.g. ``(0.8, 0.2)``).
        seed: the shuffle's seed.

    Example:
        >>> parts = stratified_indices([0] * 8 + [1] * 4, (0.5, 0.5), seed=0)
        >>> [len(p) for p in parts], sorted(parts[0] + parts[1]) == list(range(12))
        ([6, 6], True)
    """
    y = _labels_of(labels)
    shares = [float(f) for f in fractions]
    if not shares or any(f < 0 for f in shares) or abs(sum(shares) - 1.0) > 1e-6:
        raise ConfigError(f"fractions must be non-negative and sum to 1; got {tuple(fractions)}.")
    gen = torch.Generator().manual_seed(seed)
    parts: list[list[int]] = [[] for _ in shares]
    for cls in torch.unique(y).tolist():
        members = (y == cls).nonzero().flatten()
        members = members[torch.randperm(len(members), generator=gen)].tolist()
        exact = [f * len(members) for f in shares]
        counts = [int(e) for e in exact]
        for i in sorted(range(len(shares)), key=lambda i: counts[i] - exact[i])[: len(members) - sum(counts)]:
            counts[i] += 1
        start = 0
        for part, count in zip(parts, counts, strict=True):
            part.extend(members[start : start + count])
            start += count
    return [sorted(p) for p in parts]


def stratified_split(data: Any, fractions: Sequence[float], *, seed: int = 0) -> list[Subset[Any]]:
    """:func:`stratified_indices` as ``torch.utils.data.Subset`` views of ``data`` (which has ``labels``).

    Example:
        >>> import numpy as np
        >>> from latent_transforms.data.classification import LabelledImages
        >>> ds = LabelledImages(np.zeros((10, 4, 4), np.uint8), [0] * 6 + [1] * 4)
        >>> half, rest = stratified_split(ds, (0.5, 0.5))
        >>> len(half), sorted(ds.labels[half.indices].tolist())
        (5, [0, 0, 0, 1, 1])
    """
    return [Subset(data, idx) for idx in stratified_indices(data, fractions, seed=seed)]
