"""Samples of an augmentation policy, every one augmented: what the metrics measure.

A policy's *samples* are what it outputs with ``p = 1``: ``SG2Sample`` and ``DiffusionSample`` draw images
from nothing,
``LatentAugment`` and ``StandardDA`` (any :class:`~latent_transforms.RandomTransform`) transform source
images, taken in a seeded random order that goes through every source before repeating one.

Over a class-conditional generator the classes can be chosen: ``labels`` gives the class of every drawn
sample (e.g. at the training set's class balance), and ``source_labels`` the class of every source, which
a transform of sources keeps (LatentAugment's conditional discriminator is told it). Without them a
sampling transform draws its classes uniformly, as before.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from latent_transforms.checks import check_class_labels, check_image_batch, check_int
from latent_transforms.errors import ConfigError
from latent_transforms.transforms.base import RandomTransform
from latent_transforms.transforms.diffusion_sample import DiffusionSample
from latent_transforms.transforms.labels import ConditionalTransform
from latent_transforms.transforms.latent_augment import LatentAugment
from latent_transforms.transforms.sg2sample import SG2Sample

__all__ = [
    "SAMPLING_TRANSFORMS",
    "apply_with_labels",
    "augment_all",
    "class_count",
    "generate_samples",
    "iter_samples",
]

#: The transforms whose samples are drawn from nothing (their ``sample``), not made from source images.
SAMPLING_TRANSFORMS = (SG2Sample, DiffusionSample)


def class_count(transform: Any) -> int:
    """The number of classes whose samples ``transform`` can be asked for (0: none can be chosen).

    That is the class count of a conditional generator transform (``SG2Sample``, ``DiffusionSample``)
    that is not fixed to one class ``c``, and of ``LatentAugment`` over a conditional GAN; 0 for an
    unconditional generator, a transform fixed to one class and a transform without a generator
    (``StandardDA``).

    Example:
        >>> from latent_transforms import GanBundle, GanConfig, SG2Sample, StandardDA
        >>> cfg = GanConfig(resolution=16, channel_base=256, channel_max=32, c_dim=3)
        >>> class_count(SG2Sample(GanBundle.random(cfg))), class_count(SG2Sample(GanBundle.random(cfg), c=1))
        (3, 0)
        >>> class_count(StandardDA())
        0
    """
    if isinstance(transform, ConditionalTransform):
        return 0 if transform.fixed_class() is not None else int(transform.class_count())
    if isinstance(transform, LatentAugment):
        return int(transform.bundle.config.c_dim)
    return 0


def augment_all(
    transform: RandomTransform,
    images: torch.Tensor,
    *,
    keys: Sequence[str] | None = None,
    labels: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Apply ``transform`` to every image of a batch (``p`` ignored), in ``[-1, 1]``.

    Args:
        transform: any :class:`~latent_transforms.RandomTransform` (``StandardDA``, ``LatentAugment``,
            ``SG2Sample``, ...).
        images: ``[B, C, H, W]`` float in ``[-1, 1]`` (the generator's range, whatever the transform's
            ``value_range``), on the device to run on.
        keys: ``B`` dataset keys for a cache lookup (``LatentAugment``; default: content keys).
        labels: the images' classes, ``[B]`` int64 in ``[0, c_dim)``: over a conditional GAN
            ``LatentAugment``'s discriminator is told them (its fidelity term needs them) and a conditional
            ``SG2Sample`` / ``DiffusionSample`` makes each image of its class; a transform that cannot
            choose classes (:func:`class_count` 0: ``StandardDA``, an unconditional generator) ignores
            them. They do not change the random draws.
        generator: CPU ``torch.Generator`` for the draws (default: the transform's).

    Returns:
        ``[B, C, H, W]`` float32 in ``[-1, 1]`` on the images' device, without gradients.

    Example:
        >>> from latent_transforms import StandardDA
        >>> x = torch.rand(3, 2, 16, 16) * 2 - 1
        >>> out = augment_all(StandardDA(p=0.0), x, generator=torch.Generator().manual_seed(0))
        >>> out.shape, bool((out != x).any())
        (torch.Size([3, 2, 16, 16]), True)
    """
    if not isinstance(transform, RandomTransform):
        raise ConfigError(
            f"expected a latent_transforms RandomTransform (StandardDA, SG2Sample, LatentAugment, ...), got "
            f"{type(transform).__name__}."
        )
    check_image_batch(images, finite=False, allow_empty=True)
    if keys is not None and len(keys) != images.shape[0]:
        raise ConfigError(f"expected {images.shape[0]} keys, one per image, got {len(keys)}.")
    g = generator if generator is not None else transform.generator
    params = transform.draw_params(images.shape[0], g)
    if keys is not None:
        params["keys"] = list(keys)
    if labels is not None:
        params = _with_labels(transform, params, labels, images.shape[0])
    with torch.no_grad():
        out = transform.apply_batch(images.float(), params, "image")
    return out.detach().float().clamp(-1.0, 1.0)


def apply_with_labels(
    transform: RandomTransform, images: torch.Tensor, labels: torch.Tensor | None = None
) -> torch.Tensor:
    """``transform(images)`` (its ``p``, its range, its generator) with each image's class told to a
    transform that can use it: the online augmentation of a labelled training batch.

    Over a class-conditional GAN ``LatentAugment``'s discriminator gets each image's class as one-hot ``c``
    (its fidelity term needs it), as :func:`augment_all` does; a transform that cannot choose classes
    (:func:`class_count` 0: ``StandardDA``, an unconditional GAN) is simply called, so its draws are those
    of ``transform(images)``. The labels do not change the random draws.

    Args:
        transform: any :class:`~latent_transforms.RandomTransform`.
        images: ``[B, C, H, W]`` in the transform's ``value_range``, on any device (the result comes back
            there).
        labels: their classes, ``[B]`` int64 in ``[0, c_dim)`` (``None``: none told).

    Returns:
        ``[B, C, H, W]``: the images, each chosen one (probability ``p``) augmented, like
        ``transform(images)``.

    Example:
        >>> from latent_transforms import StandardDA
        >>> x = torch.rand(3, 1, 16, 16) * 2 - 1
        >>> out = apply_with_labels(StandardDA(p=1.0, seed=0), x, torch.tensor([0, 1, 1]))
        >>> torch.equal(out, StandardDA(p=1.0, seed=0)(x))  # StandardDA cannot use classes
        True
    """
    if labels is None or class_count(transform) == 0:
        return transform(images)
    transform.check_image(images)
    params = transform.params_for(images)
    params = _with_labels(transform, params, torch.as_tensor(labels), int(params["batch"]))
    return transform.transform(images, params)


def _with_labels(
    transform: RandomTransform, params: dict[str, Any], labels: torch.Tensor, batch: int
) -> dict[str, Any]:
    """``params`` of a batch of ``batch`` images of the classes ``labels``, for ``transform``."""
    classes = class_count(transform)
    if classes == 0:
        return params
    chosen = check_class_labels(labels, batch, classes)
    assert chosen is not None
    if isinstance(transform, ConditionalTransform):
        return transform.use_labels(params, chosen)
    params["c"] = F.one_hot(chosen, classes).float()  # LatentAugment: the labels of its discriminator
    return params


def iter_samples(
    policy: RandomTransform,
    n: int,
    *,
    sources: torch.Tensor | None = None,
    source_keys: Sequence[str] | None = None,
    labels: torch.Tensor | None = None,
    source_labels: torch.Tensor | None = None,
    batch_size: int = 16,
    seed: int = 0,
    device: torch.device | str | None = None,
) -> Iterator[torch.Tensor]:
    """Batches of ``policy``'s samples, ``n`` images in all (see :func:`generate_samples`).

    Yields ``[b, C, H, W]`` float32 in ``[-1, 1]`` on ``device``, ``b <= batch_size``.

    Example:
        >>> from latent_transforms import StandardDA
        >>> batches = list(iter_samples(StandardDA(), 5, sources=torch.zeros(2, 1, 8, 8), batch_size=2))
        >>> tuple(b.shape[0] for b in batches)
        (2, 2, 1)
    """
    n = check_int("n", n, low=1)
    batch_size = check_int("batch_size", batch_size, low=1)
    dev = torch.device(device) if device is not None else torch.device("cpu")
    g = torch.Generator().manual_seed(seed)
    if isinstance(policy, SAMPLING_TRANSFORMS):
        classes = None
        if labels is not None:
            if class_count(policy) == 0:
                raise ConfigError(
                    f"labels choose the classes of the samples, but this {type(policy).__name__} cannot "
                    "choose them (an unconditional generator, or one fixed to a class c). Fix: drop labels."
                )
            classes = check_class_labels(labels, n, class_count(policy))
        for start in range(0, n, batch_size):
            b = min(batch_size, n - start)
            part = classes[start : start + b] if classes is not None else None
            with torch.no_grad():
                yield policy.sample(b, part, generator=g, value_range="generator", device=dev).float()
        return
    if labels is not None:
        raise ConfigError(
            f"{type(policy).__name__} transforms source images and keeps each one's class; labels choose the "
            "classes of drawn samples only. Fix: pass the sources' classes as source_labels instead."
        )
    if sources is None or not isinstance(sources, torch.Tensor) or sources.ndim != 4 or len(sources) == 0:
        raise ConfigError(
            f"{type(policy).__name__} transforms images: pass sources, real images [N, C, H, W] in [-1, 1] "
            "(for LatentAugment, ones whose latents are in its cache)."
        )
    if source_keys is not None and len(source_keys) != len(sources):
        raise ConfigError(
            f"expected {len(sources)} source_keys, one per source image, got {len(source_keys)}."
        )
    if source_labels is not None:
        source_labels = torch.as_tensor(source_labels)
        if source_labels.ndim != 1 or len(source_labels) != len(sources):
            raise ConfigError(
                f"expected source_labels [{len(sources)}], one class index per source image, got shape "
                f"{tuple(source_labels.shape)}."
            )
        source_labels = source_labels.long().cpu()
    order: list[int] = []
    for start in range(0, n, batch_size):
        b = min(batch_size, n - start)
        while len(order) < b:
            order.extend(torch.randperm(len(sources), generator=g).tolist())
        picks, order = order[:b], order[b:]
        batch = sources[picks].to(dev)
        keys = [source_keys[i] for i in picks] if source_keys is not None else None
        classes = source_labels[picks] if source_labels is not None else None
        yield augment_all(policy, batch, keys=keys, labels=classes, generator=g)


def generate_samples(
    policy: RandomTransform,
    n: int,
    *,
    sources: torch.Tensor | None = None,
    source_keys: Sequence[str] | None = None,
    labels: torch.Tensor | None = None,
    source_labels: torch.Tensor | None = None,
    batch_size: int = 16,
    seed: int = 0,
    device: torch.device | str | None = None,
    progress: bool = False,
) -> torch.Tensor:
    """``n`` samples of ``policy`` with every sample augmented, on CPU.

    ``SG2Sample`` and ``DiffusionSample`` draw them from random latents or noise; any other transform
    augments ``sources`` taken in a
    seeded random order (each source once before any repeats). The same ``seed`` gives the same samples.

    Args:
        policy: the transform.
        n: number of samples.
        sources: real images ``[N, C, H, W]`` in ``[-1, 1]`` (not needed by ``SG2Sample`` and
            ``DiffusionSample``).
        source_keys: their dataset keys, for ``LatentAugment``'s cache lookup (default: content keys).
        labels: the class of every sample, ``[n]`` int64 in ``[0, c_dim)`` (or one int for all), for
            ``SG2Sample`` and ``DiffusionSample`` over a class-conditional generator (default: drawn
            uniformly, or the transform's fixed ``c``); refused by a generator that cannot choose classes,
            and by transforms of sources (they keep their sources' classes: ``source_labels``). They do not
            change the random draws: the same ``seed`` gives the same latents or noise with or without them.
        source_labels: the class of every source, ``[N]`` int64: each sample keeps its source's class
            (over a conditional GAN ``LatentAugment`` needs them for its fidelity term); ignored by
            transforms that cannot choose classes (``StandardDA``, an unconditional generator).
        batch_size: images per call of the policy.
        seed: seed of the order and of every draw.
        device: where the policy runs (default: CPU).
        progress: show a progress bar.

    Returns:
        ``[n, C, H, W]`` float32 in ``[-1, 1]`` on CPU.

    Example:
        >>> from latent_transforms import GanBundle, GanConfig, SG2Sample
        >>> bundle = GanBundle.random(GanConfig(resolution=16, channel_base=256, channel_max=32))
        >>> a = generate_samples(SG2Sample(bundle), 5, batch_size=2, seed=1)
        >>> a.shape, torch.equal(a, generate_samples(SG2Sample(bundle), 5, batch_size=2, seed=1))
        (torch.Size([5, 2, 16, 16]), True)

        Over a class-conditional GAN, the classes of the samples:

        >>> cgan = GanBundle.random(GanConfig(resolution=16, channel_base=256, channel_max=32, c_dim=2))
        >>> labels = torch.tensor([0, 1, 1, 1, 1])
        >>> b = generate_samples(SG2Sample(cgan), 5, labels=labels, batch_size=2, seed=1)
        >>> torch.equal(b[1:], generate_samples(SG2Sample(cgan), 5, labels=1, batch_size=2, seed=1)[1:])
        True
    """
    batches = iter_samples(
        policy,
        n,
        sources=sources,
        source_keys=source_keys,
        labels=labels,
        source_labels=source_labels,
        batch_size=batch_size,
        seed=seed,
        device=device,
    )
    out = []
    with tqdm(total=n, desc=f"sampling {type(policy).__name__}", unit="img", disable=not progress) as bar:
        for batch in batches:
            out.append(batch.cpu())
            bar.update(batch.shape[0])
    return torch.cat(out)
