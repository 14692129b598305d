"""Class labels for the transforms over a class-conditional generator: a call on ``(images, labels)``.

A conditional generator transform (:class:`~latent_transforms.SG2Sample`,
:class:`~latent_transforms.DiffusionSample`) replaces a chosen sample by a synthetic one; in a
classification pipeline that synthetic image must be of the sample's class, or the label it travels
with is wrong. Called on exactly two inputs, the images and their labels (``t(images, labels)``,
``t((images, labels))`` or a two-entry dict), where the labels are an int (every sample's class) or an
integer tensor ``[B]`` (one class per sample, ``[]`` for one sample), the transform makes each chosen
sample of its own class and returns the labels unchanged (torchvision passes them through). Without
labels, each chosen sample gets a class drawn uniformly, or the transform's fixed ``c``. An unconditional
generator ignores the labels. The MONAI dictionary variants take the labels from ``label_key``.

torchvision's ``forward`` hands :meth:`make_params` only the inputs it transforms, so the labels are
picked up in ``check_inputs``, which sees every input of the call, and used by the next
``make_params``; ``forward`` itself is never overridden.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torchvision import tv_tensors

from latent_transforms.checks import check_class_labels
from latent_transforms.errors import ConfigError

__all__ = ["ConditionalTransform", "call_labels", "is_label_like"]

_INTEGER_DTYPES = (torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64)


def is_label_like(value: Any) -> bool:
    """Whether ``value`` can be the class labels of a call: an int, or a plain integer tensor with at most
    one dimension.

    Example:
        >>> is_label_like(1), is_label_like(torch.tensor([0, 1])), is_label_like(torch.zeros(2, 1, 4, 4))
        (True, True, False)
    """
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return True
    return (
        isinstance(value, torch.Tensor)
        and not isinstance(value, tv_tensors.TVTensor)
        and value.dtype in _INTEGER_DTYPES
        and value.ndim <= 1
    )


def call_labels(flat_inputs: Sequence[Any]) -> Any | None:
    """The labels of a call on exactly ``(images, labels)`` (see the module docstring), else ``None``.

    Example:
        >>> call_labels([torch.zeros(2, 1, 4, 4), torch.tensor([1, 0])]).tolist()
        [1, 0]
        >>> call_labels([torch.zeros(2, 1, 4, 4)]) is None
        True
    """
    if len(flat_inputs) == 2 and isinstance(flat_inputs[0], torch.Tensor) and is_label_like(flat_inputs[1]):
        return flat_inputs[1]
    return None


class ConditionalTransform:
    """Mixin of the transforms over a class-conditional generator: ``(images, labels)`` calls choose the
    classes (see the module docstring).

    A subclass (listed before its transform base class) provides :meth:`class_count` and
    :meth:`fixed_class`; the classes of a call end up in ``params["labels"]`` (int64 ``[B]`` on the CPU),
    where its :meth:`draw_params` puts randomly drawn ones. The random stream does not depend on whether
    labels are given: the random classes are drawn either way and then replaced.

    Example:
        >>> from latent_transforms import GanBundle, GanConfig, SG2Sample
        >>> cfg = GanConfig(resolution=16, channel_base=256, channel_max=32, z_dim=16, w_dim=16, c_dim=3)
        >>> t = SG2Sample(GanBundle.random(cfg), p=1.0, value_range="generator", seed=0)
        >>> images, labels = t(torch.zeros(4, 2, 16, 16), torch.tensor([2, 2, 0, 1]))
        >>> labels.tolist(), t.last_params["labels"].tolist()
        ([2, 2, 0, 1], [2, 2, 0, 1])
    """

    def class_count(self) -> int:
        """The generator's number of classes (0: unconditional)."""
        raise NotImplementedError

    def fixed_class(self) -> Any | None:
        """The class the transform is fixed to (its ``c``), or ``None``."""
        return None

    def check_inputs(self, flat_inputs: list[Any]) -> None:
        """torchvision's input check; also keeps the labels of an ``(images, labels)`` call."""
        super().check_inputs(flat_inputs)  # type: ignore[misc]
        object.__setattr__(self, "_call_labels", call_labels(flat_inputs))

    def make_params(self, flat_inputs: list[Any]) -> dict[str, Any]:
        """The parameters of the call, with the call's labels as the classes (torchvision protocol)."""
        labels = self.__dict__.pop("_call_labels", None)
        params: dict[str, Any] = super().make_params(flat_inputs)  # type: ignore[misc]
        if labels is not None:
            params = self.use_labels(params, labels)
        return params

    def use_labels(self, params: dict[str, Any], labels: Any) -> dict[str, Any]:
        """``params`` of a batch with ``labels`` (an int or ``[B]`` class indices) as its classes.

        An unconditional generator leaves ``params`` as they are; a transform fixed to one class ``c``
        refuses other labels, with the fix.
        """
        c_dim = self.class_count()
        if c_dim == 0:
            return params
        if self.fixed_class() is not None:
            raise ConfigError(
                f"{type(self).__name__} is fixed to class c={self.fixed_class()!r} but was called with "
                "labels. Fix: drop c to make each sample of its own label's class, or call it on the images "
                "alone."
            )
        params["labels"] = check_class_labels(labels, int(params["batch"]), c_dim)
        object.__setattr__(self, "_last_params", params)
        return params

    def sample_labels(self, params: dict[str, Any], labels: Any, n: int) -> dict[str, Any]:
        """``params`` of the ``n`` images of a ``sample(n, labels=...)`` call, with ``labels`` (an int or
        ``n`` class indices) as their classes (``None``: the drawn ones, or the fixed ``c``).

        Unlike a call's labels, which an unconditional generator ignores, labels given to ``sample`` must
        be meant: an unconditional generator refuses them, and so does a transform fixed to one class.

        Example:
            >>> from latent_transforms import GanBundle, GanConfig, SG2Sample
            >>> cfg = GanConfig(resolution=16, channel_base=256, channel_max=32, z_dim=16, w_dim=16, c_dim=3)
            >>> t = SG2Sample(GanBundle.random(cfg), seed=0)
            >>> t.sample_labels({}, 2, n=3)["labels"].tolist()
            [2, 2, 2]
            >>> SG2Sample(GanBundle.random(cfg), c=1).sample_labels({}, 2, n=3)  # doctest: +ELLIPSIS
            Traceback (most recent call last):
            ...
            latent_transforms.errors.ConfigError: this SG2Sample is fixed to class c=1; drop labels or c.
        """
        if labels is None:
            return params
        if self.class_count() > 0 and self.fixed_class() is not None:
            raise ConfigError(
                f"this {type(self).__name__} is fixed to class c={self.fixed_class()!r}; drop labels or c."
            )
        params["labels"] = check_class_labels(labels, n, self.class_count())  # unconditional: refused
        return params
