"""Augmented sets on disk: :func:`~latent_transforms.export.augmented_set.augment_dataset` writes one
policy's output as NPZ, PNG or NIfTI files that :class:`~latent_transforms.data.PairedSliceFolder` reads
back (``latent-transforms augment``; :mod:`latent_transforms.export.command` is its command line). The
names below are served from :mod:`latent_transforms.export.augmented_set` on first access, so the command
line's ``--help`` does not import the writer.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from latent_transforms.export.augmented_set import (
        FORMATS,
        MANIFEST_NAME,
        augment_dataset,
        slice_affine,
        write_slice,
    )
    from latent_transforms.export.command import policy_names

__all__ = ["FORMATS", "MANIFEST_NAME", "augment_dataset", "policy_names", "slice_affine", "write_slice"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        module = "command" if name == "policy_names" else "augmented_set"
        return getattr(importlib.import_module(f"latent_transforms.export.{module}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
