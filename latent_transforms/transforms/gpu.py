"""Batch augmentation for DataLoaders: the GAN work in the main process, on whole batches.

The DataLoader's workers keep decoding and cropping on the CPU; :class:`GPUAugment` wraps the loader,
moves every batch to the device (pinned memory and a ``non_blocking`` copy on CUDA, the next batch's
copy overlapping the current batch's augmentation) and applies a batch transform there. Because the
transform runs in the main process from its own generator, a seed gives the same augmented batches
whatever ``num_workers`` is. :func:`augment_collate` is the collate-level variant (the transform runs
where the collate function runs: in the workers, on the CPU).

A batch may be

- a tensor ``[B, C, H, W]``: the transform gets it whole;
- a dict (what the library's datasets and MONAI's ``list_data_collate`` give): ``keys=["mri", "ct"]``
  names the per-modality ``[B, 1, H, W]`` entries, stacked as channels in that order (the GAN bundle's
  channel order) for the transform and split back afterwards; ``mask_keys`` follow a geometric
  transform with the same parameters (nearest neighbour); a ``"key"`` entry (the dataset keys,
  ``"<patient>/<slice>"``) is handed to the library's transforms so :class:`LatentAugment` finds the
  cached latents by key;
- a tuple or list: its first element is transformed, the rest (labels...) only moved.

:func:`~latent_transforms.transforms.stacking.apply_to_keys` is the stacking step alone, shared with the
MONAI dictionary transforms (and importable from here too).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

import torch
from torch.utils.data import default_collate

from latent_transforms.checks import canonical_device, default_device
from latent_transforms.errors import ConfigError
from latent_transforms.transforms.stacking import apply_to_keys

__all__ = ["AugmentCollate", "GPUAugment", "apply_to_keys", "augment_collate"]


# -- whole batches -------------------------------------------------------------------------------------
def _augment_batch(
    transform: Callable[..., Any],
    batch: Any,
    keys: Sequence[str] | None,
    mask_keys: Sequence[str],
    key_field: str | None,
) -> Any:
    if isinstance(batch, Mapping):
        if keys is None:
            raise ConfigError(
                f"the batches are dicts (keys {sorted(map(str, batch))}); say which entries to augment. Fix: "
                "keys=['mri', 'ct'] (stacked as channels in the GAN bundle's order)."
            )
        return apply_to_keys(transform, batch, keys, mask_keys=mask_keys, key_field=key_field)
    if isinstance(batch, torch.Tensor):
        return transform(batch)
    if isinstance(batch, (tuple, list)) and batch and isinstance(batch[0], (torch.Tensor, Mapping)):
        first = _augment_batch(transform, batch[0], keys, mask_keys, key_field)
        rest = list(batch[1:])
        if isinstance(batch, tuple) and hasattr(batch, "_fields"):  # namedtuple
            return type(batch)(first, *rest)
        return type(batch)([first, *rest])
    raise ConfigError(
        f"cannot augment a batch of type {type(batch).__name__}: expected a tensor [B, C, H, W], a dict "
        "(with keys=[...]) or a tuple/list whose first element is one of those."
    )


def _move(batch: Any, device: torch.device, non_blocking: bool, pin: bool) -> Any:
    if isinstance(batch, torch.Tensor):
        if batch.device == device:
            return batch
        if pin and batch.device.type == "cpu" and not batch.is_pinned():
            batch = batch.pin_memory()
        return batch.to(device, non_blocking=non_blocking)
    if isinstance(batch, Mapping):
        return {k: _move(v, device, non_blocking, pin) for k, v in batch.items()}
    if isinstance(batch, tuple) and hasattr(batch, "_fields"):
        return type(batch)(*(_move(v, device, non_blocking, pin) for v in batch))
    if isinstance(batch, (tuple, list)):
        return type(batch)(_move(v, device, non_blocking, pin) for v in batch)
    return batch


def _record_stream(batch: Any, stream: Any) -> None:
    if isinstance(batch, torch.Tensor):
        if batch.device.type == "cuda":
            batch.record_stream(stream)
    elif isinstance(batch, Mapping):
        for v in batch.values():
            _record_stream(v, stream)
    elif isinstance(batch, (tuple, list)):
        for v in batch:
            _record_stream(v, stream)


def _check_keys(keys: Sequence[str] | None, mask_keys: Sequence[str]) -> tuple[list[str] | None, list[str]]:
    keys_list = [keys] if isinstance(keys, str) else (list(keys) if keys is not None else None)
    masks_list = [mask_keys] if isinstance(mask_keys, str) else list(mask_keys)
    if keys_list is not None and not keys_list:
        raise ConfigError("keys must name at least one entry of the batch dicts, e.g. keys=['mri', 'ct'].")
    if mask_keys and keys_list is None:
        raise ConfigError("mask_keys need keys=[...] too (the images the masks follow).")
    return keys_list, masks_list


class GPUAugment:
    """Wrap a DataLoader: move each batch to ``device`` and augment it there, in the main process.

    Iterating yields the loader's batches, moved to ``device`` (every tensor in them; pinned memory and a
    ``non_blocking`` copy on CUDA, the next batch copied on a side stream while the current one is
    augmented) and transformed by ``transform``: a tensor batch ``[B, C, H, W]`` whole, the ``keys`` of a
    dict batch stacked as channels (see :func:`apply_to_keys`; ``mask_keys`` follow geometric
    transforms; the dataset keys in ``batch[key_field]`` reach :class:`LatentAugment`, also inside a
    ``v2.Compose``), or a tuple's first element. Values keep the caller's range, dtype and shape.
    ``len()`` is the loader's.

    The transform runs in the main process, from its own generator: a seed gives the same augmented
    batches whatever the loader's ``num_workers`` is, and the workers never touch CUDA (so the
    default ``fork`` start method is fine).

    Args:
        loader: any iterable of batches (a ``torch.utils.data.DataLoader``, MONAI's ``DataLoader`` or
            ``ThreadDataLoader``...).
        transform: a batch transform (the library's transforms, a ``v2.Compose`` of them, any callable).
        device: where batches go and the transform runs (``"cuda"``, ``"cuda:1"``, ``"cpu"``...).
        non_blocking: asynchronous host-to-device copies (CUDA).
        pin_memory: pin CPU tensors before copying (default: on for CUDA; a loader built with
            ``pin_memory=True`` already gives pinned batches, which are not copied again).
        keys: entries of dict batches to augment, in the GAN bundle's channel order.
        mask_keys: entries of dict batches that follow a geometric transform (nearest neighbour).
        key_field: entry of dict batches holding the dataset keys (``None``: find latents by content).
        prefetch: on CUDA, copy the next batch while the current one is augmented.

    Example:
        >>> from torch.utils.data import DataLoader, TensorDataset
        >>> loader = DataLoader(TensorDataset(torch.zeros(6, 2, 8, 8)), batch_size=4)
        >>> batches = GPUAugment(loader, lambda x: x + 1, device="cpu")
        >>> len(batches), [tuple(b[0].shape) for b in batches], next(iter(batches))[0].mean().item()
        (2, [(4, 2, 8, 8), (2, 2, 8, 8)], 1.0)
    """

    def __init__(
        self,
        loader: Iterable[Any],
        transform: Callable[..., Any],
        device: torch.device | str = "cuda",
        non_blocking: bool = True,
        pin_memory: bool | None = None,
        *,
        keys: Sequence[str] | None = None,
        mask_keys: Sequence[str] = (),
        key_field: str | None = "key",
        prefetch: bool = True,
    ) -> None:
        if not callable(transform):
            raise ConfigError(f"transform must be callable, got {type(transform).__name__}.")
        dev = canonical_device(default_device(device))  # refuses CUDA where there is none, with the fix
        self.loader = loader
        self.transform = transform
        self.device = dev
        self.non_blocking = bool(non_blocking)
        self.pin_memory = dev.type == "cuda" if pin_memory is None else bool(pin_memory)
        self.keys, self.mask_keys = _check_keys(keys, mask_keys)
        self.key_field = key_field
        self.prefetch = bool(prefetch)

    def __len__(self) -> int:
        return len(self.loader)  # type: ignore[arg-type]

    def augment(self, batch: Any) -> Any:
        """Move one batch to the device and transform it (what iterating does to each batch)."""
        moved = _move(batch, self.device, self.non_blocking, self.pin_memory and self.device.type == "cuda")
        return _augment_batch(self.transform, moved, self.keys, self.mask_keys, self.key_field)

    def __iter__(self) -> Iterator[Any]:
        if self.device.type != "cuda" or not self.prefetch:
            for batch in self.loader:
                yield self.augment(batch)
            return
        yield from self._iter_cuda()

    def _iter_cuda(self) -> Iterator[Any]:
        stream = torch.cuda.Stream(device=self.device)
        pin = self.pin_memory
        batches = iter(self.loader)

        def copy_next() -> tuple[bool, Any]:
            try:
                batch = next(batches)
            except StopIteration:
                return False, None
            with torch.cuda.stream(stream):
                return True, _move(batch, self.device, self.non_blocking, pin)

        more, pending = copy_next()
        while more:
            current_stream = torch.cuda.current_stream(self.device)
            current_stream.wait_stream(stream)
            batch = pending
            _record_stream(batch, current_stream)
            more, pending = copy_next()  # the next copy overlaps this batch's augmentation
            yield _augment_batch(self.transform, batch, self.keys, self.mask_keys, self.key_field)

    def __repr__(self) -> str:
        keys = f", keys={self.keys}" if self.keys is not None else ""
        masks = f", mask_keys={self.mask_keys}" if self.mask_keys else ""
        return f"GPUAugment({self.transform!r}, device={str(self.device)!r}{keys}{masks})"


class AugmentCollate:
    """A collate function that collates with ``collate_fn`` and then augments the batch (picklable).

    Made by :func:`augment_collate`; see there.

    Example:
        >>> collate = AugmentCollate(lambda x: -x)
        >>> collate([torch.ones(1, 2, 2), torch.ones(1, 2, 2)]).shape
        torch.Size([2, 1, 2, 2])
    """

    def __init__(
        self,
        transform: Callable[..., Any],
        collate_fn: Callable[[list[Any]], Any] = default_collate,
        *,
        keys: Sequence[str] | None = None,
        mask_keys: Sequence[str] = (),
        key_field: str | None = "key",
    ) -> None:
        if not callable(transform) or not callable(collate_fn):
            raise ConfigError("augment_collate needs a callable transform and a callable collate_fn.")
        self.transform = transform
        self.collate_fn = collate_fn
        self.keys, self.mask_keys = _check_keys(keys, mask_keys)
        self.key_field = key_field

    def __call__(self, samples: list[Any]) -> Any:
        return _augment_batch(
            self.transform, self.collate_fn(samples), self.keys, self.mask_keys, self.key_field
        )

    def __repr__(self) -> str:
        return f"AugmentCollate({self.transform!r}, keys={self.keys})"


def augment_collate(
    transform: Callable[..., Any],
    collate_fn: Callable[[list[Any]], Any] = default_collate,
    *,
    keys: Sequence[str] | None = None,
    mask_keys: Sequence[str] = (),
    key_field: str | None = "key",
) -> AugmentCollate:
    """A ``collate_fn`` for ``DataLoader`` that augments each collated batch (batch ``[B, C, H, W]``).

    The transform runs where the DataLoader collates: in its worker processes (on the CPU; CUDA there
    needs ``multiprocessing_context="spawn"``) or, with ``num_workers=0``, in the main process. Inside
    workers the library's transforms key their draws by (seed, the loader's epoch seed, the batch's
    dataset keys or content), so a seed and the loader's generator give the same batches for any
    ``num_workers >= 1``; with ``num_workers=0`` the transform draws from its own generator in call order,
    which gives other batches. For GPU work, or the same batches for any ``num_workers``, prefer
    :class:`GPUAugment`. Batches are handled as in :class:`GPUAugment` (``keys`` for dicts).

    Example:
        >>> from torch.utils.data import DataLoader
        >>> items = [{"mri": torch.zeros(1, 4, 4), "ct": torch.zeros(1, 4, 4)} for _ in range(4)]
        >>> collate = augment_collate(lambda x: x + 1, keys=["mri", "ct"])
        >>> loader = DataLoader(items, batch_size=2, collate_fn=collate)
        >>> tuple(b["ct"].mean().item() for b in loader)
        (1.0, 1.0)
    """
    return AugmentCollate(transform, collate_fn, keys=keys, mask_keys=mask_keys, key_field=key_field)
