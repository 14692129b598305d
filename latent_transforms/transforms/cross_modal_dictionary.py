"""``CrossModalAugmentd``: the MONAI dictionary variant of :class:`CrossModalAugment`, which also swaps the
item's label for the translated source image's.

It builds on :class:`~latent_transforms.transforms.dictionary.RandomTransformd` (MONAI is optional: the
class refuses to build without it), so it is served lazily by :mod:`latent_transforms.transforms`.
"""

from __future__ import annotations

import os
from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import numpy as np
import torch

from latent_transforms.errors import ConfigError
from latent_transforms.transforms.cross_modal import CrossModalAugment
from latent_transforms.transforms.dictionary import RandomTransformd
from latent_transforms.transforms.stacking import check_channel_order
from latent_transforms.translation.bundle import TranslatorBundle

__all__ = ["CrossModalAugmentD", "CrossModalAugmentDict", "CrossModalAugmentd"]


class CrossModalAugmentd(RandomTransformd):
    """Dictionary variant of :class:`CrossModalAugment`: target-modality keys replaced by translated source
    images, and ``data[label_key]`` by their labels.

    ``keys`` name the translator's target modalities in its channel order (e.g. ``["ct"]``), each
    ``[C, R, R]`` (or a batch ``[B, C, R, R]``) in physical units by default. A replaced sample gets the
    translation of a source image of the pool in every key and, when the item has ``label_key`` and the
    transform has source labels, that image's label (a Python number for a single item; the entry of
    a batch's label tensor). Other entries pass through. ``prob`` is ``CrossModalAugment``'s ``p``; the
    other keyword arguments go to it (``value_range``, ``source_range``, ``seed``, ``device``).

    Example:
        >>> from latent_transforms.translation import TranslatorBundle, TranslatorConfig
        >>> bundle = TranslatorBundle.random(TranslatorConfig(resolution=16, width=4, blocks=1))
        >>> mri, ages = torch.rand(4, 1, 16, 16) * 1900, torch.tensor([61.0, 62.0, 63.0, 64.0])
        >>> t = CrossModalAugmentd(["ct"], bundle, mri, ages, prob=1.0, seed=0)
        >>> out = t({"ct": torch.zeros(1, 16, 16), "label": 30.0, "key": "p7/0003"})
        >>> out["ct"].shape, out["label"] in (61.0, 62.0, 63.0, 64.0), out["key"]
        (torch.Size([1, 16, 16]), True, 'p7/0003')
    """

    array_class = CrossModalAugment
    requires_all_keys = True

    def __init__(
        self,
        keys: Hashable | Sequence[Hashable],
        translator: TranslatorBundle | str | os.PathLike[str],
        source: Any,
        source_labels: Any = None,
        *,
        label_key: str | None = "label",
        prob: float | None = None,
        key_field: str | None = "key",
        allow_missing_keys: bool = False,
        **kwargs: Any,
    ) -> None:
        if prob is not None:
            if "p" in kwargs:
                raise ConfigError(f"CrossModalAugmentd got both prob={prob!r} and p={kwargs['p']!r}.")
            kwargs["p"] = prob
        transform = CrossModalAugment(translator, source, source_labels, **kwargs)
        super().__init__(keys, transform, key_field=key_field, allow_missing_keys=allow_missing_keys)
        self.label_key = label_key
        if isinstance(translator, TranslatorBundle):
            check_channel_order(transform, [str(k) for k in self.keys])

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        """Augment ``data``; the replaced samples' label becomes their source image's."""
        out = super().__call__(data)
        transform = self.transform
        assert isinstance(transform, CrossModalAugment)
        key = self.label_key
        if not self._do_transform or key is None or key not in out or transform.source_labels is None:
            return out
        params = transform.last_params
        assert params is not None
        label = out[key]
        if isinstance(label, torch.Tensor | np.ndarray) and np.ndim(label) >= 1 and params["batched"]:
            given = torch.as_tensor(label)
            out[key] = transform.labels_for(params, given.reshape(-1)).reshape(given.shape).to(given.dtype)
            if isinstance(label, np.ndarray):
                out[key] = out[key].numpy()
        else:
            new = transform.labels_for(params, torch.as_tensor(label).reshape(1))[0]
            out[key] = type(label)(new.item()) if isinstance(label, int | float) else new
        return out

    def __repr__(self) -> str:
        return (
            f"CrossModalAugmentd(keys={list(self.keys)}, label_key={self.label_key!r}, "
            f"transform={self.transform!r})"
        )


CrossModalAugmentD = CrossModalAugmentDict = CrossModalAugmentd
