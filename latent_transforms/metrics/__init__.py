"""Metrics layer: FID and improved precision/recall on features from a :class:`FeatureExtractor`.

Every number depends on the feature network; record ``extractor.name`` and ``extractor.fingerprint``
with it and compare only values made with the same one.
"""

from latent_transforms.metrics.fid import FID, FeatureStatistics, fid, frechet_distance
from latent_transforms.metrics.precision_recall import knn_radii, manifold_coverage, precision_recall

__all__ = [
    "FID",
    "FeatureStatistics",
    "fid",
    "frechet_distance",
    "knn_radii",
    "manifold_coverage",
    "precision_recall",
]
