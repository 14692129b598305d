"""Augmented sets on disk: :func:`augment_dataset` writes one policy's output as NPZ, PNG or NIfTI files
that :class:`~latent_transforms.data.PairedSliceFolder` reads back (``latent-transforms augment``;
:mod:`latent_transforms.export.command` is its command line).
"""

from latent_transforms.export.augmented_set import (
    FORMATS,
    MANIFEST_NAME,
    augment_dataset,
    policy_names,
    slice_affine,
    write_slice,
)

__all__ = ["FORMATS", "MANIFEST_NAME", "augment_dataset", "policy_names", "slice_affine", "write_slice"]
