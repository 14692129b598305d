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


# -- the grid as an Optuna study: shared storage, resume, importance -------------------------------------


def _fn(t):
    return t.p + (0.0 if t.elastic is None else 5.0) + (0.5 if t.flip else 0.0)


def test_a_grid_is_an_optuna_grid_sampler_study_over_setting_and_p():
    import optuna

    grid = standard_da_grid(p_values=[1.0, 0.5])
    result = run_grid(grid, _fn)
    study = result.study
    assert isinstance(study.sampler, optuna.samplers.GridSampler)
    assert len(study.trials) == 14 and {t.state.name for t in study.trials} == {"COMPLETE"}
    assert {(t.params["setting"], t.params["p"]) for t in study.trials} == {(g.setting, g.p) for g in grid}
    assert [(r["setting"], r["p"]) for r in result.rows] == [(g.setting, g.p) for g in grid]  # grid order
    assert all(r["value"] == pytest.approx(_fn(g.build())) for r, g in zip(result.rows, grid, strict=True))


def test_a_stopped_grid_resumes_from_its_sqlite_storage_evaluating_only_the_rest(tmp_path):
    db = tmp_path / "grid.db"
    grid = standard_da_grid(p_values=[1.0, 0.5])
    calls = []

    def crashing(t):
        if len(calls) == 5:
            raise RuntimeError("killed")
        calls.append((t.p, t.flip, t.rotate, t.elastic))
        return _fn(t)

    with pytest.raises(RuntimeError, match="killed"):
        run_grid(grid, crashing, storage=db)
    assert len(calls) == 5
    seen = []

    def counting(t):
        seen.append((t.p, t.flip, t.rotate, t.elastic))
        return _fn(t)

    resumed = run_grid(grid, counting, storage=db)
    assert len(seen) == 14 - 5 and not set(seen) & set(calls)  # the crashed setting is evaluated again
    straight = run_grid(grid, _fn)
    assert resumed.rows == straight.rows and resumed.best == straight.best
    again = run_grid(grid, counting, storage=db)  # finished: nothing is evaluated
    assert len(seen) == 9 and again.rows == straight.rows


def test_a_stored_grid_refuses_another_grid_or_direction(tmp_path):
    db = tmp_path / "grid.db"
    run_grid(standard_da_grid(p_values=[1.0]), _fn, storage=db)
    with pytest.raises(ConfigError, match="another grid"):
        run_grid(standard_da_grid(p_values=[0.5]), _fn, storage=db)
    with pytest.raises(ConfigError, match="direction"):
        run_grid(standard_da_grid(p_values=[1.0]), _fn, storage=db, direction="maximize")


def test_non_finite_values_are_kept_and_not_evaluated_again(tmp_path):
    db = tmp_path / "grid.db"
    grid = standard_da_grid(p_values=[1.0, 0.5])

    def fn(t):
        return float("nan") if t.elastic is not None else t.p

    result = run_grid(grid, fn, storage=db)
    assert sum(r["value"] is None for r in result.rows) == 8 and result.best["value"] == 0.5
    seen = []
    run_grid(grid, lambda t: seen.append(t) or 0.0, storage=db)
    assert seen == []


def test_the_grid_shares_the_studies_importance_analysis(tmp_path):
    grid = standard_da_grid(p_values=[1.0, 0.7, 0.4, 0.1])
    result = run_grid(grid, lambda t: 10 * t.p, out=tmp_path, name="g", importance_rounds=4)
    imp = result.importance
    assert imp.forest is not None and imp.forest.names == ["setting", "p"] and imp.forest.rounds == 4
    assert imp.forest.ranking()[0] == "p" and next(iter(imp.optuna)) == "p"
    assert json.loads((tmp_path / "g_importance.json").read_text())["forest"]["rounds"] == 4
    assert (tmp_path / "g_importance.png").is_file()
    assert json.loads((tmp_path / "g.json").read_text())["importance"]["optuna"] == imp.optuna
    assert run_grid(grid, lambda t: 10 * t.p).importance is None  # off by default


def test_grid_progress_is_logged(caplog):
    import logging

    with caplog.at_level(logging.INFO, logger="latent_transforms"):
        run_grid(standard_da_grid(p_values=[1.0]), _fn, progress=True)
    lines = sorted(r.getMessage() for r in caplog.records if r.name == "latent_transforms.tuning.grid")
    assert len(lines) == 7 and lines[0].startswith("StandardDA affine p=1: ")
