"""Data layer: intensity windows, paired MRI/CT datasets, labelled images for classification,
patient-level and stratified splits and the pelvis phantom.

This layer imports nothing from the rest of the library, so every other layer may use it.

Names are imported from their modules on first use (PEP 562), so importing one module of this
package (e.g. its command line) does not import the others.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from latent_transforms.lazy import lazy_exports

if TYPE_CHECKING:
    from latent_transforms.data.classification import (
        LabelledImages as LabelledImages,
    )
    from latent_transforms.data.items import (
        BODY_THRESHOLD_HU as BODY_THRESHOLD_HU,
        body_mask as body_mask,
        stack_modalities as stack_modalities,
    )
    from latent_transforms.data.labels import (
        dataset_labels as dataset_labels,
    )
    from latent_transforms.data.open import (
        open_dataset as open_dataset,
        open_paired_dataset as open_paired_dataset,
        open_splits as open_splits,
    )
    from latent_transforms.data.phantom import (
        PelvisPhantom as PelvisPhantom,
    )
    from latent_transforms.data.slice_folder import (
        PairedSliceFolder as PairedSliceFolder,
    )
    from latent_transforms.data.splits import (
        PatientIndexed as PatientIndexed,
        PatientSubset as PatientSubset,
        patient_split as patient_split,
        split_dataset as split_dataset,
        subset_by_patients as subset_by_patients,
    )
    from latent_transforms.data.stratified import (
        stratified_indices as stratified_indices,
        stratified_split as stratified_split,
    )
    from latent_transforms.data.volumes import (
        PairedVolumeDataset as PairedVolumeDataset,
    )
    from latent_transforms.data.windows import (
        IntensityWindow as IntensityWindow,
    )

#: Where each public name lives; imported from there on first access.
_SOURCES: dict[str, str] = {
    "BODY_THRESHOLD_HU": "latent_transforms.data.items",
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
    "dataset_labels": "latent_transforms.data.labels",
    "stratified_indices": "latent_transforms.data.stratified",
    "stratified_split": "latent_transforms.data.stratified",
    "subset_by_patients": "latent_transforms.data.splits",
}

__getattr__, __dir__ = lazy_exports(__name__, _SOURCES, globals())
__all__ = [*_SOURCES]
