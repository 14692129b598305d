"""Training images for the GAN: stacked, normalised modalities, a resumable seeded order, optional labels."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, Sampler
from tqdm.auto import tqdm

from latent_transforms.data.items import stack_modalities
from latent_transforms.data.windows import IntensityWindow
from latent_transforms.errors import ConfigError

PRELOAD_LIMIT_BYTES = 2 * 1024**3


class GanImages(Dataset):
    """A paired dataset seen as GAN training images ``[C, R, R]`` in ``[-1, 1]`` (plus a label).

    Args:
        dataset: any dataset of items (see :mod:`latent_transforms.data.items`).
        modalities: channel order, e.g. ``["mri", "ct"]``.
        windows: one intensity window per modality.
        label_key: item key of an integer class label for conditional GANs (``None`` = unconditional).
        c_dim: number of classes when ``label_key`` is set.

    Items are ``(image [C, R, R] float32, label int)``; the label is 0 when unconditional.

    Example:
        >>> items = [{"mri": torch.zeros(1, 4, 4), "ct": torch.zeros(1, 4, 4)}]
        >>> ds = GanImages(items, ["mri", "ct"], [IntensityWindow(0, 1900), IntensityWindow(-1000, 2000)])
        >>> image, label = ds[0]
        >>> tuple(image.shape), label
        ((2, 4, 4), 0)
    """

    def __init__(
        self,
        dataset: Any,
        modalities: Sequence[str],
        windows: Sequence[IntensityWindow],
        *,
        label_key: str | None = None,
        c_dim: int = 0,
    ) -> None:
        if len(dataset) == 0:
            raise ConfigError("the training dataset is empty; check the data path and the slice filters.")
        if label_key is not None and c_dim < 1:
            raise ConfigError(f"label_key={label_key!r} needs c_dim >= 1 (the number of classes).")
        self.dataset = dataset
        self.modalities = list(modalities)
        self.windows = list(windows)
        self.label_key = label_key
        self.c_dim = c_dim

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        item = self.dataset[index]
        image = stack_modalities(item, self.modalities, self.windows)
        label = 0
        if self.label_key is not None:
            label = int(item[self.label_key])
            if not 0 <= label < self.c_dim:
                raise ConfigError(f"item {index} has label {label}, outside [0, {self.c_dim}).")
        return image, label

    def __repr__(self) -> str:
        return (
            f"GanImages(n={len(self)}, modalities={self.modalities}, label_key={self.label_key!r}, "
            f"c_dim={self.c_dim})"
        )


class SeededOrder(Sampler[int]):
    """An endless, seeded sequence of dataset indices that can restart at any position.

    Epoch ``e`` is a permutation drawn from ``seed + e``; with ``world_size > 1`` rank ``r`` takes every
    ``world_size``-th index starting at ``r``. ``start`` skips the first ``start`` indices this rank
    would yield (resume after ``start`` images). ``repeats`` (``[n]`` integers >= 1, e.g. from
    :func:`class_balance_repeats`) puts index ``i`` ``repeats[i]`` times into every epoch.

    Example:
        >>> from itertools import islice
        >>> first = list(islice(SeededOrder(5, seed=0), 7))
        >>> later = list(islice(SeededOrder(5, seed=0, start=5), 2))
        >>> later == first[5:]
        True
    """

    def __init__(
        self,
        n: int,
        *,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        start: int = 0,
        repeats: torch.Tensor | None = None,
    ) -> None:
        self.n, self.seed, self.rank, self.world_size, self.start = n, seed, rank, world_size, start
        if repeats is not None:
            repeats = torch.as_tensor(repeats).long()
            if repeats.shape != (n,) or bool((repeats < 1).any()):
                raise ConfigError(f"repeats must be {n} integers >= 1; got shape {tuple(repeats.shape)}.")
        self.repeats = repeats
        # one epoch: every index ``repeats[i]`` times (each once without repeats)
        self._epoch = torch.arange(n) if repeats is None else torch.arange(n).repeat_interleave(repeats)

    def __iter__(self) -> Iterator[int]:
        size = len(self._epoch)
        position = self.start * self.world_size + self.rank  # global position of this rank's next index
        epoch, offset = divmod(position, size)
        while True:
            perm = torch.randperm(size, generator=torch.Generator().manual_seed(self.seed + epoch))
            while offset < size:
                yield int(self._epoch[perm[offset]])
                offset += self.world_size
            offset -= size
            epoch += 1

    def __len__(self) -> int:  # endless; DataLoader only needs a number for progress display
        return 2**62

    def __repr__(self) -> str:
        balanced = "" if self.repeats is None else f", epoch={len(self._epoch)}"
        return (
            f"SeededOrder(n={self.n}, seed={self.seed}, rank={self.rank}, world_size={self.world_size}"
            f"{balanced})"
        )


def class_balance_repeats(labels: torch.Tensor) -> torch.Tensor:
    """How often each image appears per epoch so that every class is shown about as often as the largest:
    ``round(n_largest / n_class)`` for an image of class ``class`` (at least 1).

    Args:
        labels: ``[N]`` integer class labels.

    Returns:
        ``[N]`` int64 repeat counts.

    Example:
        >>> class_balance_repeats(torch.tensor([0, 1, 1, 1, 1, 1, 1])).tolist()
        [6, 1, 1, 1, 1, 1, 1]
    """
    labels = torch.as_tensor(labels).long()
    counts = torch.bincount(labels)
    largest = int(counts.max())
    per_class = torch.where(counts > 0, (largest / counts.clamp(min=1).double()).round(), torch.ones(()))
    return per_class.clamp(min=1).long()[labels]


class TensorImages(Dataset):
    """Training images held in memory: ``images`` ``[N, C, R, R]`` in ``[-1, 1]`` and ``labels`` ``[N]``
    (int64; zeros for an unconditional GAN). What :class:`GanImages` becomes when preloaded, and the
    quickest way to hand tensors to the :class:`~latent_transforms.Trainer`.

    Example:
        >>> data = TensorImages(torch.zeros(3, 1, 8, 8), torch.tensor([0, 1, 1]))
        >>> image, label = data[2]
        >>> len(data), tuple(image.shape), label
        (3, (1, 8, 8), 1)
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor) -> None:
        self.images, self.labels = images, labels

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return self.images[index], int(self.labels[index])


def preload(images: GanImages, *, progress: bool = True) -> TensorImages:
    """Render every image of ``images`` once into memory (float32)."""
    first, _ = images[0]
    out = torch.empty((len(images), *first.shape), dtype=torch.float32)
    labels = torch.empty(len(images), dtype=torch.long)
    for i in tqdm(range(len(images)), desc="loading training images", disable=not progress, leave=False):
        out[i], labels[i] = images[i]
    return TensorImages(out, labels)


def should_preload(images: GanImages, setting: str | bool) -> bool:
    """Decide whether to keep the training set in memory (``"auto"``: under 2 GiB as float32)."""
    if isinstance(setting, bool):
        return setting
    if setting != "auto":
        raise ConfigError(f"preload must be True, False or 'auto'; got {setting!r}.")
    first, _ = images[0]
    return len(images) * first.numel() * 4 <= PRELOAD_LIMIT_BYTES


class BatchStream:
    """Yields ``(images, labels)`` batches forever, in :class:`SeededOrder`, resumable by image count.

    Args:
        dataset: a :class:`GanImages` or :class:`TensorImages`.
        batch_size: images per batch on this rank.
        seed, rank, world_size: see :class:`SeededOrder`.
        start: images this rank has already consumed (resume).
        num_workers: DataLoader workers (ignored for in-memory data).
        repeats: ``[N]`` times each image appears per epoch (:func:`class_balance_repeats`); ``None`` = once.
    """

    def __init__(
        self,
        dataset: Dataset,
        batch_size: int,
        *,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        start: int = 0,
        num_workers: int = 0,
        repeats: torch.Tensor | None = None,
    ) -> None:
        order = SeededOrder(
            len(dataset),
            seed=seed,
            rank=rank,
            world_size=world_size,
            start=start,
            repeats=repeats,
        )
        self._in_memory = isinstance(dataset, TensorImages)
        self._dataset = dataset
        self._batch_size = batch_size
        if self._in_memory:
            self._indices = iter(order)
        else:
            loader = DataLoader(
                dataset,
                batch_size=batch_size,
                sampler=order,
                num_workers=num_workers,
                drop_last=True,
                persistent_workers=num_workers > 0,
            )
            self._batches = iter(loader)

    def __iter__(self) -> BatchStream:
        return self

    def __next__(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self._in_memory:
            idx = torch.tensor([next(self._indices) for _ in range(self._batch_size)])
            assert isinstance(self._dataset, TensorImages)
            return self._dataset.images[idx], self._dataset.labels[idx]
        images, labels = next(self._batches)
        return images, torch.as_tensor(labels)
