"""LatentAugment's objective terms and the dataset statistics they use.

:class:`DatasetStats` holds the real training set's means (images, latents, perceptual patch features)
that make the diversity terms of DESIGN §4 exact while costing one subtraction per step.
"""

from latent_transforms.objectives.stats import (
    RANGE_MARGIN,
    STATS_FORMAT,
    DatasetStats,
    DatasetStatsAccumulator,
    patch_grid,
)

__all__ = ["RANGE_MARGIN", "STATS_FORMAT", "DatasetStats", "DatasetStatsAccumulator", "patch_grid"]
