"""Inversion layer: find the latents of real images.

:class:`Projector` / :func:`invert` optimise a whole batch of images at once (W or W+, per-sample early
stop); :class:`LatentEncoder` gives them a starting point; :class:`LatentCache` stores the result on
disk, safe against kills and concurrent writers; :class:`LatentLookup` finds the latents of images
(cache, memory, or an on-the-fly inversion); :func:`invert_dataset` is what ``latent-transforms invert``
runs.

Names are imported from their modules on first use (PEP 562), so importing one module of this
package (e.g. its command line) does not import the others.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from latent_transforms.inversion.cache import LatentCache, image_key
    from latent_transforms.inversion.encoder import (
        ENCODER_NAME,
        EncoderConfig,
        LatentEncoder,
        evaluate_encoder,
        load_encoder,
        save_encoder,
        train_encoder,
    )
    from latent_transforms.inversion.job import ShardInfo, invert_dataset, quality_report
    from latent_transforms.inversion.lookup import LatentLookup, MissingLatentError
    from latent_transforms.inversion.projector import ProjectionResult, Projector, invert
    from latent_transforms.inversion.quality import psnr, ssim

#: Where each name lives; :func:`__getattr__` imports it from there on first access.
_SOURCES: dict[str, str] = {
    "ENCODER_NAME": "latent_transforms.inversion.encoder",
    "EncoderConfig": "latent_transforms.inversion.encoder",
    "LatentCache": "latent_transforms.inversion.cache",
    "LatentEncoder": "latent_transforms.inversion.encoder",
    "LatentLookup": "latent_transforms.inversion.lookup",
    "MissingLatentError": "latent_transforms.inversion.lookup",
    "ProjectionResult": "latent_transforms.inversion.projector",
    "Projector": "latent_transforms.inversion.projector",
    "ShardInfo": "latent_transforms.inversion.job",
    "evaluate_encoder": "latent_transforms.inversion.encoder",
    "image_key": "latent_transforms.inversion.cache",
    "invert": "latent_transforms.inversion.projector",
    "invert_dataset": "latent_transforms.inversion.job",
    "load_encoder": "latent_transforms.inversion.encoder",
    "psnr": "latent_transforms.inversion.quality",
    "quality_report": "latent_transforms.inversion.job",
    "save_encoder": "latent_transforms.inversion.encoder",
    "ssim": "latent_transforms.inversion.quality",
    "train_encoder": "latent_transforms.inversion.encoder",
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
    "ENCODER_NAME",
    "EncoderConfig",
    "LatentCache",
    "LatentEncoder",
    "LatentLookup",
    "MissingLatentError",
    "ProjectionResult",
    "Projector",
    "ShardInfo",
    "evaluate_encoder",
    "image_key",
    "invert",
    "invert_dataset",
    "load_encoder",
    "psnr",
    "quality_report",
    "save_encoder",
    "ssim",
    "train_encoder",
]
