"""Translation layer: unpaired image-to-image translators that borrow labelled images from another modality.

- :class:`TranslatorConfig`, :class:`TranslatorOptions`: a CycleGAN (Zhu et al. 2017) translator's
  architecture and training settings, the papers' values by default;
- :class:`ResnetGenerator`, :class:`PatchDiscriminator`, :func:`patch_receptive_field`: its networks;
- the losses (least-squares GAN, cycle consistency, DUIIT's prediction loss and joint objective) and
  :class:`ImagePool` (Shrivastava et al. 2017);
- :class:`TranslatorTrainer` / :func:`train_translator`: CycleGAN, or DUIIT (Yang & Xie): the same trained
  jointly with the task predictor, ``L_trans + λ · L_pred``; resumable, seeded;
- :class:`TranslatorBundle` / :func:`load_translator`: the trained translator as a folder or Hub repo;
- :class:`UnpairedImages`, :func:`read_image_folder`, :func:`phantom_images`: the two training sets.

The transform that mixes translated source images into a target training set is
:class:`~latent_transforms.transforms.CrossModalAugment`.
"""

from latent_transforms.translation.bundle import TranslatorBundle, build_generators, load_translator
from latent_transforms.translation.config import TASKS, TranslatorConfig, default_blocks, default_disc_layers
from latent_transforms.translation.data import UnpairedImages, phantom_images, read_image_folder
from latent_transforms.translation.losses import (
    CYCLE_WEIGHT,
    PREDICTION_WEIGHT,
    cycle_loss,
    discriminator_loss,
    generator_loss,
    joint_objective,
    lsgan_loss,
    prediction_loss,
    task_loss,
)
from latent_transforms.translation.networks import (
    PatchDiscriminator,
    ResidualBlock,
    ResnetGenerator,
    build_predictor,
    patch_receptive_field,
)
from latent_transforms.translation.options import TranslatorOptions
from latent_transforms.translation.pool import POOL_SIZE, ImagePool
from latent_transforms.translation.trainer import TranslatorTrainer, train_translator

__all__ = [
    "CYCLE_WEIGHT",
    "POOL_SIZE",
    "PREDICTION_WEIGHT",
    "TASKS",
    "ImagePool",
    "PatchDiscriminator",
    "ResidualBlock",
    "ResnetGenerator",
    "TranslatorBundle",
    "TranslatorConfig",
    "TranslatorOptions",
    "TranslatorTrainer",
    "UnpairedImages",
    "build_generators",
    "build_predictor",
    "cycle_loss",
    "default_blocks",
    "default_disc_layers",
    "discriminator_loss",
    "generator_loss",
    "joint_objective",
    "load_translator",
    "lsgan_loss",
    "patch_receptive_field",
    "phantom_images",
    "prediction_loss",
    "read_image_folder",
    "task_loss",
    "train_translator",
]
