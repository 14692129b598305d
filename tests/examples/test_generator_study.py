"""``examples/generator_study/run.py`` (Xing et al. 2023's study of generators) end to end on toy data (what
CI runs), resuming, one work folder per generator, and the pieces: the pattern of their Table II, the
LatentAugment walks with the class kept, the LatentAugment row handed to ``evaluate``, the early failures."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from examples.generator_study.latent_augment import InvertedTrainingImages
from examples.generator_study.pipeline import (
    GROUP,
    ROWS,
    MissingInput,
    Study,
    StudyConfig,
    quick_bundles,
    quick_config,
)
from examples.generator_study.report import PAPER_PATTERN, paper_pattern, wilcoxon_floor

ROOT = Path(__file__).resolve().parents[2]
RUN = ROOT / "examples" / "generator_study" / "run.py"
COLUMNS = ("fid", "precision", "recall", "variety", "augmentation_utility", "extraction_utility")


def _run(args: list[str], cwd: Path, *, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    run = subprocess.run(
        [sys.executable, str(RUN), *args, "--no-progress"], cwd=cwd, env=env, capture_output=True, text=True
    )
    if check:
        assert run.returncode == 0, f"run.py failed:\n{run.stdout[-4000:]}\n{run.stderr[-4000:]}"
    return run


def _files(folder: Path) -> dict[str, tuple[int, int]]:
    """Every file under ``folder``: (modification time in ns, size)."""
    return {
        str(p.relative_to(folder)): (p.stat().st_mtime_ns, p.stat().st_size)
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def quick(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("matplotlib")
    pytest.importorskip("monai")
    work = tmp_path_factory.mktemp("generators")
    _run(["--quick", "--out", "run"], work)
    return work / "run"


@pytest.mark.slow
def test_quick_run_writes_every_row_and_column_with_one_value_per_run(quick):
    data = json.loads((quick / "results.json").read_text())
    assert {"rows", "command", "commit", "paper_pattern", "feature_networks", "generators"} <= set(data)
    assert "--quick" in data["command"]
    assert list(data["rows"]) == list(ROWS)
    runs = quick_config().runs
    for name, row in data["rows"].items():
        assert set(COLUMNS) <= set(row) and "seconds_per_1000" in row
        for column in ("fid", "precision", "recall", "variety"):
            assert math.isfinite(row[column]), (name, column)
        assert {"fid", "precision", "recall"} == set(row["task_network"])  # the task network's features
        assert all(math.isfinite(v) for v in row["task_network"].values())
        assert set(row["fidelity"]) == {"random", "task-resnet"}
        assert len(row["augmentation_utility"]) == runs
        if name == "standard_da":  # it makes no images to pretrain on, as in Xing et al.'s Table II
            assert row["extraction_utility"] is None
        else:
            assert len(row["extraction_utility"]) == runs
        assert all(0.0 <= v <= 1.0 for v in row["augmentation_utility"])
        times = row["utility_seconds"]  # each run's time, stored with its score
        assert len(times["augmentation"]) == runs and all(t > 0 for t in times["augmentation"])
        assert (times.get("feature-extraction") is None) == (name == "standard_da")
        if name == "real":
            assert row["seconds_per_1000"] is None and row["augmentation_utility_vs_real"] is None
        else:
            assert row["seconds_per_1000"] > 0 and row["peak_memory_gb"] > 0
            assert set(row["augmentation_utility_vs_real"]) == {"gain", "pvalue", "statistic"}
    assert (
        data["rows"]["ddpm"]["policy"]
        == f"diffusion:bundle={data['generators']['diffusion']['source']},steps=3"
    )
    assert data["rows"]["sg2sample"]["policy"] == "sg2sample:psi=1.0"
    assert data["rows"]["latent_augment"]["policy"] == "latentaugment:preset=f1"
    # the pattern section is computed from the measured numbers
    assert data["paper_pattern"] == json.loads(json.dumps(paper_pattern(data["rows"])))
    assert len(data["paper_pattern"]) == len(PAPER_PATTERN)
    report = (quick / "report.md").read_text()
    assert "Does Xing et al.'s pattern hold here?" in report and "9.85 vs 25.68" in report
    for check in data["paper_pattern"]:
        assert check["claim"] in report
    assert "does not hold" in report or all(c["holds"] for c in data["paper_pattern"])
    assert "| row | augmentation | feature extraction |" in report and f"({runs} runs)" in report
    assert (quick / "samples.png").stat().st_size > 1000


@pytest.mark.slow
def test_rerunning_reuses_every_stage_and_changes_nothing_in_the_work_folder(quick, tmp_path):
    before = _files(quick / "work")
    first = json.loads((quick / "results.json").read_text())
    _run(["--quick", "--out", str(quick), "--report", str(tmp_path)], quick.parent)
    assert _files(quick / "work") == before  # nothing trained, sampled, inverted or written again
    again = json.loads((tmp_path / "results.json").read_text())
    assert again["work"]["made"] == {}
    assert again["work"]["reused"]["utility runs"] == sum(
        len(r[c])
        for r in first["rows"].values()
        for c in ("augmentation_utility", "extraction_utility")
        if r[c]
    )
    assert again["work"]["reused"]["task network"] == 1 and again["work"]["reused"]["fidelity"] == 6
    for name, row in first["rows"].items():
        for column in (*COLUMNS, "task_network", "utility_seconds"):  # stored times, not the rerun's
            assert again["rows"][name][column] == row[column], (name, column)


@pytest.mark.slow
def test_another_generator_gets_its_own_work_folder_and_the_generator_free_rows_are_reused(quick, tmp_path):
    from latent_transforms import GanBundle

    out = tmp_path / "run"
    shutil.copytree(quick, out)
    bundles = out / "work" / "quick-bundles"
    first = GanBundle.from_pretrained(bundles / "gan")
    other = GanBundle.random(first.config, seed=1)
    other.save_pretrained(tmp_path / "other-gan")
    assert other.fingerprint != first.fingerprint
    before = _files(out / "work")
    _run(["--quick", "--out", str(out), "--gan", str(tmp_path / "other-gan"), "--runs", "1"], tmp_path)
    after = _files(out / "work")
    # everything of the first run is still there, untouched
    assert {k: v for k, v in after.items() if k in before} == before
    new = {Path(k).parts[0] for k in set(after) - set(before)}
    assert new == {f"gan-{other.fingerprint[:12]}"}
    own = out / "work" / f"gan-{other.fingerprint[:12]}"
    assert (own / "fidelity-random" / "results.json").is_file()
    assert (own / "utility" / "augmentation" / "sg2sample-seed0.json").is_file()
    assert (own / "latents" / "cache.json").is_file()
    data = json.loads((out / "results.json").read_text())
    assert data["generators"]["gan"]["fingerprint"] == other.fingerprint
    assert data["work"]["made"]["utility runs"] == 4  # SG2Sample and LatentAugment, two protocols, seed 0
    assert data["work"]["reused"]["utility runs"] == 5  # real (2), StandardDA (1), DDPM (2)


@pytest.mark.slow
def test_groups_measure_only_their_rows_and_write_no_report(quick, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(quick, out)
    for folder in (out / "work").glob("gan-*"):
        shutil.rmtree(folder)
    report = tmp_path / "report"
    args = ["--quick", "--out", str(out), "--report", str(report), "--groups", "real,diffusion"]
    run = _run(args, tmp_path)
    assert "run without --groups for the report" in run.stdout
    assert not list((out / "work").glob("gan-*"))  # nothing of the GAN's rows was made
    assert not report.exists()
    bad = _run(["--quick", "--out", str(out), "--groups", "gan,vae"], tmp_path, check=False)
    assert bad.returncode != 0 and "vae" in bad.stderr


def test_every_row_lives_in_the_folder_of_what_makes_it(tmp_path):
    cfg = quick_config()
    cfg.out = str(tmp_path)
    study = Study(cfg)
    assert {GROUP[r] for r in ROWS} == {"real", "gan", "diffusion"}
    assert study.folder("gan").name == f"gan-{study.gan.fingerprint[:12]}"
    assert study.folder("diffusion").name == f"diffusion-{study.diffusion.fingerprint[:12]}"
    assert study.identity("sg2sample")["gan"] == study.gan.fingerprint
    assert "gan" not in study.identity("standard_da") and "diffusion" not in study.identity("real")


def test_missing_bundles_fail_before_any_work_naming_the_command_that_makes_them(tmp_path):
    gan, ddpm = quick_bundles(tmp_path / "bundles")
    base = {"data": "toy", "out": str(tmp_path / "out"), "progress": False}
    with pytest.raises(
        MissingInput, match=r"latent-transforms train-diffusion --data medmnist:.*--resolution 16"
    ):
        Study(StudyConfig(**base, gan=str(gan), diffusion=str(tmp_path / "runs" / "ddpm" / "bundle")))
    with pytest.raises(MissingInput, match=r"examples/selective_augmentation/run\.py"):
        Study(StudyConfig(**base, gan=str(tmp_path / "no" / "gan" / "bundle"), diffusion=str(ddpm)))
    with pytest.raises(MissingInput, match="not a StyleGAN2 bundle"):
        Study(StudyConfig(**base, gan=str(ddpm), diffusion=str(ddpm)))
    with pytest.raises(MissingInput, match="no MedMNIST file"):
        Study(StudyConfig(data="medmnist:" + str(tmp_path / "none.npz"), out=str(tmp_path / "x")))
    assert not (tmp_path / "out" / "work" / "task-network").exists()


def test_the_command_line_reports_a_missing_piece_and_exits_with_2(tmp_path, capsys):
    from examples.generator_study.run import main

    assert main(["--quick", "--out", str(tmp_path / "o"), "--diffusion", "runs/none/bundle"]) == 2
    err = capsys.readouterr().err
    assert "no diffusion bundle at 'runs/none/bundle'" in err and "latent-transforms train-diffusion" in err


# -- the pattern of Xing et al.'s Table II, on hand-made numbers ----------------------------------------


def _rows(*, gan_first: bool, runs: int, gan_gain: float) -> dict[str, dict]:
    """Rows in the shape of results.json: with ``gan_first`` the GAN is better in fidelity and the diffusion
    model slower (as in the paper); ``gan_gain`` is added to every augmentation and extraction run of the
    GAN (and, for augmentation, of the diffusion model)."""
    base = [0.80 + 0.01 * i for i in range(runs)]
    fidelity = {"fid": 10.0, "precision": 0.7, "recall": 0.2}
    worse = {"fid": 25.0, "precision": 0.2, "recall": 0.05}
    gan, ddpm = (fidelity, worse) if gan_first else (worse, fidelity)
    return {
        "real": {"fid": 5.0, "precision": 0.7, "recall": 0.8, "variety": 50.0, "augmentation_utility": base,
                 "extraction_utility": base, "seconds_per_1000": None, "task_network": fidelity},
        "standard_da": {"fid": 30.0, "precision": 0.1, "recall": 0.8, "variety": 52.0,
                        "augmentation_utility": [v - 0.05 for v in base], "extraction_utility": None,
                        "seconds_per_1000": 1.0, "task_network": worse},
        "sg2sample": {**gan, "variety": 110.0 if gan_first else 40.0, "task_network": gan,
                      "augmentation_utility": [v + gan_gain for v in base],
                      "extraction_utility": [v + gan_gain for v in base],
                      "seconds_per_1000": 60.0 if gan_first else 5000.0},
        "ddpm": {**ddpm, "variety": 70.0, "task_network": ddpm,
                 "augmentation_utility": [v + gan_gain for v in base], "extraction_utility": base,
                 "seconds_per_1000": 2340.0 if gan_first else 10.0},
    }  # fmt: skip


def test_the_pattern_holds_on_numbers_that_follow_the_paper():
    checks = paper_pattern(_rows(gan_first=True, runs=5, gan_gain=-0.01))
    assert len(checks) == len(PAPER_PATTERN)
    assert all(c["holds"] for c in checks), [c["claim"] for c in checks if not c["holds"]]
    fid = checks[0]
    assert fid["metric"] == "fid" and fid["here"] == [10.0, 25.0] and fid["paper"] == [9.85, 25.68]
    assert fid["task_network"] == {"here": [10.0, 25.0], "holds": True}
    # five runs: a Wilcoxon test can never reach p < 0.05, so the "not significantly" statements cannot fail
    tested = [c for c in checks if c["kind"].startswith("not-")]
    assert tested and all(c["testable"] is False for c in tested)
    against_real = [c for c in tested if c["metric"] == "augmentation_utility" and c["rows"][1] == "real"]
    assert against_real and all(c["pvalue"] == pytest.approx(wilcoxon_floor(5)) for c in against_real)


def test_the_pattern_does_not_hold_on_numbers_against_the_paper():
    checks = {
        (c["metric"], *c["rows"]): c for c in paper_pattern(_rows(gan_first=False, runs=6, gan_gain=0.05))
    }
    assert checks[("fid", "sg2sample", "ddpm")]["holds"] is False
    assert checks[("fid", "sg2sample", "ddpm")]["task_network"]["holds"] is False
    assert checks[("recall", "sg2sample", "ddpm")]["holds"] is False
    assert checks[("variety", "sg2sample", "real")]["holds"] is False
    assert checks[("seconds_per_1000", "ddpm", "sg2sample")]["holds"] is False
    # six runs, the GAN ahead in every one: p = 2 / 2^6 < 0.05, so it beats traditional augmentation
    beats = checks[("augmentation_utility", "sg2sample", "standard_da")]
    assert beats["testable"] is True and beats["pvalue"] == pytest.approx(0.03125)
    assert beats["holds"] is False and beats["here"][0] > beats["here"][1]
    assert checks[("augmentation_utility", "sg2sample", "real")]["holds"] is False
    assert checks[("extraction_utility", "sg2sample", "real")]["holds"] is False
    # the diffusion model's extraction runs equal the real ones: no difference, the statement holds
    assert checks[("extraction_utility", "ddpm", "real")]["holds"] is True
    assert checks[("extraction_utility", "ddpm", "real")]["pvalue"] is None


def test_the_pattern_leaves_out_statements_whose_rows_were_not_measured():
    rows = _rows(gan_first=True, runs=5, gan_gain=0.0)
    del rows["ddpm"]
    checks = paper_pattern(rows)
    assert checks and all("ddpm" not in c["rows"] for c in checks)


# -- LatentAugment with the class kept -----------------------------------------------------------------


def _recorder(c_dim: int = 2):
    """A LatentAugment over a random conditional GAN that returns ``-x`` instead of walking, and records each
    batch and the labels its discriminator was told."""
    from latent_transforms import GanBundle, GanConfig, LatentAugment

    class Recorder(LatentAugment):
        calls: list[tuple[torch.Tensor, torch.Tensor]]

        def apply_batch(self, x, params, kind):
            self.calls.append((x.clone(), params["c"].clone()))
            return -x

    bundle = GanBundle.random(GanConfig(resolution=16, channel_base=256, channel_max=32, c_dim=c_dim))
    walker = Recorder(bundle, alpha_pix=0, alpha_perc=0, alpha_lat=0, p=1.0, value_range="generator", seed=0)
    walker.calls = []
    return walker


def test_inverted_training_images_walk_each_image_with_its_own_class():
    labels = torch.tensor([0, 1, 1, 0, 1, 1])
    images = torch.arange(6.0)[:, None, None, None].expand(6, 2, 16, 16) / 10
    walker = _recorder()
    source = InvertedTrainingImages(walker, images, labels, batch_size=4)

    def picks(out: torch.Tensor) -> torch.Tensor:  # which training image each output is (the walk is -x)
        return (-out[:, 0, 0, 0] * 10).round().long()

    # the requested classes are honoured, each image of a class once before any repeats
    wanted = torch.tensor([1, 1, 1, 1, 0, 0])
    first = picks(source.sample(6, wanted, seed=3))
    assert labels[first].tolist() == [1, 1, 1, 1, 0, 0] and set(first[:4].tolist()) == {1, 2, 4, 5}
    assert torch.equal(first, picks(source.sample(6, wanted, seed=3)))
    assert sorted(picks(source.sample(6, None, seed=0)).tolist()) == list(range(6))
    walker.calls.clear()
    out = source.sample(5, 1, seed=0)
    assert out.shape == (5, 2, 16, 16)
    for x, c in walker.calls:  # the discriminator is told the class of the image it walks
        index = (x[:, 0, 0, 0] * 10).round().long()
        assert torch.equal(c.argmax(1), labels[index]) and c.shape[1] == 2
    assert all(int(c.argmax(1).min()) == 1 for _, c in walker.calls)


def test_the_latent_augment_row_reaches_evaluate_as_its_policy_over_the_inverted_training_images(
    tmp_path, monkeypatch
):
    from examples.generator_study import pipeline
    from latent_transforms.evaluation import parse_policy

    cfg = quick_config()
    cfg.out = str(tmp_path)
    study = Study(cfg)
    calls = []

    class Recorded(Exception):
        pass

    def evaluate(policies, **options):
        calls.append((policies, options))
        raise Recorded

    monkeypatch.setattr(pipeline, "evaluate_policies", evaluate)
    monkeypatch.setattr(study, "latent_source", lambda: calls.append("inverted"))
    with pytest.raises(Recorded):
        study.fidelity("gan")
    assert calls[0] == "inverted"  # the training images are inverted before evaluate runs
    policies, options = calls[1]
    assert policies == [study.spec("sg2sample"), study.spec("latent_augment")]
    spec = parse_policy(policies[1])
    assert spec.kind == "latentaugment" and spec.options == {"preset": cfg.preset}
    assert options["cache"] == study.latents_folder() and options["n_sources"] == len(study.train_xy[1])
    assert (options["inversion_steps"], options["perceptual"]) == (cfg.inversion_steps, cfg.perceptual)


def test_both_protocols_of_a_run_draw_its_synthetic_set_once():
    from examples.generator_study.draws import RememberedDraws
    from latent_transforms.tasks import synthetic_set

    class Transform:  # SG2Sample's and DiffusionSample's face: draws from a CPU generator
        value_range = "physical"
        calls = 0

        def sample(self, n, labels=None, *, generator=None, value_range=None):
            assert value_range == "generator"
            Transform.calls += 1
            return torch.rand(n, 1, 4, 4, generator=generator) * 2 - 1

    draws = RememberedDraws(Transform(), config=type("Config", (), {"c_dim": 2})())
    labels = torch.tensor([0, 1] * 40)
    first = synthetic_set(draws, labels, seed=3, batch_size=64)
    calls = Transform.calls
    assert calls == 2  # two batches
    again = synthetic_set(draws, labels, seed=3, batch_size=64)
    assert Transform.calls == calls and torch.equal(first[0], again[0]) and torch.equal(first[1], labels)
    other = synthetic_set(draws, labels, seed=4, batch_size=64)
    assert Transform.calls == 2 * calls and not torch.equal(other[0], first[0])
    draws.forget()
    assert torch.equal(synthetic_set(draws, labels, seed=3, batch_size=64)[0], first[0])  # seeded
    assert Transform.calls == 3 * calls
