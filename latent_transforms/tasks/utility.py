"""How useful synthetic images are for the task classifier: the two utility protocols of Xing et al. 2023,
and how fast a generator makes them.

- **Augmentation utility**: train the classifier on the real training images plus labelled synthetic ones
  and score it on the test split, against the same training without them (paired by seed, Wilcoxon
  signed-rank test): :func:`augmentation_utility`.
- **Feature-extraction utility**: pretrain the classifier on synthetic images only, then fine-tune only
  its last layer on a stratified 50 % of the real training images for 20 epochs, and score it on the
  test split; the reference pretrains on the real training images instead: :func:`extraction_utility`.
- **Efficiency**: seconds per 1,000 images and peak memory of a generator's sampling
  (:func:`~latent_transforms.tasks.synthetic.sampling_efficiency`).

A *generator* is anything with the library's common face, ``sample(n, labels=..., ...)`` giving
``[n, C, R, R]`` images in ``[-1, 1]`` with a ``config.c_dim`` (a :class:`~latent_transforms.GanBundle`, a
:class:`~latent_transforms.DiffusionBundle`), or a transform over one (:class:`~latent_transforms.SG2Sample`,
:class:`~latent_transforms.DiffusionSample`). It must be class-conditional: synthetic images without a
class cannot train a classifier. :func:`classifier_utility` turns either protocol into the
``train_and_score(policy, seed)`` function ``latent-transforms evaluate --utility`` takes.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F

from latent_transforms.checks import check_choice, check_int, check_number, default_device
from latent_transforms.errors import ConfigError
from latent_transforms.tasks.classifier import ResNetClassifier
from latent_transforms.tasks.metrics import CLASSIFICATION_METRICS
from latent_transforms.tasks.synthetic import resampled_labels, stratified_fraction, synthetic_set
from latent_transforms.tasks.training import (
    BatchAugment,
    ClassifierOptions,
    as_image_labels,
    evaluate_classifier,
    train_classifier,
)

__all__ = [
    "PROTOCOLS",
    "UtilityComparison",
    "augmentation_utility",
    "classifier_utility",
    "extraction_utility",
    "finetune_last_layer",
]

#: The two protocols of Xing et al. 2023.
PROTOCOLS = ("augmentation", "feature-extraction")
#: Five runs per utility figure (the paired seeds), as the study reports them.
DEFAULT_SEEDS = (0, 1, 2, 3, 4)


# -- the comparison ----------------------------------------------------------------------------------
@dataclass
class UtilityComparison:
    """One utility figure: per-seed test scores with and without the synthetic images, and the test.

    Attributes:
        protocol: ``"augmentation"`` or ``"feature-extraction"``.
        metric: the test score compared (a key of :func:`~latent_transforms.tasks.classification_metrics`).
        scores: the score with the synthetic images, one per seed.
        baseline: the score of the reference (real images only), one per seed, same order.
        seeds: the seeds (runs).
        gain: ``mean(scores) - mean(baseline)``.
        pvalue, statistic: the two-sided Wilcoxon signed-rank test over the paired runs (``None`` with fewer
            than two pairs or when every difference is zero).
        details: per-seed extras (the metrics of every run, the epochs chosen).

    Example:
        >>> r = UtilityComparison("augmentation", "auc", [0.9, 0.8], [0.85, 0.8], [0, 1])
        >>> round(r.gain, 3), r.pvalue is None or 0 <= r.pvalue <= 1
        (0.025, True)
    """

    protocol: str
    metric: str
    scores: list[float]
    baseline: list[float]
    seeds: list[int]
    gain: float = 0.0
    pvalue: float | None = None
    statistic: float | None = None
    details: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if len(self.scores) != len(self.baseline):
            raise ConfigError(
                f"{len(self.scores)} scores but {len(self.baseline)} baseline scores; pair them by seed."
            )
        self.gain = sum(self.scores) / len(self.scores) - sum(self.baseline) / len(self.baseline)
        differences = [a - b for a, b in zip(self.scores, self.baseline, strict=True)]
        if len(differences) >= 2 and any(d != 0 for d in differences):
            from latent_transforms.metrics.stats import wilcoxon

            test = wilcoxon(self.scores, self.baseline, alternative="two-sided")
            if math.isfinite(test.pvalue):
                self.pvalue, self.statistic = float(test.pvalue), float(test.statistic)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "protocol": self.protocol,
            "metric": self.metric,
            "scores": list(self.scores),
            "baseline": list(self.baseline),
            "seeds": list(self.seeds),
            "gain": self.gain,
            "pvalue": self.pvalue,
            "statistic": self.statistic,
            "details": list(self.details),
        }


# -- the protocols -----------------------------------------------------------------------------------
def _options(options: ClassifierOptions | None, seed: int) -> ClassifierOptions:
    return (options or ClassifierOptions()).replace(seed=seed)


def _score(model: torch.nn.Module, test: Any, metric: str) -> tuple[float, dict[str, float]]:
    metrics = evaluate_classifier(model, test)
    return float(metrics[metric]), metrics


def augmentation_utility(
    generator: Any,
    train: Any,
    test: Any,
    *,
    val: Any = None,
    n_synthetic: int | None = None,
    seeds: Sequence[int] = DEFAULT_SEEDS,
    options: ClassifierOptions | None = None,
    metric: str = "auc",
    baseline: Sequence[float] | None = None,
    device: torch.device | str | None = None,
    progress: bool = False,
) -> UtilityComparison:
    """Augmentation utility (Xing et al. 2023): real + synthetic against real only, on the test split.

    For every seed the classifier (:func:`~latent_transforms.tasks.train_classifier`, ``options`` with that
    seed) is trained on ``train`` alone and on ``train`` plus ``n_synthetic`` synthetic images whose classes
    follow the real class balance (drawn with the seed), the epoch chosen on ``val`` when given; both are
    scored on ``test``. The runs are paired by seed and compared with a two-sided Wilcoxon signed-rank test.

    Args:
        generator: a class-conditional generator (see the module docstring).
        train: the real training images, labelled (anything :func:`~latent_transforms.tasks.as_image_labels`
            takes).
        test: the labelled images the runs are scored on.
        val: labelled images that choose each run's epoch (``None``: the last epoch).
        n_synthetic: synthetic images added (default: as many as the real training images).
        seeds: the paired runs (default five).
        options: :class:`~latent_transforms.tasks.ClassifierOptions` (its seed is replaced by each run's).
        metric: the score compared (``"auc"``, ``"accuracy"``, ``"balanced_accuracy"``, ...).
        baseline: the real-only scores of the same seeds, when already measured (e.g. shared by several
            generators); default: trained here.
        device: where the classifier trains.
        progress: progress bars.

    Returns:
        :class:`UtilityComparison` (``protocol="augmentation"``).

    Example:
        >>> from latent_transforms import GanBundle, GanConfig
        >>> bundle = GanBundle.random(GanConfig(resolution=16, channel_base=256, channel_max=32, c_dim=2))
        >>> g = torch.Generator().manual_seed(0)
        >>> x, y = torch.rand(16, 2, 16, 16, generator=g) * 2 - 1, torch.arange(16) % 2
        >>> quick = ClassifierOptions(epochs=1, batch_size=8, depth=10, width=4)
        >>> r = augmentation_utility(bundle, (x, y), (x, y), seeds=[0, 1], options=quick, n_synthetic=8)
        >>> r.protocol, len(r.scores), len(r.baseline)
        ('augmentation', 2, 2)
    """
    check_choice("metric", metric, CLASSIFICATION_METRICS)
    x, y = as_image_labels(train)
    n = len(x) if n_synthetic is None else check_int("n_synthetic", n_synthetic, low=1)
    if baseline is not None and len(baseline) != len(seeds):
        raise ConfigError(f"baseline has {len(baseline)} scores for {len(seeds)} seeds; give one per seed.")
    scores, reference, details = [], [], []
    for i, seed in enumerate(seeds):
        opts = _options(options, seed)
        detail: dict[str, Any] = {"seed": int(seed)}
        if baseline is None:
            real = train_classifier((x, y), val=val, options=opts, device=device, progress=progress)
            value, detail["baseline_metrics"] = _score(real.model, test, metric)
            reference.append(value)
        else:
            reference.append(float(baseline[i]))
        value, more = _augmented_run(generator, (x, y), test, val, n, opts, metric, device, progress)
        scores.append(value)
        details.append({**detail, **more})
    return UtilityComparison(
        "augmentation", metric, scores, reference, [int(s) for s in seeds], details=details
    )


def _synthetic_like(
    generator: Any, real: tuple[torch.Tensor, torch.Tensor], n: int, seed: int, progress: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` synthetic images with the real class balance, checked against the real images' shape."""
    x, y = real
    images, labels = synthetic_set(generator, resampled_labels(y, n, seed), seed=seed, progress=progress)
    if images.shape[1:] != x.shape[1:]:
        raise ConfigError(
            f"the generator makes {tuple(images.shape[1:])} images but the real ones are "
            f"{tuple(x.shape[1:])}. Fix: open the data at the generator's resolution and channels."
        )
    return images, labels


def _augmented_run(
    generator: Any,
    real: tuple[torch.Tensor, torch.Tensor],
    test: Any,
    val: Any,
    n: int,
    opts: ClassifierOptions,
    metric: str,
    device: torch.device | str | None,
    progress: bool,
) -> tuple[float, dict[str, Any]]:
    """One run of the augmentation protocol with synthetic images: the test score and its details."""
    extra = _synthetic_like(generator, real, n, opts.seed, progress)
    mixed = train_classifier(real, val=val, extra=extra, options=opts, device=device, progress=progress)
    value, metrics = _score(mixed.model, test, metric)
    return value, {"metrics": metrics, "best_epoch": mixed.best_epoch}


def _extraction_run(
    source: Any,
    real: tuple[torch.Tensor, torch.Tensor],
    test: Any,
    n: int,
    fraction: float,
    finetune_epochs: int,
    opts: ClassifierOptions,
    metric: str,
    device: torch.device | str | None,
    progress: bool,
) -> tuple[float, dict[str, Any]]:
    """One run of the feature-extraction protocol (``source=None``: pretrain on the real images)."""
    x, y = real
    opts = opts.replace(select="last")
    pretrain = real if source is None else _synthetic_like(source, real, n, opts.seed, progress)
    pretrained = train_classifier(pretrain, options=opts, device=device, progress=progress)
    keep = stratified_fraction(y, fraction, seed=opts.seed)
    tuned = finetune_last_layer(
        pretrained.model,
        (x[keep], y[keep]),
        epochs=finetune_epochs,
        batch_size=opts.batch_size,
        lr=opts.lr,
        weight_decay=opts.weight_decay,
        seed=opts.seed,
        device=device,
    )
    value, metrics = _score(tuned, test, metric)
    return value, {"metrics": metrics, "finetune_images": len(keep)}


def finetune_last_layer(
    model: ResNetClassifier,
    train: Any,
    *,
    epochs: int = 20,
    batch_size: int = 128,
    lr: float = 2e-3,
    weight_decay: float = 5e-4,
    seed: int = 0,
    device: torch.device | str | None = None,
) -> ResNetClassifier:
    """Fine-tune only the last (linear) layer of ``model`` on ``train``; the rest stays frozen.

    The features below the last layer are computed once, in eval mode (batch-norm statistics and dropout
    frozen too), and the layer is trained on them with AdamW and cross-entropy, from its pretrained
    weights, for ``epochs`` passes in seeded order. Returns a new model (CPU, eval mode); ``model`` is
    not changed.

    Example:
        >>> _ = torch.manual_seed(0)
        >>> net = ResNetClassifier(1, 2, depth=10, width=4)
        >>> x, y = torch.rand(8, 1, 16, 16), torch.tensor([0, 1] * 4)
        >>> tuned = finetune_last_layer(net, (x, y), epochs=2)
        >>> torch.equal(tuned.stem[0].weight, net.stem[0].weight), torch.equal(tuned.fc.weight, net.fc.weight)
        (True, False)
    """
    import copy

    dev = default_device(device)
    check_int("epochs", epochs, low=1)
    images, labels = as_image_labels(train)
    net = copy.deepcopy(model).to(dev).eval()
    net.requires_grad_(False)
    with torch.no_grad():
        features = torch.cat([net.embed(images[i : i + 256].to(dev)) for i in range(0, len(images), 256)])
    head = net.fc.requires_grad_(True)
    optimizer = torch.optim.AdamW(head.parameters(), lr=lr, weight_decay=weight_decay)
    order = torch.Generator().manual_seed(seed)
    targets = labels.to(dev)
    for _ in range(epochs):
        perm = torch.randperm(len(features), generator=order)
        for start in range(0, len(perm), batch_size):
            idx = perm[start : start + batch_size].to(dev)
            loss = F.cross_entropy(head(features[idx]), targets[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    head.requires_grad_(False)
    return net.cpu().eval()


def extraction_utility(
    generator: Any,
    train: Any,
    test: Any,
    *,
    n_synthetic: int | None = None,
    fraction: float = 0.5,
    finetune_epochs: int = 20,
    seeds: Sequence[int] = DEFAULT_SEEDS,
    options: ClassifierOptions | None = None,
    metric: str = "auc",
    baseline: Sequence[float] | None = None,
    device: torch.device | str | None = None,
    progress: bool = False,
) -> UtilityComparison:
    """Feature-extraction utility (Xing et al. 2023): pretrain on synthetic images only, fine-tune only the
    last layer on half the real training images, score on the test split.

    For every seed the classifier is pretrained (:func:`~latent_transforms.tasks.train_classifier`,
    ``options`` with that seed, the last epoch kept) on ``n_synthetic`` synthetic images whose classes
    follow the real class balance, then :func:`finetune_last_layer` trains its last layer for
    ``finetune_epochs`` epochs on a stratified ``fraction`` of ``train`` (drawn with the seed), and the result
    is scored on ``test``. The reference does the same with the network pretrained on the real training
    images (``generator=None``); the runs are paired by seed (two-sided Wilcoxon signed-rank test).

    Args:
        generator: a class-conditional generator, or ``None`` for the real-image reference itself (then
            ``scores`` and ``baseline`` are the same runs).
        train: the real training images, labelled (anything :func:`~latent_transforms.tasks.as_image_labels`
            takes).
        test: the labelled images the runs are scored on.
        n_synthetic: synthetic pretraining images (default: as many as the real training images).
        fraction: the share of the real training images the last layer is fine-tuned on (0.5).
        finetune_epochs: epochs of the fine-tuning (20).
        seeds: the paired runs (default five).
        options: :class:`~latent_transforms.tasks.ClassifierOptions` of the pretraining (its seed is each
            run's; the last epoch is kept); the fine-tuning uses its batch size, learning rate and weight
            decay.
        metric: the score compared.
        baseline: the reference's scores of the same seeds, when already measured.
        device: where the classifier trains.
        progress: progress bars.

    Returns:
        :class:`UtilityComparison` (``protocol="feature-extraction"``).

    Example:
        >>> from latent_transforms import GanBundle, GanConfig
        >>> bundle = GanBundle.random(GanConfig(resolution=16, channel_base=256, channel_max=32, c_dim=2))
        >>> g = torch.Generator().manual_seed(0)
        >>> x, y = torch.rand(16, 2, 16, 16, generator=g) * 2 - 1, torch.arange(16) % 2
        >>> quick = ClassifierOptions(epochs=1, batch_size=8, depth=10, width=4)
        >>> r = extraction_utility(bundle, (x, y), (x, y), seeds=[0], options=quick, finetune_epochs=2)
        >>> r.protocol, r.pvalue is None
        ('feature-extraction', True)
    """
    check_choice("metric", metric, CLASSIFICATION_METRICS)
    x, y = as_image_labels(train)
    n = len(x) if n_synthetic is None else check_int("n_synthetic", n_synthetic, low=1)
    if baseline is not None and len(baseline) != len(seeds):
        raise ConfigError(f"baseline has {len(baseline)} scores for {len(seeds)} seeds; give one per seed.")

    def run(source: Any, seed: int) -> tuple[float, dict[str, Any]]:
        opts = _options(options, seed)
        return _extraction_run(
            source, (x, y), test, n, fraction, finetune_epochs, opts, metric, device, progress
        )

    scores, reference, details = [], [], []
    for i, seed in enumerate(seeds):
        value, detail = run(generator, seed)
        scores.append(value)
        if baseline is not None:
            reference.append(float(baseline[i]))
        elif generator is None:
            reference.append(value)
        else:
            reference.append(run(None, seed)[0])
        details.append({"seed": int(seed), **detail})
    return UtilityComparison(
        "feature-extraction", metric, scores, reference, [int(s) for s in seeds], details=details
    )


# -- for `latent-transforms evaluate --utility` ------------------------------------------------------
def classifier_utility(
    train: Any,
    test: Any,
    *,
    protocol: str = "augmentation",
    val: Any = None,
    n_synthetic: int | None = None,
    augment_p: float = 0.5,
    options: ClassifierOptions | None = None,
    metric: str = "auc",
    fraction: float = 0.5,
    finetune_epochs: int = 20,
    apply: Callable[[Any, torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    device: torch.device | str | None = None,
    progress: bool = False,
) -> Callable[[Any, int], float]:
    """A built-in ``train_and_score(policy, seed) -> float`` for
    :func:`~latent_transforms.evaluate_policies` (``utility=``): the task classifier's test score.

    ``policy`` is what the evaluation passes (an object whose ``transform`` is the policy's transform, or a
    transform itself), ``None`` for the reference:

    - ``protocol="augmentation"``: ``None`` trains on ``train`` alone; a transform that draws new images
      (``SG2Sample``, ``DiffusionSample``: it has ``sample``) adds ``n_synthetic`` labelled samples; a
      transform of real images (``StandardDA``, ``LatentAugment``) augments each real training batch online,
      each image with probability ``augment_p``: ``apply(transform, chosen images [n, C, R, R] in
      [-1, 1], their classes [n] int64)`` gives the augmented images (default ``transform(images)``, which
      tells the transform no classes; :func:`~latent_transforms.evaluate_policies` passes
      :func:`~latent_transforms.evaluation.sampling.apply_with_labels`, so LatentAugment over a
      class-conditional GAN gets each image's class). The draws are seeded by the run's seed.
    - ``protocol="feature-extraction"``: ``None`` pretrains on ``train``; a generator transform pretrains on
      its samples (:func:`extraction_utility`); then the last layer is fine-tuned on ``fraction`` of
      ``train``.

    LatentAugment augments every real training image it is given, so its cache must hold the latents of
    the whole training split (``evaluate_policies`` inverts it when the built-in utility needs it).

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> x, y = torch.rand(16, 1, 16, 16, generator=g) * 2 - 1, torch.arange(16) % 2
        >>> score = classifier_utility((x, y), (x, y), options=ClassifierOptions(epochs=1, depth=10, width=4))
        >>> 0.0 <= score(None, 0) <= 1.0
        True
    """
    check_choice("protocol", protocol, PROTOCOLS)
    check_choice("metric", metric, CLASSIFICATION_METRICS)
    check_number("augment_p", augment_p, low=0.0, high=1.0)
    if apply is not None and not callable(apply):
        raise ConfigError(
            f"apply must be a callable (transform, images, labels) -> images, got {type(apply).__name__}."
        )
    real = as_image_labels(train)
    n = len(real[0]) if n_synthetic is None else check_int("n_synthetic", n_synthetic, low=1)

    def transform_of(policy: Any) -> Any:
        # a transform of the library (it has set_random_state, and its own `transform` method) is used
        # as it is; anything else (what evaluate passes) carries the transform in its `transform` field
        if hasattr(policy, "set_random_state"):
            return policy
        return getattr(policy, "transform", policy)

    def online(transform: Any, seed: int) -> BatchAugment:
        transform.set_random_state(seed)

        def augment(images: torch.Tensor, labels: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
            chosen = torch.rand(len(images), generator=generator) < augment_p
            if not bool(chosen.any()):
                return images
            out = images.clone()
            with torch.no_grad():
                if apply is None:
                    out[chosen] = transform(images[chosen]).to(images.dtype)
                else:
                    out[chosen] = apply(transform, images[chosen], labels[chosen]).to(images.dtype)
            return out

        return augment

    def train_and_score(policy: Any, seed: int) -> float:
        transform = transform_of(policy) if policy is not None else None
        if transform is None and policy is not None:
            raise ConfigError(
                "the built-in classifier utility needs a transform with labels; a fixed folder of images has "
                "no classes. Fix: evaluate a generator or a transform."
            )
        opts = _options(options, seed)
        if protocol == "feature-extraction":
            if transform is not None and not hasattr(transform, "sample"):
                raise ConfigError(
                    f"feature-extraction utility pretrains on synthetic images only; "
                    f"{type(transform).__name__} transforms real images. Fix: protocol='augmentation'."
                )
            args = (real, test, n, fraction, finetune_epochs, opts, metric, device, progress)
            return _extraction_run(transform, *args)[0]
        if transform is not None and hasattr(transform, "sample"):
            return _augmented_run(transform, real, test, val, n, opts, metric, device, progress)[0]
        augment = online(transform, seed) if transform is not None else None
        trained = train_classifier(
            real, val=val, options=opts, augment=augment, device=device, progress=progress
        )
        return _score(trained.model, test, metric)[0]

    return train_and_score
