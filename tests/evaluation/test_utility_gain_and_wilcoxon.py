"""Utility: a user's train_and_score gives a gain over no augmentation and a paired Wilcoxon test."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from latent_transforms.errors import ConfigError
from latent_transforms.evaluation.run import load_utility, measure_utility

scipy_stats = pytest.importorskip("scipy.stats")


class FakeTask:
    """Scores that depend on the policy and the seed only, and a log of every training run."""

    def __init__(self, per_sample: bool, effect: float = 0.05, n: int = 7) -> None:
        self.per_sample, self.effect, self.n = per_sample, effect, n
        self.calls: list[tuple[object, int]] = []

    def values(self, policy: object, seed: int) -> np.ndarray:
        g = torch.Generator().manual_seed(seed)
        base = torch.rand(self.n, generator=g).double().numpy()
        bonus = {None: 0.0, "good": self.effect, "same": 0.0}[policy]  # type: ignore[index]
        return base + bonus * (1 + np.arange(self.n) / self.n)

    def __call__(self, policy: object, seed: int) -> object:
        self.calls.append((policy, seed))
        v = self.values(policy, seed)
        return v.tolist() if self.per_sample else float(v.mean())


def test_per_sample_scores_are_paired_by_sample_and_pooled_over_seeds() -> None:
    task = FakeTask(per_sample=True)
    result = measure_utility(task, [("good", "good")], seeds=[0, 1, 2])["good"]
    a = np.concatenate([task.values("good", s) for s in (0, 1, 2)])
    b = np.concatenate([task.values(None, s) for s in (0, 1, 2)])
    expected = scipy_stats.wilcoxon(a, b)
    assert result.paired_by == "sample" and result.n == 21
    assert result.gain == pytest.approx(a.mean() - b.mean())
    assert result.pvalue == pytest.approx(expected.pvalue) and result.statistic == pytest.approx(
        expected.statistic
    )
    assert result.policy_mean == pytest.approx(a.mean()) and result.baseline_mean == pytest.approx(b.mean())
    # one score per run: the mean of the run's per-sample scores
    assert result.policy_runs == pytest.approx([task.values("good", s).mean() for s in (0, 1, 2)])


def test_scalar_scores_are_paired_by_seed_and_the_baseline_is_trained_once_per_seed() -> None:
    task = FakeTask(per_sample=False)
    seeds = [3, 4, 5, 6, 7, 8]
    results = measure_utility(task, [("good", "good"), ("same", "same")], seeds=seeds)
    assert [c for c in task.calls if c[0] is None] == [(None, s) for s in seeds]
    assert len(task.calls) == 3 * len(seeds)
    a = [task.values("good", s).mean() for s in seeds]
    b = [task.values(None, s).mean() for s in seeds]
    assert results["good"].paired_by == "seed" and results["good"].n == len(seeds)
    assert results["good"].pvalue == pytest.approx(scipy_stats.wilcoxon(a, b).pvalue)
    assert results["good"].gain > 0
    good = results["good"]
    assert good.policy_runs == pytest.approx(a) and good.baseline_runs == pytest.approx(b)
    std = float(np.std(a, ddof=1))
    assert results["good"].policy_text == f"{np.mean(a):.4f} ± {std:.4f}"
    same = results["same"]  # identical scores: no test, said why
    assert same.gain == 0 and same.pvalue is None and "zero" in (same.note or "")


def test_lower_is_better_flips_the_sign_of_the_gain() -> None:
    task = FakeTask(per_sample=True)
    higher = measure_utility(task, [("good", "good")], seeds=[0])["good"]
    lower = measure_utility(task, [("good", "good")], seeds=[0], higher_is_better=False)["good"]
    assert lower.gain == pytest.approx(-higher.gain) and lower.pvalue == pytest.approx(higher.pvalue)
    assert lower.higher_is_better is False


def test_one_seed_with_scalar_scores_gives_a_gain_but_no_test() -> None:
    result = measure_utility(FakeTask(per_sample=False), [("good", "good")], seeds=[0])["good"]
    assert result.n == 1 and result.pvalue is None and "utility-seeds" in (result.note or "")


@pytest.mark.parametrize(
    ("returned", "message"),
    [(float("nan"), "NaN"), (True, "bool"), ("0.5", "expected a float"), ([], "expected a float")],
)
def test_unusable_scores_are_refused(returned: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        measure_utility(lambda policy, seed: returned, [("x", "x")], seeds=[0])


def test_scores_of_another_kind_or_length_than_the_baseline_are_refused() -> None:
    with pytest.raises(ConfigError, match="same kind and number"):
        measure_utility(lambda policy, seed: [1.0, 2.0] if policy else [1.0], [("x", "x")], seeds=[0])
    with pytest.raises(ConfigError, match="same kind and number"):
        measure_utility(lambda policy, seed: [1.0] if policy else 1.0, [("x", "x")], seeds=[0])


def test_functions_load_from_a_module_or_a_file(tmp_path: Path) -> None:
    assert load_utility("math:fsum")([0.25, 0.5]) == 0.75
    path = tmp_path / "task.py"
    path.write_text("def train_and_score(policy, seed):\n    return 0.5 if policy is None else 0.75\n")
    fn = load_utility(f"{path}:train_and_score")
    assert fn(None, 0) == 0.5 and fn("x", 0) == 0.75
    with pytest.raises(ConfigError, match="no callable"):
        load_utility(f"{path}:missing")
    with pytest.raises(ConfigError, match="MODULE:FUNCTION"):
        load_utility("no_colon_here")
    with pytest.raises(ConfigError, match="cannot import"):
        load_utility("no_such_module_xyz:fn")
    with pytest.raises(ConfigError, match="no file"):
        load_utility(f"{tmp_path / 'absent.py'}:fn")


def test_load_errors_name_the_option_and_the_expected_function(tmp_path: Path) -> None:
    path = tmp_path / "metric.py"
    path.write_text("def validate(transform):\n    return 0.5\n")
    assert load_utility(f"{path}:validate", option="--downstream")(None) == 0.5
    with pytest.raises(ConfigError, match=r"--downstream .*Fix: define validate\(transform\) -> float"):
        load_utility(f"{path}:missing", option="--downstream", signature="validate(transform) -> float")
    with pytest.raises(ConfigError, match=r"--downstream my_task\.py:validate"):
        load_utility("no_colon_here", option="--downstream", signature="validate(transform) -> float")
