"""Data layer: intensity windows, paired MRI/CT datasets, labelled images for classification,
patient-level and stratified splits and the pelvis phantom.

This layer imports nothing from the rest of the library, so every other layer may use it.

Names are imported from their modules on first use (PEP 562), so importing one module of this
package (e.g. its command line) does not import the others.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from latent_transforms.data.classification import LabelledImages
    from latent_transforms.data.items import body_mask, stack_modalities
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

#: Where each name lives; :func:`__getattr__` imports it from there on first access.
_SOURCES: dict[str, str] = {
    "IntensityWindow": "latent_transforms.data.windows",
    "LabelledImages": "latent_transforms.data.classification",
    "PairedSliceFolder": "latent_transforms.data.slice_folder",
    "PairedVolumeDataset": "latent_transforms.data.volumes",
    "PatientIndexed": "latent_transforms.data.splits",
    "PatientSubset": "latent_transforms.data.splits",
    "PelvisPhantom": "latent_transforms.data.phantom",
    "body_mask": "latent_transforms.data.items",
    "open_dataset": "latent_transforms.data.open",
    "open_paired_dataset": "latent_transforms.data.open",
    "open_splits": "latent_transforms.data.open",
    "patient_split": "latent_transforms.data.splits",
    "split_dataset": "latent_transforms.data.splits",
    "stack_modalities": "latent_transforms.data.items",
    "stratified_indices": "latent_transforms.data.stratified",
    "stratified_split": "latent_transforms.data.stratified",
    "subset_by_patients": "latent_transforms.data.splits",
}


def __getattr__(name: str) -> Any:
    source = _SOURCES.get(name)
    if source is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(source), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_SOURCES})


__all__ = [
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
