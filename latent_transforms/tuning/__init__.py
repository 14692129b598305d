"""Tuning layer: Optuna TPE search over LatentAugment's hyper-parameters (Tronchin et al. 2023, §III-D, §V-C).

Two objectives (task-agnostic F1 between real and LatentAugment images; downstream: a callable of yours),
the paper's categorical grids or continuous ranges, resumable SQLite studies, random-forest and Optuna
importance, and the grid searches of the baselines (StandardDA's 7 combinations × 10 ``p``; SG2Sample's
10 ``p``). Optuna and scikit-learn are optional: ``pip install 'latent-transforms[tuning]'``.

Names are imported from their modules on first use (PEP 562), so importing one module of this
package (e.g. its command line) does not import the others.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from latent_transforms.tuning.grid import (
        STANDARD_DA_COMBINATIONS,
        GridPoint,
        GridResult,
        latent_augment_p_grid,
        run_grid,
        sg2sample_grid,
        standard_da_grid,
    )
    from latent_transforms.tuning.importance import (
        ForestImportance,
        ImportanceReport,
        forest_importance,
        optuna_importance,
        plot_importance,
    )
    from latent_transforms.tuning.objectives import DownstreamObjective, F1Objective, Objective
    from latent_transforms.tuning.spaces import P_VALUES, PAPER_GRIDS, SearchSpace, search_space
    from latent_transforms.tuning.study import TuningResult, tune

#: Where each name lives; :func:`__getattr__` imports it from there on first access.
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
    "PAPER_GRIDS",
    "P_VALUES",
    "STANDARD_DA_COMBINATIONS",
    "DownstreamObjective",
    "F1Objective",
    "ForestImportance",
    "GridPoint",
    "GridResult",
    "ImportanceReport",
    "Objective",
    "SearchSpace",
    "TuningResult",
    "forest_importance",
    "latent_augment_p_grid",
    "optuna_importance",
    "plot_importance",
    "run_grid",
    "search_space",
    "sg2sample_grid",
    "standard_da_grid",
    "tune",
]
