"""End to end on a tiny random GAN: every policy kind, the files, determinism, cache reuse and the CLI."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest
import torch

from latent_transforms import GanBundle, GanConfig
from latent_transforms.data import PelvisPhantom
from latent_transforms.errors import ConfigError
from latent_transforms.evaluation.command import add_parser
from latent_transforms.evaluation.report import JSON_NAME, MARKDOWN_NAME, EvaluationReport
from latent_transforms.evaluation.run import PR_PLOT_NAME, SAMPLES_NAME, EvaluatedPolicy, evaluate_policies
from latent_transforms.export import augment_dataset
from latent_transforms.features.perceptual import perceptual_network

pytest.importorskip("matplotlib")
pytest.importorskip("scipy")

DATA = "phantom:patients=10,slices=4"
SETTINGS = dict(
    data=DATA,
    n_samples=6,
    n_sources=3,
    feature_network="random",
    inversion_steps=2,
    efficiency_images=4,
    batch_size=4,
    progress=False,
)
# What depends on the run's speed, not on its samples.
TIMING_KEYS = ("seconds_per_1000", "efficiency", "sampling_seconds")


@pytest.fixture(scope="module")
def bundle() -> GanBundle:
    b = GanBundle.random(GanConfig(resolution=16, channel_base=256, channel_max=32))
    b.compute_w_stats(500)
    return b


def _measured(report: EvaluationReport) -> list[dict]:
    return [{k: v for k, v in r.to_dict().items() if k not in TIMING_KEYS} for r in report.rows]


def test_a_tiny_run_measures_every_policy_kind_and_writes_report_and_plots(
    bundle: GanBundle, tmp_path: Path
) -> None:
    folder = tmp_path / "synthetic"
    augment_dataset(bundle, PelvisPhantom(1, 5, resolution=16), lambda x: -x, folder, n=5, progress=False)
    calls: list[tuple[object, int]] = []

    def train_and_score(policy: EvaluatedPolicy | None, seed: int) -> list[float]:
        calls.append((policy, seed))
        g = torch.Generator().manual_seed(seed)
        return (torch.rand(5, generator=g) + (0.1 if policy is not None else 0.0)).tolist()

    specs = [
        "sg2sample:psi=0.5",
        "sg2sample:psi=1.0",
        "latentaugment:preset=f1,steps=2",
        "standardda",
        "real",
        f"dir:{folder}",
    ]
    out = tmp_path / "out"
    report = evaluate_policies(
        specs,
        gan=bundle,
        out=out,
        perceptual=perceptual_network("random"),
        utility=train_and_score,
        utility_seeds=[0, 1],
        command="latent-transforms evaluate (test)",
        **SETTINGS,
    )
    assert [r.kind for r in report.rows] == [
        "sg2sample",
        "sg2sample",
        "latentaugment",
        "standardda",
        "real",
        "directory",
    ]
    assert report.modalities == ["mri", "ct"]
    for r in report.rows:
        assert r.n_samples == (5 if r.kind == "directory" else 6)
        for metric in ("fid", "precision", "recall", "f1", "density", "coverage", "mean_image_kb"):
            values = getattr(r, metric)
            assert set(values) == {"mri", "ct", "mean"}
            assert values["mean"] == pytest.approx((values["mri"] + values["ct"]) / 2)
        assert all(0 <= r.precision[m] <= 1 and 0 <= r.recall[m] <= 1 for m in ("mri", "ct"))
        timed = r.kind not in ("real", "directory")
        assert (r.seconds_per_1000 is not None) == timed and r.peak_memory_gb is None  # CPU: no GPU memory
        assert (r.utility is None) == (r.kind == "real")
    assert report.row("SG2Sample ψ=0.5").psi == 0.5
    # The utility function saw every non-real policy once per seed, plus the baseline once per seed.
    assert sorted(seed for p, seed in calls if p is None) == [0, 1]
    seen = [p.name for p, _ in calls if p is not None]
    assert sorted(set(seen)) == sorted(r.policy for r in report.rows if r.kind != "real") and len(seen) == 10
    la = next(p for p, _ in calls if p is not None and p.kind == "latentaugment")
    assert la.transform is not None and la.samples.shape == (6, 2, 16, 16)
    # Files: report, JSON that loads back to the same report, scatter plot, sample grid, the cache.
    for name in (MARKDOWN_NAME, JSON_NAME, PR_PLOT_NAME, SAMPLES_NAME):
        assert (out / name).is_file() and (out / name).stat().st_size > 0
    assert EvaluationReport.load(out) == EvaluationReport.from_json(report.to_json())
    assert (out / "cache" / "stats.safetensors").is_file()
    settings = json.loads((out / JSON_NAME).read_text())["settings"]
    assert settings["feature_network"] == "random" and settings["k"] == 3 and settings["device"] == "cpu"
    assert (
        settings["inversion"]["inverted"] == 3 and settings["command"] == "latent-transforms evaluate (test)"
    )
    assert "| real (training images) |" in (out / MARKDOWN_NAME).read_text()


def test_the_same_seed_gives_the_same_numbers_and_the_cache_is_reused(
    bundle: GanBundle, tmp_path: Path
) -> None:
    specs = ["sg2sample:psi=0.7", "latentaugment:preset=mae,steps=1", "standardda"]
    net = perceptual_network("random")
    first = evaluate_policies(specs, gan=bundle, out=tmp_path / "a", perceptual=net, **SETTINGS)
    again = evaluate_policies(
        specs, gan=bundle, out=tmp_path / "b", cache=tmp_path / "a" / "cache", perceptual=net, **SETTINGS
    )
    other = evaluate_policies(specs[:1], gan=bundle, seed=1, perceptual=net, **SETTINGS)
    assert _measured(first) == _measured(again)
    assert first.settings["inversion"]["reused"] is False and again.settings["inversion"]["reused"] is True
    assert other.rows[0].fid != first.rows[0].fid  # another seed, other SG2Sample samples
    assert not (tmp_path / "b" / "cache").exists()


def test_latentaugment_without_a_cache_folder_and_too_few_samples_are_refused(bundle: GanBundle) -> None:
    with pytest.raises(ConfigError, match="cache"):
        evaluate_policies(["latentaugment"], gan=bundle, **SETTINGS)
    with pytest.raises(ConfigError, match="n_samples > k"):
        evaluate_policies(["sg2sample"], gan=bundle, **{**SETTINGS, "n_samples": 3})


def test_the_cli_parser_runs_the_evaluation(
    bundle: GanBundle, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bundle.save_pretrained(tmp_path / "gan")
    parser = argparse.ArgumentParser(prog="latent-transforms")
    add_parser(parser.add_subparsers(dest="command", required=True))
    argv = [
        "evaluate",
        "--gan", str(tmp_path / "gan"),
        "--real", DATA,
        "--synthetic", "sg2sample:psi=0.5",
        "--synthetic", "real",
        "--out", str(tmp_path / "out"),
        "--n-samples", "5",
        "--feature-network", "random",
        "--efficiency-images", "0",
        "--k", "2",
        "--quiet",
    ]  # fmt: skip
    args = parser.parse_args(argv)
    args.argv = argv
    assert args.func(args) == 0
    printed = capsys.readouterr().out
    assert "| SG2Sample ψ=0.5 |" in printed and "report.md" in printed
    report = EvaluationReport.load(tmp_path / "out")
    assert report.settings["k"] == 2 and report.settings["command"].startswith(
        "latent-transforms evaluate --gan"
    )
    assert report.settings["efficiency"] is None and report.rows[0].seconds_per_1000 is None


def test_the_cli_reuses_finished_utility_runs_unless_told_to_retrain(
    bundle: GanBundle, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bundle.save_pretrained(tmp_path / "gan")
    log = tmp_path / "trained.txt"
    task = tmp_path / "task.py"
    task.write_text(
        "import torch\n"
        "def train_and_score(policy, seed):\n"
        f"    with open({str(log)!r}, 'a') as f:\n"
        "        f.write(f'{None if policy is None else policy.name} {seed}\\n')\n"
        "    g = torch.Generator().manual_seed(seed)\n"
        "    bonus = 0.0 if policy is None else float(policy.samples.mean())\n"
        "    return (torch.rand(4, generator=g) + bonus).tolist()\n"
    )
    parser = argparse.ArgumentParser(prog="latent-transforms")
    add_parser(parser.add_subparsers(dest="command", required=True))
    out = tmp_path / "out"

    def evaluate(*extra: str) -> tuple[list[str], dict]:
        log.write_text("")
        argv = [
            "evaluate",
            "--gan", str(tmp_path / "gan"),
            "--real", DATA,
            "--synthetic", "sg2sample:psi=0.5",
            "--out", str(out),
            "--n-samples", "5",
            "--feature-network", "random",
            "--efficiency-images", "0",
            "--k", "2",
            "--utility", f"{task}:train_and_score",
            "--utility-seeds", "0,1",
            "--quiet",
            *extra,
        ]  # fmt: skip
        args = parser.parse_args(argv)
        assert args.func(args) == 0
        capsys.readouterr()
        return log.read_text().split("\n")[:-1], EvaluationReport.load(out).rows[0].utility.to_dict()

    trained, first = evaluate()
    assert sorted(trained) == ["None 0", "None 1", "SG2Sample ψ=0.5 0", "SG2Sample ψ=0.5 1"]
    assert len(list((out / "utility-runs").glob("*.json"))) == 4
    trained, again = evaluate()  # the same command again: every run is reused, the result is the same
    assert trained == [] and again == first
    trained, retrained = evaluate("--retrain-utility")
    assert len(trained) == 4 and retrained == first
    trained, other = evaluate("--seed", "1")  # other samples: every run is trained again
    assert len(trained) == 4 and other["policy_mean"] != first["policy_mean"]
