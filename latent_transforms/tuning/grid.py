"""Grid searches of the baselines (Tronchin et al. 2023, §IV-D 3) and of LatentAugment's ``p``.

- StandardDA: every non-empty combination of the paper's three options, horizontal flips (``xflip``), the
  affine transformations (``affine``: rotation in ±3° and translation in ±5 %, together) and the elastic
  deformation (``deform``: kernel 63, σ 32): 7 combinations, each with ``p_aug ∈ {0, 0.1, ..., 0.9}``
  (``p = 1 - p_aug``): 70 settings.
- SG2Sample: the same 10 values of ``p``.
- LatentAugment: the 10 values of ``p`` with every other hyper-parameter fixed (the paper did this after
  its F1 search, which cannot set ``p``).

Each setting's transform goes to your callable ``fn(transform)``, which returns the validation metric
(the paper: the MAE of the downstream model, minimised). An :class:`~latent_transforms.tuning.F1Objective`'s
``measure`` works as ``fn`` too (it returns ``(F1, details)``): F1 does not depend on ``p`` (its samples
are all augmented), so use it with ``p_values=(1.0,)`` to rank StandardDA's 7 combinations by F1.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from latent_transforms.checks import check_choice, check_probability
from latent_transforms.errors import ConfigError
from latent_transforms.files import atomic_write
from latent_transforms.transforms.base import RandomTransform
from latent_transforms.transforms.latent_augment import LatentAugment
from latent_transforms.transforms.sg2sample import SG2Sample
from latent_transforms.transforms.standard_da import StandardDA
from latent_transforms.tuning.importance import (
    ImportanceReport,
    importance_report,
    plot_importance,
    require_package,
)
from latent_transforms.tuning.objectives import DIRECTIONS
from latent_transforms.tuning.spaces import P_VALUES
from latent_transforms.tuning.study import rows_to_csv, storage_url

_log = logging.getLogger(__name__)

__all__ = [
    "STANDARD_DA_COMBINATIONS",
    "STANDARD_DA_COMPONENTS",
    "GridPoint",
    "GridResult",
    "latent_augment_p_grid",
    "run_grid",
    "sg2sample_grid",
    "standard_da_grid",
    "standard_da_kwargs",
]

#: The paper's three StandardDA options.
STANDARD_DA_COMPONENTS = ("xflip", "affine", "deform")
#: Their 7 non-empty combinations.
STANDARD_DA_COMBINATIONS: tuple[tuple[str, ...], ...] = (
    ("xflip",),
    ("affine",),
    ("deform",),
    ("xflip", "affine"),
    ("xflip", "deform"),
    ("affine", "deform"),
    ("xflip", "affine", "deform"),
)


def standard_da_kwargs(combination: Sequence[str]) -> dict[str, Any]:
    """``StandardDA`` arguments switching on the options of ``combination`` (the paper's magnitudes).

    Example:
        >>> standard_da_kwargs(["xflip", "deform"])
        {'flip': True, 'rotate': 0.0, 'translate': 0.0, 'elastic': (63, 32.0)}
    """
    unknown = sorted(set(combination) - set(STANDARD_DA_COMPONENTS))
    if unknown or not combination:
        raise ConfigError(
            f"expected a non-empty combination of {STANDARD_DA_COMPONENTS}, got {list(combination)}."
        )
    affine = "affine" in combination
    return {
        "flip": "xflip" in combination,
        "rotate": 3.0 if affine else 0.0,
        "translate": 0.05 if affine else 0.0,
        "elastic": (63, 32.0) if "deform" in combination else None,
    }


@dataclass
class GridPoint:
    """One setting of a grid: the policy, a name for its non-``p`` part, ``p`` and the constructor
    arguments; :meth:`build` makes the transform.

    Example:
        >>> point = standard_da_grid()[0]
        >>> point.policy, point.setting, point.p, point.p_aug
        ('StandardDA', 'xflip', 1.0, 0.0)
    """

    policy: str
    setting: str
    p: float
    kwargs: dict[str, Any]
    factory: Callable[[], RandomTransform] = field(repr=False, compare=False)

    @property
    def p_aug(self) -> float:
        """The paper's ``p_aug = 1 - p`` (the probability of keeping the real image)."""
        return round(1.0 - self.p, 10)

    def build(self) -> RandomTransform:
        """The transform of this setting."""
        return self.factory()


def _check_p(p_values: Sequence[float]) -> list[float]:
    if not p_values:
        raise ConfigError("p_values must be probabilities in [0, 1], got none.")
    return [check_probability(f"p_values[{i}]", float(p)) for i, p in enumerate(p_values)]


def standard_da_grid(
    p_values: Sequence[float] = P_VALUES,
    *,
    combinations: Sequence[Sequence[str]] = STANDARD_DA_COMBINATIONS,
    seed: int = 0,
    **standard_kwargs: Any,
) -> list[GridPoint]:
    """StandardDA's grid: ``combinations`` (the paper's 7) × ``p_values`` (the paper's 10): 70 points.

    Args:
        p_values: the values of ``p`` (default ``P_VALUES``: ``p_aug`` from 0 to 0.9).
        combinations: subsets of ``("xflip", "affine", "deform")``.
        seed: every transform's seed.
        standard_kwargs: other ``StandardDA`` arguments (``elastic_alpha``, ``fill``, ``device``).

    Example:
        >>> grid = standard_da_grid()
        >>> len(grid), grid[-1].setting, grid[-1].p
        (70, 'xflip+affine+deform', 0.1)
    """
    points = []
    for combination in combinations:
        base = standard_da_kwargs(combination)
        for p in _check_p(p_values):
            kwargs = {**standard_kwargs, **base, "p": p, "seed": seed}

            def factory(kwargs: dict[str, Any] = kwargs) -> RandomTransform:
                return StandardDA(**kwargs)

            points.append(GridPoint("StandardDA", "+".join(combination), p, kwargs, factory))
    return points


def sg2sample_grid(
    gan: Any, p_values: Sequence[float] = P_VALUES, *, seed: int = 0, **sg2_kwargs: Any
) -> list[GridPoint]:
    """SG2Sample's grid: ``p_values`` (the paper's 10) with the other arguments fixed.

    Example:
        >>> from latent_transforms import GanBundle, GanConfig
        >>> bundle = GanBundle.random(GanConfig(resolution=16, channel_base=256, channel_max=32))
        >>> grid = sg2sample_grid(bundle)
        >>> len(grid), grid[3].p, type(grid[3].build()).__name__
        (10, 0.7, 'SG2Sample')
    """
    points = []
    for p in _check_p(p_values):
        kwargs = {**sg2_kwargs, "p": p, "seed": seed}

        def factory(kwargs: dict[str, Any] = kwargs) -> RandomTransform:
            return SG2Sample(gan, **kwargs)

        shown = {k: v for k, v in kwargs.items() if k != "device"}
        points.append(GridPoint("SG2Sample", "sg2sample", p, shown, factory))
    return points


def latent_augment_p_grid(
    config: Mapping[str, Any] | str | os.PathLike[str],
    gan: Any,
    cache: Any = None,
    stats: Any = None,
    p_values: Sequence[float] = P_VALUES,
    **overrides: Any,
) -> list[GridPoint]:
    """LatentAugment's ``p`` grid around a config (e.g. the F1 search's ``best_config.json``).

    Args:
        config: a :meth:`LatentAugment.config` dict or its JSON file.
        gan: the GAN bundle or source.
        cache: the latent cache of the training images.
        stats: their statistics (default: ``<cache>/stats.safetensors``).
        p_values: the values of ``p``.
        overrides: other ``LatentAugment`` arguments (``value_range``, ``device``, ``seed``, ...).

    Example:
        >>> from latent_transforms import GanBundle, GanConfig
        >>> bundle = GanBundle.random(GanConfig(resolution=16, channel_base=256, channel_max=32))
        >>> config = {"steps": 3, "alpha_f": 0.1, "alpha_pix": 0.0, "alpha_perc": 0.0, "alpha_lat": 0.0}
        >>> grid = latent_augment_p_grid(config, bundle)
        >>> len(grid), grid[9].build().p, grid[9].build().steps
        (10, 0.1, 3)
    """
    if isinstance(config, (str, os.PathLike)):
        path = Path(config)
        if not path.is_file():
            raise ConfigError(
                f"expected a LatentAugment config JSON at {path}, found none. Fix: run tune first."
            )
        config = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(config, Mapping):
        raise ConfigError(f"expected a config mapping or JSON file, got {type(config).__name__}.")
    fixed = dict(config)
    points = []
    for p in _check_p(p_values):

        def factory(p: float = p) -> RandomTransform:
            return LatentAugment.from_config(fixed, gan, cache, stats, **{**overrides, "p": p})

        shown = {k: v for k, v in fixed.items() if k not in ("transform", "version")}
        points.append(GridPoint("LatentAugment", "config", p, {**shown, "p": p}, factory))
    return points


@dataclass
class GridResult:
    """What :func:`run_grid` measured: one row per setting (in the grid's order) and the best one.

    Attributes:
        rows: per setting ``policy``, ``setting``, ``p``, ``p_aug``, ``value`` (``None`` when not finite),
            ``kwargs`` and ``details``.
        best: the best row (``None`` when no value was finite).
        direction: ``"minimize"`` or ``"maximize"``.
        files: name -> path of each file written.
        importance: which grid dimensions matter (with ``importance_rounds``), else ``None``.
        study: the ``optuna.Study`` the grid ran as.

    Example:
        >>> GridResult([], None, "minimize")
        GridResult(settings=0, direction='minimize', best=None)
    """

    rows: list[dict[str, Any]]
    best: dict[str, Any] | None
    direction: str
    files: dict[str, Path] = field(default_factory=dict)
    importance: ImportanceReport | None = None
    study: Any = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able: direction, best, rows (and the importance, when computed)."""
        out: dict[str, Any] = {"direction": self.direction, "best": self.best, "rows": self.rows}
        if self.importance is not None:
            out["importance"] = self.importance.to_dict()
        return out

    def __repr__(self) -> str:
        best = None if self.best is None else {k: self.best[k] for k in ("policy", "setting", "p", "value")}
        return f"GridResult(settings={len(self.rows)}, direction={self.direction!r}, best={best})"


def _grid_space(points: Sequence[GridPoint]) -> dict[str, list[Any]]:
    """The GridSampler's search space: ``setting`` x ``p`` when the points are exactly that product (every
    built-in grid), else one ``point`` index per setting."""
    labels = _labels(points)
    settings = list(dict.fromkeys(labels))
    ps = list(dict.fromkeys(point.p for point in points))
    pairs = [(label, point.p) for label, point in zip(labels, points, strict=True)]
    if len(set(pairs)) == len(pairs) == len(settings) * len(ps):
        return {"setting": settings, "p": ps}
    return {"point": list(range(len(points)))}


def _labels(points: Sequence[GridPoint]) -> list[str]:
    if len({point.policy for point in points}) == 1:
        return [point.setting for point in points]
    return [f"{point.policy}:{point.setting}" for point in points]


def _describe(points: Sequence[GridPoint]) -> list[dict[str, Any]]:
    return [
        {
            "policy": p.policy,
            "setting": p.setting,
            "p": p.p,
            "kwargs": json.loads(json.dumps(p.kwargs, default=str)),
        }
        for p in points
    ]


def run_grid(
    points: Sequence[GridPoint],
    fn: Callable[[RandomTransform], float | tuple[float, Mapping[str, Any]]],
    *,
    direction: str = "minimize",
    out: str | os.PathLike[str] | None = None,
    name: str = "grid",
    progress: bool = False,
    storage: str | os.PathLike[str] | None = None,
    study_name: str | None = None,
    seed: int = 0,
    importance_rounds: int | None = None,
) -> GridResult:
    """Evaluate ``fn`` on every setting's transform; keep the best.

    The grid runs as an Optuna study with a ``GridSampler`` (search space ``setting`` x ``p``, or one
    ``point`` index per setting for a grid that is not such a product), so it keeps its trials where
    :func:`~latent_transforms.tuning.tune` keeps its own: with ``storage`` (an SQLite file or URL) a grid
    stopped part-way resumes where it stopped, evaluating only the settings without a result (a setting
    whose ``fn`` raised is evaluated again). The sampler visits the settings in a seeded random order;
    the rows are always in the grid's order.

    Args:
        points: the grid (:func:`standard_da_grid`, :func:`sg2sample_grid`, :func:`latent_augment_p_grid`).
        fn: ``transform -> metric`` (or ``-> (metric, details)``, as ``F1Objective.measure``).
        direction: ``"minimize"`` (e.g. MAE) or ``"maximize"`` (e.g. F1, SSIM).
        out: folder for ``<name>.csv``, ``<name>.json`` (every row and the best) and ``<name>_best.json``
            (the best setting; for LatentAugment with its complete ``config``, loadable by
            ``LatentAugment.from_config``), and, with ``importance_rounds``, ``<name>_importance.json`` /
            ``.png``; ``None``: write nothing.
        name: file name stem (and the default study name).
        progress: log one line per setting (``logging``, logger ``latent_transforms.tuning.grid``, INFO).
        storage: ``None`` (in memory), a file path (SQLite: resumable) or any Optuna storage URL.
        study_name: the study's name in the storage (default ``name``).
        seed: seed of the order in which the sampler visits the settings.
        importance_rounds: ``None`` (default): no importance analysis; else the importances of the grid's
            dimensions as :func:`~latent_transforms.tuning.tune` reports them (random forest with this many
            bootstrap rounds, skipped below 2, and Optuna's fANOVA).

    Returns:
        A :class:`GridResult`; a non-finite value is recorded and never best.

    Raises:
        ConfigError: an empty grid, an unknown direction, or a stored study with another direction or
            grid.
        MissingDependencyError: Optuna is not installed (``pip install 'latent-transforms[tuning]'``).

    Example:
        >>> result = run_grid(standard_da_grid(), lambda t: abs(t.p - 0.3) + (0 if t.flip else 1))
        >>> result.best["setting"], result.best["p"], len(result.rows)
        ('xflip', 0.3, 70)
    """
    optuna = require_package("optuna", "run_grid")
    check_choice("direction", direction, DIRECTIONS)
    if not points:
        raise ConfigError("the grid is empty. Fix: pass at least one GridPoint.")
    space = _grid_space(points)
    labels = _labels(points)
    index = (
        {(label, point.p): i for i, (label, point) in enumerate(zip(labels, points, strict=True))}
        if "setting" in space
        else {}
    )
    description = _describe(points)
    url, db_file = storage_url(storage)
    if db_file is not None:
        db_file.parent.mkdir(parents=True, exist_ok=True)
    study_name = study_name or name
    TrialState = optuna.trial.TrialState

    def point_of(params: Mapping[str, Any]) -> int:
        return int(params["point"]) if "point" in space else index[(params["setting"], params["p"])]

    def params_of(i: int) -> dict[str, Any]:
        return {"point": i} if "point" in space else {"setting": labels[i], "p": points[i].p}

    def objective(trial: Any) -> float:
        params = {k: trial.suggest_categorical(k, values) for k, values in space.items()}
        i = point_of(params)
        point = points[i]
        result = fn(point.build())
        value, details = (result[0], dict(result[1])) if isinstance(result, tuple) else (result, {})
        value = float(value)
        trial.set_user_attr("point", i)
        trial.set_user_attr("details", json.loads(json.dumps(details, default=str)))
        trial.set_user_attr("finite", math.isfinite(value))
        if progress:
            _log.info("%s %s p=%g: %.6g", point.policy, point.setting, point.p, value)
        return value  # not finite: Optuna marks the trial failed; the row keeps value None

    level = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        study = optuna.create_study(
            study_name=study_name,
            storage=url,
            direction=direction,
            sampler=optuna.samplers.GridSampler(space, seed=seed),
            load_if_exists=True,
        )
        if study.direction.name.lower() != direction:
            raise ConfigError(
                f"the stored study {study_name!r} has direction {study.direction.name.lower()}, not "
                f"{direction}. Fix: use another study_name (or storage)."
            )
        stored = study.user_attrs.get("grid")
        if stored is None:
            study.set_user_attr("grid", description)
        elif stored != description:
            raise ConfigError(
                f"the stored study {study_name!r} ran another grid ({len(stored)} settings), not these "
                f"{len(points)}. Fix: use the same grid, or another study_name (or storage)."
            )
        for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            study.tell(trial.number, state=TrialState.FAIL)  # left running by a killed process
        results = _results(study, TrialState)
        todo = [i for i in range(len(points)) if i not in results]
        tried = {t.user_attrs.get("point", -1) for t in study.get_trials(deepcopy=False)}
        tried |= {point_of(t.params) for t in study.get_trials(deepcopy=False) if set(t.params) == set(space)}
        for i in todo:
            if i in tried:  # the sampler counts it as visited: ask for it again explicitly
                study.enqueue_trial(params_of(i))
        if todo:
            study.optimize(objective, n_trials=len(todo))
        results = _results(study, TrialState)
    finally:
        optuna.logging.set_verbosity(level)

    rows: list[dict[str, Any]] = []
    best_index: int | None = None
    for i, point in enumerate(points):
        trial = results[i]
        value = trial.value if trial.state == TrialState.COMPLETE else None
        rows.append(
            {
                "policy": point.policy,
                "setting": point.setting,
                "p": point.p,
                "p_aug": point.p_aug,
                "value": value,
                "kwargs": description[i]["kwargs"],
                "details": trial.user_attrs.get("details", {}),
            }
        )
        if value is not None:
            current = None if best_index is None else rows[best_index]["value"]
            if current is None or (value < current if direction == "minimize" else value > current):
                best_index = i
    best = dict(rows[best_index]) if best_index is not None else None
    importance = None
    if importance_rounds is not None:
        importance = _grid_importance(study, space, rows, labels, importance_rounds, seed)
    grid = GridResult(rows, best, direction, importance=importance, study=study)
    if out is not None:
        folder = Path(out)
        flat = [{k: v for k, v in r.items() if k not in ("kwargs", "details")} for r in rows]
        for r, f in zip(rows, flat, strict=True):
            f.update({f"kwargs_{k}": v for k, v in r["kwargs"].items()})
            f.update({k: v for k, v in r["details"].items() if isinstance(v, (int, float, str))})
        grid.files["csv"] = atomic_write(folder / f"{name}.csv", rows_to_csv(flat))
        grid.files["json"] = atomic_write(
            folder / f"{name}.json", json.dumps(grid.to_dict(), indent=2) + "\n"
        )
        if best is not None and best_index is not None:
            payload = dict(best)
            transform = points[best_index].build()
            if isinstance(transform, LatentAugment):
                payload["config"] = transform.config()
            grid.files["best"] = atomic_write(
                folder / f"{name}_best.json", json.dumps(payload, indent=2) + "\n"
            )
        if importance is not None:
            grid.files["importance"] = atomic_write(
                folder / f"{name}_importance.json", json.dumps(importance.to_dict(), indent=2) + "\n"
            )
            if importance.forest is not None or importance.optuna is not None:
                grid.files["importance_plot"] = plot_importance(
                    importance, folder / f"{name}_importance.png", title=f"{study_name}: {len(rows)} settings"
                )
    return grid


def _results(study: Any, TrialState: Any) -> dict[int, Any]:
    """Point index -> its trial with a result: completed, or failed on a value that is not finite (the
    first such trial per point, in trial order)."""
    out: dict[int, Any] = {}
    for trial in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.FAIL)):
        i = trial.user_attrs.get("point")
        has_result = trial.state == TrialState.COMPLETE or trial.user_attrs.get("finite") is False
        if i is not None and has_result and i not in out:
            out[i] = trial
    return out


def _grid_importance(
    study: Any,
    space: Mapping[str, list[Any]],
    rows: list[dict[str, Any]],
    labels: list[str],
    rounds: int,
    seed: int,
) -> ImportanceReport | None:
    """The importances of the grid's dimensions (the setting as its position in the grid)."""
    if "point" in space:
        return ImportanceReport(None, None, ["the grid is not a product of settings and p: no importance"])
    done = [(labels[i], r) for i, r in enumerate(rows) if r["value"] is not None]
    settings = space["setting"]
    x = [[float(settings.index(label)), float(r["p"])] for label, r in done]
    return importance_report(
        study, x, [r["value"] for _, r in done], ["setting", "p"], rounds=rounds, seed=seed
    )
