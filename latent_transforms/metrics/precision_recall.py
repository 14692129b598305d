"""Improved precision and recall (Kynkäänniemi et al., NeurIPS 2019) and density and coverage (Naeem et
al., ICML 2020) of generative models.

Each set of features approximates its manifold by the union of balls around its samples, the radius of
each ball being the distance to the sample's ``k``-th nearest neighbour in the same set. Precision is
the fraction of generated samples inside the real manifold (fidelity); recall the fraction of real
samples inside the generated manifold (coverage of the real distribution). Density counts how many real
balls each generated sample falls in (divided by ``k``; its expectation is 1 when both sets come from
one distribution), coverage is the fraction of real balls holding at least one generated sample: both
use only the real balls, so a few outliers among the generated samples cannot inflate them.

Balls are closed (a sample exactly on the boundary is inside) for all four; the authors' reference code
uses ``<`` for density and coverage, which differs only on exact ties (a set of measure zero for
continuous features).

Distances are computed on blocks of ``chunk_size x chunk_size`` pairs, so memory stays bounded for any
number of samples, in float64 from ``|a|^2 + |b|^2 - 2 a.b``. ``chunk_size`` changes nothing but
memory and speed (at most the last bit of a distance, which matters only for a sample lying exactly on
a ball's boundary; with values exact in float64, such as float32 features of small integers, nothing).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from latent_transforms.errors import ConfigError
from latent_transforms.features import FeatureExtractor
from latent_transforms.metrics.fid import modality_names

DEFAULT_CHUNK_SIZE = 1024


def _squared_distances(
    a: torch.Tensor, b: torch.Tensor, a_sq: torch.Tensor, b_sq: torch.Tensor
) -> torch.Tensor:
    return (a_sq[:, None] + b_sq[None, :] - 2.0 * (a @ b.T)).clamp_(min=0.0)


def _check(
    features: torch.Tensor, what: str, k: int | None = None, device: torch.device | None = None
) -> torch.Tensor:
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
    return features.detach().to(device=device, dtype=torch.float64)


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


#: The keys of :func:`manifold_metrics` and of each modality in :meth:`PrecisionRecall.compute`.
MANIFOLD_METRICS: tuple[str, ...] = ("precision", "recall", "f1", "density", "coverage")


def _pair(
    real: torch.Tensor,
    fake: torch.Tensor,
    k: int,
    chunk_size: int,
    *,
    fake_needs_k: bool,
    device: str | torch.device | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Validate both sets and return them in float64 on one device (``device``, else ``real``'s)."""
    if k < 1 or chunk_size < 1:
        raise ConfigError(f"expected k >= 1 and chunk_size >= 1, got k={k}, chunk_size={chunk_size}.")
    if device is None and isinstance(real, torch.Tensor):
        device = real.device
    target = torch.device(device) if device is not None else None
    real64 = _check(real, "real", k, target)
    fake64 = _check(fake, "generated", k if fake_needs_k else None, target)
    if fake64.shape[0] == 0:
        raise ConfigError("expected at least 1 generated sample, got 0. Fix: pass generated features.")
    if real64.shape[1] != fake64.shape[1]:
        raise ConfigError(
            f"expected real and generated features of the same dimension, got {tuple(real64.shape)} and "
            f"{tuple(fake64.shape)}. Fix: embed both with the same feature network."
        )
    return real64, fake64


def _real_ball_pass(
    real: torch.Tensor,
    fake: torch.Tensor,
    real_radii: torch.Tensor,
    fake_radii: torch.Tensor | None,
    chunk_size: int,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """One pass over the ``fake x real`` distance blocks.

    Returns, per generated sample, the number of real balls holding it ``[M]`` (int64); per real sample,
    whether its ball holds a generated sample ``[N]``; and, with ``fake_radii``, whether the real sample
    lies in a generated ball ``[N]`` (else ``None``).
    """
    real_r2 = real_radii.to(device=real.device, dtype=torch.float64).square()
    fake_r2 = None if fake_radii is None else fake_radii.to(device=real.device, dtype=torch.float64).square()
    real_sq, fake_sq = real.square().sum(dim=1), fake.square().sum(dim=1)
    counts = torch.zeros(fake.shape[0], dtype=torch.int64, device=real.device)
    covered = torch.zeros(real.shape[0], dtype=torch.bool, device=real.device)
    in_fake = None if fake_r2 is None else torch.zeros_like(covered)
    for i in range(0, fake.shape[0], chunk_size):
        rows = slice(i, i + chunk_size)
        for j in range(0, real.shape[0], chunk_size):
            cols = slice(j, j + chunk_size)
            d2 = _squared_distances(fake[rows], real[cols], fake_sq[rows], real_sq[cols])
            inside = d2 <= real_r2[None, cols]
            counts[rows] += inside.sum(dim=1)
            covered[cols] |= inside.any(dim=0)
            if in_fake is not None and fake_r2 is not None:
                in_fake[cols] |= (d2 <= fake_r2[rows, None]).any(dim=0)
    return counts, covered, in_fake


def density_coverage(
    real: torch.Tensor, fake: torch.Tensor, k: int = 3, *, chunk_size: int = DEFAULT_CHUNK_SIZE
) -> dict[str, float]:
    """Density and coverage of generated features against real ones (Naeem et al. 2020).

    Each real sample ``r_i`` gets the closed ball ``B_i`` of radius its distance to its ``k``-th nearest
    real neighbour (:func:`knn_radii`). For ``M`` generated samples ``f_j``:

    * density ``= (1 / (k M)) sum_j #{i : f_j in B_i}``: how crowded the real neighbourhoods of the
      generated samples are, a fidelity measure. Its expectation is 1 when both sets come from one
      distribution; it exceeds 1 when generated samples pile up in dense real regions.
    * coverage ``= #{i : some f_j in B_i} / N``: the fraction of real samples with a generated sample
      nearby, a diversity measure in ``[0, 1]``; for one distribution and ``M = N`` its expectation is
      about ``1 - 2^-k`` (0.875 for ``k = 3``).

    Args:
        real: real-image features ``[N, D]`` (any float dtype; computed in float64). Needs ``N > k``.
        fake: generated-image features ``[M, D]``, ``M >= 1``, on the same device as ``real`` or one it
            can be copied from.
        k: the neighbour whose distance sets each real radius (5 in the paper; 3 here by default, the
            same as for :func:`precision_recall`).
        chunk_size: rows and columns per block of pairwise distances (memory ``O(chunk_size^2)``);
            any value gives the same result.

    Returns:
        ``{"density", "coverage"}`` as Python floats; density in ``[0, N / k]``, higher means more
        fidelity (about 1 is what a faithful generator gives); coverage in ``[0, 1]``, higher is better.

    Example:
        >>> real = torch.tensor([[0.0], [1.0], [2.0], [3.0]])  # k = 1: every real radius is 1
        >>> density_coverage(real, torch.tensor([[0.5], [10.0]]), k=1)  # 0.5 is in 2 balls, 10 in none
        {'density': 1.0, 'coverage': 0.5}
    """
    real64, fake64 = _pair(real, fake, k, chunk_size, fake_needs_k=False)
    real_radii = knn_radii(real64, k, chunk_size=chunk_size)
    counts, covered, _ = _real_ball_pass(real64, fake64, real_radii, None, chunk_size)
    density = counts.sum().item() / (k * fake64.shape[0])
    return {"density": density, "coverage": covered.double().mean().item()}


def manifold_metrics(
    real: torch.Tensor,
    fake: torch.Tensor,
    k: int = 3,
    *,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    device: str | torch.device | None = None,
) -> dict[str, float]:
    """Precision, recall, F1, density and coverage in one go, computing each set's radii once.

    The same numbers as :func:`precision_recall` and :func:`density_coverage` (up to the last bit of a
    distance, which matters only for a sample exactly on a ball's boundary), in three passes over
    pairwise distances: real-real (real radii), fake-fake (generated radii) and fake-real (all five
    metrics at once).

    Memory: the features in float64, ``8 (N + M) D`` bytes, plus a few ``chunk_size x chunk_size``
    float64 blocks of temporaries (about ``40 chunk_size^2`` bytes: the distance block, the matmul and
    sum temporaries and the running top-k), plus ``O(N + M)`` for radii and flags; nothing grows with
    ``N M``. For ``N = 50,000`` real and ``M = 10,000`` generated 2048-d (Inception) features that is
    ``8 * 60,000 * 2048 = 983 MB`` of features plus ``42 MB`` of blocks at the default ``chunk_size``
    (``670 MB`` at 4096, which is faster on a GPU), plus the float32 inputs if they sit on the same
    device. Time grows as ``(N^2 + M^2 + N M) D``.

    Args:
        real: real-image features ``[N, D]``, ``N > k`` (any float dtype, any device).
        fake: generated-image features ``[M, D]``, ``M > k``.
        k: the neighbour whose distance sets each radius.
        chunk_size: rows and columns per block of pairwise distances; any value gives the same result.
        device: where to compute (e.g. ``"cuda"``); default: the device of ``real``. Features are copied
            there in float64.

    Returns:
        ``{"precision", "recall", "f1", "density", "coverage"}`` as Python floats (see
        :func:`precision_recall` and :func:`density_coverage`).

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> real = torch.randn(200, 8, generator=g)
        >>> result = manifold_metrics(real, real + 100.0)
        >>> tuple(result) == MANIFOLD_METRICS, sum(result.values())
        (True, 0.0)
        >>> manifold_metrics(real, real)["coverage"]
        1.0
    """
    real64, fake64 = _pair(real, fake, k, chunk_size, fake_needs_k=True, device=device)
    real_radii = knn_radii(real64, k, chunk_size=chunk_size)
    fake_radii = knn_radii(fake64, k, chunk_size=chunk_size)
    counts, covered, in_fake = _real_ball_pass(real64, fake64, real_radii, fake_radii, chunk_size)
    assert in_fake is not None
    precision = (counts > 0).double().mean().item()
    recall = in_fake.double().mean().item()
    f1 = 0.0 if precision + recall == 0 else 2.0 * precision * recall / (precision + recall)
    return {
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "density": counts.sum().item() / (k * fake64.shape[0]),
        "coverage": covered.double().mean().item(),
    }


class PrecisionRecall:
    """Streaming precision, recall, F1, density and coverage per modality, from images or features.

    Mirrors :class:`~latent_transforms.metrics.FID`: feed real and generated batches, then
    :meth:`compute`. Unlike FID these metrics need every feature vector (they compare samples with
    each other), so the embeddings are kept, as float32 on the CPU: ``4 (N + M) C' D`` bytes (50,000
    real images of 2 modalities with 1280-d EfficientNet-Lite0 features: 512 MB). :meth:`compute` runs
    :func:`manifold_metrics` on each embedding channel, on ``device``.

    Args:
        extractor: the feature network (:func:`latent_transforms.features.feature_network`); its
            ``name`` and ``fingerprint`` go with the numbers.
        modalities: names for the ``C'`` embedding channels in the result (default ``channel0``, ...);
            with a joint extractor and several names, the single key is the names joined by ``+``.
        k: the neighbour whose distance sets each ball's radius. Needs more than ``k`` samples per side.
        chunk_size: rows and columns per block of pairwise distances (see :func:`manifold_metrics`).
        device: where :meth:`compute` runs (e.g. ``"cuda"``); default: the CPU, where the features are.

    Example:
        >>> from latent_transforms.features import feature_network
        >>> metric = PrecisionRecall(feature_network("random"), modalities=["mri", "ct"])
        >>> g = torch.Generator().manual_seed(0)
        >>> metric.update(torch.rand(8, 2, 32, 32, generator=g) * 2 - 1, real=True)
        >>> metric.update(torch.rand(8, 2, 32, 32, generator=g) * 2 - 1, real=False)
        >>> result = metric.compute()
        >>> sorted(result), sorted(result["mean"])
        (['ct', 'mean', 'mri'], ['coverage', 'density', 'f1', 'precision', 'recall'])
    """

    def __init__(
        self,
        extractor: FeatureExtractor,
        modalities: Sequence[str] | None = None,
        k: int = 3,
        *,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        device: str | torch.device | None = None,
    ) -> None:
        if k < 1 or chunk_size < 1:
            raise ConfigError(
                f"expected k >= 1 and chunk_size >= 1, got k={k}, chunk_size={chunk_size}. "
                "Fix: pass positive integers (k=3 and the default chunk_size are usual)."
            )
        self.extractor = extractor
        self.modalities = list(modalities) if modalities is not None else None
        self.k = k
        self.chunk_size = chunk_size
        self.device = device
        self._real: list[torch.Tensor] = []
        self._fake: list[torch.Tensor] = []

    @property
    def n_real(self) -> int:
        """Number of real images (feature rows) added so far."""
        return sum(f.shape[0] for f in self._real)

    @property
    def n_fake(self) -> int:
        """Number of generated images (feature rows) added so far."""
        return sum(f.shape[0] for f in self._fake)

    def _add(self, features: torch.Tensor, real: bool) -> None:
        if not isinstance(features, torch.Tensor) or features.ndim != 3:
            got = tuple(features.shape) if isinstance(features, torch.Tensor) else type(features).__name__
            raise ConfigError(
                f"expected embeddings [B, C', D], got {got}. Fix: pass extractor.embed(images), or "
                "images [B, C, H, W] to update()."
            )
        feats = features.detach().to(device="cpu", dtype=torch.float32)
        for side in (self._real, self._fake):
            if side and side[0].shape[1:] != feats.shape[1:]:
                raise ConfigError(
                    f"expected embeddings [B, {side[0].shape[1]}, {side[0].shape[2]}] like the ones "
                    f"before, got {tuple(feats.shape)}. Fix: use one feature network and images with the "
                    "same channels for real and generated batches (or reset())."
                )
        if feats.shape[0]:
            (self._real if real else self._fake).append(feats)

    def update(self, images: torch.Tensor, real: bool) -> None:
        """Embed images ``[B, C, H, W]`` in ``[-1, 1]`` with the extractor; keep them as real or generated."""
        self._add(self.extractor.embed(images), real)

    def update_features(self, features: torch.Tensor, real: bool) -> None:
        """Add precomputed embeddings ``[B, C', D]`` (from this extractor) instead of images."""
        self._add(features, real)

    def reset(self, real: bool | None = None) -> None:
        """Forget the generated features (``real=False``), the real ones (``True``) or both (``None``)."""
        if real is None or real:
            self._real = []
        if real is None or not real:
            self._fake = []

    def features(self, real: bool) -> torch.Tensor | None:
        """All real (or generated) embeddings so far, ``[N, C', D]`` float32 on the CPU; ``None`` if none."""
        side = self._real if real else self._fake
        if not side:
            return None
        if len(side) > 1:
            side[:] = [torch.cat(side)]
        return side[0]

    def compute(self) -> dict[str, dict[str, float]]:
        """``{modality: {precision, recall, f1, density, coverage}, ..., "mean": {the same keys}}``.

        ``"mean"`` averages each metric over the modalities (so its ``f1`` is the mean of the F1 scores,
        not the F1 of the mean precision and recall). Needs more than ``k`` real and generated images.
        """
        real, fake = self.features(True), self.features(False)
        if real is None or fake is None or real.shape[0] <= self.k or fake.shape[0] <= self.k:
            raise ConfigError(
                f"expected more than k={self.k} real and generated images before compute(), got "
                f"{self.n_real} real and {self.n_fake} generated. Fix: call update(images, real=True) and "
                "update(images, real=False) with more images."
            )
        names = modality_names(real.shape[1], self.modalities)
        result: dict[str, dict[str, float]] = {
            name: manifold_metrics(
                real[:, c], fake[:, c], self.k, chunk_size=self.chunk_size, device=self.device
            )
            for c, name in enumerate(names)
        }
        result["mean"] = {key: sum(r[key] for r in result.values()) / len(names) for key in MANIFOLD_METRICS}
        return result

    def state_dict(self) -> dict[str, Any]:
        """``{"feature_network", "fingerprint", "real", "fake"}``, features ``[N, C', D]`` float32 or None."""
        return {
            "feature_network": self.extractor.name,
            "fingerprint": self.extractor.fingerprint,
            "real": self.features(True),
            "fake": self.features(False),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore from :meth:`state_dict`; refuses features made with a different feature network."""
        if state["fingerprint"] != self.extractor.fingerprint:
            raise ConfigError(
                f"expected features from this extractor ({self.extractor.name}, "
                f"{self.extractor.fingerprint[:12]}), got ones from {state['feature_network']} "
                f"({str(state['fingerprint'])[:12]}). Fix: recompute them with this feature network."
            )
        self.reset()
        for key in ("real", "fake"):
            if state[key] is not None:
                self._add(state[key], real=key == "real")

    def __repr__(self) -> str:
        device = None if self.device is None else str(self.device)
        return (
            f"PrecisionRecall(extractor={self.extractor.name!r}, modalities={self.modalities}, k={self.k}, "
            f"chunk_size={self.chunk_size}, device={device!r}, real={self.n_real}, fake={self.n_fake})"
        )
