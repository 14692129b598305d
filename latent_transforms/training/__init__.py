"""Training generators: StyleGAN2-ADA (the loop, ADA, losses) and diffusion models (a DDPM on MONAI's
UNet), with their checkpoints, scoring and selection."""

from latent_transforms.training.augment import PRESETS, TRANSFORM_NAMES, AdaController, AugmentPipe
from latent_transforms.training.checkpoint import load_training_state
from latent_transforms.training.data import GanImages, TensorImages
from latent_transforms.training.diffusion_options import DiffusionOptions
from latent_transforms.training.diffusion_trainer import DiffusionTrainer, train_diffusion
from latent_transforms.training.options import TrainingOptions, r1_gamma_rule
from latent_transforms.training.scoring import FidScorer, evaluate_generator
from latent_transforms.training.selection import SmoothedSelection
from latent_transforms.training.trainer import Trainer, annotate_bundle, train

__all__ = [
    "PRESETS",
    "TRANSFORM_NAMES",
    "AdaController",
    "AugmentPipe",
    "DiffusionOptions",
    "DiffusionTrainer",
    "FidScorer",
    "GanImages",
    "SmoothedSelection",
    "TensorImages",
    "Trainer",
    "TrainingOptions",
    "annotate_bundle",
    "evaluate_generator",
    "load_training_state",
    "r1_gamma_rule",
    "train",
    "train_diffusion",
]
