"""Tuning layer: Optuna TPE search over LatentAugment's hyper-parameters (Tronchin et al. 2023, §III-D, §V-C).

Two objectives (task-agnostic F1 between real and LatentAugment images; downstream: a callable of yours),
the paper's categorical grids or continuous ranges, resumable SQLite studies, random-forest and Optuna
importance, and the grid searches of the baselines (StandardDA's 7 combinations × 10 ``p``; SG2Sample's
10 ``p``). Optuna and scikit-learn are optional: ``pip install 'latent-transforms[tuning]'``.
"""

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
