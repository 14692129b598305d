"""Diffusion generators: a class-conditional DDPM on MONAI's ``DiffusionModelUNet`` and schedulers, saved and
loaded as a bundle like the GAN bundles, sampled with DDIM or DDPM.

:class:`DiffusionConfig` (architecture, schedule, classes, modalities and windows), :class:`DiffusionBundle`
and :func:`load_diffusion` (folder, ``builtin:<name>`` or Hub id; safetensors only), :func:`denoise` (the
reverse process with MONAI's schedulers), :func:`load_generator` (a GAN or a diffusion bundle, by its
``config.json``). The trainer is :class:`~latent_transforms.training.DiffusionTrainer`
(``latent-transforms train-diffusion``); the transform is :class:`~latent_transforms.DiffusionSample`.
Needs the optional ``generative`` extra (MONAI and einops).

Names are imported from their modules on first use (PEP 562), so importing one module of this
package (e.g. its command line) does not import the others.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from latent_transforms.lazy import lazy_exports

if TYPE_CHECKING:
    from latent_transforms.generative.bundle import (
        DiffusionBundle as DiffusionBundle,
        load_diffusion as load_diffusion,
    )
    from latent_transforms.generative.config import (
        ARCHITECTURE as ARCHITECTURE,
        PREDICTION_TYPES as PREDICTION_TYPES,
        SCHEDULES as SCHEDULES,
        DiffusionConfig as DiffusionConfig,
    )
    from latent_transforms.generative.load import (
        bundle_architecture as bundle_architecture,
        load_generator as load_generator,
    )
    from latent_transforms.generative.networks import (
        SAMPLERS as SAMPLERS,
        build_scheduler as build_scheduler,
        build_unet as build_unet,
    )
    from latent_transforms.generative.sampling import (
        DEFAULT_STEPS as DEFAULT_STEPS,
        denoise as denoise,
    )

#: Where each public name lives; imported from there on first access.
_SOURCES: dict[str, str] = {
    "ARCHITECTURE": "latent_transforms.generative.names",
    "DEFAULT_STEPS": "latent_transforms.generative.sampling",
    "DiffusionBundle": "latent_transforms.generative.bundle",
    "DiffusionConfig": "latent_transforms.generative.config",
    "PREDICTION_TYPES": "latent_transforms.generative.names",
    "SAMPLERS": "latent_transforms.generative.networks",
    "SCHEDULES": "latent_transforms.generative.names",
    "build_scheduler": "latent_transforms.generative.networks",
    "build_unet": "latent_transforms.generative.networks",
    "bundle_architecture": "latent_transforms.generative.load",
    "denoise": "latent_transforms.generative.sampling",
    "load_diffusion": "latent_transforms.generative.bundle",
    "load_generator": "latent_transforms.generative.load",
}

__getattr__, __dir__ = lazy_exports(__name__, _SOURCES, globals())
__all__ = [*_SOURCES]
