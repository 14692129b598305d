"""Transforms: LatentAugment, SG2Sample, StandardDA, SelectiveFilter, their MONAI dictionary variants,
the shared base class and the GPU batch wrapper for DataLoaders (DESIGN §5)."""

from latent_transforms.transforms.base import RandomTransform

__all__ = ["RandomTransform"]
