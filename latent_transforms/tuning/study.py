"""Run an Optuna TPE search over LatentAugment's hyper-parameters and write what it found.

:func:`tune` asks a :class:`~latent_transforms.tuning.SearchSpace` for each trial's setting, scores it
with an objective (:class:`~latent_transforms.tuning.F1Objective`,
:class:`~latent_transforms.tuning.DownstreamObjective` or yours) and keeps the study in memory or in a
SQLite file. With a file the search is resumable: running again with the same study name continues
until ``n_trials`` trials have completed in all. Each trial's sampler is a ``TPESampler`` seeded from
``(seed, trial number)``, so a trial's proposal depends only on the seed and the trials before it: a
study stopped and resumed proposes the same settings as one run straight through (trials left running by
a killed process are marked failed on resume and take up a trial number; then the numbering, and the
proposals, differ from a straight run).

Files written to ``out``: ``best_config.json`` (a complete :meth:`LatentAugment.config`, loadable by
:meth:`LatentAugment.from_config`), ``trials.csv`` (one row per trial: state, value, the LatentAugment
arguments, the objective's details, seconds), ``tuning.json`` (the summary: study, space, objective,
best trial, importances), ``importance.json`` and ``importance.png`` (see
:mod:`latent_transforms.tuning.importance`).
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from latent_transforms.checks import check_choice, check_int
from latent_transforms.errors import ConfigError
from latent_transforms.files import atomic_write
from latent_transforms.tuning.importance import (
    DEFAULT_ROUNDS,
    ImportanceReport,
    importance_report,
    plot_importance,
    require_package,
)
from latent_transforms.tuning.objectives import DIRECTIONS, Objective
from latent_transforms.tuning.spaces import SearchSpace, search_space

_log = logging.getLogger(__name__)

__all__ = ["TuningResult", "storage_url", "tune", "write_atomic"]

BEST_CONFIG_NAME = "best_config.json"
TRIALS_NAME = "trials.csv"
SUMMARY_NAME = "tuning.json"
IMPORTANCE_JSON_NAME = "importance.json"
IMPORTANCE_PNG_NAME = "importance.png"


#: The old name of :func:`latent_transforms.files.atomic_write` (same arguments), kept for callers.
write_atomic = atomic_write


def storage_url(storage: str | os.PathLike[str] | None) -> tuple[str | None, Path | None]:
    """An Optuna storage URL for ``storage``: ``None`` (in memory), a file path (SQLite) or a URL.

    Returns:
        ``(url, file)``: the URL for ``optuna.create_study`` and the SQLite file (``None`` unless a path).

    Example:
        >>> storage_url(None)
        (None, None)
        >>> url, file = storage_url("/tmp/x/study.db"); url
        'sqlite:////tmp/x/study.db'
        >>> storage_url("postgresql://host/db")[0]
        'postgresql://host/db'
    """
    if storage is None:
        return None, None
    text = os.fspath(storage)
    if "://" in text:
        if text.startswith("sqlite:///"):
            return text, Path(text[len("sqlite:///") :])
        return text, None
    path = Path(text).expanduser().absolute()
    return f"sqlite:///{path}", path


def _trial_seed(seed: int, number: int) -> int:
    return (int(seed) * 1_000_003 + int(number)) % (2**32)


def _flatten(details: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Scalars of a nested dict as ``a_b`` columns."""
    out: dict[str, Any] = {}
    for key, value in details.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(_flatten(value, f"{name}_"))
        elif isinstance(value, (int, float, str, bool)) or value is None:
            out[name] = value
    return out


@dataclass
class TuningResult:
    """What :func:`tune` found and wrote.

    Attributes:
        study: the ``optuna.Study``.
        space: the search space.
        objective: the objective's description (``Objective.describe()``).
        best_params: the best trial's ``LatentAugment`` arguments (``None`` when no trial completed).
        best_value: its objective value.
        best_config: the complete config ``best_config.json`` holds.
        trials: one dict per trial (the rows of ``trials.csv``).
        importance: both importances, or ``None`` (too few trials).
        out: the output folder (``None``: nothing written).
        files: name -> path of each file written.
        seconds: wall time of this call.

    Example:
        >>> space = search_space("paper")
        >>> TuningResult(None, space, {"objective": "f1"}, {"steps": 3}, 0.5, {}, [], None)
        ... # doctest: +NORMALIZE_WHITESPACE
        TuningResult(objective='f1', space='paper', trials=0, best_value=0.5, best_params={'steps': 3},
        out=None)
    """

    study: Any
    space: SearchSpace
    objective: dict[str, Any]
    best_params: dict[str, Any] | None
    best_value: float | None
    best_config: dict[str, Any] | None
    trials: list[dict[str, Any]]
    importance: ImportanceReport | None
    out: Path | None = None
    files: dict[str, Path] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def n_complete(self) -> int:
        """Completed trials."""
        return sum(1 for t in self.trials if t.get("state") == "COMPLETE")

    def summary(self) -> dict[str, Any]:
        """The JSON ``tuning.json`` holds."""
        study = self.study
        return {
            "study_name": getattr(study, "study_name", None),
            "direction": study.direction.name.lower() if study is not None else None,
            "objective": self.objective,
            "space": self.space.to_dict(),
            "trials_complete": self.n_complete,
            "trials_total": len(self.trials),
            "best_value": self.best_value,
            "best_params": self.best_params,
            "best_trial": next(
                (
                    t["number"]
                    for t in self.trials
                    if t.get("state") == "COMPLETE" and t["value"] == self.best_value
                ),
                None,
            ),
            "best_config": self.best_config,
            "importance": self.importance.to_dict() if self.importance is not None else None,
            "seconds_this_run": round(self.seconds, 3),
            "files": {k: str(v) for k, v in self.files.items()},
        }

    def __repr__(self) -> str:
        return (
            f"TuningResult(objective={self.objective.get('objective')!r}, space={self.space.name!r}, "
            f"trials={self.n_complete}, best_value={self.best_value!r}, best_params={self.best_params!r}, "
            f"out={str(self.out) if self.out is not None else None!r})"
        )


def _trial_rows(study: Any, space: SearchSpace) -> list[dict[str, Any]]:
    rows = []
    for trial in study.get_trials(deepcopy=False):
        params = trial.user_attrs.get("params")
        if params is None:  # not evaluated (failed before, or running): the space's reading of the raw values
            params = {k: space.value(k, v) for k, v in trial.params.items() if k in space.params}
        row: dict[str, Any] = {
            "number": trial.number,
            "state": trial.state.name,
            "value": trial.value if trial.value is None or math.isfinite(trial.value) else None,
            **{name: params.get(name) for name in space.names},
            "seconds": trial.user_attrs.get("seconds"),
        }
        row.update(_flatten(trial.user_attrs.get("details", {})))
        rows.append(row)
    return rows


def rows_to_csv(rows: list[dict[str, Any]]) -> str:
    """CSV text of ``rows`` (dicts): one column per key, in order of first appearance; missing cells empty.

    Example:
        >>> print(rows_to_csv([{"number": 0, "value": 0.5}, {"number": 1, "lr": 0.01}]), end="")
        number,value,lr
        0,0.5,
        1,,0.01
    """
    columns: list[str] = []
    for row in rows:
        columns += [c for c in row if c not in columns]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns or ["number"], lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow(row)
    return buffer.getvalue()


def _importance(
    study: Any, space: SearchSpace, rows: list[dict[str, Any]], rounds: int, seed: int
) -> ImportanceReport | None:
    done = [r for r in rows if r["state"] == "COMPLETE" and r["value"] is not None]
    x = [[float(r[name]) for name in space.names] for r in done]
    return importance_report(
        study, x, [float(r["value"]) for r in done], space.names, rounds=rounds, seed=seed
    )


def tune(
    objective: Objective,
    *,
    space: str | SearchSpace = "paper",
    n_trials: int = 50,
    seed: int = 0,
    storage: str | os.PathLike[str] | None = None,
    study_name: str | None = None,
    direction: str | None = None,
    out: str | os.PathLike[str] | None = None,
    importance_rounds: int = DEFAULT_ROUNDS,
    timeout: float | None = None,
    max_failures: int | None = None,
    progress: bool = True,
) -> TuningResult:
    """Optuna TPE search of LatentAugment's hyper-parameters (Tronchin et al. 2023, §III-D: 50 trials).

    Args:
        objective: what a trial measures (:class:`~latent_transforms.tuning.F1Objective`,
            :class:`~latent_transforms.tuning.DownstreamObjective`, or an :class:`Objective` of yours).
        space: ``"paper"`` (the paper's grids), ``"continuous"`` or a :class:`SearchSpace`; ``p`` is added
            to a named space when the objective tunes it (``objective.uses_p``).
        n_trials: completed trials wanted in the study in all (a resumed study runs only the rest).
        seed: seed of the TPE sampler (and of the importance analyses).
        storage: ``None`` (in memory), a file path (SQLite, ``sqlite:///<path>``: resumable) or any Optuna
            storage URL.
        study_name: the study's name in the storage (default ``latent-augment-<objective>-<space>``).
        direction: ``"maximize"`` or ``"minimize"`` (default: the objective's).
        out: folder for ``best_config.json``, ``trials.csv``, ``tuning.json``, ``importance.json`` and
            ``importance.png`` (``None``: write nothing).
        importance_rounds: bootstrap rounds of the random-forest importance (the paper: 1,000; below 2:
            skipped).
        timeout: start no new trial after this many seconds (the files are written; run again to go on).
        max_failures: stop with an error after this many trials whose value is not finite (default:
            ``n_trials``). An exception inside the objective marks its trial failed and is raised.
        progress: log one line per trial (``logging``, logger ``latent_transforms.tuning.study``, level INFO).

    Returns:
        A :class:`TuningResult`.

    Raises:
        ConfigError: ``n_trials < 1``, an unknown direction, or a stored study with another direction or
            search space.
        MissingDependencyError: Optuna or scikit-learn is not installed (``pip install
            'latent-transforms[tuning]'``).

    Example:
        >>> class Toy(Objective):
        ...     name = "toy"
        ...     def evaluate(self, params):
        ...         return params["alpha_f"] - params["lr"], {}
        >>> result = tune(Toy(), n_trials=3, importance_rounds=0, progress=False)
        >>> result.n_complete, search_space("paper").contains(result.best_params)
        (3, True)
    """
    optuna = require_package("optuna", "tune")
    if importance_rounds >= 2:  # fail now, not after the trials
        require_package("sklearn", "tune's importance analysis (importance_rounds >= 2)")
    if out is not None:
        require_package("matplotlib", "tune's importance plot (out=...)")
    n_trials = check_int("n_trials", n_trials, low=1)
    if isinstance(space, str):
        space = search_space(space, include_p=objective.uses_p)
    elif not isinstance(space, SearchSpace):
        raise ConfigError(
            f"space must be 'paper', 'continuous' or a SearchSpace, got {type(space).__name__}."
        )
    direction = direction or objective.direction
    check_choice("direction", direction, DIRECTIONS)
    url, db_file = storage_url(storage)
    if db_file is not None:
        db_file.parent.mkdir(parents=True, exist_ok=True)
    study_name = study_name or f"latent-augment-{objective.name}-{space.name}"
    started = time.perf_counter()

    level = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        study = optuna.create_study(
            study_name=study_name,
            storage=url,
            direction=direction,
            sampler=optuna.samplers.TPESampler(seed=_trial_seed(seed, 0)),
            load_if_exists=True,
        )
        if study.direction.name.lower() != direction:
            raise ConfigError(
                f"the stored study {study_name!r} has direction {study.direction.name.lower()}, not "
                f"{direction}. Fix: use another --study-name (or storage)."
            )
        stored_space = study.user_attrs.get("space")
        if stored_space is not None and stored_space != space.to_dict():
            raise ConfigError(
                f"the stored study {study_name!r} searched another space ({stored_space.get('name')!r}, "
                f"{sorted(stored_space.get('params', {}))}), not {space.name!r} {space.names}. Fix: use the "
                "same space, or another --study-name (or storage)."
            )
        if stored_space is None:
            study.set_user_attr("space", space.to_dict())
            study.set_user_attr("objective", objective.describe())
            study.set_user_attr("seed", seed)
        TrialState = optuna.trial.TrialState
        stale = [t for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))]
        for trial in stale:
            study.tell(trial.number, state=TrialState.FAIL)
        if stale and progress:
            _log.info("marked %d trial(s) left running by an earlier run as failed", len(stale))
        failures = 0
        limit = n_trials if max_failures is None else max_failures
        while True:
            complete = len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))
            if complete >= n_trials:
                break
            if timeout is not None and time.perf_counter() - started > timeout:
                if progress:
                    _log.info(
                        "timeout: stopping after %d of %d trials (run again to go on)", complete, n_trials
                    )
                break
            number = len(study.get_trials(deepcopy=False))
            study.sampler = optuna.samplers.TPESampler(seed=_trial_seed(seed, number))
            trial = study.ask()
            params = space.suggest(trial)
            t0 = time.perf_counter()
            try:
                value, details = objective.evaluate(params)
            except BaseException:
                study.tell(trial, state=TrialState.FAIL)
                raise
            seconds = time.perf_counter() - t0
            trial.set_user_attr("params", params)
            trial.set_user_attr("details", json.loads(json.dumps(details, default=str)))
            trial.set_user_attr("seconds", round(seconds, 4))
            value = float(value)
            if not math.isfinite(value):
                study.tell(trial, state=TrialState.FAIL)
                failures += 1
                if progress:
                    _log.warning("trial %d: value %s (not finite): marked failed", trial.number, value)
                if failures >= limit:
                    raise ConfigError(
                        f"{failures} trials returned a non-finite value (last: {value}) for {params}. Fix: "
                        "make the objective return a finite number."
                    )
                continue
            study.tell(trial, value)
            if progress:
                best = study.best_value
                shown = ", ".join(f"{k}={v:g}" for k, v in params.items())
                _log.info(
                    "trial %d (%d/%d): %.6g [%s] %.1f s; best %.6g",
                    trial.number,
                    complete + 1,
                    n_trials,
                    value,
                    shown,
                    seconds,
                    best,
                )
    finally:
        optuna.logging.set_verbosity(level)

    rows = _trial_rows(study, space)
    done = [t for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))]
    best_params = best_value = best_config = None
    if done:
        best = study.best_trial
        best_params = dict(best.user_attrs["params"])
        best_value = float(best.value)
        best_config = objective.best_config(best_params)
    importance = _importance(study, space, rows, importance_rounds, seed)
    result = TuningResult(
        study, space, objective.describe(), best_params, best_value, best_config, rows, importance
    )
    if db_file is not None:
        result.files["study"] = db_file
    if out is not None:
        folder = Path(out)
        result.out = folder
        if best_config is not None:
            result.files["best_config"] = atomic_write(
                folder / BEST_CONFIG_NAME, json.dumps(best_config, indent=2) + "\n"
            )
        result.files["trials"] = atomic_write(folder / TRIALS_NAME, rows_to_csv(rows))
        if importance is not None:
            result.files["importance"] = atomic_write(
                folder / IMPORTANCE_JSON_NAME, json.dumps(importance.to_dict(), indent=2) + "\n"
            )
            if importance.forest is not None or importance.optuna is not None:
                result.files["importance_plot"] = plot_importance(  # written atomically
                    importance,
                    folder / IMPORTANCE_PNG_NAME,
                    title=f"{study_name}: {len(done)} trials, objective {objective.name} ({direction})",
                )
        result.seconds = time.perf_counter() - started
        result.files["summary"] = folder / SUMMARY_NAME
        atomic_write(folder / SUMMARY_NAME, json.dumps(result.summary(), indent=2) + "\n")
    result.seconds = time.perf_counter() - started
    return result
