"""Inversion layer: find the latents of real images.

:class:`Projector` / :func:`invert` optimise a whole batch of images at once (W or W+, per-sample early
stop); :class:`LatentEncoder` gives them a starting point; :class:`LatentCache` stores the result on
disk, safe against kills and concurrent writers; :class:`LatentLookup` finds the latents of images
(cache, memory, or an on-the-fly inversion); :func:`invert_dataset` is what ``latent-transforms invert``
runs and :func:`invert_to_cache` does in one call (latents and the dataset statistics).

Names are imported from their modules on first use (PEP 562), so importing one module of this
package (e.g. its command line) does not import the others.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from latent_transforms.lazy import lazy_exports

if TYPE_CHECKING:
    from latent_transforms.inversion.cache import (
        LatentCache as LatentCache,
        image_key as image_key,
    )
    from latent_transforms.inversion.encoder import (
        ENCODER_NAME as ENCODER_NAME,
        EncoderConfig as EncoderConfig,
        LatentEncoder as LatentEncoder,
        evaluate_encoder as evaluate_encoder,
        load_encoder as load_encoder,
        save_encoder as save_encoder,
        train_encoder as train_encoder,
    )
    from latent_transforms.inversion.job import (
        STATS_NAME as STATS_NAME,
        ShardInfo as ShardInfo,
        invert_dataset as invert_dataset,
        invert_to_cache as invert_to_cache,
        quality_report as quality_report,
    )
    from latent_transforms.inversion.lookup import (
        LatentLookup as LatentLookup,
        MissingLatentError as MissingLatentError,
    )
    from latent_transforms.inversion.projector import (
        ProjectionResult as ProjectionResult,
        Projector as Projector,
        invert as invert,
    )
    from latent_transforms.inversion.quality import (
        psnr as psnr,
        ssim as ssim,
    )

#: Where each public name lives; imported from there on first access.
_SOURCES: dict[str, str] = {
    "ENCODER_NAME": "latent_transforms.inversion.encoder",
    "EncoderConfig": "latent_transforms.inversion.encoder",
    "LatentCache": "latent_transforms.inversion.cache",
    "LatentEncoder": "latent_transforms.inversion.encoder",
    "LatentLookup": "latent_transforms.inversion.lookup",
    "MissingLatentError": "latent_transforms.inversion.lookup",
    "ProjectionResult": "latent_transforms.inversion.projector",
    "Projector": "latent_transforms.inversion.projector",
    "STATS_NAME": "latent_transforms.inversion.job",
    "ShardInfo": "latent_transforms.inversion.job",
    "evaluate_encoder": "latent_transforms.inversion.encoder",
    "image_key": "latent_transforms.inversion.cache",
    "invert": "latent_transforms.inversion.projector",
    "invert_dataset": "latent_transforms.inversion.job",
    "invert_to_cache": "latent_transforms.inversion.job",
    "load_encoder": "latent_transforms.inversion.encoder",
    "psnr": "latent_transforms.inversion.quality",
    "quality_report": "latent_transforms.inversion.job",
    "save_encoder": "latent_transforms.inversion.encoder",
    "ssim": "latent_transforms.inversion.quality",
    "train_encoder": "latent_transforms.inversion.encoder",
}

__getattr__, __dir__ = lazy_exports(__name__, _SOURCES, globals())
__all__ = [*_SOURCES]
