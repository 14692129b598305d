"""Networks layer: StyleGAN2 generator/discriminator, their config, GAN bundles and the converter."""

from latent_transforms.networks.bundle import GanBundle, load_gan
from latent_transforms.networks.config import PAPER_MODALITIES, GanConfig, Modality
from latent_transforms.networks.convert import convert_stylegan2_pickle, read_snapshot
from latent_transforms.networks.discriminator import Discriminator
from latent_transforms.networks.generator import Generator
from latent_transforms.networks.mapping import MappingNetwork
from latent_transforms.networks.modconv import modulated_conv2d
from latent_transforms.networks.preview import sample_grid
from latent_transforms.networks.synthesis import SynthesisNetwork

__all__ = [
    "PAPER_MODALITIES",
    "Discriminator",
    "GanBundle",
    "GanConfig",
    "Generator",
    "MappingNetwork",
    "Modality",
    "SynthesisNetwork",
    "convert_stylegan2_pickle",
    "load_gan",
    "modulated_conv2d",
    "read_snapshot",
    "sample_grid",
]
