"""Utility runs kept in a folder: a second call trains nothing, a changed key retrains exactly what differs,
a killed study keeps its finished runs, and an unreadable file is trained again."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest
import torch

from latent_transforms.evaluation.run import measure_utility
from latent_transforms.evaluation.utility_runs import UtilityRunStore

pytest.importorskip("scipy")

BONUS = {None: 0.0, "good": 0.05, "good, stronger": 0.1, "same": 0.0}
POLICIES = [("good", "good"), ("same", "same")]


class Task:
    """Per-sample scores that depend on the policy and the seed only, and a log of every training run."""

    def __init__(self, per_sample: bool = True, fail_on_call: int | None = None) -> None:
        self.per_sample, self.fail_on_call = per_sample, fail_on_call
        self.calls: list[tuple[Any, int]] = []

    def train_and_score(self, policy: Any, seed: int) -> Any:
        self.calls.append((policy, seed))
        if self.fail_on_call is not None and len(self.calls) == self.fail_on_call:
            raise KeyboardInterrupt("killed")
        g = torch.Generator().manual_seed(seed)
        values = (torch.rand(6, generator=g).double() + BONUS[policy] * torch.arange(1, 7)).tolist()
        return values if self.per_sample else sum(values) / len(values)


def _measure(task: Task, store: Path, **kwargs: Any) -> dict:
    options: dict[str, Any] = {"policies": POLICIES, "seeds": [0, 1], "store": store, **kwargs}
    return measure_utility(task.train_and_score, options.pop("policies"), options.pop("seeds"), **options)


@pytest.mark.parametrize("per_sample", [True, False])
def test_a_second_call_with_the_same_store_trains_nothing_and_gives_identical_results(
    tmp_path: Path, per_sample: bool
) -> None:
    first_task, again_task = Task(per_sample), Task(per_sample)
    first = _measure(first_task, tmp_path / "runs")
    again = _measure(again_task, tmp_path / "runs")
    assert len(first_task.calls) == 6 and again_task.calls == []
    assert again == first
    assert again == _measure(Task(per_sample), tmp_path / "elsewhere")  # the same as trained afresh
    assert len(list((tmp_path / "runs").glob("*.json"))) == 6


@pytest.mark.parametrize(
    ("change", "retrained"),
    [
        ({"seeds": [1, 2]}, [(None, 2), ("good", 2), ("same", 2)]),
        (
            {"policies": [("good", "good, stronger"), ("same", "same")]},
            [("good, stronger", 0), ("good, stronger", 1)],
        ),
        ({"utility": "my_task:another_function"}, "all"),
        ({"settings": {"n_samples": 7}}, "all"),
        ({"higher_is_better": False}, "all"),
    ],
    ids=["seed-set", "policy-spec", "utility", "settings", "direction"],
)
def test_a_changed_key_retrains_exactly_the_runs_that_differ(
    tmp_path: Path, change: dict[str, Any], retrained: Any
) -> None:
    store = tmp_path / "runs"
    _measure(Task(), store, settings={"n_samples": 6})
    task = Task()
    changed = _measure(task, store, **{"settings": {"n_samples": 6}, **change})
    if retrained == "all":
        policies = change.get("policies", POLICIES)
        retrained = [(None, s) for s in (0, 1)] + [(p, s) for _, p in policies for s in (0, 1)]
    assert task.calls == retrained
    assert changed == _measure(Task(), tmp_path / "afresh", **{"settings": {"n_samples": 6}, **change})
    # The retrained runs now hold the new key: the same changed call trains nothing.
    again = Task()
    _measure(again, store, **{"settings": {"n_samples": 6}, **change})
    assert again.calls == []


def test_a_killed_study_keeps_its_finished_runs_and_the_rerun_trains_only_the_rest(tmp_path: Path) -> None:
    store = tmp_path / "runs"
    killed = Task(fail_on_call=3)
    with pytest.raises(KeyboardInterrupt):
        _measure(killed, store)
    assert len(list(store.glob("*.json"))) == 2  # the two baselines finished before the kill
    rerun = Task()
    results = _measure(rerun, store)
    assert rerun.calls == [("good", 0), ("good", 1), ("same", 0), ("same", 1)]
    assert results == _measure(Task(), tmp_path / "afresh")


def test_a_corrupt_or_partial_file_is_trained_again_not_a_crash(tmp_path: Path) -> None:
    store = tmp_path / "runs"
    first = _measure(Task(), store)
    files = UtilityRunStore(store)
    key_of = {json.loads(p.read_text())["key"]["policy"]: p for p in store.glob("*-seed1.json")}
    partial, garbage = key_of[None], key_of["good"]
    partial.write_text(partial.read_text()[:40])  # cut short, as by a crash in a non-atomic writer
    data = json.loads(garbage.read_text())
    garbage.write_text(json.dumps({**data, "scores": ["NaN"]}))
    task = Task()
    again = _measure(task, store)
    assert task.calls == [(None, 1), ("good", 1)] and again == first
    for path in (partial, garbage):  # rewritten whole
        assert files.load(json.loads(path.read_text())["key"]) is not None


def test_reuse_false_trains_every_run_again_and_overwrites_the_stored_ones(tmp_path: Path) -> None:
    store = tmp_path / "runs"
    _measure(Task(), store, settings={"n": 1})
    task = Task()
    _measure(task, store, settings={"n": 2}, reuse=False)
    assert len(task.calls) == 6
    assert {json.loads(p.read_text())["key"]["settings"]["n"] for p in store.glob("*.json")} == {2}


def test_a_function_without_a_name_is_not_stored_unless_the_utility_names_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    def score(policy: Any, seed: int) -> float:
        return 0.5 + BONUS[policy]

    with caplog.at_level(logging.WARNING):
        measure_utility(lambda policy, seed: score(policy, seed), POLICIES, store=tmp_path / "a")
    assert not (tmp_path / "a").exists() and "not stored" in caplog.text
    measure_utility(lambda policy, seed: score(policy, seed), POLICIES, store=tmp_path / "b", utility="m:f")
    assert len(list((tmp_path / "b").glob("*.json"))) == 3
