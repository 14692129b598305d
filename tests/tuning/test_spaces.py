"""Search spaces: the paper's grids exactly, suggestions inside the space, JSON round trips."""

from __future__ import annotations

import json
import math

import optuna
import pytest

from latent_transforms.errors import ConfigError
from latent_transforms.tuning.spaces import P_VALUES, PAPER_GRIDS, SearchSpace, search_space

optuna.logging.set_verbosity(optuna.logging.WARNING)


def test_paper_space_has_exactly_the_papers_grids():
    space = search_space("paper")
    expected = {
        "alpha_perc": [0, 0.1, 0.3, 1, 3, 10],
        "alpha_pix": [0, 0.1, 0.3, 1, 3, 10],
        "alpha_lat": [0, 0.001, 0.003, 0.01, 0.03, 0.1],
        "alpha_f": [0, 0.01, 0.03, 0.1, 0.3, 1],
        "steps": [3, 6, 9],
        "lr": [0.001, 0.003, 0.01, 0.03, 0.1],
    }
    assert set(space.params) == set(expected)
    for name, values in expected.items():
        assert space.params[name] == {"type": "categorical", "choices": values}, name
    assert space.size == 3 * 5 * 6**4


def test_p_grid_is_one_minus_the_papers_p_aug_grid():
    p_aug = [i / 10 for i in range(10)]  # [0, 1) in 10 steps
    assert list(P_VALUES) == pytest.approx([1 - a for a in p_aug], abs=1e-12)
    assert search_space("paper", include_p=True).params["p"]["choices"] == list(P_VALUES)
    assert "p" not in search_space("paper").params
    p_cont = search_space("continuous", include_p=True).params["p"]
    assert (p_cont["low"], p_cont["high"]) == (0.1, 1.0)


@pytest.mark.parametrize("name", ["paper", "continuous"])
@pytest.mark.parametrize("sampler", ["random", "tpe"])
def test_suggestions_stay_in_the_space(name, sampler):
    space = search_space(name, include_p=True)
    s = optuna.samplers.RandomSampler(seed=0) if sampler == "random" else optuna.samplers.TPESampler(seed=0)
    study = optuna.create_study(sampler=s)
    for i in range(30):
        trial = study.ask()
        params = space.suggest(trial)
        assert space.contains(params), params
        assert isinstance(params["steps"], int)
        study.tell(trial, float(params["alpha_f"] + i % 3))


def test_continuous_weights_cover_the_grid_and_are_off_a_sixth_of_the_log_range():
    space = search_space("continuous")
    for name in ("alpha_f", "alpha_pix", "alpha_perc", "alpha_lat"):
        spec = space.params[name]
        nonzero = [v for v in PAPER_GRIDS[name] if v > 0]
        assert spec["zero_below"] == min(nonzero) and spec["high"] == max(nonzero)
        share = math.log(spec["zero_below"] / spec["low"]) / math.log(spec["high"] / spec["low"])
        assert share == pytest.approx(1 / 6, abs=1e-3)
        assert space.value(name, spec["low"]) == 0.0
        assert space.value(name, spec["zero_below"]) == spec["zero_below"]
    assert space.params["lr"]["log"] and (space.params["lr"]["low"], space.params["lr"]["high"]) == (
        0.001,
        0.1,
    )
    assert (space.params["steps"]["low"], space.params["steps"]["high"]) == (3, 9)


def test_a_space_round_trips_through_json_and_rejects_nonsense():
    space = search_space("continuous", include_p=True)
    again = SearchSpace.from_dict(json.loads(json.dumps(space.to_dict())))
    assert again == space
    with pytest.raises(ConfigError):
        search_space("grid")
    with pytest.raises(ConfigError):
        SearchSpace("bad", {"lr": {"type": "float", "low": 0.0, "high": 1.0, "log": True}})
    with pytest.raises(ConfigError):
        SearchSpace("bad", {"steps": {"type": "categorical", "choices": []}})
