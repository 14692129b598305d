"""Improved precision and recall of generative models (Kynkäänniemi et al., NeurIPS 2019).

Each set of features approximates its manifold by the union of balls around its samples, the radius of
each ball being the distance to the sample's ``k``-th nearest neighbour in the same set. Precision is
the fraction of generated samples inside the real manifold (fidelity); recall the fraction of real
samples inside the generated manifold (coverage of the real distribution).

Distances are computed on blocks of ``chunk_size x chunk_size`` pairs, so memory stays bounded for any
number of samples, in float64 from ``|a|^2 + |b|^2 - 2 a.b``. ``chunk_size`` changes nothing but
memory and speed (at most the last bit of a distance, which matters only for a sample lying exactly on
a ball's boundary; with values exact in float64, such as float32 features of small integers, nothing).
"""

from __future__ import annotations

import torch

from latent_transforms.errors import ConfigError

DEFAULT_CHUNK_SIZE = 1024


def _squared_distances(
    a: torch.Tensor, b: torch.Tensor, a_sq: torch.Tensor, b_sq: torch.Tensor
) -> torch.Tensor:
    return (a_sq[:, None] + b_sq[None, :] - 2.0 * (a @ b.T)).clamp_(min=0.0)


def _check(features: torch.Tensor, what: str, k: int | None = None) -> torch.Tensor:
    if not isinstance(features, torch.Tensor) or features.ndim != 2:
        got = tuple(features.shape) if isinstance(features, torch.Tensor) else type(features).__name__
        raise ConfigError(
            f"expected {what} features [N, D], got {got}. Fix: pass one row per sample (for [B, C, D] "
            "embeddings, one modality at a time: features[:, c])."
        )
    if k is not None and features.shape[0] <= k:
        raise ConfigError(
            f"expected more than k={k} {what} samples (each needs k neighbours), got {features.shape[0]}. "
            "Fix: use more samples or a smaller k."
        )
    return features.detach().to(dtype=torch.float64)


def knn_radii(features: torch.Tensor, k: int = 3, *, chunk_size: int = DEFAULT_CHUNK_SIZE) -> torch.Tensor:
    """Distance from each sample to its ``k``-th nearest neighbour in the same set ``[N]`` (float64).

    The sample itself does not count (it is its own 0-th neighbour); exact duplicates do. Memory is
    ``O(chunk_size^2 + N k)``.

    Example:
        >>> knn_radii(torch.tensor([[0.0], [1.0], [3.0], [7.0]]), k=2).tolist()
        [3.0, 2.0, 3.0, 6.0]
    """
    if k < 1 or chunk_size < 1:
        raise ConfigError(f"expected k >= 1 and chunk_size >= 1, got k={k}, chunk_size={chunk_size}.")
    x = _check(features, "the", k)
    sq = x.square().sum(dim=1)
    n = x.shape[0]
    radii = torch.empty(n, dtype=torch.float64, device=x.device)
    for i in range(0, n, chunk_size):
        rows = slice(i, i + chunk_size)
        best = None  # the k + 1 smallest squared distances per row seen so far (self included)
        for j in range(0, n, chunk_size):
            cols = slice(j, j + chunk_size)
            d2 = _squared_distances(x[rows], x[cols], sq[rows], sq[cols])
            if i == j:  # a diagonal block: a sample is exactly 0 from itself (round-off may say 1e-16)
                d2.fill_diagonal_(0.0)
            cand = d2 if best is None else torch.cat([best, d2], dim=1)
            best = cand.topk(min(k + 1, cand.shape[1]), dim=1, largest=False).values
        assert best is not None
        radii[rows] = best[:, k].sqrt()
    return radii


def manifold_coverage(
    queries: torch.Tensor,
    reference: torch.Tensor,
    reference_radii: torch.Tensor,
    *,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> torch.Tensor:
    """For each query, whether it lies in at least one reference ball: ``[M]`` bool.

    Query ``q`` is inside when ``|q - r_i| <= radius_i`` for some reference sample ``r_i``.

    Example:
        >>> ref = torch.tensor([[0.0], [10.0]])
        >>> manifold_coverage(torch.tensor([[0.5], [5.0], [11.0]]), ref, torch.tensor([1.0, 1.0])).tolist()
        [True, False, True]
    """
    q = _check(queries, "query")
    r = _check(reference, "reference")
    if q.shape[1] != r.shape[1] or reference_radii.shape != (r.shape[0],):
        raise ConfigError(
            f"expected queries [M, D], reference [N, D] and radii [N] with one D and N, got "
            f"{tuple(q.shape)}, {tuple(r.shape)}, {tuple(reference_radii.shape)}."
        )
    radii_sq = reference_radii.to(device=r.device, dtype=torch.float64).square()
    q_sq, r_sq = q.square().sum(dim=1), r.square().sum(dim=1)
    inside = torch.zeros(q.shape[0], dtype=torch.bool, device=q.device)
    for i in range(0, q.shape[0], chunk_size):
        rows = slice(i, i + chunk_size)
        for j in range(0, r.shape[0], chunk_size):
            cols = slice(j, j + chunk_size)
            d2 = _squared_distances(q[rows], r[cols], q_sq[rows], r_sq[cols])
            inside[rows] |= (d2 <= radii_sq[None, cols]).any(dim=1)
    return inside


def precision_recall(
    real: torch.Tensor, fake: torch.Tensor, k: int = 3, *, chunk_size: int = DEFAULT_CHUNK_SIZE
) -> dict[str, float]:
    """Improved precision, recall and their F1 score of generated features against real ones.

    Args:
        real: real-image features ``[N, D]`` (any float dtype; computed in float64).
        fake: generated-image features ``[M, D]``.
        k: the neighbour whose distance sets each sample's radius (3 in the paper). Needs ``N, M > k``.
        chunk_size: rows and columns per block of pairwise distances (memory ``~ 8 chunk_size^2``
            bytes); any value gives the same result.

    Returns:
        ``{"precision", "recall", "f1"}``, each in ``[0, 1]``: precision = fraction of ``fake`` inside the
        real manifold, recall = fraction of ``real`` inside the generated manifold, f1 their harmonic
        mean (0 when both are 0).

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> real = torch.randn(200, 8, generator=g)
        >>> precision_recall(real, real)
        {'precision': 1.0, 'recall': 1.0, 'f1': 1.0}
        >>> far = precision_recall(real, real + 100.0)
        >>> far["precision"], far["recall"]
        (0.0, 0.0)
    """
    real64 = _check(real, "real", k)
    fake64 = _check(fake, "generated", k)
    if real64.shape[1] != fake64.shape[1]:
        raise ConfigError(
            f"expected real and generated features of the same dimension, got {tuple(real64.shape)} and "
            f"{tuple(fake64.shape)}. Fix: embed both with the same feature network."
        )
    real_radii = knn_radii(real64, k, chunk_size=chunk_size)
    fake_radii = knn_radii(fake64, k, chunk_size=chunk_size)
    precision = manifold_coverage(fake64, real64, real_radii, chunk_size=chunk_size).double().mean().item()
    recall = manifold_coverage(real64, fake64, fake_radii, chunk_size=chunk_size).double().mean().item()
    f1 = 0.0 if precision + recall == 0 else 2.0 * precision * recall / (precision + recall)
    return {"precision": precision, "recall": recall, "f1": f1}
