"""Importance: the random forest (with bootstrapped errors and NRMSE) and Optuna find the parameter that
drives the objective."""

from __future__ import annotations

import math
import random

import optuna
import pytest

from latent_transforms.errors import ConfigError
from latent_transforms.tuning.importance import (
    ForestImportance,
    ImportanceReport,
    forest_importance,
    optuna_importance,
    plot_importance,
)
from latent_transforms.tuning.spaces import search_space

optuna.logging.set_verbosity(optuna.logging.WARNING)


def _study(n: int, seed: int = 0) -> optuna.Study:
    """Random trials of the paper space with objective = 10 * alpha_f + small noise."""
    space = search_space("paper")
    noise = random.Random(seed)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    for _ in range(n):
        trial = study.ask()
        params = space.suggest(trial)
        trial.set_user_attr("params", params)
        study.tell(trial, 10 * params["alpha_f"] + 0.1 * noise.random())
    return study


def _xy(study):
    names = search_space("paper").names
    x = [[t.user_attrs["params"][n] for n in names] for t in study.trials]
    return x, [t.value for t in study.trials], names


def test_the_forest_ranks_the_driving_parameter_first_with_small_errors():
    x, y, names = _xy(_study(40))
    imp = forest_importance(x, y, names, rounds=8, seed=0, n_estimators=30)
    assert imp.ranking()[0] == "alpha_f"
    i = names.index("alpha_f")
    others = [m + 2 * s for n, m, s in zip(names, imp.mean, imp.stderr, strict=True) if n != "alpha_f"]
    assert imp.mean[i] - 2 * imp.stderr[i] > max(others)
    assert all(s >= 0 for s in imp.stderr) and imp.rounds == 8 and imp.n_trials == 40
    assert 0 < imp.nrmse < 0.25  # the forest predicts the held-out trials well


def test_the_forest_is_seeded_and_pure_noise_predicts_worse():
    x, y, names = _xy(_study(30))
    a = forest_importance(x, y, names, rounds=4, seed=5, n_estimators=20)
    b = forest_importance(x, y, names, rounds=4, seed=5, n_estimators=20)
    assert a == b
    noise = random.Random(1)
    shuffled = [noise.random() for _ in y]
    c = forest_importance(x, shuffled, names, rounds=4, seed=5, n_estimators=20)
    assert c.nrmse > a.nrmse


def test_the_forest_checks_its_inputs():
    with pytest.raises(ConfigError):
        forest_importance([[1.0]], [1.0], ["a"], rounds=3)
    with pytest.raises(ConfigError):
        forest_importance([[1.0], [2.0]], [1.0, math.nan], ["a"], rounds=3)
    with pytest.raises(ConfigError):
        forest_importance([[1.0], [2.0]], [1.0, 2.0], ["a"], rounds=1)


def test_optunas_importance_agrees():
    result = optuna_importance(_study(40), seed=0)
    assert next(iter(result)) == "alpha_f"
    assert sum(result.values()) == pytest.approx(1.0)


def test_the_plot_holds_both_importances(tmp_path):
    forest = ForestImportance(["lr", "alpha_f"], [0.3, 0.7], [0.05, 0.05], 0.2, 0.01, 10, 30)
    path = plot_importance(ImportanceReport(forest, {"alpha_f": 0.9, "lr": 0.1}), tmp_path / "p.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    only = plot_importance(ImportanceReport(None, {"alpha_f": 1.0}), tmp_path / "q.png")
    assert only.is_file()
    with pytest.raises(ConfigError):
        plot_importance(ImportanceReport(None, None), tmp_path / "r.png")
