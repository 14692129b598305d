"""Transforms: LatentAugment, SG2Sample, DiffusionSample, StandardDA, SelectiveFilter, their MONAI dictionary
variants, the shared base classes, the hyper-parameter configs and the GPU batch wrapper for DataLoaders.

The MONAI dictionary variants (``LatentAugmentd``, ``SG2Sampled``, ``DiffusionSampled``, ``StandardDAd`` and
their ``D`` / ``Dict`` aliases) are imported on first access, so ``import latent_transforms`` does not pay
for importing MONAI.
"""

from __future__ import annotations

from typing import Any

from latent_transforms.transforms.base import RandomTransform
from latent_transforms.transforms.batch_filter import BatchFilter
from latent_transforms.transforms.config import (
    PRESETS,
    DiffusionSampleConfig,
    LatentAugmentConfig,
    SG2SampleConfig,
)
from latent_transforms.transforms.cross_modal import (
    CrossModalAugment,
    MixedTrainingSet,
    cross_modal_training_set,
)
from latent_transforms.transforms.diffusion_sample import DiffusionSample
from latent_transforms.transforms.gan_transform import GanTransform
from latent_transforms.transforms.gpu import GPUAugment, augment_collate
from latent_transforms.transforms.latent_augment import LatentAugment, MissingLatentError
from latent_transforms.transforms.selective_filter import SelectionResult, SelectiveFilter, mc_dropout
from latent_transforms.transforms.sg2sample import SG2Sample
from latent_transforms.transforms.standard_da import StandardDA

#: Names served lazily from :mod:`latent_transforms.transforms.dictionary` (imports MONAI).
DICTIONARY_NAMES = (
    "DiffusionSampleD",
    "DiffusionSampleDict",
    "DiffusionSampled",
    "LatentAugmentD",
    "LatentAugmentDict",
    "LatentAugmentd",
    "RandomTransformd",
    "SG2SampleD",
    "SG2SampleDict",
    "SG2Sampled",
    "StandardDAD",
    "StandardDADict",
    "StandardDAd",
)
#: Names served lazily from :mod:`latent_transforms.transforms.cross_modal_dictionary` (imports MONAI).
CROSS_MODAL_DICTIONARY_NAMES = ("CrossModalAugmentD", "CrossModalAugmentDict", "CrossModalAugmentd")


def __getattr__(name: str) -> Any:
    if name in DICTIONARY_NAMES:
        from latent_transforms.transforms import dictionary

        return getattr(dictionary, name)
    if name in CROSS_MODAL_DICTIONARY_NAMES:
        from latent_transforms.transforms import cross_modal_dictionary

        return getattr(cross_modal_dictionary, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "PRESETS",
    "BatchFilter",
    "CrossModalAugment",
    "DiffusionSample",
    "DiffusionSampleConfig",
    "GPUAugment",
    "GanTransform",
    "LatentAugment",
    "LatentAugmentConfig",
    "MissingLatentError",
    "MixedTrainingSet",
    "RandomTransform",
    "SG2Sample",
    "SG2SampleConfig",
    "SelectionResult",
    "SelectiveFilter",
    "StandardDA",
    "augment_collate",
    "cross_modal_training_set",
    "mc_dropout",
    *DICTIONARY_NAMES,
    *CROSS_MODAL_DICTIONARY_NAMES,
]
