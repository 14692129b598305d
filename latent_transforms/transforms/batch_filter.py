"""The base of transforms that keep a subset of a batch: the batch shrinks, and labels follow it.

A filter (:class:`~latent_transforms.SelectiveFilter`) is not a per-sample augmentation: it decides which
samples of a whole batch to keep, so it returns a smaller batch, and the labels riding along must lose the
same rows. That is the shape of kornia's mix augmentations and of torchvision's own batch transforms
(``v2.MixUp`` / ``v2.CutMix``, which touch the labels too): torchvision's generic ``forward`` transforms
only the first plain tensor of a call and passes the labels through untouched, so those transforms own a
``forward`` that finds the labels once and then follow the ``make_params`` / ``transform`` protocol.
:class:`BatchFilter` does the same for every filter, so a filter implements only :meth:`BatchFilter.
filter_params` (which rows to keep) and never overrides ``forward``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import torch
from torchvision import tv_tensors

from latent_transforms.errors import ConfigError
from latent_transforms.transforms.base import RandomTransform
from latent_transforms.transforms.layout import keep_layout

__all__ = ["BatchFilter"]


def _plain(x: Any) -> Any:
    return x.as_subclass(torch.Tensor) if isinstance(x, tv_tensors.TVTensor) else x


class BatchFilter(RandomTransform):
    """Base of the transforms that keep a subset of a batch (``p`` is always 1: every call filters).

    Calling it on ``images`` ``[B, C, H, W]`` returns the kept rows ``[M, C, H, W]`` (``tv_tensors.Image``
    in, ``tv_tensors.Image`` out); on ``(images, labels)`` (a tuple, a list or two arguments) it returns
    ``(kept_images, kept_labels)`` in the same container type, so it works at the end of a ``v2.Compose``.
    The parameters of a call are :meth:`make_params`'s ``{"indices": [M] long, ...}``: replay them on
    another input of the same batch with :meth:`transform`. The kept rows keep the input's dtype, device
    and memory layout.

    Subclass contract: :meth:`filter_params` ``(images, labels) -> dict`` with ``"indices"`` (ascending
    positions of the kept samples) and optionally ``"labels"`` (the kept labels, when the filter
    normalises them, e.g. a list to a tensor); :meth:`repr_params`.

    Example:
        >>> class KeepEven(BatchFilter):
        ...     def filter_params(self, images, labels):
        ...         return {"indices": torch.arange(0, images.shape[0], 2)}
        ...     def repr_params(self):
        ...         return {"seed": self.seed}
        >>> f = KeepEven(seed=0)
        >>> kept, labels = f(torch.rand(5, 1, 4, 4), torch.arange(5))
        >>> tuple(kept.shape), labels.tolist()
        ((3, 1, 4, 4), [0, 2, 4])
    """

    needs_generator_range: ClassVar[bool] = False

    def __init__(self, *, seed: int | None = None, device: torch.device | str | None = None) -> None:
        super().__init__(p=1.0, seed=seed, value_range="generator", device=device)

    # -- subclass hook -----------------------------------------------------------------------------
    def filter_params(self, images: Any, labels: Any | None) -> dict[str, Any]:
        """Which rows of ``images`` (``[B, C, H, W]``, plain tensor) to keep: ``{"indices": [M] long}``."""
        raise NotImplementedError

    # -- the protocol ------------------------------------------------------------------------------
    def forward(self, *inputs: Any) -> Any:
        """Filter ``images`` or ``(images, labels)``; see the class docstring."""
        packed = inputs if len(inputs) > 1 else inputs[0] if inputs else None
        if isinstance(packed, (tuple, list)):
            if len(packed) != 2:
                raise ConfigError(
                    f"{type(self).__name__} takes images or (images, labels), got {len(packed)} inputs. Fix: "
                    "pass the pool [B, C, H, W] and optionally its labels [B]."
                )
            images, labels = packed
        else:
            images, labels = packed, None
        params = self.make_params([images] if labels is None else [images, labels])
        kept = self.transform(images, params)
        if not isinstance(packed, (tuple, list)):
            return kept
        kept_labels = params["labels"] if "labels" in params else self.transform(labels, params)
        return type(packed)((kept, kept_labels)) if isinstance(packed, list) else (kept, kept_labels)

    def make_params(self, flat_inputs: Sequence[Any]) -> dict[str, Any]:
        """One selection per call, from the images (and labels, when given)."""
        labels = _plain(flat_inputs[1]) if len(flat_inputs) > 1 else None
        params = self.filter_params(_plain(flat_inputs[0]), labels)
        self._last_params = params
        return params

    def transform(self, inpt: Any, params: dict[str, Any]) -> Any:
        """The kept rows ``params["indices"]`` of a tensor whose first dimension is the batch."""
        if "indices" not in params:
            raise ConfigError(
                f"{type(self).__name__} returns a smaller batch, so it has no per-sample transform(). Fix: "
                "call the transform on the pool (f(images) or f(images, labels)) or use its selection "
                "method (e.g. select(images, labels))."
            )
        plain = _plain(inpt)
        if not isinstance(plain, torch.Tensor):
            raise ConfigError(
                f"{type(self).__name__} keeps rows of tensors, got {type(inpt).__name__}. Fix: pass tensors "
                "with the batch as their first dimension."
            )
        kept = keep_layout(plain.index_select(0, params["indices"].to(plain.device)), plain)
        return tv_tensors.wrap(kept, like=inpt) if isinstance(inpt, tv_tensors.TVTensor) else kept

    def apply_batch(self, x: torch.Tensor, params: dict[str, Any], kind: str) -> torch.Tensor:
        """Not used: a filter changes the batch size, so it has no per-sample work."""
        return self.transform(x, {})
