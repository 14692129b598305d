"""What a tuning trial measures: the task-agnostic F1 objective and the downstream (user callable) one.

An objective turns ``LatentAugment`` keyword arguments (what :meth:`SearchSpace.suggest` returns) into one
number, and says whether that number is to be maximised or minimised.

- :class:`F1Objective` (Tronchin et al. 2023, §III-D): the F1 score of improved precision and recall
  (Kynkäänniemi et al., ``k`` = 3) between real validation images and ``n_samples`` LatentAugment samples
  (every sample augmented, ``p = 1``), in the space of a feature network, for each modality of the paired
  images on its own, averaged over the modalities. The real features and their ``k``-NN radii are computed
  once; a trial costs the samples, their features and their radii.
- :class:`DownstreamObjective`: ``fn(transform) -> float``, your validation metric after training with the
  transform (the paper: the MAE of a Pix2Pix MRI-to-CT model on the validation set, minimised); here ``p``
  is tuned too.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

import torch
from tqdm.auto import tqdm

from latent_transforms.checks import (
    check_choice,
    check_class_labels,
    check_image_batch,
    check_int,
    default_device,
)
from latent_transforms.errors import ConfigError
from latent_transforms.evaluation.sampling import SAMPLING_TRANSFORMS, class_count, iter_samples
from latent_transforms.features.extractor import FeatureExtractor
from latent_transforms.features.perceptual import PerceptualNetwork, perceptual_network
from latent_transforms.features.registry import feature_network as build_feature_network
from latent_transforms.inversion.cache import LatentCache
from latent_transforms.metrics.precision_recall import DEFAULT_CHUNK_SIZE, knn_radii, manifold_coverage
from latent_transforms.networks.bundle import GanBundle, load_gan
from latent_transforms.objectives.stats import DatasetStats
from latent_transforms.transforms.base import RandomTransform
from latent_transforms.transforms.latent_augment import CONFIG_FORMAT, CONFIG_VERSION, PRESETS, LatentAugment

__all__ = ["DIRECTIONS", "DownstreamObjective", "F1Objective", "Objective"]

#: Optuna's directions.
DIRECTIONS = ("minimize", "maximize")


def _check_direction(direction: str) -> str:
    return check_choice("direction", direction, DIRECTIONS)


class Objective:
    """Base class of tuning objectives: ``LatentAugment`` arguments -> one number.

    Subclasses set :attr:`direction` (``"minimize"`` or ``"maximize"``) and :attr:`uses_p` (whether ``p``
    belongs to the search) and implement :meth:`evaluate`; :meth:`transform` builds the transform a
    setting means and :meth:`best_config` the JSON that :meth:`LatentAugment.from_config` loads.

    Example:
        >>> class Quadratic(Objective):
        ...     name = "quadratic"
        ...     def evaluate(self, params):
        ...         return abs(params["steps"] - 6), {}
        >>> Quadratic()({"steps": 9})
        3
    """

    name: ClassVar[str] = "objective"
    direction: str = "minimize"
    uses_p: bool = False

    def evaluate(self, params: Mapping[str, Any]) -> tuple[float, dict[str, Any]]:
        """The objective's value for ``params`` and details to record with the trial (JSON-able)."""
        raise NotImplementedError

    def __call__(self, params: Mapping[str, Any]) -> float:
        """:meth:`evaluate`'s value alone."""
        return self.evaluate(params)[0]

    def transform(self, params: Mapping[str, Any]) -> LatentAugment:
        """The ``LatentAugment`` that ``params`` describe (not every objective can build one)."""
        raise ConfigError(f"{type(self).__name__} cannot build a transform; override transform().")

    def best_config(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """What ``best_config.json`` holds: a complete :meth:`LatentAugment.config` of
        :meth:`transform`, or, for an objective that builds no transform, ``params`` with the config's
        ``transform`` / ``version`` header (:meth:`LatentAugment.from_config` fills in the defaults)."""
        if type(self).transform is Objective.transform:
            return {"transform": CONFIG_FORMAT, "version": CONFIG_VERSION, **params}
        return self.transform(params).config()

    def describe(self) -> dict[str, Any]:
        """What the objective is, JSON-able (recorded with the study)."""
        return {"objective": self.name, "direction": self.direction}

    def __repr__(self) -> str:
        inner = ", ".join(f"{k}={v!r}" for k, v in self.describe().items() if k != "objective")
        return f"{type(self).__name__}({inner})"


def _check_images(images: Any, what: str, bundle: GanBundle) -> torch.Tensor:
    images = check_image_batch(
        images,
        what=what,
        channels=bundle.config.img_channels,
        resolution=bundle.resolution,
        context=f"the GAN's modalities {bundle.modalities} as channels, at its resolution: stack and resize",
    )
    return images.detach().float().cpu()


class F1Objective(Objective):
    """Task-agnostic objective: F1 of precision and recall between real images and LatentAugment samples.

    Per trial: ``LatentAugment(bundle, cache, stats, **params, p=1, value_range="generator")`` makes
    ``n_samples`` samples from ``sources`` (the same seeded order of sources every trial, as
    :func:`~latent_transforms.evaluation.generate_samples` gives, streamed in batches), the feature network
    embeds them (``[M, C', D]``: one embedding per modality, or one joint one), and for each modality the
    improved precision, recall and F1 against the real reference (``k``-th neighbour radii, as
    :func:`~latent_transforms.metrics.precision_recall`) are computed; the value is the F1 averaged over
    the modalities (paired MRI + CT: the mean of the MRI F1 and the CT F1). Maximised.

    The paper used 10,000 validation images and 50,000 samples with VGG16 features; any sizes work
    (``n_samples > k``, more than ``k`` reference images). Feature and F1 numbers depend on the feature
    network: compare trials only within one objective.

    Args:
        bundle: the GAN (:class:`~latent_transforms.GanBundle` or a :func:`~latent_transforms.load_gan`
            source).
        cache: the latent cache holding the sources' inverted latents (object or folder).
        stats: the training set's :class:`~latent_transforms.DatasetStats` (object or file; ``None``:
            ``<cache>/stats.safetensors``, or none when no diversity weight is ever above 0).
        reference_images: real validation images ``[N, C, R, R]`` in ``[-1, 1]``.
        sources: the images LatentAugment augments ``[S, C, R, R]`` in ``[-1, 1]`` (their latents in
            ``cache``).
        source_keys: their cache keys (default: content keys, :func:`~latent_transforms.image_key`).
        source_labels: their classes, ``[S]`` int64: over a class-conditional GAN LatentAugment's
            discriminator is told each source's class (its fidelity term needs it); ignored by an
            unconditional GAN.
        labels: the classes of the drawn samples of a policy that draws them (``SG2Sample`` over a
            conditional GAN, in :meth:`measure`), ``[n_samples]`` int64, e.g. the training split's class
            balance (:func:`~latent_transforms.tasks.resampled_labels`); default: uniform classes.
        n_samples: samples per trial.
        feature_network: a :func:`~latent_transforms.features.feature_network` name or a
            :class:`~latent_transforms.features.FeatureExtractor` (default ``"efficientnet-lite0"``, offline).
        k: the neighbour that sets each radius (3, as the paper).
        batch_size: images per LatentAugment call.
        device: where the GAN and the feature network run (default: CUDA when available, else CPU).
        seed: seed of the source order and of every draw (the same for every trial).
        perceptual: LatentAugment's perceptual network (default: the one ``stats`` were computed with,
            built once).
        on_missing: what LatentAugment does with a source whose latent is not in the cache: ``"raise"``
            (default: a tuning run should not invert on the fly) or ``"invert"``.
        chunk_size: block size of the pairwise distances (memory only).
        progress: show a progress bar per trial.

    Example:
        >>> import tempfile
        >>> from latent_transforms import GanBundle, GanConfig, LatentCache, image_key
        >>> bundle = GanBundle.random(GanConfig(resolution=16, channel_base=256, channel_max=32, z_dim=16,
        ...                                     w_dim=16), seed=0)
        >>> w = bundle.generator.mapping(torch.randn(8, 16, generator=torch.Generator().manual_seed(0)), None)
        >>> real = bundle.generator.synthesis(w).clamp(-1, 1)
        >>> folder = tempfile.mkdtemp()
        >>> cache = LatentCache(folder, fingerprint=bundle.fingerprint)
        >>> _ = cache.put_batch([image_key(x) for x in real[:4]], w[:4, 0]); _ = cache.flush()
        >>> objective = F1Objective(bundle, cache, None, real[4:], real[:4], n_samples=6,
        ...                         feature_network="random", batch_size=3)
        >>> value, details = objective.evaluate({"steps": 2, "lr": 0.01, "alpha_f": 0.1, "alpha_pix": 0.0,
        ...                                      "alpha_perc": 0.0, "alpha_lat": 0.0})
        >>> 0.0 <= value <= 1.0, sorted(details["f1"])
        (True, ['ct', 'mri'])
        >>> import shutil; shutil.rmtree(folder)
    """

    name: ClassVar[str] = "f1"
    direction = "maximize"
    uses_p = False

    def __init__(
        self,
        bundle: GanBundle | str | os.PathLike[str],
        cache: LatentCache | str | os.PathLike[str] | None,
        stats: DatasetStats | str | os.PathLike[str] | None,
        reference_images: torch.Tensor,
        sources: torch.Tensor,
        *,
        source_keys: Sequence[str] | None = None,
        source_labels: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        n_samples: int = 50_000,
        feature_network: str | FeatureExtractor = "efficientnet-lite0",
        k: int = 3,
        batch_size: int = 16,
        device: torch.device | str | None = None,
        seed: int = 0,
        perceptual: str | PerceptualNetwork | None = None,
        on_missing: str = "raise",
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        progress: bool = False,
    ) -> None:
        dev = default_device(device)
        self.device = dev
        if isinstance(bundle, GanBundle):
            self.bundle = bundle.to(dev)
        else:
            self.bundle = load_gan(bundle, device=dev)
        k = check_int("k", k, low=1)
        if isinstance(n_samples, bool) or not isinstance(n_samples, int) or n_samples <= k:
            raise ConfigError(f"n_samples must be an integer > k={k}, got {n_samples!r}.")
        batch_size = check_int("batch_size", batch_size, low=1)
        self.reference_images = _check_images(reference_images, "reference_images", self.bundle)
        if self.reference_images.shape[0] <= k:
            raise ConfigError(
                f"expected more than k={k} reference images, got {self.reference_images.shape[0]}. "
                "Fix: use more validation images or a smaller k."
            )
        self.sources = _check_images(sources, "sources", self.bundle)
        if source_keys is not None and len(source_keys) != len(self.sources):
            raise ConfigError(f"expected {len(self.sources)} source_keys, got {len(source_keys)}.")
        self.source_keys = list(source_keys) if source_keys is not None else None
        classes = int(self.bundle.config.c_dim)
        if source_labels is not None:
            source_labels = torch.as_tensor(source_labels)
            if source_labels.ndim != 1 or len(source_labels) != len(self.sources):
                raise ConfigError(
                    f"expected source_labels [{len(self.sources)}], one class per source, got shape "
                    f"{tuple(source_labels.shape)}."
                )
            if classes > 0:  # an unconditional GAN ignores them
                check_class_labels(source_labels, len(self.sources), classes, who="source_labels")
        self.source_labels = source_labels.long().cpu() if source_labels is not None else None
        self.labels = check_class_labels(labels, n_samples, classes)
        if cache is not None and not isinstance(cache, LatentCache):
            cache = LatentCache.open(cache)
        self.cache = cache
        if stats is None and cache is not None and (cache.folder / "stats.safetensors").is_file():
            stats = cache.folder / "stats.safetensors"
        if stats is not None and not isinstance(stats, DatasetStats):
            stats = DatasetStats.load(stats)
        self.stats = stats.to(dev) if isinstance(stats, DatasetStats) else None
        if isinstance(perceptual, str):
            perceptual = perceptual_network(perceptual, bundle=self.bundle, device=dev)
        elif perceptual is None and self.stats is not None and self.stats.perceptual_name is not None:
            perceptual = perceptual_network(self.stats.perceptual_name, bundle=self.bundle, device=dev)
        self.perceptual = perceptual
        self.extractor = (
            feature_network.to(dev)
            if isinstance(feature_network, FeatureExtractor)
            else build_feature_network(feature_network, bundle=self.bundle, device=dev)
        )
        self.n_samples = n_samples
        self.k = k
        self.batch_size = batch_size
        self.seed = seed
        self.on_missing = on_missing
        self.chunk_size = chunk_size
        self.progress = progress
        self._reference: tuple[torch.Tensor, torch.Tensor] | None = None

    # -- the real side, once ------------------------------------------------------------------------
    def modality_names(self, channels: int) -> list[str]:
        """Names of the embedding channels: the bundle's modalities, or ``["joint"]`` for a joint network."""
        names = list(self.bundle.modalities)
        return (
            names
            if channels == len(names)
            else ["joint"]
            if channels == 1
            else [str(i) for i in range(channels)]
        )

    def reference_features(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The real features ``[N, C', D]`` and their ``k``-NN radii ``[C', N]`` (float64), computed once."""
        if self._reference is None:
            feats = self._embed(self.reference_images.split(self.batch_size))
            radii = torch.stack(
                [knn_radii(feats[:, c], self.k, chunk_size=self.chunk_size) for c in range(feats.shape[1])]
            )
            self._reference = (feats, radii)
        return self._reference

    def _embed(self, batches: Any) -> torch.Tensor:
        return torch.cat([self.extractor.embed(b.to(self.extractor.device)) for b in batches])

    # -- a trial -------------------------------------------------------------------------------------
    def transform(self, params: Mapping[str, Any], **overrides: Any) -> LatentAugment:
        """``LatentAugment`` with ``params`` as the trial runs it (``p = 1``, ``value_range="generator"``);
        ``overrides`` win."""
        kwargs: dict[str, Any] = {
            "perceptual": self.perceptual,
            "on_missing": self.on_missing,
            "seed": self.seed,
            "device": self.device,
            **params,
            "p": 1.0,
            "value_range": "generator",
        }
        kwargs.update(overrides)
        return LatentAugment(self.bundle, self.cache, self.stats, **kwargs)

    def best_config(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """The config of ``params`` for use in training: ``p``, ``value_range`` and ``on_missing`` are the
        constructor's defaults (``p`` = 0.2 of the F1 preset, which the F1 objective does not tune: run the
        ``p`` grid, :func:`~latent_transforms.tuning.latent_augment_p_grid`; ``"physical"``; ``"invert"``)."""
        overrides = {"p": PRESETS["f1"]["p"], "value_range": "physical", "on_missing": "invert"}
        return self.transform(params, **overrides).config()

    def measure(self, policy: RandomTransform) -> tuple[float, dict[str, Any]]:
        """The objective for any policy's samples (``SG2Sample``, ``StandardDA``, ...; ``p`` ignored).

        A transform of the sources keeps each source's class (``source_labels``); a policy that draws
        samples over a conditional GAN draws the classes ``labels`` (uniform ones without).

        Returns ``(mean F1, details)`` with ``details`` = ``{"f1", "precision", "recall"}``, each a dict
        per modality, and ``"f1_mean"``, ``"precision_mean"``, ``"recall_mean"``.
        """
        draws = isinstance(policy, SAMPLING_TRANSFORMS)
        batches = iter_samples(
            policy,
            self.n_samples,
            sources=self.sources,
            source_keys=self.source_keys,
            labels=self.labels if draws and class_count(policy) > 0 else None,
            source_labels=None if draws else self.source_labels,
            batch_size=self.batch_size,
            seed=self.seed,
            device=self.device,
        )
        desc = f"sampling {type(policy).__name__}"
        with tqdm(total=self.n_samples, desc=desc, unit="img", disable=not self.progress) as bar:

            def counted() -> Any:
                for batch in batches:
                    bar.update(batch.shape[0])
                    yield batch

            fake = self._embed(counted())
        return self.score_features(fake)

    def score_features(self, fake: torch.Tensor) -> tuple[float, dict[str, Any]]:
        """Mean F1 over modalities of sample features ``[M, C', D]`` against the reference (and details)."""
        real, real_radii = self.reference_features()
        if fake.ndim != 3 or fake.shape[1:] != real.shape[1:]:
            raise ConfigError(
                f"expected features [M, {real.shape[1]}, {real.shape[2]}], got {tuple(fake.shape)}."
            )
        fake = fake.to(real.device)
        names = self.modality_names(real.shape[1])
        details: dict[str, Any] = {"precision": {}, "recall": {}, "f1": {}}
        for c, name in enumerate(names):
            fake_radii = knn_radii(fake[:, c], self.k, chunk_size=self.chunk_size)
            precision = manifold_coverage(fake[:, c], real[:, c], real_radii[c], chunk_size=self.chunk_size)
            recall = manifold_coverage(real[:, c], fake[:, c], fake_radii, chunk_size=self.chunk_size)
            pr, rc = precision.double().mean().item(), recall.double().mean().item()
            details["precision"][name] = pr
            details["recall"][name] = rc
            details["f1"][name] = 0.0 if pr + rc == 0 else 2.0 * pr * rc / (pr + rc)
        for key in ("f1", "precision", "recall"):
            details[f"{key}_mean"] = sum(details[key].values()) / len(names)
        return details["f1_mean"], details

    def evaluate(self, params: Mapping[str, Any]) -> tuple[float, dict[str, Any]]:
        """Build the transform for ``params``, sample, embed and score: ``(mean F1, details)``."""
        return self.measure(self.transform(params))

    def reference_points(self) -> dict[str, Any]:
        """Two points to read the trials against: the F1 of the source images themselves (each once: ``S``
        samples) and of their reconstructions ``G(w*)`` (LatentAugment with ``K = 0``, ``n_samples``).

        When the reconstructions score 0 the GAN's images lie off the reference's manifold in this feature
        space and no setting can be told apart by F1 (every trial scores 0).

        Returns:
            ``{"sources": {"f1", "precision", "recall"}, "reconstructions": {...}}`` (means over modalities).
        """
        off = {"steps": 0, "alpha_f": 0.0, "alpha_pix": 0.0, "alpha_perc": 0.0, "alpha_lat": 0.0}
        keys = ("f1", "precision", "recall")
        points: dict[str, Any] = {"sources": None}
        if len(self.sources) > self.k:
            _, details = self.score_features(self._embed(self.sources.split(self.batch_size)))
            points["sources"] = {key: details[f"{key}_mean"] for key in keys}
        _, details = self.evaluate(off)
        points["reconstructions"] = {key: details[f"{key}_mean"] for key in keys}
        return points

    def describe(self) -> dict[str, Any]:
        """The objective's settings, JSON-able."""
        return {
            "objective": self.name,
            "direction": self.direction,
            "n_real": int(self.reference_images.shape[0]),
            "n_sources": int(self.sources.shape[0]),
            "n_samples": self.n_samples,
            "feature_network": self.extractor.name,
            "feature_fingerprint": self.extractor.fingerprint,
            "k": self.k,
            "batch_size": self.batch_size,
            "seed": self.seed,
            "device": str(self.device),
        }


class DownstreamObjective(Objective):
    """Downstream objective: ``fn(transform) -> float``, a validation metric after training with it.

    Per trial ``LatentAugment(gan, cache, stats, **transform_kwargs, **params)`` is built (``params``
    include ``p``: the downstream objective tunes it, as the paper's MAE search did) and handed to ``fn``,
    which trains your model with it and returns the validation metric (the paper: MAE, minimised).

    Args:
        fn: ``transform -> float``; a non-finite value marks the trial failed.
        direction: ``"minimize"`` (default; e.g. MAE) or ``"maximize"`` (e.g. SSIM).
        gan: the GAN bundle or source.
        cache: the latent cache of your training images.
        stats: their statistics (default: ``<cache>/stats.safetensors``).
        transform_kwargs: any other ``LatentAugment`` argument (``value_range``, ``device``, ``seed``, ...).

    Example:
        >>> from latent_transforms import GanBundle, GanConfig
        >>> bundle = GanBundle.random(GanConfig(resolution=16, channel_base=256, channel_max=32))
        >>> objective = DownstreamObjective(lambda t: t.steps * t.p, "minimize", gan=bundle)
        >>> objective.evaluate({"steps": 3, "lr": 0.01, "alpha_f": 0.1, "alpha_pix": 0.0, "alpha_perc": 0.0,
        ...                     "alpha_lat": 0.0, "p": 0.5})
        (1.5, {})
    """

    name: ClassVar[str] = "downstream"
    uses_p = True

    def __init__(
        self,
        fn: Callable[[LatentAugment], float],
        direction: str = "minimize",
        *,
        gan: GanBundle | str | os.PathLike[str],
        cache: LatentCache | str | os.PathLike[str] | None = None,
        stats: DatasetStats | str | os.PathLike[str] | None = None,
        **transform_kwargs: Any,
    ) -> None:
        if not callable(fn):
            raise ConfigError(f"fn must be a callable transform -> float, got {type(fn).__name__}.")
        self.fn = fn
        self.direction = _check_direction(direction)
        self.gan = gan
        self.cache = cache
        self.stats = stats
        self.transform_kwargs = dict(transform_kwargs)

    def transform(self, params: Mapping[str, Any]) -> LatentAugment:
        """``LatentAugment`` with ``transform_kwargs`` and ``params`` (``params`` win)."""
        return LatentAugment(self.gan, self.cache, self.stats, **{**self.transform_kwargs, **params})

    def evaluate(self, params: Mapping[str, Any]) -> tuple[float, dict[str, Any]]:
        """``fn(transform(params))`` as a float (NaN when it is not finite) and no details."""
        value = float(self.fn(self.transform(params)))
        return (value if math.isfinite(value) else math.nan), {}

    def describe(self) -> dict[str, Any]:
        """The objective: the callable's name and the direction."""
        name = getattr(self.fn, "__qualname__", type(self.fn).__name__)
        module = getattr(self.fn, "__module__", None)
        return {
            "objective": self.name,
            "direction": self.direction,
            "fn": f"{module}:{name}" if module else name,
        }
