"""Translation layer: unpaired image-to-image translators that borrow labelled images from another modality.

- :class:`TranslatorConfig`, :class:`TranslatorOptions`: a CycleGAN (Zhu et al. 2017) translator's
  architecture and training settings, the papers' values by default;
- :class:`ResnetGenerator`, :class:`PatchDiscriminator`, :func:`patch_receptive_field`: its networks;
- the losses (least-squares GAN, cycle consistency, DUIIT's prediction loss and joint objective) and
  :class:`ImagePool` (Shrivastava et al. 2017);
- :class:`TranslatorTrainer` / :func:`train_translator`: CycleGAN, or DUIIT (Yang & Xie): the same trained
  jointly with the task predictor, ``L_trans + λ · L_pred``; resumable, seeded
  (``latent-transforms train-translation``);
- :class:`TranslatorBundle` / :func:`load_translator`: the trained translator as a folder or Hub repo;
- :class:`UnpairedImages`, :func:`read_image_folder`, :func:`phantom_images`: the two training sets.

The transform that mixes translated source images into a target training set is
:class:`~latent_transforms.transforms.CrossModalAugment`. Names are imported from their modules on first
use (PEP 562).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from latent_transforms.lazy import lazy_exports

if TYPE_CHECKING:
    from latent_transforms.translation.bundle import (
        TranslatorBundle as TranslatorBundle,
        build_generators as build_generators,
        load_translator as load_translator,
    )
    from latent_transforms.translation.config import (
        TASKS as TASKS,
        TranslatorConfig as TranslatorConfig,
        default_blocks as default_blocks,
        default_disc_layers as default_disc_layers,
    )
    from latent_transforms.translation.data import (
        UnpairedImages as UnpairedImages,
        phantom_images as phantom_images,
        read_image_folder as read_image_folder,
    )
    from latent_transforms.translation.losses import (
        CYCLE_WEIGHT as CYCLE_WEIGHT,
        PREDICTION_WEIGHT as PREDICTION_WEIGHT,
        cycle_loss as cycle_loss,
        discriminator_loss as discriminator_loss,
        generator_loss as generator_loss,
        joint_objective as joint_objective,
        lsgan_loss as lsgan_loss,
        prediction_loss as prediction_loss,
        task_loss as task_loss,
    )
    from latent_transforms.translation.networks import (
        PatchDiscriminator as PatchDiscriminator,
        ResidualBlock as ResidualBlock,
        ResnetGenerator as ResnetGenerator,
        build_predictor as build_predictor,
        patch_receptive_field as patch_receptive_field,
    )
    from latent_transforms.translation.options import (
        TranslatorOptions as TranslatorOptions,
    )
    from latent_transforms.translation.pool import (
        POOL_SIZE as POOL_SIZE,
        ImagePool as ImagePool,
    )
    from latent_transforms.translation.trainer import (
        TranslatorTrainer as TranslatorTrainer,
        train_translator as train_translator,
    )

#: Where each public name lives; imported from there on first access.
_SOURCES: dict[str, str] = {
    "CYCLE_WEIGHT": "latent_transforms.translation.losses",
    "ImagePool": "latent_transforms.translation.pool",
    "POOL_SIZE": "latent_transforms.translation.pool",
    "PREDICTION_WEIGHT": "latent_transforms.translation.losses",
    "PatchDiscriminator": "latent_transforms.translation.networks",
    "ResidualBlock": "latent_transforms.translation.networks",
    "ResnetGenerator": "latent_transforms.translation.networks",
    "TASKS": "latent_transforms.translation.config",
    "TranslatorBundle": "latent_transforms.translation.bundle",
    "TranslatorConfig": "latent_transforms.translation.config",
    "TranslatorOptions": "latent_transforms.translation.options",
    "TranslatorTrainer": "latent_transforms.translation.trainer",
    "UnpairedImages": "latent_transforms.translation.data",
    "build_generators": "latent_transforms.translation.bundle",
    "build_predictor": "latent_transforms.translation.networks",
    "cycle_loss": "latent_transforms.translation.losses",
    "default_blocks": "latent_transforms.translation.config",
    "default_disc_layers": "latent_transforms.translation.config",
    "discriminator_loss": "latent_transforms.translation.losses",
    "generator_loss": "latent_transforms.translation.losses",
    "joint_objective": "latent_transforms.translation.losses",
    "load_translator": "latent_transforms.translation.bundle",
    "lsgan_loss": "latent_transforms.translation.losses",
    "patch_receptive_field": "latent_transforms.translation.networks",
    "phantom_images": "latent_transforms.translation.data",
    "prediction_loss": "latent_transforms.translation.losses",
    "read_image_folder": "latent_transforms.translation.data",
    "task_loss": "latent_transforms.translation.losses",
    "train_translator": "latent_transforms.translation.trainer",
}

__getattr__, __dir__ = lazy_exports(__name__, _SOURCES, globals())
__all__ = [*_SOURCES]
