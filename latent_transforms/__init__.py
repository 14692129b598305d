"""latent-transforms: GAN-based data augmentation for medical imaging.

Public API: the transforms (LatentAugment, SG2Sample, StandardDA, SelectiveFilter; their MONAI
dictionary variants, loaded on first use; GPUAugment for DataLoaders), GAN bundles and the StyleGAN2
networks they hold, paired MRI/CT datasets and the built-in pelvis phantom, the StyleGAN2-ADA trainer,
GAN inversion (the batched projector, its encoder start and the on-disk latent cache),
LatentAugment's dataset statistics, the metrics of synthetic data (FID, precision / recall / density /
coverage, mean-image variety, efficiency, paired MAE / SSIM / PSNR / LPIPS and the statistics tests in
:mod:`latent_transforms.metrics.stats`), the evaluation report of several policies side by side and
(in :mod:`latent_transforms.tuning`) Optuna tuning.

Names are imported on first use (PEP 562), so ``import latent_transforms`` and the
``latent-transforms`` command start fast; ``from latent_transforms import LatentAugment`` imports what
LatentAugment needs.

Example:
    >>> import latent_transforms as lt
    >>> cfg = lt.GanConfig(resolution=16, channel_base=256, channel_max=32, z_dim=16, w_dim=16)
    >>> bundle = lt.GanBundle.random(cfg)
    >>> bundle.modalities
    ['mri', 'ct']
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from latent_transforms._version import __version__

if TYPE_CHECKING:
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
    from latent_transforms.evaluation import (
        EvaluationReport,
        evaluate_policies,
        generate_samples,
    )
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
        frechet_distance,
        manifold_metrics,
        mean_image_size,
        measure_efficiency,
    )
    from latent_transforms.metrics.fid import fid
    from latent_transforms.metrics.precision_recall import precision_recall
    from latent_transforms.networks import (
        Discriminator,
        GanBundle,
        GanConfig,
        Generator,
        Modality,
        convert_stylegan2_pickle,
        load_gan,
    )
    from latent_transforms.objectives import (
        DatasetStats,
        LatentWalk,
    )
    from latent_transforms.training import (
        Trainer,
        TrainingOptions,
        train,
    )
    from latent_transforms.transforms import (
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

#: Where each public name lives; :func:`__getattr__` imports it from there on first access.
_SOURCES: dict[str, str] = {
    "BundleNotFoundError": "latent_transforms.errors",
    "CacheMismatchError": "latent_transforms.errors",
    "CacheNotFoundError": "latent_transforms.errors",
    "ConfigError": "latent_transforms.errors",
    "ConversionError": "latent_transforms.errors",
    "DEFAULT_FEATURE_NETWORK": "latent_transforms.features",
    "DatasetStats": "latent_transforms.objectives",
    "Discriminator": "latent_transforms.networks",
    "EncoderNotFoundError": "latent_transforms.errors",
    "EvaluationReport": "latent_transforms.evaluation",
    "FID": "latent_transforms.metrics",
    "FeatureExtractor": "latent_transforms.features",
    "FeatureNetworkUnavailableError": "latent_transforms.errors",
    "FeatureStatistics": "latent_transforms.metrics",
    "GPUAugment": "latent_transforms.transforms",
    "GanBundle": "latent_transforms.networks",
    "GanConfig": "latent_transforms.networks",
    "GanTransform": "latent_transforms.transforms",
    "Generator": "latent_transforms.networks",
    "IntensityWindow": "latent_transforms.data",
    "LatentAugment": "latent_transforms.transforms",
    "LatentAugmentConfig": "latent_transforms.transforms",
    "LatentAugmentD": "latent_transforms.transforms",
    "LatentAugmentDict": "latent_transforms.transforms",
    "LatentAugmentd": "latent_transforms.transforms",
    "LatentCache": "latent_transforms.inversion",
    "LatentEncoder": "latent_transforms.inversion",
    "LatentLookup": "latent_transforms.inversion",
    "LatentTransformsError": "latent_transforms.errors",
    "LatentWalk": "latent_transforms.objectives",
    "MissingDependencyError": "latent_transforms.errors",
    "MissingLatentError": "latent_transforms.transforms",
    "Modality": "latent_transforms.networks",
    "NonFiniteWeightsError": "latent_transforms.errors",
    "PRESETS": "latent_transforms.transforms",
    "PairedImageMetrics": "latent_transforms.metrics",
    "PairedSliceFolder": "latent_transforms.data",
    "PairedVolumeDataset": "latent_transforms.data",
    "PatientSubset": "latent_transforms.data",
    "PelvisPhantom": "latent_transforms.data",
    "PerceptualNetwork": "latent_transforms.features",
    "PrecisionRecall": "latent_transforms.metrics",
    "ProjectionResult": "latent_transforms.inversion",
    "Projector": "latent_transforms.inversion",
    "RandomTransform": "latent_transforms.transforms",
    "RandomTransformd": "latent_transforms.transforms",
    "SG2Sample": "latent_transforms.transforms",
    "SG2SampleConfig": "latent_transforms.transforms",
    "SG2SampleD": "latent_transforms.transforms",
    "SG2SampleDict": "latent_transforms.transforms",
    "SG2Sampled": "latent_transforms.transforms",
    "SelectionResult": "latent_transforms.transforms",
    "SelectiveFilter": "latent_transforms.transforms",
    "StandardDA": "latent_transforms.transforms",
    "StandardDAD": "latent_transforms.transforms",
    "StandardDADict": "latent_transforms.transforms",
    "StandardDAd": "latent_transforms.transforms",
    "Trainer": "latent_transforms.training",
    "TrainingOptions": "latent_transforms.training",
    "UnsafePickleError": "latent_transforms.errors",
    "WeightMismatchError": "latent_transforms.errors",
    "augment_collate": "latent_transforms.transforms",
    "compare_methods": "latent_transforms.metrics",
    "convert_stylegan2_pickle": "latent_transforms.networks",
    "evaluate_policies": "latent_transforms.evaluation",
    "feature_network": "latent_transforms.features",
    "fid": "latent_transforms.metrics",
    "frechet_distance": "latent_transforms.metrics",
    "generate_samples": "latent_transforms.evaluation",
    "image_key": "latent_transforms.inversion",
    "invert": "latent_transforms.inversion",
    "load_encoder": "latent_transforms.inversion",
    "load_gan": "latent_transforms.networks",
    "manifold_metrics": "latent_transforms.metrics",
    "mc_dropout": "latent_transforms.transforms",
    "mean_image_size": "latent_transforms.metrics",
    "measure_efficiency": "latent_transforms.metrics",
    "patient_split": "latent_transforms.data",
    "perceptual_network": "latent_transforms.features",
    "precision_recall": "latent_transforms.metrics",
    "split_dataset": "latent_transforms.data",
    "subset_by_patients": "latent_transforms.data",
    "train": "latent_transforms.training",
    "train_encoder": "latent_transforms.inversion",
}


def __getattr__(name: str) -> Any:
    # Import the public name's module on first access and keep the value here (PEP 562).
    source = _SOURCES.get(name)
    if source is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(source), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_SOURCES})


__all__ = [
    "DEFAULT_FEATURE_NETWORK",
    "FID",
    "PRESETS",
    "BundleNotFoundError",
    "CacheMismatchError",
    "CacheNotFoundError",
    "ConfigError",
    "ConversionError",
    "DatasetStats",
    "Discriminator",
    "EncoderNotFoundError",
    "EvaluationReport",
    "FeatureExtractor",
    "FeatureNetworkUnavailableError",
    "FeatureStatistics",
    "GPUAugment",
    "GanBundle",
    "GanConfig",
    "GanTransform",
    "Generator",
    "IntensityWindow",
    "LatentAugment",
    "LatentAugmentConfig",
    "LatentAugmentD",
    "LatentAugmentDict",
    "LatentAugmentd",
    "LatentCache",
    "LatentEncoder",
    "LatentLookup",
    "LatentTransformsError",
    "LatentWalk",
    "MissingDependencyError",
    "MissingLatentError",
    "Modality",
    "NonFiniteWeightsError",
    "PairedImageMetrics",
    "PairedSliceFolder",
    "PairedVolumeDataset",
    "PatientSubset",
    "PelvisPhantom",
    "PerceptualNetwork",
    "PrecisionRecall",
    "ProjectionResult",
    "Projector",
    "RandomTransform",
    "RandomTransformd",
    "SG2Sample",
    "SG2SampleConfig",
    "SG2SampleD",
    "SG2SampleDict",
    "SG2Sampled",
    "SelectionResult",
    "SelectiveFilter",
    "StandardDA",
    "StandardDAD",
    "StandardDADict",
    "StandardDAd",
    "Trainer",
    "TrainingOptions",
    "UnsafePickleError",
    "WeightMismatchError",
    "__version__",
    "augment_collate",
    "compare_methods",
    "convert_stylegan2_pickle",
    "evaluate_policies",
    "feature_network",
    "fid",
    "frechet_distance",
    "generate_samples",
    "image_key",
    "invert",
    "load_encoder",
    "load_gan",
    "manifold_metrics",
    "mc_dropout",
    "mean_image_size",
    "measure_efficiency",
    "patient_split",
    "perceptual_network",
    "precision_recall",
    "split_dataset",
    "subset_by_patients",
    "train",
    "train_encoder",
]
