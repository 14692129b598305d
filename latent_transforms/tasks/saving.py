"""Saving and loading a trained task network: its weights as safetensors, its constructor arguments as JSON.

A network saved to ``NAME.safetensors`` has its ``config()`` beside it in ``NAME-network.json``; the pair
rebuilds the same :class:`~latent_transforms.tasks.ResNetClassifier` (or
:class:`~latent_transforms.tasks.ResNetRegressor`, told apart by its ``outputs`` argument) anywhere,
without pickles.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from latent_transforms.errors import ConfigError
from latent_transforms.files import atomic_write
from latent_transforms.tasks.classifier import ResNetClassifier
from latent_transforms.tasks.regressor import ResNetRegressor

__all__ = ["classifier_config_path", "load_classifier", "network_from_config", "save_classifier"]


def classifier_config_path(path: str | os.PathLike[str]) -> Path:
    """The JSON file beside saved weights ``NAME.safetensors``: ``NAME-network.json``.

    Example:
        >>> classifier_config_path("runs/task.safetensors").name
        'task-network.json'
    """
    weights = Path(path)
    return weights.with_name(weights.stem + "-network.json")


def network_from_config(config: Mapping[str, Any]) -> ResNetClassifier:
    """A fresh (untrained) network from a ``config()`` dict: a :class:`ResNetRegressor` when the dict
    names ``outputs``, else a :class:`ResNetClassifier`.

    Example:
        >>> net = network_from_config({"in_channels": 1, "num_classes": 3, "depth": 10, "width": 4})
        >>> net
        ResNetClassifier(in_channels=1, num_classes=3, depth=10, width=4, dropout=0.5)
        >>> network_from_config(net.config()).config() == net.config()
        True
    """
    arguments = dict(config)
    kind: type[ResNetClassifier] = ResNetRegressor if "outputs" in arguments else ResNetClassifier
    try:
        return kind(**arguments)
    except TypeError as error:
        raise ConfigError(
            f"cannot build a {kind.__name__} from {arguments!r} ({error}). Fix: pass the dict that the "
            "network's config() wrote."
        ) from error


def save_classifier(model: ResNetClassifier, path: str | os.PathLike[str]) -> Path:
    """Write ``model``'s weights to ``path`` (``.safetensors``) and its ``config()`` beside it; returns the
    weights path. Both files are written atomically (a reader never sees half a file).

    Example:
        >>> import tempfile
        >>> net = ResNetClassifier(1, 2, depth=10, width=4)
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     path = save_classifier(net, Path(folder) / "task.safetensors")
        ...     sorted(p.name for p in path.parent.iterdir())
        ['task-network.json', 'task.safetensors']
    """
    weights = Path(path)
    if weights.suffix != ".safetensors":
        raise ConfigError(f"save the weights to a .safetensors file; got {str(weights)!r}.")
    tensors = {name: value.detach().cpu().contiguous() for name, value in model.state_dict().items()}
    atomic_write(weights, lambda tmp: save_file(tensors, str(tmp)))
    atomic_write(classifier_config_path(weights), json.dumps(model.config(), indent=2) + "\n")
    return weights


def load_classifier(path: str | os.PathLike[str], device: str | torch.device = "cpu") -> ResNetClassifier:
    """The network saved by :func:`save_classifier` at ``path``, in eval mode on ``device``.

    Raises:
        FileNotFoundError: when the weights or their ``-network.json`` are missing (the message names both).

    Example:
        >>> import tempfile
        >>> _ = torch.manual_seed(0)
        >>> net = ResNetClassifier(1, 2, depth=10, width=4).eval()
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     loaded = load_classifier(save_classifier(net, Path(folder) / "task.safetensors"))
        >>> x = torch.zeros(2, 1, 16, 16)
        >>> torch.equal(loaded(x), net(x))
        True
    """
    weights = Path(path)
    config = classifier_config_path(weights)
    missing = [str(p) for p in (weights, config) if not p.is_file()]
    if missing:
        raise FileNotFoundError(
            f"no saved network at {str(weights)!r}: missing {', '.join(missing)}. A saved task network is "
            "NAME.safetensors with NAME-network.json beside it, as save_classifier() writes them."
        )
    model = network_from_config(json.loads(config.read_text(encoding="utf-8")))
    model.load_state_dict(load_file(str(weights)))
    return model.to(device).eval()
