"""Evaluation layer: samples of augmentation policies measured side by side (the table of Xing et al. 2023).

Fidelity (FID, precision), variety (recall, mean-image size), utility (downstream gain with a Wilcoxon
test) and efficiency (time and memory per 1,000 images), as Markdown, JSON and plots.

Names are imported from their modules on first use (PEP 562), so importing one module of this
package (e.g. its command line) does not import the others.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from latent_transforms.evaluation.policies import (
        PolicySpec,
        load_sample_folder,
        parse_policies,
        parse_policy,
    )
    from latent_transforms.evaluation.real_data import RealData, open_real_data, prepare_latents
    from latent_transforms.evaluation.report import EvaluationReport, PolicyResult, UtilityResult
    from latent_transforms.evaluation.run import (
        EvaluatedPolicy,
        evaluate_policies,
        load_utility,
        measure_utility,
    )
    from latent_transforms.evaluation.sampling import augment_all, generate_samples, iter_samples

#: Where each name lives; :func:`__getattr__` imports it from there on first access.
_SOURCES: dict[str, str] = {
    "EvaluatedPolicy": "latent_transforms.evaluation.run",
    "EvaluationReport": "latent_transforms.evaluation.report",
    "PolicyResult": "latent_transforms.evaluation.report",
    "PolicySpec": "latent_transforms.evaluation.policies",
    "RealData": "latent_transforms.evaluation.real_data",
    "UtilityResult": "latent_transforms.evaluation.report",
    "augment_all": "latent_transforms.evaluation.sampling",
    "evaluate_policies": "latent_transforms.evaluation.run",
    "generate_samples": "latent_transforms.evaluation.sampling",
    "iter_samples": "latent_transforms.evaluation.sampling",
    "load_sample_folder": "latent_transforms.evaluation.policies",
    "load_utility": "latent_transforms.evaluation.run",
    "measure_utility": "latent_transforms.evaluation.run",
    "open_real_data": "latent_transforms.evaluation.real_data",
    "parse_policies": "latent_transforms.evaluation.policies",
    "parse_policy": "latent_transforms.evaluation.policies",
    "prepare_latents": "latent_transforms.evaluation.real_data",
}


def __getattr__(name: str) -> Any:
    source = _SOURCES.get(name)
    if source is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(source), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_SOURCES})


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
