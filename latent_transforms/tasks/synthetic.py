"""Labelled synthetic images from any class-conditional generator, the class balance they follow, and how
fast a generator makes them (the inputs of the utility protocols in :mod:`latent_transforms.tasks.utility`).

A *generator* is anything with the library's common face, ``sample(n, labels=..., ...)`` giving
``[n, C, R, R]`` images in ``[-1, 1]`` with a ``config.c_dim`` (a :class:`~latent_transforms.GanBundle`, a
:class:`~latent_transforms.DiffusionBundle`), or a transform over one (:class:`~latent_transforms.SG2Sample`,
:class:`~latent_transforms.DiffusionSample`).
"""

from __future__ import annotations

from typing import Any

import torch
from tqdm.auto import tqdm

from latent_transforms.checks import check_int, check_number
from latent_transforms.errors import ConfigError
from latent_transforms.metrics.efficiency import Efficiency, measure_efficiency

__all__ = ["resampled_labels", "sampling_efficiency", "stratified_fraction", "synthetic_set"]


def _classes(generator: Any) -> int:
    config = getattr(generator, "config", None)
    if config is None and hasattr(generator, "class_count"):
        return int(generator.class_count())
    return int(getattr(config, "c_dim", 0) or 0)


def synthetic_set(
    generator: Any,
    labels: torch.Tensor,
    *,
    seed: int = 0,
    batch_size: int = 64,
    progress: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Labelled synthetic images: one of each class in ``labels``, from a class-conditional generator.

    Args:
        generator: a generator with the common face (a bundle, or ``SG2Sample`` / ``DiffusionSample``).
        labels: the classes ``[n]`` (int64) of the images to make.
        seed: seeds the draws (a bundle gets one seed per batch; a transform a CPU generator).
        batch_size: images per call of the generator.
        progress: a tqdm bar.

    Returns:
        ``(images [n, C, R, R] float32 in [-1, 1] on CPU, labels [n] int64)``.

    Example:
        >>> from latent_transforms import GanBundle, GanConfig
        >>> bundle = GanBundle.random(GanConfig(resolution=16, channel_base=256, channel_max=32, c_dim=2))
        >>> x, y = synthetic_set(bundle, torch.tensor([0, 1, 1]), seed=0)
        >>> x.shape, y.tolist(), bool(x.abs().max() <= 1)
        (torch.Size([3, 2, 16, 16]), [0, 1, 1], True)
    """
    classes = _classes(generator)
    if classes == 0:
        raise ConfigError(
            f"{type(generator).__name__} is unconditional: its images have no class, so they cannot train a "
            "classifier. Fix: train a class-conditional generator (--cond / labelled data)."
        )
    labels = torch.as_tensor(labels).reshape(-1).long().cpu()
    batch_size = check_int("batch_size", batch_size, low=1)
    is_transform = hasattr(generator, "value_range")
    draws = torch.Generator().manual_seed(seed)
    out = []
    for index, start in enumerate(
        tqdm(range(0, len(labels), batch_size), desc="synthetic images", disable=not progress, leave=False)
    ):
        part = labels[start : start + batch_size]
        with torch.no_grad():
            if is_transform:
                images = generator.sample(len(part), part, generator=draws, value_range="generator")
            else:
                images = generator.sample(len(part), part, seed=seed * 1_000_003 + index)
        out.append(images.detach().float().cpu().clamp(-1.0, 1.0))
    return torch.cat(out), labels


def resampled_labels(labels: torch.Tensor, n: int, seed: int) -> torch.Tensor:
    """``n`` labels drawn from ``labels`` (the real class balance), seeded.

    Example:
        >>> resampled_labels(torch.tensor([0, 1, 1, 1]), 6, seed=0).shape
        torch.Size([6])
    """
    g = torch.Generator().manual_seed(seed)
    return labels[torch.randint(len(labels), (n,), generator=g)]


def stratified_fraction(labels: torch.Tensor, fraction: float, *, seed: int = 0) -> torch.Tensor:
    """Sorted indices of a stratified ``fraction`` of ``labels`` (at least one per class), seeded.

    Example:
        >>> stratified_fraction(torch.tensor([0, 0, 0, 0, 1, 1]), 0.5, seed=0).tolist()  # doctest: +SKIP
        [0, 3, 5]
        >>> len(stratified_fraction(torch.tensor([0, 0, 0, 0, 1, 1]), 0.5))
        3
    """
    check_number("fraction", fraction, low=0.0, high=1.0, low_open=True)
    g = torch.Generator().manual_seed(seed)
    picks = []
    for c in labels.unique().tolist():
        members = (labels == c).nonzero().flatten()
        keep = max(1, round(fraction * len(members)))
        picks.append(members[torch.randperm(len(members), generator=g)[:keep]])
    return torch.cat(picks).sort().values


def sampling_efficiency(
    generator: Any,
    *,
    n_images: int = 1000,
    batch_size: int = 16,
    device: torch.device | str | None = None,
    seed: int = 0,
    **sample_kwargs: Any,
) -> Efficiency:
    """Time per 1,000 images and peak memory of ``generator.sample`` (Xing et al. 2023's efficiency).

    On CUDA the peak is the GPU memory ``torch.cuda.max_memory_allocated`` reports; on the CPU it is the
    peak resident set size of the process (``/proc/self/status`` ``VmHWM`` after a reset on Linux,
    ``resource.getrusage`` elsewhere; :attr:`~latent_transforms.metrics.efficiency.Efficiency.peak_rss_source`
    says which). ``sample_kwargs`` go to every call (e.g. ``steps=50`` for a diffusion bundle).

    Example:
        >>> from latent_transforms import GanBundle, GanConfig
        >>> bundle = GanBundle.random(GanConfig(resolution=16, channel_base=256, channel_max=32))
        >>> e = sampling_efficiency(bundle, n_images=8, batch_size=4, device="cpu")
        >>> e.images, e.peak_rss_gb > 0
        (8, True)
    """
    calls = iter(range(2**62))

    def make(b: int) -> torch.Tensor:
        with torch.no_grad():
            if hasattr(generator, "value_range"):
                g = torch.Generator().manual_seed(seed * 1_000_003 + next(calls))
                return generator.sample(b, generator=g, value_range="generator", **sample_kwargs)
            return generator.sample(b, seed=seed * 1_000_003 + next(calls), **sample_kwargs)

    dev = device if device is not None else getattr(generator, "device", None)
    return measure_efficiency(make, batch_size=batch_size, n_images=n_images, device=dev, rss=True)
