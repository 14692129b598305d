"""StyleGAN2-ADA training on paired images: the loop, ADA, losses, checkpoints, scoring and selection.

Names are imported from their modules on first use (PEP 562), so importing one module of this
package (e.g. its command line) does not import the others.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from latent_transforms.training.augment import PRESETS, TRANSFORM_NAMES, AdaController, AugmentPipe
    from latent_transforms.training.data import GanImages
    from latent_transforms.training.options import TrainingOptions, r1_gamma_rule
    from latent_transforms.training.scoring import FidScorer, evaluate_generator
    from latent_transforms.training.selection import SmoothedSelection
    from latent_transforms.training.trainer import Trainer, annotate_bundle, train

#: Where each name lives; :func:`__getattr__` imports it from there on first access.
_SOURCES: dict[str, str] = {
    "AdaController": "latent_transforms.training.augment",
    "AugmentPipe": "latent_transforms.training.augment",
    "FidScorer": "latent_transforms.training.scoring",
    "GanImages": "latent_transforms.training.data",
    "PRESETS": "latent_transforms.training.augment",
    "SmoothedSelection": "latent_transforms.training.selection",
    "TRANSFORM_NAMES": "latent_transforms.training.augment",
    "Trainer": "latent_transforms.training.trainer",
    "TrainingOptions": "latent_transforms.training.options",
    "annotate_bundle": "latent_transforms.training.trainer",
    "evaluate_generator": "latent_transforms.training.scoring",
    "r1_gamma_rule": "latent_transforms.training.options",
    "train": "latent_transforms.training.trainer",
}


def __getattr__(name: str) -> Any:
    source = _SOURCES.get(name)
    if source is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(source), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_SOURCES})


__all__ = [
    "PRESETS",
    "TRANSFORM_NAMES",
    "AdaController",
    "AugmentPipe",
    "FidScorer",
    "GanImages",
    "SmoothedSelection",
    "Trainer",
    "TrainingOptions",
    "annotate_bundle",
    "evaluate_generator",
    "r1_gamma_rule",
    "train",
]
