"""Grid searches: StandardDA's 7 combinations x 10 p, SG2Sample's 10 p, LatentAugment's p around a config."""

from __future__ import annotations

import itertools
import json

import pytest

from latent_transforms import LatentAugment, SG2Sample, StandardDA
from latent_transforms.errors import ConfigError
from latent_transforms.tuning.grid import (
    STANDARD_DA_COMBINATIONS,
    STANDARD_DA_COMPONENTS,
    latent_augment_p_grid,
    run_grid,
    sg2sample_grid,
    standard_da_grid,
    standard_da_kwargs,
)
from latent_transforms.tuning.objectives import F1Objective
from latent_transforms.tuning.spaces import P_VALUES


def test_standard_da_grid_is_the_7_nonempty_combinations_times_10_p():
    subsets = {frozenset(c) for r in (1, 2, 3) for c in itertools.combinations(STANDARD_DA_COMPONENTS, r)}
    assert {frozenset(c) for c in STANDARD_DA_COMBINATIONS} == subsets and len(STANDARD_DA_COMBINATIONS) == 7
    grid = standard_da_grid()
    assert len(grid) == 70
    assert {(g.setting, g.p) for g in grid} == {
        ("+".join(c), p) for c in STANDARD_DA_COMBINATIONS for p in P_VALUES
    }
    assert sorted({g.p_aug for g in grid}) == pytest.approx([i / 10 for i in range(10)])


def test_each_combination_switches_on_exactly_its_options_with_the_papers_magnitudes():
    t = standard_da_grid(combinations=[("affine",)], p_values=[0.4])[0].build()
    assert isinstance(t, StandardDA)
    assert (t.flip, t.rotate, t.translate, t.elastic, t.p) == (False, 3.0, 0.05, None, 0.4)
    t = standard_da_grid(combinations=[("xflip", "deform")], p_values=[1.0])[0].build()
    assert (t.flip, t.rotate, t.translate, t.elastic) == (True, 0.0, 0.0, (63, 32.0))
    with pytest.raises(ConfigError):
        standard_da_kwargs(["rotate"])


def test_sg2sample_grid_has_10_settings(tiny):
    grid = sg2sample_grid(tiny.bundle, value_range="generator")
    assert len(grid) == 10 and [g.p for g in grid] == list(P_VALUES)
    assert all(isinstance(g.build(), SG2Sample) for g in grid)


@pytest.mark.parametrize("direction", ["minimize", "maximize"])
def test_run_grid_keeps_the_best_and_writes_it(tmp_path, direction):
    def fn(t):
        return t.p + (0.0 if t.elastic is None else 5.0)

    result = run_grid(standard_da_grid(), fn, direction=direction, out=tmp_path, name="g")
    best = result.best
    if direction == "minimize":
        assert best["p"] == 0.1 and "deform" not in best["setting"]
    else:
        assert best["p"] == 1.0 and "deform" in best["setting"]
    saved = json.loads((tmp_path / "g.json").read_text())
    assert len(saved["rows"]) == 70 and saved["best"] == best
    assert json.loads((tmp_path / "g_best.json").read_text())["value"] == best["value"]
    assert len((tmp_path / "g.csv").read_text().splitlines()) == 71


def test_latent_augment_p_grid_best_config_loads(tiny, tmp_path):
    config = {"steps": 3, "lr": 0.01, "alpha_f": 0.1, "alpha_pix": 0.1, "alpha_perc": 0.0, "alpha_lat": 0.0}
    grid = latent_augment_p_grid(config, tiny.bundle, tiny.cache, tiny.stats, value_range="generator")
    result = run_grid(grid, lambda t: abs(t.p - 0.6), out=tmp_path, name="p")
    assert result.best["p"] == 0.6
    best = json.loads((tmp_path / "p_best.json").read_text())["config"]
    loaded = LatentAugment.from_config(best, tiny.bundle, tiny.cache, tiny.stats)
    assert (loaded.p, loaded.steps, loaded.alpha_pix, loaded.value_range) == (0.6, 3, 0.1, "generator")


def test_f1_can_rank_the_standard_da_combinations(tiny):
    objective = F1Objective(
        tiny.bundle,
        None,
        None,
        tiny.reference,
        tiny.sources,
        n_samples=8,
        feature_network="random",
        batch_size=4,
    )
    result = run_grid(standard_da_grid(p_values=[1.0]), objective.measure, direction="maximize")
    assert len(result.rows) == 7
    assert all(0.0 <= r["value"] <= 1.0 and set(r["details"]["f1"]) == {"mri", "ct"} for r in result.rows)
