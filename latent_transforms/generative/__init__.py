"""Diffusion generators: a class-conditional DDPM on MONAI's ``DiffusionModelUNet`` and schedulers, saved and
loaded as a bundle like the GAN bundles, sampled with DDIM or DDPM.

:class:`DiffusionConfig` (architecture, schedule, classes, modalities and windows), :class:`DiffusionBundle`
and :func:`load_diffusion` (folder, ``builtin:<name>`` or Hub id; safetensors only), :func:`denoise` (the
reverse process with MONAI's schedulers), :func:`load_generator` (a GAN or a diffusion bundle, by its
``config.json``). The trainer is :class:`~latent_transforms.training.DiffusionTrainer`
(``latent-transforms train-diffusion``); the transform is :class:`~latent_transforms.DiffusionSample`.
Needs the optional ``generative`` extra (MONAI and einops).
"""

from latent_transforms.generative.bundle import DiffusionBundle, load_diffusion
from latent_transforms.generative.config import ARCHITECTURE, PREDICTION_TYPES, SCHEDULES, DiffusionConfig
from latent_transforms.generative.load import bundle_architecture, load_generator
from latent_transforms.generative.networks import SAMPLERS, build_scheduler, build_unet
from latent_transforms.generative.sampling import DEFAULT_STEPS, denoise

__all__ = [
    "ARCHITECTURE",
    "DEFAULT_STEPS",
    "PREDICTION_TYPES",
    "SAMPLERS",
    "SCHEDULES",
    "DiffusionBundle",
    "DiffusionConfig",
    "build_scheduler",
    "build_unet",
    "bundle_architecture",
    "denoise",
    "load_diffusion",
    "load_generator",
]
