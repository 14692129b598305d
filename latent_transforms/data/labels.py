"""The class labels of a dataset, read without loading its images where the dataset holds them apart."""

from __future__ import annotations

import numbers
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch.utils.data import Subset

__all__ = ["dataset_labels", "item_label", "items_labels"]


def item_label(item: Any) -> int | None:
    """The integer class of one item: ``item["label"]`` of a dict item, ``item[1]`` of an ``(image,
    label)`` pair; ``None`` when it has none.

    Example:
        >>> item_label({"image": None, "label": 2}), item_label((None, 1)), item_label({"image": None})
        (2, 1, None)
    """
    if isinstance(item, Mapping):
        label = item.get("label")
    elif isinstance(item, tuple | list) and len(item) == 2:
        label = item[1]
    else:
        return None
    if isinstance(label, torch.Tensor) and label.numel() == 1:
        label = label.item()
    return int(label) if isinstance(label, numbers.Integral) and not isinstance(label, bool) else None


def items_labels(items: Sequence[Any]) -> torch.Tensor | None:
    """The classes of ``items`` as ``[N]`` int64, or ``None`` unless every item has an integer one.

    Example:
        >>> items_labels([{"label": 0}, {"label": 1}]).tolist(), items_labels([{"label": 0}, {}])
        ([0, 1], None)
    """
    labels = [item_label(item) for item in items]
    if not labels or any(label is None for label in labels):
        return None
    return torch.tensor(labels, dtype=torch.int64)


def dataset_labels(data: Any) -> torch.Tensor | None:
    """The class of every item of ``data`` as ``[N]`` int64 on CPU (``None`` when an item has none).

    A dataset with one ``labels`` entry per item (a :class:`~latent_transforms.data.LabelledImages`, the
    trainer's ``TensorImages``), or a ``Subset`` of one, is read without loading its images; any other
    dataset item by item (dict items' ``"label"``, or the second element of ``(image, label)`` pairs).

    Example:
        >>> import numpy as np
        >>> from latent_transforms.data import LabelledImages
        >>> data = LabelledImages(np.zeros((4, 8, 8), np.uint8), [0, 1, 1, 0])
        >>> dataset_labels(Subset(data, [1, 3])).tolist(), dataset_labels([(None, 1), (None, 0)]).tolist()
        ([1, 0], [1, 0])
    """
    base, indices = data, None
    while isinstance(base, Subset):  # nested subsets: map the indices down to the base dataset
        indices = list(base.indices) if indices is None else [base.indices[i] for i in indices]
        base = base.dataset
    labels = getattr(base, "labels", None)
    if isinstance(labels, torch.Tensor) and labels.ndim == 1 and len(labels) == len(base):
        out = labels.long().cpu()
        return out[indices] if indices is not None else out.clone()
    return items_labels([data[i] for i in range(len(data))])
