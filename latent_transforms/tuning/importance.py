"""Which hyper-parameters matter: random-forest Gini importance with bootstrapped standard errors
(Tronchin et al. 2023, §V-C, Fig. 5) and Optuna's own importance, in one plot.

Random forest (the paper's analysis): each trial is a sample ``x`` (its hyper-parameter values) with
target ``y`` (its objective value). For each of ``rounds`` bootstrap rounds (the paper: 1,000) the trials
are resampled with replacement, a ``RandomForestRegressor`` (scikit-learn, seeded per round) is fitted on
the resample, and its impurity-based importance (mean decrease in impurity; for regression the impurity
is the variance: what the paper, after Nembrini et al., calls Gini importance; the importances of a fit sum
to 1) and its normalised RMSE on the trials left out of the resample (out-of-bag: the round's test set)
are recorded. The bars are the mean importance over the rounds and the error bars the bootstrapped
standard errors (the standard deviation over the rounds); the NRMSE is ``RMSE / (max y - min y)`` over
all trials, reported as mean ± bootstrapped standard error. A random forest is invariant to monotone
rescaling of a parameter, so log-scaled parameters need no transform.

Optuna's importance: :func:`optuna.importance.get_param_importances` with its fANOVA evaluator (seeded),
on the raw trial parameters; it sums to 1 over the parameters.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from latent_transforms.checks import check_int
from latent_transforms.errors import ConfigError, MissingDependencyError
from latent_transforms.files import atomic_write
from latent_transforms.tuning.spaces import PARAM_LABELS

__all__ = [
    "ForestImportance",
    "ImportanceReport",
    "forest_importance",
    "importance_report",
    "optuna_importance",
    "plot_importance",
]

#: The paper's bootstrap rounds.
DEFAULT_ROUNDS = 1000


def require_package(module: str, what: str) -> Any:
    """Import an optional package, or raise :class:`MissingDependencyError` naming the pip extra.

    Example:
        >>> require_package("math", "this example").sqrt(4.0)
        2.0
    """
    import importlib

    top = module.split(".")[0]
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependencyError(
            f"{what} needs {top}, which is not installed. Fix: pip install 'latent-transforms[tuning]'."
        ) from exc


@dataclass
class ForestImportance:
    """Random-forest Gini importance of each parameter with bootstrapped standard errors, and the forest's
    NRMSE (see the module docstring).

    Attributes:
        names: the parameters, in column order.
        mean: mean importance over the rounds, one per parameter (each round's sum to 1, or 0 when the
            targets of a resample are constant).
        stderr: bootstrapped standard error of each importance.
        nrmse: mean out-of-bag NRMSE (``nan`` when no round had out-of-bag trials or ``y`` is constant).
        nrmse_stderr: its bootstrapped standard error.
        rounds: bootstrap rounds.
        n_trials: trials (samples) the forest saw.

    Example:
        >>> imp = ForestImportance(["lr", "steps"], [0.8, 0.2], [0.05, 0.05], 0.1, 0.01, 10, 20)
        >>> imp.ranking()
        ['lr', 'steps']
    """

    names: list[str]
    mean: list[float]
    stderr: list[float]
    nrmse: float
    nrmse_stderr: float
    rounds: int
    n_trials: int

    def ranking(self) -> list[str]:
        """Parameter names, most important first."""
        return [n for _, n in sorted(zip(self.mean, self.names, strict=True), key=lambda t: -t[0])]

    def to_dict(self) -> dict[str, Any]:
        """JSON-able: ``{"importance": {name: {"mean", "stderr"}}, "nrmse", "nrmse_stderr", ...}``."""
        return {
            "importance": {
                n: {"mean": m, "stderr": s}
                for n, m, s in zip(self.names, self.mean, self.stderr, strict=True)
            },
            "nrmse": None if math.isnan(self.nrmse) else self.nrmse,
            "nrmse_stderr": None if math.isnan(self.nrmse_stderr) else self.nrmse_stderr,
            "rounds": self.rounds,
            "n_trials": self.n_trials,
        }


def forest_importance(
    x: Sequence[Sequence[float]],
    y: Sequence[float],
    names: Sequence[str],
    *,
    rounds: int = DEFAULT_ROUNDS,
    seed: int = 0,
    n_estimators: int = 100,
    n_jobs: int | None = None,
) -> ForestImportance:
    """Random-forest Gini importance of the columns of ``x`` for ``y``, bootstrapped (Tronchin et al. 2023,
    Fig. 5).

    Args:
        x: ``[n_trials, n_params]`` hyper-parameter values (numbers).
        y: ``[n_trials]`` objective values.
        names: the ``n_params`` column names.
        rounds: bootstrap rounds (the paper: 1,000).
        seed: seed of the resampling and of each round's forest (round ``r`` uses ``seed + r``).
        n_estimators: trees per forest.
        n_jobs: scikit-learn's ``n_jobs`` for each fit (``None``: one core).

    Returns:
        A :class:`ForestImportance`.

    Raises:
        ConfigError: fewer than 2 trials, mismatched shapes, non-finite values or ``rounds < 2``.
        MissingDependencyError: scikit-learn is not installed.

    Example:
        >>> import random
        >>> rng = random.Random(0)
        >>> x = [[rng.random(), rng.random()] for _ in range(30)]
        >>> y = [10 * a + 0.01 * rng.random() for a, b in x]
        >>> forest_importance(x, y, ["a", "b"], rounds=5, n_estimators=20).ranking()
        ['a', 'b']
    """
    np = require_package("numpy", "forest_importance")
    ensemble = require_package("sklearn.ensemble", "forest_importance")
    xs = np.asarray(x, dtype=np.float64)
    ys = np.asarray(y, dtype=np.float64)
    if xs.ndim != 2 or ys.ndim != 1 or xs.shape[0] != ys.shape[0] or xs.shape[1] != len(names):
        raise ConfigError(
            f"expected x [n_trials, {len(names)}] and y [n_trials], got {xs.shape} and {ys.shape}."
        )
    if xs.shape[0] < 2:
        raise ConfigError(f"the importance needs at least 2 trials, got {xs.shape[0]}. Fix: run more trials.")
    if not (np.isfinite(xs).all() and np.isfinite(ys).all()):
        raise ConfigError("x and y must be finite. Fix: leave out failed trials.")
    rounds = check_int("rounds", rounds, low=2, fix="a standard error needs at least two rounds.")
    n = xs.shape[0]
    span = float(ys.max() - ys.min())
    rng = np.random.default_rng(seed)
    importances = np.zeros((rounds, xs.shape[1]))
    errors: list[float] = []
    for r in range(rounds):
        idx = rng.integers(0, n, size=n)
        forest = ensemble.RandomForestRegressor(
            n_estimators=n_estimators, random_state=seed + r, n_jobs=n_jobs
        )
        forest.fit(xs[idx], ys[idx])
        imp = np.nan_to_num(forest.feature_importances_, nan=0.0)
        importances[r] = imp
        oob = np.setdiff1d(np.arange(n), idx)
        if len(oob) and span > 0:
            rmse = float(np.sqrt(np.mean((forest.predict(xs[oob]) - ys[oob]) ** 2)))
            errors.append(rmse / span)
    mean = importances.mean(axis=0)
    stderr = importances.std(axis=0, ddof=1)
    nrmse = float(np.mean(errors)) if errors else math.nan
    nrmse_se = float(np.std(errors, ddof=1)) if len(errors) > 1 else math.nan
    return ForestImportance(
        list(names), [float(v) for v in mean], [float(v) for v in stderr], nrmse, nrmse_se, rounds, n
    )


def optuna_importance(study: Any, *, seed: int = 0, params: Sequence[str] | None = None) -> dict[str, float]:
    """Optuna's parameter importance of a study (fANOVA, seeded), normalised to sum to 1.

    Args:
        study: an ``optuna.Study`` with at least 2 completed trials.
        seed: seed of the fANOVA forest.
        params: the parameters to assess (default: every parameter present in all completed trials).

    Returns:
        ``{name: importance}``, most important first.

    Example:
        >>> import optuna
        >>> optuna.logging.set_verbosity(optuna.logging.WARNING)
        >>> study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
        >>> study.optimize(lambda t: 10 * t.suggest_float("a", 0, 1) + 0 * t.suggest_float("b", 0, 1), 20)
        >>> next(iter(optuna_importance(study)))
        'a'
    """
    optuna = require_package("optuna", "optuna_importance")
    require_package("sklearn", "optuna_importance")
    evaluator = optuna.importance.FanovaImportanceEvaluator(seed=seed)
    result = optuna.importance.get_param_importances(
        study, evaluator=evaluator, params=list(params) if params is not None else None
    )
    return {str(k): float(v) for k, v in result.items()}


@dataclass
class ImportanceReport:
    """Both importances of a study: the random forest's and Optuna's (either may be ``None``).

    Example:
        >>> ImportanceReport(None, {"lr": 1.0}).to_dict()
        {'forest': None, 'optuna': {'lr': 1.0}, 'notes': []}
    """

    forest: ForestImportance | None
    optuna: dict[str, float] | None
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able."""
        return {
            "forest": self.forest.to_dict() if self.forest is not None else None,
            "optuna": self.optuna,
            "notes": list(self.notes),
        }


def importance_report(
    study: Any,
    x: Sequence[Sequence[float]],
    y: Sequence[float],
    names: Sequence[str],
    *,
    rounds: int = DEFAULT_ROUNDS,
    seed: int = 0,
) -> ImportanceReport | None:
    """Both importances of a study's completed trials: ``x`` their parameter values (numbers, one column
    per name), ``y`` their objective values; what :func:`~latent_transforms.tuning.tune` and
    :func:`~latent_transforms.tuning.run_grid` report.

    ``None`` with fewer than 2 trials. The forest is skipped when ``rounds < 2``; Optuna's importance is
    left out (with a note) when it cannot be computed, e.g. every trial has the same value.

    Example:
        >>> import optuna
        >>> optuna.logging.set_verbosity(optuna.logging.WARNING)
        >>> study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
        >>> study.optimize(lambda t: 10 * t.suggest_float("a", 0, 1) + 0 * t.suggest_float("b", 0, 1), 12)
        >>> x = [[t.params["a"], t.params["b"]] for t in study.trials]
        >>> report = importance_report(study, x, [t.value for t in study.trials], ["a", "b"], rounds=0)
        >>> report.forest, next(iter(report.optuna)), report.notes
        (None, 'a', ['random-forest importance skipped (rounds < 2)'])
    """
    if len(y) < 2:
        return None
    notes: list[str] = []
    if len(set(y)) == 1:
        notes.append("every completed trial has the same value: the importances carry no information")
    forest = None
    if rounds >= 2:
        forest = forest_importance(x, [float(v) for v in y], list(names), rounds=rounds, seed=seed)
    else:
        notes.append("random-forest importance skipped (rounds < 2)")
    opt = None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            opt = optuna_importance(study, seed=seed)
    except (RuntimeError, ValueError, MissingDependencyError) as exc:  # e.g. every trial the same value
        notes.append(f"Optuna importance not computed: {exc}")
    return ImportanceReport(forest, opt, notes)


def plot_importance(
    report: ImportanceReport,
    path: str | Path,
    *,
    labels: Mapping[str, str] | None = None,
    title: str | None = None,
) -> Path:
    """One PNG with both importances: the forest's bars with standard-error whiskers (legend: its NRMSE
    ± standard error, as in Fig. 5 of Tronchin et al. 2023) next to Optuna's fANOVA bars.

    Args:
        report: the importances.
        path: the PNG to write (folders are created).
        labels: how to name each parameter (default: the paper's symbols, ``K``, ``η``, ``α_f``, ...).
        title: the figure's title.

    Returns:
        ``path``.

    Example:
        >>> import tempfile
        >>> forest = ForestImportance(["lr", "steps"], [0.7, 0.3], [0.05, 0.04], 0.2, 0.02, 10, 12)
        >>> with tempfile.TemporaryDirectory() as d:
        ...     plot_importance(ImportanceReport(forest, {"lr": 0.9, "steps": 0.1}), f"{d}/i.png").is_file()
        True
    """
    require_package("matplotlib", "plot_importance")
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    names_label = dict(PARAM_LABELS, **(labels or {}))
    forest, opt = report.forest, report.optuna
    names: list[str] = list(forest.names) if forest is not None else list(opt or {})
    for name in opt or {}:
        if name not in names:
            names.append(name)
    if not names:
        raise ConfigError("nothing to plot: the report has neither importance. Fix: run more trials.")
    fig, axes = plt.subplots(1, 2, figsize=(max(8.0, 1.3 * len(names) + 4), 3.8), sharey=False)
    positions = list(range(len(names)))
    ticks = [names_label.get(n, n) for n in names]
    ax = axes[0]
    if forest is not None:
        by = dict(zip(forest.names, zip(forest.mean, forest.stderr, strict=True), strict=True))
        means = [by.get(n, (0.0, 0.0))[0] for n in names]
        errs = [by.get(n, (0.0, 0.0))[1] for n in names]
        nrmse = (
            f"NRMSE {forest.nrmse:.3f} ± {forest.nrmse_stderr:.3f}"
            if not math.isnan(forest.nrmse) and not math.isnan(forest.nrmse_stderr)
            else "NRMSE n/a"
        )
        ax.bar(
            positions,
            means,
            yerr=errs,
            capsize=3,
            color="#4C72B0",
            label=f"{forest.n_trials} trials ({nrmse})",
        )
        ax.legend(loc="upper right", fontsize=8)
        ax.set_title(
            f"random forest Gini importance\n(mean ± bootstrapped s.e., {forest.rounds} rounds)", fontsize=9
        )
    else:
        ax.set_title("random forest: not computed", fontsize=9)
    ax2 = axes[1]
    if opt is not None:
        ax2.bar(positions, [opt.get(n, 0.0) for n in names], color="#DD8452")
        ax2.set_title("Optuna importance (fANOVA)", fontsize=9)
    else:
        ax2.set_title("Optuna importance: not computed", fontsize=9)
    for a in axes:
        a.set_xticks(positions)
        a.set_xticklabels(ticks)
        a.set_ylabel("importance")
        a.set_xlim(-0.5, len(names) - 0.5)
        a.set_ylim(bottom=0)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    out = Path(path)
    try:
        return atomic_write(out, lambda tmp: fig.savefig(tmp, format=out.suffix[1:] or "png", dpi=120))
    finally:
        plt.close(fig)
