"""Evaluation layer: samples of augmentation policies measured side by side (the table of Xing et al. 2023).

Fidelity (FID, precision), variety (recall, mean-image size), utility (downstream gain with a Wilcoxon
test) and efficiency (time and memory per 1,000 images), as Markdown, JSON and plots.

Names are imported from their modules on first use (PEP 562), so importing one module of this
package (e.g. its command line) does not import the others.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from latent_transforms.lazy import lazy_exports

if TYPE_CHECKING:
    from latent_transforms.evaluation.policies import (
        PolicySpec as PolicySpec,
        load_sample_folder as load_sample_folder,
        parse_policies as parse_policies,
        parse_policy as parse_policy,
    )
    from latent_transforms.evaluation.reading_sheet import (
        FakeIdentificationRate as FakeIdentificationRate,
        ReadingSheet as ReadingSheet,
        score_reading_sheet as score_reading_sheet,
        write_reading_sheet as write_reading_sheet,
    )
    from latent_transforms.evaluation.real_data import (
        DEFAULT_DATA as DEFAULT_DATA,
        RealData as RealData,
        evenly_spread as evenly_spread,
        open_real_data as open_real_data,
        prepare_latents as prepare_latents,
    )
    from latent_transforms.evaluation.report import (
        EvaluationReport as EvaluationReport,
        PolicyResult as PolicyResult,
        UtilityResult as UtilityResult,
        commit_label as commit_label,
    )
    from latent_transforms.evaluation.run import (
        EvaluatedPolicy as EvaluatedPolicy,
        evaluate_policies as evaluate_policies,
        load_utility as load_utility,
        measure_utility as measure_utility,
    )
    from latent_transforms.evaluation.sampling import (
        augment_all as augment_all,
        generate_samples as generate_samples,
        iter_samples as iter_samples,
    )

#: Where each public name lives; imported from there on first access.
_SOURCES: dict[str, str] = {
    "DEFAULT_DATA": "latent_transforms.evaluation.real_data",
    "EvaluatedPolicy": "latent_transforms.evaluation.run",
    "EvaluationReport": "latent_transforms.evaluation.report",
    "FakeIdentificationRate": "latent_transforms.evaluation.reading_sheet",
    "PolicyResult": "latent_transforms.evaluation.report",
    "PolicySpec": "latent_transforms.evaluation.policies",
    "ReadingSheet": "latent_transforms.evaluation.reading_sheet",
    "RealData": "latent_transforms.evaluation.real_data",
    "UtilityResult": "latent_transforms.evaluation.report",
    "augment_all": "latent_transforms.evaluation.sampling",
    "commit_label": "latent_transforms.evaluation.report",
    "evaluate_policies": "latent_transforms.evaluation.run",
    "evenly_spread": "latent_transforms.evaluation.real_data",
    "generate_samples": "latent_transforms.evaluation.sampling",
    "iter_samples": "latent_transforms.evaluation.sampling",
    "load_sample_folder": "latent_transforms.evaluation.policies",
    "load_utility": "latent_transforms.evaluation.run",
    "measure_utility": "latent_transforms.evaluation.run",
    "open_real_data": "latent_transforms.evaluation.real_data",
    "parse_policies": "latent_transforms.evaluation.policies",
    "parse_policy": "latent_transforms.evaluation.policies",
    "prepare_latents": "latent_transforms.evaluation.real_data",
    "score_reading_sheet": "latent_transforms.evaluation.reading_sheet",
    "write_reading_sheet": "latent_transforms.evaluation.reading_sheet",
}

__getattr__, __dir__ = lazy_exports(__name__, _SOURCES, globals())
__all__ = [*_SOURCES]
