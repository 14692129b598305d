"""The CI tuning run: a few trials of the F1 objective on a tiny GAN, through the API and the CLI."""

from __future__ import annotations

import argparse
import json
import time

import pytest
import torch

from latent_transforms import GanBundle, GanConfig, LatentAugment
from latent_transforms.inversion.cache import LatentCache
from latent_transforms.inversion.projector import Projector
from latent_transforms.tuning.command import add_parser, run_tune
from latent_transforms.tuning.objectives import F1Objective
from latent_transforms.tuning.spaces import search_space
from latent_transforms.tuning.study import tune


def test_a_short_f1_tuning_run_finishes_fast_and_its_best_config_loads(tiny, tmp_path):
    torch.set_num_threads(1)
    started = time.perf_counter()
    objective = F1Objective(
        tiny.bundle,
        tiny.cache,
        tiny.stats,
        tiny.reference,
        tiny.sources,
        n_samples=8,
        feature_network="random",
        batch_size=8,
        device="cpu",
    )
    result = tune(
        objective, space="paper", n_trials=3, seed=0, out=tmp_path, importance_rounds=5, progress=False
    )
    seconds = time.perf_counter() - started
    assert seconds < 30, f"the CI tuning run took {seconds:.1f} s"
    assert result.n_complete == 3
    assert all(search_space("paper").contains({k: t[k] for k in result.space.names}) for t in result.trials)
    assert all(0.0 <= t["value"] <= 1.0 for t in result.trials)
    assert result.best_value == max(t["value"] for t in result.trials)
    for name in ("best_config.json", "trials.csv", "tuning.json", "importance.json", "importance.png"):
        assert (tmp_path / name).is_file(), name
    loaded = LatentAugment.from_config(tmp_path / "best_config.json", tiny.bundle, tiny.cache, tiny.stats)
    for name, value in result.best_params.items():
        assert getattr(loaded, name) == value, name
    assert loaded.config() == json.loads((tmp_path / "best_config.json").read_text())


def _parse(argv):
    parser = argparse.ArgumentParser(prog="latent-transforms")
    add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    args.argv = argv
    return args


@pytest.fixture
def bundle_folder(tmp_path):
    bundle = GanBundle.random(GanConfig(resolution=16, channel_base=256, channel_max=32), seed=0)
    return bundle.save_pretrained(tmp_path / "gan", w_stats_samples=500)


def test_the_tune_command_inverts_once_and_resumes(bundle_folder, tmp_path, monkeypatch):
    out = tmp_path / "out"
    common = [
        "tune", "--gan", str(bundle_folder), "--data", "phantom:patients=10,slices=4", "--n-real", "6",
        "--n-samples", "6", "--n-sources", "5", "--feature-network", "random", "--perceptual", "random",
        "--inversion-steps", "2", "--batch", "4", "--importance-rounds", "3", "--device", "cpu",
        "--out", str(out), "--quiet",
    ]  # fmt: skip
    args = _parse([*common, "--trials", "2"])
    assert args.func is run_tune and args.objective == "f1" and args.space == "paper"
    assert args.func(args) == 0
    assert json.loads((out / "tuning.json").read_text())["trials_complete"] == 2
    assert (out / "study.db").is_file() and (out / "cache" / "stats.safetensors").is_file()
    projected = []
    original = Projector.project
    monkeypatch.setattr(
        Projector, "project", lambda self, x, *a, **k: projected.append(len(x)) or original(self, x, *a, **k)
    )
    assert run_tune(_parse([*common, "--trials", "3"])) == 0
    assert projected == []  # the second run found every source in the cache
    summary = json.loads((out / "tuning.json").read_text())
    assert summary["trials_complete"] == 3 and summary["run"]["command"].startswith("latent-transforms tune")
    assert summary["objective"]["n_real"] == 6 and summary["objective"]["n_sources"] == 5
    rows = (out / "trials.csv").read_text().splitlines()
    assert len(rows) == 4
    assert (
        json.loads((out / "cache" / "index.json").read_text())
        if (out / "cache" / "index.json").exists()
        else True
    )


def test_the_tune_command_runs_the_baseline_grids(bundle_folder, tmp_path):
    fn_file = tmp_path / "metric.py"
    fn_file.write_text("def validate(transform):\n    return abs(transform.p - 0.5)\n")
    out = tmp_path / "grid"
    args = _parse(
        ["tune", "--gan", str(bundle_folder), "--data", "phantom:patients=10,slices=4",
         "--policy", "standardda", "--downstream", f"{fn_file}:validate", "--device", "cpu",
         "--out", str(out), "--quiet"]
    )  # fmt: skip
    assert run_tune(args) == 0
    saved = json.loads((out / "grid-standardda.json").read_text())
    assert len(saved["rows"]) == 70 and saved["best"]["p"] == 0.5 and saved["direction"] == "minimize"
    args = _parse(
        ["tune", "--gan", str(bundle_folder), "--data", "phantom:patients=10,slices=4",
         "--policy", "sg2sample", "--downstream", f"{fn_file}:validate", "--direction", "maximize",
         "--device", "cpu", "--out", str(out), "--quiet"]
    )  # fmt: skip
    assert run_tune(args) == 0
    saved = json.loads((out / "grid-sg2sample.json").read_text())
    assert len(saved["rows"]) == 10 and saved["best"]["p"] == 1.0  # |1.0 - 0.5| is the largest


def test_the_tune_command_can_take_the_gans_reconstructions_as_the_reference(bundle_folder, tmp_path):
    out = tmp_path / "inv"
    args = _parse(
        ["tune", "--gan", str(bundle_folder), "--data", "phantom:patients=10,slices=4", "--trials", "1",
         "--reference", "inverted", "--n-real", "5", "--n-samples", "5", "--n-sources", "4",
         "--feature-network", "random", "--perceptual", "random", "--inversion-steps", "2", "--batch", "4",
         "--importance-rounds", "0", "--device", "cpu", "--out", str(out), "--quiet"]
    )  # fmt: skip
    assert run_tune(args) == 0
    summary = json.loads((out / "tuning.json").read_text())
    assert summary["reference"] == "inverted" and summary["trials_complete"] == 1
    assert set(summary["reference_points"]) == {"sources", "reconstructions"}
    assert len(LatentCache.open(out / "cache-reference")) == 5  # the validation slices, inverted


def test_tune_takes_the_reference_and_sources_that_evaluate_takes(bundle_folder, tmp_path, monkeypatch):
    import latent_transforms.tuning.objectives as objectives
    from latent_transforms.evaluation.real_data import open_real_data
    from latent_transforms.networks.bundle import load_gan

    seen = {}

    class Stop(Exception):
        pass

    def capture(bundle, cache, stats, reference, sources, **kwargs):
        seen.update(reference=reference, sources=sources, cache=cache)
        raise Stop

    monkeypatch.setattr(objectives, "F1Objective", capture)
    args = _parse(
        ["tune", "--gan", str(bundle_folder), "--data", "phantom:patients=10,slices=4", "--n-real", "3",
         "--n-sources", "5", "--perceptual", "random", "--inversion-steps", "2", "--device", "cpu",
         "--out", str(tmp_path / "out"), "--quiet"]
    )  # fmt: skip
    with pytest.raises(Stop):
        run_tune(args)
    real = open_real_data(load_gan(str(bundle_folder)), "phantom:patients=10,slices=4", n_real=3, n_sources=5)
    assert torch.equal(seen["reference"], real.reference) and torch.equal(seen["sources"], real.sources)
    assert len(LatentCache.open(seen["cache"])) == 5


def test_a_downstream_grid_needs_no_validation_patients(bundle_folder, tmp_path):
    fn_file = tmp_path / "metric.py"
    fn_file.write_text("def validate(transform):\n    return transform.p\n")
    out = tmp_path / "grid"
    args = _parse(
        ["tune", "--gan", str(bundle_folder), "--data", "phantom:patients=4,slices=2", "--split-fractions",
         "1.0", "--policy", "sg2sample", "--downstream", f"{fn_file}:validate", "--device", "cpu",
         "--out", str(out), "--quiet"]
    )  # fmt: skip
    assert run_tune(args) == 0
    assert len(json.loads((out / "grid-sg2sample.json").read_text())["rows"]) == 10
