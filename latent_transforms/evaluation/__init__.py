"""Evaluation layer: samples of augmentation policies measured side by side (the table of Xing et al. 2023).

Fidelity (FID, precision), variety (recall, mean-image size), utility (downstream gain with a Wilcoxon
test) and efficiency (time and memory per 1,000 images), as Markdown, JSON and plots.
"""

from latent_transforms.evaluation.policies import PolicySpec, load_sample_folder, parse_policies, parse_policy
from latent_transforms.evaluation.real_data import RealData, open_real_data, prepare_latents
from latent_transforms.evaluation.report import EvaluationReport, PolicyResult, UtilityResult
from latent_transforms.evaluation.run import EvaluatedPolicy, evaluate_policies, load_utility, measure_utility
from latent_transforms.evaluation.sampling import augment_all, generate_samples, iter_samples

__all__ = [
    "EvaluatedPolicy",
    "EvaluationReport",
    "PolicyResult",
    "PolicySpec",
    "RealData",
    "UtilityResult",
    "augment_all",
    "evaluate_policies",
    "generate_samples",
    "iter_samples",
    "load_sample_folder",
    "load_utility",
    "measure_utility",
    "open_real_data",
    "parse_policies",
    "parse_policy",
    "prepare_latents",
]
