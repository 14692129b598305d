"""Friedman, Nemenyi (Tronchin et al. 2023, Table III: directions and scores) and Wilcoxon against SciPy
and hand-made cases."""

from __future__ import annotations

import json
import math
import sys

import numpy as np
import pytest

from latent_transforms.errors import ConfigError, MissingDependencyError
from latent_transforms.metrics import stats
from latent_transforms.metrics.stats import (
    BETTER,
    SAME,
    WORSE,
    compare_methods,
    friedman,
    nemenyi,
    wilcoxon,
)

scipy_stats = pytest.importorskip("scipy.stats")
pytest.importorskip("scikit_posthocs")


def a_is_best(n_blocks: int = 21, higher_is_better: bool = True) -> dict[str, list[float]]:
    """Method A beats every other method in every block; B, C, D rotate through the other ranks, so
    their mean ranks are exactly equal."""
    rng = np.random.default_rng(0)
    cycle = [(1.0, 2.0, 3.0), (2.0, 3.0, 1.0), (3.0, 1.0, 2.0)]
    scores: dict[str, list[float]] = {"A": [], "B": [], "C": [], "D": []}
    for i in range(n_blocks):
        base = rng.uniform(0, 100)  # blocks differ in level, as slices do
        others = cycle[i % 3]
        best = 10.0 if higher_is_better else -10.0
        scores["A"].append(base + best)
        for name, value in zip("BCD", others, strict=True):
            scores[name].append(base + value)
    return scores


def no_difference(n_blocks: int = 21) -> dict[str, list[float]]:
    """Every method takes every rank equally often: Friedman's statistic is 0."""
    table = a_is_best(n_blocks)
    return {"B": table["B"], "C": table["C"], "D": table["D"]}


# -- Friedman -------------------------------------------------------------------------------------


def test_friedman_equals_scipy_on_the_same_blocks():
    rng = np.random.default_rng(1)
    values = rng.normal(size=(12, 4)) + np.array([0.0, 0.3, 0.6, 1.2])
    ours = friedman(values)
    ref = scipy_stats.friedmanchisquare(*values.T)
    assert ours.statistic == pytest.approx(ref.statistic, rel=1e-12)
    assert ours.pvalue == pytest.approx(ref.pvalue, rel=1e-12)
    assert ours.methods == ("method0", "method1", "method2", "method3") and ours.n_blocks == 12


def test_friedman_mean_ranks_are_the_hand_computed_ones_with_ties_averaged():
    scores = {"x": [1.0, 5.0, 2.0], "y": [2.0, 5.0, 1.0], "z": [3.0, 0.0, 3.0]}
    # block 1: x=1, y=2, z=3; block 2: z=1, x=y=2.5; block 3: y=1, x=2, z=3
    expected = {"x": (1 + 2.5 + 2) / 3, "y": (2 + 2.5 + 1) / 3, "z": (3 + 1 + 3) / 3}
    result = friedman(scores)
    assert result.mean_ranks == pytest.approx(expected)
    assert friedman(np.array([scores["x"], scores["y"], scores["z"]]).T).statistic == result.statistic


def test_friedman_of_complete_ties_is_nan_and_not_significant():
    result = friedman({"a": [1.0, 2.0], "b": [1.0, 2.0], "c": [1.0, 2.0]})
    assert math.isnan(result.statistic) and not result.significant(0.05)
    assert json.dumps(result.to_dict(), allow_nan=False)


@pytest.mark.parametrize(
    ("scores", "match"),
    [
        ({"a": [1, 2, 3], "b": [1, 2], "c": [1, 2, 3]}, "same number of blocks"),
        ({"a": [1, 2, 3], "b": [2, 3, 4]}, "wilcoxon"),
        ({"a": [1], "b": [2], "c": [3]}, "at least 2 blocks"),
        ({"a": [1, float("nan")], "b": [2, 3], "c": [3, 4]}, "finite"),
        (np.zeros(5), r"\[n_blocks, n_methods\]"),
        ([[1, 2, 3], [1, 2]], "rectangular"),
    ],
)
def test_invalid_score_tables_raise_config_errors(scores, match):
    with pytest.raises(ConfigError, match=match):
        friedman(scores)


# -- Nemenyi --------------------------------------------------------------------------------------


def test_nemenyi_pvalues_follow_the_studentized_range_of_mean_rank_differences():
    rng = np.random.default_rng(2)
    values = rng.normal(size=(15, 4)) + np.array([0.0, 0.5, 1.0, 1.5])
    result = nemenyi(values, higher_is_better=True)
    n, k = values.shape
    ranks = scipy_stats.rankdata(values, axis=1).mean(axis=0)
    for i in range(k):
        for j in range(k):
            if i == j:
                assert result.pvalues[i, j] == 1.0
                continue
            q = abs(ranks[i] - ranks[j]) / math.sqrt(k * (k + 1) / (6 * n)) * math.sqrt(2)
            assert result.pvalues[i, j] == pytest.approx(
                scipy_stats.studentized_range.sf(q, k, np.inf), rel=1e-6
            )
    assert list(result.mean_ranks.values()) == pytest.approx(ranks.tolist())


@pytest.mark.parametrize("higher_is_better", [True, False])
def test_a_clearly_best_method_wins_its_row_and_loses_nowhere(higher_is_better):
    result = nemenyi(a_is_best(higher_is_better=higher_is_better), higher_is_better=higher_is_better)
    others = ["B", "C", "D"]
    assert result.directions["A"] == {"A": "", "B": BETTER, "C": BETTER, "D": BETTER}
    for name in others:
        assert result.directions[name]["A"] == WORSE  # mirrored
        assert all(result.directions[name][o] == SAME for o in others if o != name)
        assert result.directions[name][name] == ""
    assert result.scores == {"A": 3, "B": -1, "C": -1, "D": -1}
    assert sum(result.scores.values()) == 0


def test_the_direction_follows_the_metric_not_the_raw_rank():
    scores = a_is_best()  # A has the largest values
    assert nemenyi(scores, higher_is_better=True).scores["A"] == 3
    assert nemenyi(scores, higher_is_better=False).scores["A"] == -3  # e.g. the largest MAE: worst


def test_nemenyi_markdown_has_one_row_per_method_and_the_signed_score():
    text = nemenyi(a_is_best(), higher_is_better=True).to_markdown()
    lines = text.splitlines()
    assert lines[0] == "| Method | A | B | C | D | Score |"
    assert lines[2] == f"| A |  | {BETTER} | {BETTER} | {BETTER} | +3 |"
    assert lines[3] == f"| B | {WORSE} |  | 0 | 0 | {WORSE}1 |"
    assert len(lines) == 2 + 4


# -- compare_methods ------------------------------------------------------------------------------


def test_compare_methods_runs_nemenyi_only_where_friedman_is_significant(monkeypatch):
    significant = compare_methods({"ssim": a_is_best()}, {"ssim": True})
    assert significant.friedman["ssim"].pvalue < 0.05 and significant.nemenyi["ssim"] is not None
    assert significant.scores["ssim"] == {"A": 3, "B": -1, "C": -1, "D": -1}

    def refuse(*args, **kwargs):
        raise AssertionError("Nemenyi must not run when Friedman finds no difference")

    monkeypatch.setattr(stats, "nemenyi", refuse)
    flat = compare_methods({"mae": no_difference()}, {"mae": False})
    assert flat.friedman["mae"].pvalue >= 0.05 and flat.nemenyi["mae"] is None
    assert flat.scores["mae"] == {"B": 0, "C": 0, "D": 0}
    assert all(cell in ("", SAME) for row in flat.directions["mae"].values() for cell in row.values())


def test_compare_methods_matches_per_metric_tests_and_keeps_the_method_order():
    mae = a_is_best(higher_is_better=False)
    ssim = {
        name: a_is_best()[name] for name in ("D", "C", "B", "A")
    }  # another order: the first metric's wins
    table = compare_methods({"mae": mae, "ssim": ssim}, {"mae": False, "ssim": True}, alpha=0.01)
    assert table.methods == ("A", "B", "C", "D") and table.metrics == ("mae", "ssim")
    for metric, scores, better in (("mae", mae, False), ("ssim", ssim, True)):
        direct = nemenyi(scores, higher_is_better=better, alpha=0.01)
        assert table.directions[metric] == direct.directions
        assert table.friedman[metric].statistic == pytest.approx(friedman(scores).statistic)


def test_the_table_iii_markdown_layout():
    lpips = no_difference() | {"A": [0.0] * 21}
    table = compare_methods(
        {"mae": a_is_best(higher_is_better=False), "lpips": lpips}, {"mae": False, "lpips": False}
    )
    lines = table.to_markdown().splitlines()
    assert lines[0] == "| Metric | Method | A | B | C | D | Score |"
    assert len(lines) == 2 + 2 * 4
    assert lines[2].startswith("| mae ↓ (Friedman p = ") and lines[2].endswith(
        f"| A |  | {BETTER} | {BETTER} | {BETTER} | +3 |"
    )
    assert lines[3] == f"|  | B | {WORSE} |  | 0 | 0 | {WORSE}1 |"
    assert lines[6].startswith("| lpips ↓")
    wide = table.to_markdown(layout="columns").splitlines()
    assert wide[0].startswith("| Method | mae: A | mae: B | mae: C | mae: D | mae: Score | lpips: A")
    assert len(wide) == 2 + 4 and wide[2].startswith(f"| A |  | {BETTER} | {BETTER} | {BETTER} | +3 |")
    with pytest.raises(ConfigError, match="layout"):
        table.to_markdown(layout="diagonal")


def test_to_dict_is_strict_json_and_holds_the_results():
    table = compare_methods(
        {"mae": a_is_best(higher_is_better=False), "psnr": no_difference() | {"A": [5.0] * 21}},
        {"mae": False, "psnr": True},
    )
    data = json.loads(json.dumps(table.to_dict(), allow_nan=False))
    assert data["methods"] == ["A", "B", "C", "D"] and data["alpha"] == 0.05
    assert data["metrics"]["mae"]["scores"] == table.scores["mae"]
    assert data["metrics"]["mae"]["nemenyi"]["pvalues"][0][1] == pytest.approx(
        table.nemenyi["mae"].pvalues[0, 1]
    )
    assert data["metrics"]["mae"]["friedman"]["pvalue"] == pytest.approx(table.friedman["mae"].pvalue)
    assert "MethodComparison(" in repr(table)


@pytest.mark.parametrize(
    ("per_metric", "directions", "match"),
    [
        ({}, {}, "non-empty"),
        ({"mae": {"a": [1, 2], "b": [2, 3], "c": [3, 4]}}, {}, "direction for every metric"),
        (
            {"mae": {"a": [1, 2], "b": [2, 3], "c": [3, 4]}, "ssim": {"a": [1, 2], "b": [2, 3], "x": [3, 4]}},
            {"mae": False, "ssim": True},
            "same methods",
        ),
        ({"mae": {"a": [1, 2], "b": [2, 3], "c": [3, 4]}}, {"mae": "lower"}, "True or False"),
    ],
)
def test_compare_methods_refuses_inconsistent_inputs(per_metric, directions, match):
    with pytest.raises(ConfigError, match=match):
        compare_methods(per_metric, directions)


# -- Wilcoxon -------------------------------------------------------------------------------------


@pytest.mark.parametrize("alternative", ["two-sided", "greater", "less"])
def test_wilcoxon_equals_scipy(alternative):
    rng = np.random.default_rng(3)
    a = rng.normal(0.8, 0.02, size=10)
    b = a - rng.normal(0.01, 0.01, size=10)
    ours = wilcoxon(a, b, alternative=alternative)
    ref = scipy_stats.wilcoxon(a, b, alternative=alternative)
    assert ours.statistic == pytest.approx(ref.statistic) and ours.pvalue == pytest.approx(ref.pvalue)
    assert ours.median_difference == pytest.approx(float(np.median(a - b))) and ours.n == 10
    assert json.dumps(ours.to_dict(), allow_nan=False)


@pytest.mark.parametrize(
    ("a", "b", "alternative", "match"),
    [
        ([1, 2, 3], [1, 2], "two-sided", "same length|one length"),
        ([1], [2], "two-sided", "at least 2"),
        ([1, 2, float("inf")], [1, 2, 3], "two-sided", "finite"),
        ([1, 2, 3], [3, 2, 1], "bigger", "alternative"),
    ],
)
def test_wilcoxon_refuses_invalid_inputs(a, b, alternative, match):
    with pytest.raises(ConfigError, match=match):
        wilcoxon(a, b, alternative=alternative)


# -- optional dependencies ------------------------------------------------------------------------


def test_missing_scipy_names_the_stats_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "scipy.stats", None)
    with pytest.raises(MissingDependencyError, match=r"latent-transforms\[stats\]"):
        friedman(a_is_best())
    with pytest.raises(MissingDependencyError, match=r"latent-transforms\[stats\]"):
        wilcoxon([1.0, 2.0, 3.0], [0.0, 1.0, 1.0])


def test_missing_scikit_posthocs_names_the_stats_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "scikit_posthocs", None)
    with pytest.raises(MissingDependencyError, match=r"latent-transforms\[stats\]"):
        nemenyi(a_is_best(), higher_is_better=True)


def test_a_pipe_in_a_method_name_does_not_break_the_markdown_table():
    scores = {f"{k}|x": v for k, v in a_is_best().items()}
    lines = nemenyi(scores, higher_is_better=True).to_markdown().splitlines()
    assert lines[0] == r"| Method | A\|x | B\|x | C\|x | D\|x | Score |"
