"""The Pix2Pix MRI-to-CT benchmark of Tronchin et al. 2023, as a small package you can reuse.

Run it with ``python examples/pix2pix_mri2ct/run.py --data phantom --quick`` (see ``README.md`` here).
In your own project, put ``examples/`` on ``sys.path`` (or copy the folder) and import the pieces:

- :mod:`.model`: ``Pix2Pix`` (U-Net generator + 70×70 PatchGAN, Isola et al.'s defaults),
  ``Pix2PixOptions``, ``UNetGenerator``, ``PatchDiscriminator``;
- :mod:`.training`: ``train_pix2pix`` (one model, any batch transform through ``GPUAugment``);
- :mod:`.evaluation`: ``translate`` and ``score_translation`` (MAE in the body, SSIM, PSNR, LPIPS, the
  MAE-vs-HU curve);
- :mod:`.policies`: the paper's augmentation policies built from the library's transforms;
- :mod:`.data`: ``open_benchmark_data`` (patient split, in-memory slices);
- :mod:`.report` / :mod:`.figures`: the tables (II, III, V) and figures (4, 6, Table IV);
- :mod:`.pipeline`: ``run_benchmark`` (everything, resumable).

Example:
    >>> import sys; sys.path.insert(0, "examples")  # doctest: +SKIP
    >>> from pix2pix_mri2ct import Pix2Pix, score_translation  # doctest: +SKIP
"""

from __future__ import annotations

from .data import BenchmarkData, SliceSet, open_benchmark_data
from .evaluation import curve_edges, hu_error_sums, score_translation, translate
from .model import PatchDiscriminator, Pix2Pix, Pix2PixOptions, UNetGenerator
from .pipeline import BenchmarkConfig, plan_runs, quick_config, run_benchmark
from .policies import Policy, ablation_policies, build_transform, main_policies, sweep_policies
from .training import TrainingLog, train_pix2pix

__all__ = [
    "BenchmarkConfig",
    "BenchmarkData",
    "PatchDiscriminator",
    "Pix2Pix",
    "Pix2PixOptions",
    "Policy",
    "SliceSet",
    "TrainingLog",
    "UNetGenerator",
    "ablation_policies",
    "build_transform",
    "curve_edges",
    "hu_error_sums",
    "main_policies",
    "open_benchmark_data",
    "plan_runs",
    "quick_config",
    "run_benchmark",
    "score_translation",
    "sweep_policies",
    "train_pix2pix",
    "translate",
]
