"""latent-transforms: GAN-based data augmentation for medical imaging.

Public API: the transforms (LatentAugment, SG2Sample, DiffusionSample, StandardDA, SelectiveFilter; their
MONAI dictionary variants; GPUAugment for DataLoaders), cross-modal augmentation (CrossModalAugment over a
CycleGAN or DUIIT translator bundle, Yang & Xie), GAN bundles and the StyleGAN2 networks they hold,
diffusion bundles (a DDPM on MONAI's UNet and schedulers), paired MRI/CT datasets, labelled classification
images and the built-in pelvis phantom, the StyleGAN2-ADA and diffusion trainers, GAN inversion (the
batched projector, its encoder start and the on-disk latent cache), LatentAugment's dataset statistics,
the metrics of synthetic data (FID, precision / recall / density / coverage, mean-image variety,
efficiency, paired MAE / SSIM / PSNR / LPIPS and the statistics tests in
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

from typing import TYPE_CHECKING

from latent_transforms._version import __version__
from latent_transforms.lazy import lazy_exports

if TYPE_CHECKING:
    from latent_transforms.data import (
        IntensityWindow as IntensityWindow,
        LabelledImages as LabelledImages,
        PairedSliceFolder as PairedSliceFolder,
        PairedVolumeDataset as PairedVolumeDataset,
        PatientSubset as PatientSubset,
        PelvisPhantom as PelvisPhantom,
        open_dataset as open_dataset,
        open_paired_dataset as open_paired_dataset,
        open_splits as open_splits,
        patient_split as patient_split,
        split_dataset as split_dataset,
        stratified_split as stratified_split,
        subset_by_patients as subset_by_patients,
    )
    from latent_transforms.errors import (
        BundleNotFoundError as BundleNotFoundError,
        CacheMismatchError as CacheMismatchError,
        CacheNotFoundError as CacheNotFoundError,
        ConfigError as ConfigError,
        ConversionError as ConversionError,
        EncoderNotFoundError as EncoderNotFoundError,
        FeatureNetworkUnavailableError as FeatureNetworkUnavailableError,
        LatentTransformsError as LatentTransformsError,
        MissingDependencyError as MissingDependencyError,
        NonFiniteWeightsError as NonFiniteWeightsError,
        UnsafePickleError as UnsafePickleError,
        WeightMismatchError as WeightMismatchError,
    )
    from latent_transforms.evaluation import (
        EvaluationReport as EvaluationReport,
        evaluate_policies as evaluate_policies,
        generate_samples as generate_samples,
    )
    from latent_transforms.features import (
        DEFAULT_FEATURE_NETWORK as DEFAULT_FEATURE_NETWORK,
        FeatureExtractor as FeatureExtractor,
        PerceptualNetwork as PerceptualNetwork,
        feature_network as feature_network,
        perceptual_network as perceptual_network,
    )
    from latent_transforms.generative import (
        DiffusionBundle as DiffusionBundle,
        DiffusionConfig as DiffusionConfig,
        load_diffusion as load_diffusion,
    )
    from latent_transforms.inversion import (
        LatentCache as LatentCache,
        LatentEncoder as LatentEncoder,
        LatentLookup as LatentLookup,
        ProjectionResult as ProjectionResult,
        Projector as Projector,
        image_key as image_key,
        invert as invert,
        invert_to_cache as invert_to_cache,
        load_encoder as load_encoder,
        train_encoder as train_encoder,
    )
    from latent_transforms.metrics import (
        FID as FID,
        FeatureStatistics as FeatureStatistics,
        PairedImageMetrics as PairedImageMetrics,
        PrecisionRecall as PrecisionRecall,
        compare_methods as compare_methods,
        frechet_distance as frechet_distance,
        manifold_metrics as manifold_metrics,
        mean_image_size as mean_image_size,
        measure_efficiency as measure_efficiency,
    )
    from latent_transforms.metrics.class_fidelity import (
        class_fidelity as class_fidelity,
    )
    from latent_transforms.metrics.fid import (
        fid as fid,
    )
    from latent_transforms.metrics.precision_recall import (
        precision_recall as precision_recall,
    )
    from latent_transforms.networks import (
        Discriminator as Discriminator,
        GanBundle as GanBundle,
        GanConfig as GanConfig,
        Generator as Generator,
        Modality as Modality,
        convert_stylegan2_pickle as convert_stylegan2_pickle,
        load_gan as load_gan,
    )
    from latent_transforms.objectives import (
        DatasetStats as DatasetStats,
        LatentWalk as LatentWalk,
    )
    from latent_transforms.training import (
        DiffusionOptions as DiffusionOptions,
        DiffusionTrainer as DiffusionTrainer,
        Trainer as Trainer,
        TrainingOptions as TrainingOptions,
        plot_fid_curve as plot_fid_curve,
        train as train,
        train_diffusion as train_diffusion,
    )
    from latent_transforms.transforms import (
        PRESETS as PRESETS,
        CrossModalAugment as CrossModalAugment,
        CrossModalAugmentD as CrossModalAugmentD,
        CrossModalAugmentd as CrossModalAugmentd,
        CrossModalAugmentDict as CrossModalAugmentDict,
        DiffusionSample as DiffusionSample,
        DiffusionSampleConfig as DiffusionSampleConfig,
        DiffusionSampleD as DiffusionSampleD,
        DiffusionSampled as DiffusionSampled,
        DiffusionSampleDict as DiffusionSampleDict,
        GanTransform as GanTransform,
        GPUAugment as GPUAugment,
        LatentAugment as LatentAugment,
        LatentAugmentConfig as LatentAugmentConfig,
        LatentAugmentD as LatentAugmentD,
        LatentAugmentd as LatentAugmentd,
        LatentAugmentDict as LatentAugmentDict,
        MissingLatentError as MissingLatentError,
        MixedTrainingSet as MixedTrainingSet,
        RandomTransform as RandomTransform,
        RandomTransformd as RandomTransformd,
        SelectionResult as SelectionResult,
        SelectiveFilter as SelectiveFilter,
        SG2Sample as SG2Sample,
        SG2SampleConfig as SG2SampleConfig,
        SG2SampleD as SG2SampleD,
        SG2Sampled as SG2Sampled,
        SG2SampleDict as SG2SampleDict,
        StandardDA as StandardDA,
        StandardDAD as StandardDAD,
        StandardDAd as StandardDAd,
        StandardDADict as StandardDADict,
        augment_collate as augment_collate,
        cross_modal_training_set as cross_modal_training_set,
        mc_dropout as mc_dropout,
    )
    from latent_transforms.translation import (
        TranslatorBundle as TranslatorBundle,
        TranslatorConfig as TranslatorConfig,
        TranslatorOptions as TranslatorOptions,
        TranslatorTrainer as TranslatorTrainer,
        UnpairedImages as UnpairedImages,
        load_translator as load_translator,
        train_translator as train_translator,
    )

#: Where each public name lives; imported from there on first access.
_SOURCES: dict[str, str] = {
    "BundleNotFoundError": "latent_transforms.errors",
    "CacheMismatchError": "latent_transforms.errors",
    "CacheNotFoundError": "latent_transforms.errors",
    "ConfigError": "latent_transforms.errors",
    "ConversionError": "latent_transforms.errors",
    "CrossModalAugment": "latent_transforms.transforms",
    "CrossModalAugmentD": "latent_transforms.transforms",
    "CrossModalAugmentDict": "latent_transforms.transforms",
    "CrossModalAugmentd": "latent_transforms.transforms",
    "DEFAULT_FEATURE_NETWORK": "latent_transforms.features",
    "DatasetStats": "latent_transforms.objectives",
    "DiffusionBundle": "latent_transforms.generative",
    "DiffusionConfig": "latent_transforms.generative",
    "DiffusionOptions": "latent_transforms.training",
    "DiffusionSample": "latent_transforms.transforms",
    "DiffusionSampleConfig": "latent_transforms.transforms",
    "DiffusionSampleD": "latent_transforms.transforms",
    "DiffusionSampleDict": "latent_transforms.transforms",
    "DiffusionSampled": "latent_transforms.transforms",
    "DiffusionTrainer": "latent_transforms.training",
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
    "LabelledImages": "latent_transforms.data",
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
    "MixedTrainingSet": "latent_transforms.transforms",
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
    "TranslatorBundle": "latent_transforms.translation",
    "TranslatorConfig": "latent_transforms.translation",
    "TranslatorOptions": "latent_transforms.translation",
    "TranslatorTrainer": "latent_transforms.translation",
    "UnpairedImages": "latent_transforms.translation",
    "UnsafePickleError": "latent_transforms.errors",
    "WeightMismatchError": "latent_transforms.errors",
    "augment_collate": "latent_transforms.transforms",
    "compare_methods": "latent_transforms.metrics",
    "convert_stylegan2_pickle": "latent_transforms.networks",
    "cross_modal_training_set": "latent_transforms.transforms",
    "evaluate_policies": "latent_transforms.evaluation",
    "feature_network": "latent_transforms.features",
    "class_fidelity": "latent_transforms.metrics",
    "fid": "latent_transforms.metrics",
    "frechet_distance": "latent_transforms.metrics",
    "generate_samples": "latent_transforms.evaluation",
    "image_key": "latent_transforms.inversion",
    "invert": "latent_transforms.inversion",
    "invert_to_cache": "latent_transforms.inversion",
    "load_diffusion": "latent_transforms.generative",
    "load_encoder": "latent_transforms.inversion",
    "load_gan": "latent_transforms.networks",
    "load_translator": "latent_transforms.translation",
    "manifold_metrics": "latent_transforms.metrics",
    "mc_dropout": "latent_transforms.transforms",
    "mean_image_size": "latent_transforms.metrics",
    "measure_efficiency": "latent_transforms.metrics",
    "open_dataset": "latent_transforms.data",
    "open_paired_dataset": "latent_transforms.data",
    "open_splits": "latent_transforms.data",
    "patient_split": "latent_transforms.data",
    "perceptual_network": "latent_transforms.features",
    "plot_fid_curve": "latent_transforms.training",
    "precision_recall": "latent_transforms.metrics",
    "split_dataset": "latent_transforms.data",
    "stratified_split": "latent_transforms.data",
    "subset_by_patients": "latent_transforms.data",
    "train": "latent_transforms.training",
    "train_diffusion": "latent_transforms.training",
    "train_encoder": "latent_transforms.inversion",
    "train_translator": "latent_transforms.translation",
}

__getattr__, __dir__ = lazy_exports(__name__, _SOURCES, globals())
__all__ = [*_SOURCES, "__version__"]
