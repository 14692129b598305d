"""LatentAugment's objective: the walk (its loss terms and Adam loop) and the dataset statistics it uses.

:class:`DatasetStats` holds the real training set's means (images, latents, perceptual patch features)
that make the diversity terms exact while costing one subtraction per step; :class:`LatentWalk` is the
walk of Tronchin et al. 2023 on one device.
"""

from latent_transforms.objectives.accumulator import DatasetStatsAccumulator
from latent_transforms.objectives.patches import CENTRE_FRACTION, RANGE_MARGIN, centre_positions, patch_grid
from latent_transforms.objectives.stats import STATS_FORMAT, DatasetStats, PatchPool
from latent_transforms.objectives.walk import (
    COMPILE_MODES,
    PATCH_PROTOCOLS,
    PRECISIONS,
    LatentWalk,
    WalkParameters,
    check_latents,
    render_latents,
    single_sample_mbstd,
)

__all__ = [
    "CENTRE_FRACTION",
    "COMPILE_MODES",
    "PATCH_PROTOCOLS",
    "PRECISIONS",
    "RANGE_MARGIN",
    "STATS_FORMAT",
    "DatasetStats",
    "DatasetStatsAccumulator",
    "LatentWalk",
    "PatchPool",
    "WalkParameters",
    "centre_positions",
    "check_latents",
    "patch_grid",
    "render_latents",
    "single_sample_mbstd",
]
