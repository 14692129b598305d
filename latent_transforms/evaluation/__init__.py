"""Evaluation layer: samples of augmentation policies measured side by side (the table of Xing et al. 2023).

Fidelity (FID, precision), variety (recall, mean-image size), utility (downstream gain with a Wilcoxon
test) and efficiency (time and memory per 1,000 images), as Markdown, JSON and plots.
"""

from latent_transforms.evaluation.policies import PolicySpec, load_sample_folder, parse_policies, parse_policy
from latent_transforms.evaluation.reading_sheet import (
    FakeIdentificationRate,
    ReadingSheet,
    score_reading_sheet,
    write_reading_sheet,
)
from latent_transforms.evaluation.real_data import (
    DEFAULT_DATA,
    RealData,
    evenly_spread,
    open_real_data,
    prepare_latents,
)
from latent_transforms.evaluation.report import EvaluationReport, PolicyResult, UtilityResult
from latent_transforms.evaluation.run import EvaluatedPolicy, evaluate_policies, load_utility, measure_utility
from latent_transforms.evaluation.sampling import augment_all, generate_samples, iter_samples

__all__ = [
    "DEFAULT_DATA",
    "EvaluatedPolicy",
    "EvaluationReport",
    "FakeIdentificationRate",
    "PolicyResult",
    "PolicySpec",
    "ReadingSheet",
    "RealData",
    "UtilityResult",
    "augment_all",
    "evaluate_policies",
    "evenly_spread",
    "generate_samples",
    "iter_samples",
    "load_sample_folder",
    "load_utility",
    "measure_utility",
    "open_real_data",
    "parse_policies",
    "parse_policy",
    "prepare_latents",
    "score_reading_sheet",
    "write_reading_sheet",
]
