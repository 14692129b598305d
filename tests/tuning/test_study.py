"""tune(): seeded, resumable, writes a loadable best config and the trial table."""

from __future__ import annotations

import csv
import json
import math
import sys

import pytest

from latent_transforms import GanBundle, GanConfig, LatentAugment
from latent_transforms.errors import ConfigError, MissingDependencyError
from latent_transforms.tuning.objectives import Objective
from latent_transforms.tuning.spaces import search_space
from latent_transforms.tuning.study import storage_url, tune

from .conftest import SyntheticObjective


def _params(result):
    return [{k: t[k] for k in result.space.names} for t in result.trials]


def test_same_seed_gives_the_same_trials_and_another_seed_others():
    a = tune(SyntheticObjective(), n_trials=12, seed=3, importance_rounds=0, progress=False)
    b = tune(SyntheticObjective(), n_trials=12, seed=3, importance_rounds=0, progress=False)
    c = tune(SyntheticObjective(), n_trials=12, seed=4, importance_rounds=0, progress=False)
    assert _params(a) == _params(b)
    assert _params(a) != _params(c)
    assert a.best_value == max(t["value"] for t in a.trials)


def test_a_sqlite_study_resumes_to_n_trials_in_all_with_the_same_proposals(tmp_path):
    db = tmp_path / "study.db"
    first = SyntheticObjective()
    tune(first, n_trials=6, seed=1, storage=db, importance_rounds=0, progress=False)
    second = SyntheticObjective()
    resumed = tune(second, n_trials=13, seed=1, storage=db, importance_rounds=0, progress=False)
    assert len(first.calls) == 6 and len(second.calls) == 7  # only the rest ran
    assert resumed.n_complete == 13 and len(resumed.study.trials) == 13
    again = tune(SyntheticObjective(), n_trials=13, seed=1, storage=db, importance_rounds=0, progress=False)
    assert again.n_complete == 13  # nothing left to do
    straight = tune(SyntheticObjective(), n_trials=13, seed=1, importance_rounds=0, progress=False)
    assert _params(resumed) == _params(straight)  # past TPE's 10 random start-up trials too


def test_a_stored_study_with_another_space_or_direction_is_refused(tmp_path):
    db = tmp_path / "study.db"
    tune(SyntheticObjective(), n_trials=1, storage=db, study_name="s", importance_rounds=0, progress=False)
    with pytest.raises(ConfigError, match="space"):
        tune(SyntheticObjective(), space="continuous", n_trials=2, storage=db, study_name="s", progress=False)
    with pytest.raises(ConfigError, match="direction"):
        tune(
            SyntheticObjective(), direction="minimize", n_trials=2, storage=db, study_name="s", progress=False
        )


def test_trials_left_running_by_a_killed_run_are_marked_failed(tmp_path):
    db = tmp_path / "study.db"
    result = tune(SyntheticObjective(), n_trials=2, storage=db, importance_rounds=0, progress=False)
    result.study.ask()  # a trial that never finished
    resumed = tune(SyntheticObjective(), n_trials=3, storage=db, importance_rounds=0, progress=False)
    states = [t["state"] for t in resumed.trials]
    assert states.count("FAIL") == 1 and states.count("COMPLETE") == 3


def test_non_finite_values_fail_the_trial_and_do_not_count():
    class Flaky(Objective):
        name = "flaky"

        def __init__(self):
            self.n = 0

        def evaluate(self, params):
            self.n += 1
            return (math.nan if self.n % 2 else params["lr"]), {}

    result = tune(Flaky(), n_trials=3, max_failures=10, importance_rounds=0, progress=False)
    assert result.n_complete == 3
    assert [t["state"] for t in result.trials].count("FAIL") == 3

    class Broken(Objective):
        name = "broken"

        def evaluate(self, params):
            return math.inf, {}

    with pytest.raises(ConfigError, match="non-finite"):
        tune(Broken(), n_trials=2, max_failures=2, importance_rounds=0, progress=False)


def test_an_exception_in_the_objective_fails_its_trial_and_propagates(tmp_path):
    class Raises(Objective):
        name = "raises"

        def evaluate(self, params):
            raise RuntimeError("boom")

    db = tmp_path / "s.db"
    with pytest.raises(RuntimeError, match="boom"):
        tune(Raises(), n_trials=2, storage=db, progress=False)
    resumed = tune(
        SyntheticObjective(),
        n_trials=1,
        storage=db,
        study_name="latent-augment-raises-paper",
        direction="minimize",
        importance_rounds=0,
        progress=False,
    )
    assert [t["state"] for t in resumed.trials] == ["FAIL", "COMPLETE"]


def test_the_files_are_written_and_the_best_config_loads(tmp_path):
    result = tune(SyntheticObjective(), n_trials=5, out=tmp_path, importance_rounds=3, progress=False)
    best = json.loads((tmp_path / "best_config.json").read_text())
    bundle = GanBundle.random(GanConfig(resolution=16, channel_base=256, channel_max=32))
    loaded = LatentAugment.from_config({**best, "alpha_pix": 0, "alpha_perc": 0, "alpha_lat": 0}, bundle)
    assert (loaded.steps, loaded.lr, loaded.alpha_f) == (
        result.best_params["steps"],
        result.best_params["lr"],
        result.best_params["alpha_f"],
    )
    rows = list(csv.DictReader((tmp_path / "trials.csv").open()))
    assert len(rows) == 5 and {"value", "steps", "alpha_f", "seconds", "calls"} <= set(rows[0])
    summary = json.loads((tmp_path / "tuning.json").read_text())
    assert summary["best_value"] == result.best_value and summary["trials_complete"] == 5
    assert search_space("paper").contains(summary["best_params"])
    assert (tmp_path / "importance.png").stat().st_size > 0
    assert set(json.loads((tmp_path / "importance.json").read_text())["forest"]["importance"]) == set(
        result.space.names
    )


def test_storage_urls():
    assert storage_url(None) == (None, None)
    url, file = storage_url("x/study.db")
    assert url.startswith("sqlite:///") and url.endswith("x/study.db") and file.is_absolute()
    assert storage_url("sqlite:///abs/s.db")[1].as_posix() == "abs/s.db"


def test_a_missing_scikit_learn_is_reported_before_any_trial_runs(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn", None)
    objective = SyntheticObjective()
    with pytest.raises(MissingDependencyError, match=r"latent-transforms\[tuning\]"):
        tune(objective, n_trials=2, importance_rounds=5, progress=False)
    assert objective.calls == []


def test_progress_goes_to_the_library_logger_not_to_stdout(caplog, capsys):
    import logging

    with caplog.at_level(logging.INFO, logger="latent_transforms"):
        tune(SyntheticObjective(), n_trials=2, importance_rounds=0, progress=True)
    lines = [r.getMessage() for r in caplog.records if r.name == "latent_transforms.tuning.study"]
    assert [line.split(" ")[:2] for line in lines] == [["trial", "0"], ["trial", "1"]]
    assert "best" in lines[-1] and capsys.readouterr().out == ""
