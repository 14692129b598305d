"""Metrics layer: how good synthetic data are (the fidelity, variety and efficiency of Xing et al. 2023; the
image-quality metrics and statistics tests of Tronchin et al. 2023).

- fidelity / variety on features from a :class:`FeatureExtractor`: FID, improved precision / recall /
  F1 (k-NN manifolds), density / coverage; the mean-image size (variety without features);
- efficiency: time per 1,000 images and peak GPU memory of any policy;
- paired image quality in physical units: MAE inside the body, SSIM, PSNR, LPIPS;
- statistics (:mod:`latent_transforms.metrics.stats`): Friedman, Nemenyi (Tronchin et al. 2023, Table III),
  Wilcoxon signed-rank.

Every feature-based number depends on the feature network; record ``extractor.name`` and
``extractor.fingerprint`` with it and compare only values made with the same one.
"""

from latent_transforms.metrics.class_fidelity import ClassSampler, class_fidelity
from latent_transforms.metrics.efficiency import Efficiency, measure_efficiency
from latent_transforms.metrics.fid import FID, FeatureStatistics, fid, frechet_distance, modality_names
from latent_transforms.metrics.lpips import (
    LPIPS_BACKBONES,
    clear_lpips_cache,
    lpips_checkpoint,
    lpips_distance,
    lpips_network,
)
from latent_transforms.metrics.paired import PAIRED_METRICS, PairedImageMetrics, body_mae, mae, psnr, ssim
from latent_transforms.metrics.precision_recall import (
    MANIFOLD_METRICS,
    PrecisionRecall,
    density_coverage,
    knn_radii,
    manifold_coverage,
    manifold_metrics,
    precision_recall,
)
from latent_transforms.metrics.stats import (
    FriedmanResult,
    MethodComparison,
    NemenyiResult,
    WilcoxonResult,
    compare_methods,
    friedman,
    nemenyi,
    wilcoxon,
)
from latent_transforms.metrics.variety import MeanImageSize, mean_image_size

__all__ = [
    "FID",
    "LPIPS_BACKBONES",
    "MANIFOLD_METRICS",
    "PAIRED_METRICS",
    "ClassSampler",
    "Efficiency",
    "FeatureStatistics",
    "FriedmanResult",
    "MeanImageSize",
    "MethodComparison",
    "NemenyiResult",
    "PairedImageMetrics",
    "PrecisionRecall",
    "WilcoxonResult",
    "body_mae",
    "class_fidelity",
    "clear_lpips_cache",
    "compare_methods",
    "density_coverage",
    "fid",
    "frechet_distance",
    "friedman",
    "knn_radii",
    "lpips_checkpoint",
    "lpips_distance",
    "lpips_network",
    "mae",
    "manifold_coverage",
    "manifold_metrics",
    "mean_image_size",
    "measure_efficiency",
    "modality_names",
    "nemenyi",
    "precision_recall",
    "psnr",
    "ssim",
    "wilcoxon",
]
