"""Samples of an augmentation policy, every one augmented: what the metrics measure.

A policy's *samples* are what it outputs with ``p = 1``: ``SG2Sample`` and ``DiffusionSample`` draw images
from nothing,
``LatentAugment`` and ``StandardDA`` (any :class:`~latent_transforms.RandomTransform`) transform source
images, taken in a seeded random order that goes through every source before repeating one.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch
from tqdm.auto import tqdm

from latent_transforms.checks import check_image_batch, check_int
from latent_transforms.errors import ConfigError
from latent_transforms.transforms.base import RandomTransform
from latent_transforms.transforms.diffusion_sample import DiffusionSample
from latent_transforms.transforms.sg2sample import SG2Sample

__all__ = ["SAMPLING_TRANSFORMS", "augment_all", "generate_samples", "iter_samples"]

#: The transforms whose samples are drawn from nothing (their ``sample``), not made from source images.
SAMPLING_TRANSFORMS = (SG2Sample, DiffusionSample)


def augment_all(
    transform: RandomTransform,
    images: torch.Tensor,
    *,
    keys: Sequence[str] | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Apply ``transform`` to every image of a batch (``p`` ignored), in ``[-1, 1]``.

    Args:
        transform: any :class:`~latent_transforms.RandomTransform` (``StandardDA``, ``LatentAugment``,
            ``SG2Sample``, ...).
        images: ``[B, C, H, W]`` float in ``[-1, 1]`` (the generator's range, whatever the transform's
            ``value_range``), on the device to run on.
        keys: ``B`` dataset keys for a cache lookup (``LatentAugment``; default: content keys).
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
    with torch.no_grad():
        out = transform.apply_batch(images.float(), params, "image")
    return out.detach().float().clamp(-1.0, 1.0)


def iter_samples(
    policy: RandomTransform,
    n: int,
    *,
    sources: torch.Tensor | None = None,
    source_keys: Sequence[str] | None = None,
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
        for start in range(0, n, batch_size):
            b = min(batch_size, n - start)
            with torch.no_grad():
                yield policy.sample(b, generator=g, value_range="generator", device=dev).float()
        return
    if sources is None or not isinstance(sources, torch.Tensor) or sources.ndim != 4 or len(sources) == 0:
        raise ConfigError(
            f"{type(policy).__name__} transforms images: pass sources, real images [N, C, H, W] in [-1, 1] "
            "(for LatentAugment, ones whose latents are in its cache)."
        )
    if source_keys is not None and len(source_keys) != len(sources):
        raise ConfigError(
            f"expected {len(sources)} source_keys, one per source image, got {len(source_keys)}."
        )
    order: list[int] = []
    for start in range(0, n, batch_size):
        b = min(batch_size, n - start)
        while len(order) < b:
            order.extend(torch.randperm(len(sources), generator=g).tolist())
        picks, order = order[:b], order[b:]
        batch = sources[picks].to(dev)
        keys = [source_keys[i] for i in picks] if source_keys is not None else None
        yield augment_all(policy, batch, keys=keys, generator=g)


def generate_samples(
    policy: RandomTransform,
    n: int,
    *,
    sources: torch.Tensor | None = None,
    source_keys: Sequence[str] | None = None,
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
    """
    batches = iter_samples(
        policy, n, sources=sources, source_keys=source_keys, batch_size=batch_size, seed=seed, device=device
    )
    out = []
    with tqdm(total=n, desc=f"sampling {type(policy).__name__}", unit="img", disable=not progress) as bar:
        for batch in batches:
            out.append(batch.cpu())
            bar.update(batch.shape[0])
    return torch.cat(out)
