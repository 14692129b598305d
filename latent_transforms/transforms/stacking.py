"""Stack the entries of a dict as the channels of one image, run a transform, split the result back.

A MONAI or library dict item keeps each modality under its own key (``{"mri": [1, H, W], "ct": [1, H,
W], "key": "p0/0001"}``); the library's transforms take paired modalities as the channels of one image.
:func:`apply_to_keys` (and :func:`run_on_keys`, which also says whether anything was drawn) is that
stacking step, shared by :class:`~latent_transforms.GPUAugment`, :func:`~latent_transforms.augment_collate`
and the MONAI dictionary variants.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torchvision import tv_tensors
from torchvision.transforms import v2

from latent_transforms.errors import ConfigError
from latent_transforms.transforms.base import RandomTransform
from latent_transforms.transforms.labels import ConditionalTransform
from latent_transforms.transforms.layout import keep_layout

__all__ = ["apply_to_keys", "check_channel_order", "run_on_keys"]


def _as_plain(value: Any, name: str) -> torch.Tensor:
    if isinstance(value, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(value))
    if isinstance(value, torch.Tensor):
        return value.as_subclass(torch.Tensor) if type(value) is not torch.Tensor else value
    raise ConfigError(
        f"data[{name!r}] is a {type(value).__name__}; a tensor or NumPy array [1, H, W] (one sample) or "
        "[B, 1, H, W] (a batch) was expected. Fix: load the images first (e.g. MONAI's LoadImaged and "
        "EnsureChannelFirstd, or torch.as_tensor)."
    )


def _like(y: torch.Tensor, original: Any) -> Any:
    """``y`` as the same kind of value as ``original``: MONAI ``MetaTensor`` (same metadata), a
    torchvision ``TVTensor``, a NumPy array, or a plain tensor."""
    if isinstance(original, np.ndarray):
        return y.detach().cpu().numpy().astype(original.dtype, copy=False)
    if type(original) is torch.Tensor or not isinstance(original, torch.Tensor):
        return y
    if isinstance(original, tv_tensors.TVTensor):
        return tv_tensors.wrap(y, like=original)
    if hasattr(original, "copy_meta_from"):  # monai.data.MetaTensor, without importing MONAI here
        out = type(original)(y)
        out.copy_meta_from(original)
        return out
    return y.as_subclass(type(original))


def _dataset_keys(
    data: Mapping[Any, Any], key_field: str | None, batch: int, batched: bool
) -> list[str] | None:
    if key_field is None or key_field not in data:
        return None
    value = data[key_field]
    if isinstance(value, str):
        keys = [value]
    elif isinstance(value, (torch.Tensor, np.ndarray)):
        keys = [str(v) for v in value.reshape(-1).tolist()]
    elif isinstance(value, Sequence):
        keys = [str(v) for v in value]
    else:
        keys = [str(value)]
    if len(keys) != batch:
        what = f"a batch of {batch}" if batched else "one sample"
        raise ConfigError(
            f"data[{key_field!r}] holds {len(keys)} dataset key(s) but the images are {what}. Fix: give "
            f"one key per sample, or key_field=None to find latents by image content."
        )
    return keys


def _labels(value: Any) -> Any:
    """A dict entry of class labels as an int or an integer tensor (NumPy and lists converted)."""
    if isinstance(value, (int, torch.Tensor)):
        return value.as_subclass(torch.Tensor) if isinstance(value, torch.Tensor) else value
    return torch.as_tensor(np.asarray(value))


def check_channel_order(transform: Any, keys: Sequence[str]) -> None:
    """Refuse ``keys`` that stack a modality of the transform's GAN in another channel than the GAN's.

    Keys that do not name a modality are taken in the GAN's order; a transform without modality names
    accepts any keys.

    Example:
        >>> from latent_transforms.transforms.standard_da import StandardDA
        >>> check_channel_order(StandardDA(), ["ct", "mri"])  # no GAN: any order
    """
    names_fn = getattr(transform, "modality_names", None)
    names = names_fn() if callable(names_fn) else None
    if not names:
        return
    names = list(names)
    misplaced = [k for i, k in enumerate(keys) if k in names and names.index(k) != i]
    if misplaced:
        fix = [k for k in names if k in keys] if set(names) <= set(keys) else names
        raise ConfigError(
            f"keys={list(keys)} stack {misplaced} in another channel than the GAN bundle, whose channels "
            f"are {names} in that order. Fix: keys={fix}."
        )


def _lookup_keys(step: RandomTransform, dataset_keys: list[str] | None) -> list[str] | None:
    """The dataset keys a step gets: the transform says whether it looks its data up by them
    (:meth:`RandomTransform.accepts_dataset_keys`; LatentAugment only when its cache holds one of them)."""
    if dataset_keys is None or not step.accepts_dataset_keys(dataset_keys):
        return None
    return dataset_keys


def _steps(transform: Any) -> list[Any]:
    """A ``v2.Compose`` unrolled into its transforms (so each library transform gets the dataset keys)."""
    if isinstance(transform, v2.Compose):
        return [step for inner in transform.transforms for step in _steps(inner)]
    return [transform]


def run_on_keys(
    transform: Callable[..., Any],
    data: Mapping[Any, Any],
    keys: Sequence[str],
    mask_keys: Sequence[str],
    key_field: str | None,
    allow_missing_keys: bool,
    label_key: str | None = None,
) -> tuple[dict[Any, Any], bool]:
    """:func:`apply_to_keys`, and whether any sample was drawn for augmentation (the MONAI dictionary
    transforms report it as ``_do_transform``). ``data[label_key]``, when given and present (an int, or one
    class index per sample), sets the classes of the conditional generator transforms
    (:class:`~latent_transforms.transforms.labels.ConditionalTransform`); the entry itself is kept.

    Example:
        >>> data = {"mri": torch.zeros(1, 4, 4), "ct": torch.ones(1, 4, 4)}
        >>> out, applied = run_on_keys(lambda x: x + 1, data, ["mri", "ct"], [], None, False)
        >>> out["ct"].mean().item(), applied
        (2.0, True)
    """
    out = dict(data)
    for group in (keys, mask_keys):
        missing = [k for k in group if k not in data]
        if missing and not allow_missing_keys:
            raise ConfigError(
                f"{type(transform).__name__} needs data[{missing[0]!r}], but the data only has "
                f"{sorted(map(str, data))}. Fix: name existing keys, or allow_missing_keys=True to skip "
                "the absent ones."
            )
    present = [k for k in keys if k in data]
    present_masks = [k for k in mask_keys if k in data]
    if not present:
        return out, False
    name = type(transform).__name__
    images = [_as_plain(data[k], k) for k in present]
    masks = [_as_plain(data[k], k) for k in present_masks]
    first = images[0]
    if first.ndim not in (3, 4):
        raise ConfigError(
            f"{name}: data[{present[0]!r}] has shape {tuple(first.shape)}; [C, H, W] (one sample) or "
            "[B, C, H, W] (a batch) was expected. Fix: add a channel dimension (e.g. MONAI's "
            "EnsureChannelFirstd, or x[None])."
        )
    lead, spatial = first.shape[:-3], first.shape[-2:]
    for k, x in zip(present + present_masks, images + masks, strict=True):
        if x.ndim != first.ndim or x.shape[:-3] != lead or x.shape[-2:] != spatial:
            raise ConfigError(
                f"{name}: data[{k!r}] has shape {tuple(x.shape)} but data[{present[0]!r}] has "
                f"{tuple(first.shape)}; every key must have the same batch size and image size (channels "
                "may differ). Fix: resample the modalities onto one grid first."
            )
    for k, x in zip(present, images, strict=True):
        if x.dtype != first.dtype or x.device != first.device:
            raise ConfigError(
                f"{name}: data[{k!r}] is {x.dtype} on {x.device} but data[{present[0]!r}] is {first.dtype} "
                f"on {first.device}; the keys are stacked into one image. Fix: cast them alike first (e.g. "
                "MONAI's CastToTyped / EnsureTyped)."
            )
    steps = _steps(transform)
    for step in steps:
        check_channel_order(step, present)
    image = images[0] if len(images) == 1 else torch.cat(images, dim=-3)
    batched = image.ndim == 4
    batch = image.shape[0] if batched else 1
    dataset_keys = _dataset_keys(data, key_field, batch, batched)
    result, mask_results, applied = image, masks, False
    for step in steps:
        if isinstance(step, RandomTransform):
            if masks and not step.supports_masks:
                raise ConfigError(
                    f"{type(step).__name__} makes new images, which masks {present_masks} cannot follow. "
                    "Fix: leave mask_keys out for it (only geometric transforms such as StandardDA move "
                    "masks)."
                )
            step.check_image(result)
            step_keys = _lookup_keys(step, dataset_keys)
            params = step.params_for(result, key=step_keys)
            if label_key is not None and label_key in data and isinstance(step, ConditionalTransform):
                params = step.use_labels(params, _labels(data[label_key]))
            if step_keys is not None:
                params["keys"] = step_keys  # LatentAugment finds the latents by them
            if not bool(params["apply"].any()):
                continue
            result = step.transform(result, params)
            mask_results = [step.transform(tv_tensors.Mask(m), params) for m in mask_results]
        elif mask_results:
            result, *mask_results = step(result, *[tv_tensors.Mask(m) for m in mask_results])
        else:
            result = step(result)
        applied = True
        result = result.as_subclass(torch.Tensor) if isinstance(result, torch.Tensor) else result
        if not isinstance(result, torch.Tensor) or result.shape[:-3] != image.shape[:-3]:
            raise ConfigError(
                f"{type(step).__name__} returned {type(result).__name__} for a tensor of shape "
                f"{tuple(image.shape)}; a tensor of the same batch shape was expected."
            )
        mask_results = [m.as_subclass(torch.Tensor) for m in mask_results]
    if not applied:
        return out, False
    counts = [x.shape[-3] for x in images]
    # Each value in its own memory layout (a channel slice of the stacked batch is not contiguous).
    for k, y, x in zip(present, torch.split(result, counts, dim=-3), images, strict=True):
        out[k] = _like(keep_layout(y, x), data[k])
    for k, y, m in zip(present_masks, mask_results, masks, strict=True):
        out[k] = _like(keep_layout(y, m), data[k])
    return out, True


def apply_to_keys(
    transform: Callable[..., Any],
    data: Mapping[Any, Any],
    keys: Sequence[str],
    *,
    mask_keys: Sequence[str] = (),
    key_field: str | None = "key",
    allow_missing_keys: bool = False,
) -> dict[Any, Any]:
    """Apply an image transform to the entries ``keys`` of a dict, stacked as channels in that order.

    Each ``data[k]`` is ``[C_k, H, W]`` (one sample) or ``[B, C_k, H, W]`` (a batch): a tensor, a MONAI
    ``MetaTensor``, a torchvision ``TVTensor`` or a NumPy array, all of one dtype and device, in the
    range the transform expects (physical units by default for the library's transforms). They are
    concatenated along the channel dimension, transformed, and split back; every value comes back as
    the same kind of object (a ``MetaTensor`` with the same metadata and affine), shape, dtype and memory
    layout.
    ``mask_keys`` entries follow the same draw as ``tv_tensors.Mask`` (nearest neighbour; only
    transforms that move geometry accept masks). For the library's transforms (:class:`RandomTransform`,
    also inside a ``v2.Compose``, which is applied step by step) the dataset keys in ``data[key_field]``
    (a ``str``, or one per sample) are passed on in ``params["keys"]``, so :class:`LatentAugment` finds
    the cached latents by key (when its cache holds any of the keys; a cache keyed by content, the
    default of ``latent-transforms invert``, is searched by content), and, when a transform knows its
    GAN's modality names, a key named like a modality must sit in that modality's channel. Other
    callables get the stacked image (and the masks as ``tv_tensors.Mask``). Other keys of ``data`` are
    kept as they are; ``data`` itself is not changed.

    Returns:
        A new dict; when no sample is drawn for augmentation the values are the input objects.

    Example:
        >>> from torchvision.transforms import v2
        >>> data = {"mri": torch.zeros(1, 4, 4), "ct": torch.ones(1, 4, 4), "label": 1}
        >>> out = apply_to_keys(v2.Lambda(lambda x: x.flip(0)), data, ["mri", "ct"])  # swap the channels
        >>> out["mri"].sum().item(), out["ct"].sum().item(), out["label"]
        (16.0, 0.0, 1)
    """
    if isinstance(keys, str):
        keys = [keys]
    if isinstance(mask_keys, str):
        mask_keys = [mask_keys]
    if not isinstance(data, Mapping):
        raise ConfigError(f"apply_to_keys expects a dict of images, got {type(data).__name__}.")
    return run_on_keys(transform, data, list(keys), list(mask_keys), key_field, allow_missing_keys)[0]
