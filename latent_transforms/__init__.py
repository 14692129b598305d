"""latent-transforms: GAN-based data augmentation for medical imaging.

Public API (this release): GAN bundles and the StyleGAN2 networks they hold. The transforms
(LatentAugment, SG2Sample, StandardDA, SelectiveFilter), inversion and the latent cache build on these.

Example:
    >>> import latent_transforms as lt
    >>> cfg = lt.GanConfig(resolution=16, channel_base=256, channel_max=32, z_dim=16, w_dim=16)
    >>> bundle = lt.GanBundle.random(cfg)
    >>> bundle.modalities
    ['mri', 'ct']
"""

from latent_transforms._version import __version__
from latent_transforms.data.windows import IntensityWindow
from latent_transforms.errors import (
    BundleNotFoundError,
    ConfigError,
    ConversionError,
    LatentTransformsError,
    UnsafePickleError,
    WeightMismatchError,
)
from latent_transforms.networks import (
    Discriminator,
    GanBundle,
    GanConfig,
    Generator,
    Modality,
    convert_stylegan2_pickle,
    load_gan,
)

__all__ = [
    "BundleNotFoundError",
    "ConfigError",
    "ConversionError",
    "Discriminator",
    "GanBundle",
    "GanConfig",
    "Generator",
    "IntensityWindow",
    "LatentTransformsError",
    "Modality",
    "UnsafePickleError",
    "WeightMismatchError",
    "__version__",
    "convert_stylegan2_pickle",
    "load_gan",
]
