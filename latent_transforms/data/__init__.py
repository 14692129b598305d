"""Data layer: intensity windows, paired MRI/CT datasets, labelled images for classification,
patient-level and stratified splits and the pelvis phantom.

This layer imports nothing from the rest of the library, so every other layer may use it.
"""

from latent_transforms.data.classification import LabelledImages
from latent_transforms.data.items import BODY_THRESHOLD_HU, body_mask, stack_modalities
from latent_transforms.data.open import open_dataset, open_paired_dataset, open_splits
from latent_transforms.data.phantom import PelvisPhantom
from latent_transforms.data.slice_folder import PairedSliceFolder
from latent_transforms.data.splits import (
    PatientIndexed,
    PatientSubset,
    patient_split,
    split_dataset,
    subset_by_patients,
)
from latent_transforms.data.stratified import stratified_indices, stratified_split
from latent_transforms.data.volumes import PairedVolumeDataset
from latent_transforms.data.windows import IntensityWindow

__all__ = [
    "BODY_THRESHOLD_HU",
    "IntensityWindow",
    "LabelledImages",
    "PairedSliceFolder",
    "PairedVolumeDataset",
    "PatientIndexed",
    "PatientSubset",
    "PelvisPhantom",
    "body_mask",
    "open_dataset",
    "open_paired_dataset",
    "open_splits",
    "patient_split",
    "split_dataset",
    "stack_modalities",
    "stratified_indices",
    "stratified_split",
    "subset_by_patients",
]
