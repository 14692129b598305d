"""Tuning layer: Optuna TPE search over LatentAugment's hyper-parameters (Tronchin et al. 2023, §III-D, §V-C).

Two objectives (task-agnostic F1 between real and LatentAugment images; downstream: a callable of yours),
the paper's categorical grids or continuous ranges, resumable SQLite studies, random-forest and Optuna
importance, and the grid searches of the baselines (StandardDA's 7 combinations × 10 ``p``; SG2Sample's
10 ``p``). Optuna and scikit-learn are optional: ``pip install 'latent-transforms[tuning]'``.

Names are imported from their modules on first use (PEP 562), so importing one module of this
package (e.g. its command line) does not import the others.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from latent_transforms.lazy import lazy_exports

if TYPE_CHECKING:
    from latent_transforms.tuning.grid import (
        STANDARD_DA_COMBINATIONS as STANDARD_DA_COMBINATIONS,
        GridPoint as GridPoint,
        GridResult as GridResult,
        latent_augment_p_grid as latent_augment_p_grid,
        run_grid as run_grid,
        sg2sample_grid as sg2sample_grid,
        standard_da_grid as standard_da_grid,
    )
    from latent_transforms.tuning.importance import (
        ForestImportance as ForestImportance,
        ImportanceReport as ImportanceReport,
        forest_importance as forest_importance,
        optuna_importance as optuna_importance,
        plot_importance as plot_importance,
    )
    from latent_transforms.tuning.objectives import (
        DownstreamObjective as DownstreamObjective,
        F1Objective as F1Objective,
        Objective as Objective,
    )
    from latent_transforms.tuning.spaces import (
        P_VALUES as P_VALUES,
        PAPER_GRIDS as PAPER_GRIDS,
        SearchSpace as SearchSpace,
        search_space as search_space,
    )
    from latent_transforms.tuning.study import (
        TuningResult as TuningResult,
        tune as tune,
    )

#: Where each public name lives; imported from there on first access.
_SOURCES: dict[str, str] = {
    "DownstreamObjective": "latent_transforms.tuning.objectives",
    "F1Objective": "latent_transforms.tuning.objectives",
    "ForestImportance": "latent_transforms.tuning.importance",
    "GridPoint": "latent_transforms.tuning.grid",
    "GridResult": "latent_transforms.tuning.grid",
    "ImportanceReport": "latent_transforms.tuning.importance",
    "Objective": "latent_transforms.tuning.objectives",
    "PAPER_GRIDS": "latent_transforms.tuning.spaces",
    "P_VALUES": "latent_transforms.tuning.spaces",
    "STANDARD_DA_COMBINATIONS": "latent_transforms.tuning.grid",
    "SearchSpace": "latent_transforms.tuning.spaces",
    "TuningResult": "latent_transforms.tuning.study",
    "forest_importance": "latent_transforms.tuning.importance",
    "latent_augment_p_grid": "latent_transforms.tuning.grid",
    "optuna_importance": "latent_transforms.tuning.importance",
    "plot_importance": "latent_transforms.tuning.importance",
    "run_grid": "latent_transforms.tuning.grid",
    "search_space": "latent_transforms.tuning.spaces",
    "sg2sample_grid": "latent_transforms.tuning.grid",
    "standard_da_grid": "latent_transforms.tuning.grid",
    "tune": "latent_transforms.tuning.study",
}

__getattr__, __dir__ = lazy_exports(__name__, _SOURCES, globals())
__all__ = [*_SOURCES]
