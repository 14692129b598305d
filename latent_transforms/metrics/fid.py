"""Fréchet distance between feature distributions (FID, Heusel et al. 2017), streaming and in float64.

``FID = |mu_1 - mu_2|^2 + tr(S_1) + tr(S_2) - 2 tr((S_1^1/2 S_2 S_1^1/2)^1/2)`` for the means ``mu`` and
covariances ``S`` of two sets of features. The matrix square roots use symmetric eigendecompositions
(``torch.linalg.eigh``), so no SciPy is needed and the result is real by construction. The value
depends on the feature network: report it with the extractor's name and fingerprint, and compare only
values from the same network (an FID from EfficientNet-Lite0 is not an Inception FID).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from latent_transforms.errors import ConfigError
from latent_transforms.features import FeatureExtractor


def modality_names(count: int, modalities: Sequence[str] | None, *, joint: bool = True) -> list[str]:
    """Result keys for ``count`` channels (embedding channels ``C'`` or image channels ``C``).

    No names give ``channel0``, ``channel1``, ...; otherwise one name per channel is expected. With
    ``joint=True`` a single channel (a joint extractor such as the discriminator, ``C' = 1``) and several
    names gives one key, the names joined by ``+``.

    Args:
        count: how many channels the result has.
        modalities: the modality names (e.g. ``["mri", "ct"]``), or ``None``.
        joint: allow one channel to stand for all names (embeddings); ``False`` for image channels.

    Returns:
        ``count`` names, in channel order.

    Example:
        >>> modality_names(2, None), modality_names(2, ["mri", "ct"]), modality_names(1, ["mri", "ct"])
        (['channel0', 'channel1'], ['mri', 'ct'], ['mri+ct'])
    """
    if modalities is None:
        return [f"channel{i}" for i in range(count)]
    names = list(modalities)
    if joint and count == 1 and len(names) > 1:
        return ["+".join(names)]
    if len(names) != count:
        raise ConfigError(
            f"expected {count} modality names for the {count} channels, got {names}. "
            "Fix: pass one name per image channel (or modalities=None)."
        )
    return names


class FeatureStatistics:
    """Streaming mean and covariance of feature vectors ``[N, D]`` in float64.

    Batches are combined with the parallel (Chan et al.) update of the mean and of the sum of outer
    products of deviations, which stays accurate when the mean is large compared with the spread (the
    plain ``sum(x x^T) - n mu mu^T`` loses digits there). :meth:`merge` combines two statistics the same
    way, e.g. from several workers. The covariance is the unbiased one (divided by ``n - 1``).

    Example:
        >>> stats = FeatureStatistics(3)
        >>> stats.update(torch.tensor([[0.0, 0.0, 1.0], [2.0, 0.0, 1.0]]))
        >>> stats.n, stats.mean.tolist(), stats.cov[0, 0].item()
        (2, [1.0, 0.0, 1.0], 2.0)
    """

    def __init__(self, dim: int) -> None:
        if dim < 1:
            raise ConfigError(f"expected a feature dimension >= 1, got {dim}.")
        self.dim = dim
        self.n = 0
        self._mean = torch.zeros(dim, dtype=torch.float64)
        self._m2 = torch.zeros(dim, dim, dtype=torch.float64)

    def _combine(self, n_b: int, mean_b: torch.Tensor, m2_b: torch.Tensor) -> None:
        if n_b == 0:
            return
        n_a = self.n
        n = n_a + n_b
        delta = mean_b - self._mean
        self._mean = self._mean + delta * (n_b / n)
        self._m2 = self._m2 + m2_b + torch.outer(delta, delta) * (n_a * n_b / n)
        self.n = n

    def update(self, features: torch.Tensor) -> None:
        """Add a batch of feature vectors ``[N, D]`` (any float dtype and device)."""
        if features.ndim != 2 or features.shape[1] != self.dim:
            raise ConfigError(
                f"expected features [N, {self.dim}], got {tuple(features.shape)}. Fix: pass one "
                "row per sample (for [B, C, D] embeddings, one modality at a time: features[:, c])."
            )
        x = features.detach().to(device="cpu", dtype=torch.float64)
        if x.shape[0] == 0:
            return
        mean_b = x.mean(dim=0)
        centred = x - mean_b
        self._combine(x.shape[0], mean_b, centred.T @ centred)

    def merge(self, other: FeatureStatistics) -> FeatureStatistics:
        """Add ``other``'s samples to these statistics (in place); returns ``self``."""
        if other.dim != self.dim:
            raise ConfigError(f"expected statistics of dimension {self.dim}, got {other.dim}.")
        self._combine(other.n, other._mean.clone(), other._m2.clone())
        return self

    @property
    def mean(self) -> torch.Tensor:
        """Mean ``[D]`` (float64)."""
        return self._mean.clone()

    @property
    def cov(self) -> torch.Tensor:
        """Unbiased covariance ``[D, D]`` (float64); needs at least 2 samples."""
        if self.n < 2:
            raise ConfigError(
                f"expected at least 2 samples for a covariance, got {self.n}. "
                "Fix: update() with more features."
            )
        return self._m2 / (self.n - 1)

    def state_dict(self) -> dict[str, torch.Tensor]:
        """``{"n", "mean", "m2"}`` tensors, e.g. to save real-data statistics with ``safetensors``."""
        return {"n": torch.tensor(self.n, dtype=torch.int64), "mean": self.mean, "m2": self._m2.clone()}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        """Restore from :meth:`state_dict`."""
        mean = state["mean"].to(torch.float64)
        if tuple(mean.shape) != (self.dim,) or tuple(state["m2"].shape) != (self.dim, self.dim):
            raise ConfigError(
                f"expected statistics of dimension {self.dim}, got mean {tuple(mean.shape)}, "
                f"m2 {tuple(state['m2'].shape)}."
            )
        self.n = int(state["n"])
        self._mean = mean.clone()
        self._m2 = state["m2"].to(torch.float64).clone()

    @classmethod
    def from_features(cls, features: torch.Tensor) -> FeatureStatistics:
        """Statistics of ``features [N, D]`` in one go."""
        if features.ndim != 2:
            raise ConfigError(f"expected features [N, D], got {tuple(features.shape)}.")
        stats = cls(features.shape[1])
        stats.update(features)
        return stats

    def __repr__(self) -> str:
        return f"FeatureStatistics(dim={self.dim}, n={self.n})"


def _psd_sqrt(matrix: torch.Tensor) -> torch.Tensor:
    """Symmetric PSD square root via eigh; tiny negative eigenvalues (round-off) are clamped to 0."""
    values, vectors = torch.linalg.eigh((matrix + matrix.T) * 0.5)
    return (vectors * values.clamp(min=0).sqrt()) @ vectors.T


def frechet_distance(mu1: torch.Tensor, cov1: torch.Tensor, mu2: torch.Tensor, cov2: torch.Tensor) -> float:
    """Fréchet distance between Gaussians ``N(mu1, cov1)`` and ``N(mu2, cov2)``, in float64.

    ``|mu1 - mu2|^2 + tr(cov1) + tr(cov2) - 2 tr sqrt(sqrt(cov1) cov2 sqrt(cov1))``; the last trace is
    the sum of the square roots of the (clamped non-negative) eigenvalues of a symmetric PSD matrix.
    The result is clamped at 0 (round-off can make equal distributions come out at ``-1e-12``).

    Args:
        mu1: mean ``[D]`` of the first distribution.
        cov1: its covariance ``[D, D]`` (symmetric positive semi-definite).
        mu2: mean ``[D]`` of the second distribution.
        cov2: its covariance ``[D, D]``.

    Returns:
        The squared Fréchet distance, ``>= 0``.

    Example:
        >>> eye = torch.eye(2)
        >>> frechet_distance(torch.zeros(2), eye, torch.tensor([3.0, 4.0]), eye)
        25.0
        >>> round(frechet_distance(torch.zeros(2), eye, torch.zeros(2), 4 * eye), 6)  # 2 * (2 - 1)^2
        2.0
    """
    mu1, mu2 = (torch.as_tensor(m, dtype=torch.float64).cpu() for m in (mu1, mu2))
    cov1, cov2 = (torch.as_tensor(c, dtype=torch.float64).cpu() for c in (cov1, cov2))
    d = mu1.shape[0]
    if mu1.shape != (d,) or mu2.shape != (d,) or cov1.shape != (d, d) or cov2.shape != (d, d):
        raise ConfigError(
            f"expected means [D] and covariances [D, D] of one D, got {tuple(mu1.shape)}, "
            f"{tuple(cov1.shape)}, {tuple(mu2.shape)}, {tuple(cov2.shape)}."
        )
    root1 = _psd_sqrt(cov1)
    inner = root1 @ cov2 @ root1
    eig = torch.linalg.eigvalsh((inner + inner.T) * 0.5).clamp(min=0)
    value = (mu1 - mu2).square().sum() + cov1.trace() + cov2.trace() - 2.0 * eig.sqrt().sum()
    return max(float(value), 0.0)


def _as_statistics(features: torch.Tensor | FeatureStatistics) -> FeatureStatistics:
    if isinstance(features, FeatureStatistics):
        return features
    return FeatureStatistics.from_features(features)


def fid(
    real_features: torch.Tensor | FeatureStatistics, fake_features: torch.Tensor | FeatureStatistics
) -> float:
    """Fréchet distance between two sets of features ``[N, D]`` and ``[M, D]`` (or their statistics).

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> real = torch.randn(500, 4, generator=g)
        >>> round(fid(real, real), 9)
        0.0
        >>> fid(real, real + 2.0) > 15.9
        True
    """
    a, b = _as_statistics(real_features), _as_statistics(fake_features)
    return frechet_distance(a.mean, a.cov, b.mean, b.cov)


class FID:
    """Streaming FID per modality from images: feed real and generated batches, then :meth:`compute`.

    Images ``[B, C, H, W]`` in ``[-1, 1]`` go through ``extractor`` (``[B, C', D]``: one embedding per
    modality, or one joint embedding for the discriminator); statistics are kept per embedding channel
    in float64, so memory does not grow with the number of images.

    Args:
        extractor: the feature network (:func:`latent_transforms.features.feature_network`).
        modalities: names for the ``C'`` embedding channels in the result (default ``channel0``, ...);
            with a joint extractor and several names, the single key is the names joined by ``+``.

    Example:
        >>> from latent_transforms.features import feature_network
        >>> metric = FID(feature_network("random"), modalities=["mri", "ct"])
        >>> g = torch.Generator().manual_seed(0)
        >>> metric.update(torch.rand(8, 2, 32, 32, generator=g) * 2 - 1, real=True)
        >>> metric.update(torch.rand(8, 2, 32, 32, generator=g) * 2 - 1, real=False)
        >>> sorted(metric.compute())
        ['ct', 'mean', 'mri']
    """

    def __init__(self, extractor: FeatureExtractor, modalities: Sequence[str] | None = None) -> None:
        self.extractor = extractor
        self.modalities = list(modalities) if modalities is not None else None
        self.real: list[FeatureStatistics] = []
        self.fake: list[FeatureStatistics] = []

    def _names(self, count: int) -> list[str]:
        return modality_names(count, self.modalities)

    def update(self, images: torch.Tensor, real: bool) -> None:
        """Embed images ``[B, C, H, W]`` in ``[-1, 1]``; add them to the real or generated statistics."""
        feats = self.extractor.embed(images)
        target = self.real if real else self.fake
        if not target:
            target.extend(FeatureStatistics(feats.shape[2]) for _ in range(feats.shape[1]))
        if len(target) != feats.shape[1]:
            raise ConfigError(
                f"expected images with the same channels as before ({len(target)} embedding channels), "
                f"got {feats.shape[1]}."
            )
        for c, stats in enumerate(target):
            stats.update(feats[:, c])

    def update_features(self, features: torch.Tensor, real: bool) -> None:
        """Add precomputed embeddings ``[B, C', D]`` (from this extractor) instead of images."""
        if features.ndim != 3:
            raise ConfigError(f"expected embeddings [B, C', D], got {tuple(features.shape)}.")
        target = self.real if real else self.fake
        if not target:
            target.extend(FeatureStatistics(features.shape[2]) for _ in range(features.shape[1]))
        for c, stats in enumerate(target):
            stats.update(features[:, c])

    def reset(self, real: bool | None = None) -> None:
        """Forget the generated statistics (``real=False``), the real ones (``True``) or both (``None``)."""
        if real is None or real:
            self.real = []
        if real is None or not real:
            self.fake = []

    def compute(self) -> dict[str, float]:
        """``{modality: FID, ..., "mean": mean over modalities}``; needs 2+ real and generated images."""
        if not self.real or not self.fake:
            raise ConfigError(
                "expected both real and generated images before compute(), got "
                f"{self.real[0].n if self.real else 0} real and {self.fake[0].n if self.fake else 0} "
                "generated. Fix: call update(images, real=True) and update(images, real=False)."
            )
        names = self._names(len(self.real))
        result = {name: fid(r, f) for name, r, f in zip(names, self.real, self.fake, strict=True)}
        result["mean"] = sum(result.values()) / len(names)
        return result

    def state_dict(self) -> dict[str, Any]:
        """Statistics plus the extractor's name and fingerprint (e.g. to cache the real-data side)."""
        return {
            "feature_network": self.extractor.name,
            "fingerprint": self.extractor.fingerprint,
            "real": [s.state_dict() for s in self.real],
            "fake": [s.state_dict() for s in self.fake],
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore from :meth:`state_dict`; refuses statistics made with a different feature network."""
        if state["fingerprint"] != self.extractor.fingerprint:
            raise ConfigError(
                f"expected statistics from this extractor ({self.extractor.name}, "
                f"{self.extractor.fingerprint[:12]}), got ones from {state['feature_network']} "
                f"({str(state['fingerprint'])[:12]}). Fix: recompute them with this feature network."
            )
        for key in ("real", "fake"):
            restored = []
            for s in state[key]:
                stats = FeatureStatistics(int(s["mean"].shape[0]))
                stats.load_state_dict(s)
                restored.append(stats)
            setattr(self, key, restored)

    def __repr__(self) -> str:
        n_real = self.real[0].n if self.real else 0
        n_fake = self.fake[0].n if self.fake else 0
        name = self.extractor.name
        return f"FID(extractor={name!r}, modalities={self.modalities}, real={n_real}, fake={n_fake})"
