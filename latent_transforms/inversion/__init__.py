"""Inversion layer: find the latents of real images.

:class:`Projector` / :func:`invert` optimise a whole batch of images at once (W or W+, per-sample early
stop); :class:`LatentEncoder` gives them a starting point; :class:`LatentCache` stores the result on
disk, safe against kills and concurrent writers; :class:`LatentLookup` finds the latents of images
(cache, memory, or an on-the-fly inversion); :func:`invert_dataset` is what ``latent-transforms invert``
runs and :func:`invert_to_cache` does in one call (latents and the dataset statistics).
"""

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
from latent_transforms.inversion.job import (
    STATS_NAME,
    ShardInfo,
    invert_dataset,
    invert_to_cache,
    quality_report,
)
from latent_transforms.inversion.lookup import LatentLookup, MissingLatentError
from latent_transforms.inversion.projector import ProjectionResult, Projector, invert
from latent_transforms.inversion.quality import psnr, ssim

__all__ = [
    "ENCODER_NAME",
    "STATS_NAME",
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
    "invert_to_cache",
    "load_encoder",
    "psnr",
    "quality_report",
    "save_encoder",
    "ssim",
    "train_encoder",
]
