"""latent-transforms: GAN-based data augmentation for medical imaging.

Public API: the transforms (LatentAugment, SG2Sample, StandardDA, SelectiveFilter; their MONAI
dictionary variants, loaded on first use; GPUAugment for DataLoaders), GAN bundles and the StyleGAN2
networks they hold, paired MRI/CT datasets and the built-in pelvis phantom, the StyleGAN2-ADA trainer,
GAN inversion (the batched projector, its encoder start and the on-disk latent cache),
LatentAugment's dataset statistics, the metrics of synthetic data (FID, precision / recall / density /
coverage, mean-image variety, efficiency, paired MAE / SSIM / PSNR / LPIPS and the statistics tests in
:mod:`latent_transforms.metrics.stats`), the evaluation report of several policies side by side and
(in :mod:`latent_transforms.tuning`) Optuna tuning.

Example:
    >>> import latent_transforms as lt
    >>> cfg = lt.GanConfig(resolution=16, channel_base=256, channel_max=32, z_dim=16, w_dim=16)
    >>> bundle = lt.GanBundle.random(cfg)
    >>> bundle.modalities
    ['mri', 'ct']
"""

from latent_transforms._version import __version__
from latent_transforms.data import (
    IntensityWindow,
    PairedSliceFolder,
    PairedVolumeDataset,
    PatientSubset,
    PelvisPhantom,
    patient_split,
    split_dataset,
    subset_by_patients,
)
from latent_transforms.errors import (
    BundleNotFoundError,
    CacheMismatchError,
    CacheNotFoundError,
    ConfigError,
    ConversionError,
    EncoderNotFoundError,
    FeatureNetworkUnavailableError,
    LatentTransformsError,
    MissingDependencyError,
    NonFiniteWeightsError,
    UnsafePickleError,
    WeightMismatchError,
)
from latent_transforms.evaluation import EvaluationReport, evaluate_policies, generate_samples
from latent_transforms.features import (
    DEFAULT_FEATURE_NETWORK,
    FeatureExtractor,
    PerceptualNetwork,
    feature_network,
    perceptual_network,
)
from latent_transforms.inversion import (
    LatentCache,
    LatentEncoder,
    LatentLookup,
    ProjectionResult,
    Projector,
    image_key,
    invert,
    load_encoder,
    train_encoder,
)
from latent_transforms.metrics import (
    FID,
    FeatureStatistics,
    PairedImageMetrics,
    PrecisionRecall,
    compare_methods,
    fid,
    frechet_distance,
    manifold_metrics,
    mean_image_size,
    measure_efficiency,
    precision_recall,
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
from latent_transforms.objectives import DatasetStats, LatentWalk
from latent_transforms.training import Trainer, TrainingOptions, train
from latent_transforms.transforms import (
    DICTIONARY_NAMES,
    PRESETS,
    GanTransform,
    GPUAugment,
    LatentAugment,
    LatentAugmentConfig,
    MissingLatentError,
    RandomTransform,
    SelectionResult,
    SelectiveFilter,
    SG2Sample,
    SG2SampleConfig,
    StandardDA,
    augment_collate,
    mc_dropout,
)


def __getattr__(name: str) -> object:
    # The MONAI dictionary variants are imported on first access (MONAI is optional and slow to import).
    if name in DICTIONARY_NAMES:
        from latent_transforms import transforms

        return getattr(transforms, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    *DICTIONARY_NAMES,
    "DEFAULT_FEATURE_NETWORK",
    "PRESETS",
    "GPUAugment",
    "GanTransform",
    "LatentAugment",
    "LatentAugmentConfig",
    "LatentLookup",
    "LatentWalk",
    "MissingLatentError",
    "RandomTransform",
    "SG2Sample",
    "SG2SampleConfig",
    "SelectionResult",
    "SelectiveFilter",
    "StandardDA",
    "augment_collate",
    "mc_dropout",
    "FID",
    "BundleNotFoundError",
    "CacheMismatchError",
    "CacheNotFoundError",
    "ConfigError",
    "ConversionError",
    "DatasetStats",
    "Discriminator",
    "EncoderNotFoundError",
    "FeatureExtractor",
    "FeatureNetworkUnavailableError",
    "FeatureStatistics",
    "GanBundle",
    "GanConfig",
    "Generator",
    "IntensityWindow",
    "LatentCache",
    "LatentEncoder",
    "LatentTransformsError",
    "MissingDependencyError",
    "Modality",
    "NonFiniteWeightsError",
    "PairedSliceFolder",
    "PairedVolumeDataset",
    "PatientSubset",
    "PelvisPhantom",
    "PerceptualNetwork",
    "ProjectionResult",
    "Projector",
    "Trainer",
    "TrainingOptions",
    "UnsafePickleError",
    "WeightMismatchError",
    "__version__",
    "convert_stylegan2_pickle",
    "feature_network",
    "fid",
    "frechet_distance",
    "image_key",
    "invert",
    "load_encoder",
    "load_gan",
    "patient_split",
    "perceptual_network",
    "precision_recall",
    "EvaluationReport",
    "evaluate_policies",
    "generate_samples",
    "PairedImageMetrics",
    "PrecisionRecall",
    "compare_methods",
    "manifold_metrics",
    "mean_image_size",
    "measure_efficiency",
    "split_dataset",
    "subset_by_patients",
    "train",
    "train_encoder",
]
