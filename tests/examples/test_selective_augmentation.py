"""``examples/selective_augmentation/run.py`` end to end on generated toy data (what CI runs), resuming,
and the pieces: the toy data, the synthetic rows and the statistics."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from examples.selective_augmentation.pipeline import ExperimentConfig, make_toy_medmnist, open_splits
from examples.selective_augmentation.report import collect, paper_pattern, statistics_tables

ROOT = Path(__file__).resolve().parents[2]
RUN = ROOT / "examples" / "selective_augmentation" / "run.py"


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    run = subprocess.run(
        [sys.executable, str(RUN), *args, "--no-progress"], cwd=cwd, env=env, capture_output=True, text=True
    )
    assert run.returncode == 0, f"run.py failed:\n{run.stdout[-4000:]}\n{run.stderr[-4000:]}"
    return run


@pytest.fixture(scope="module")
def quick(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("matplotlib")
    pytest.importorskip("scikit_posthocs")
    work = tmp_path_factory.mktemp("selective")
    _run(["--quick", "--out", "run"], work)
    return work / "run"


@pytest.mark.slow
def test_quick_run_writes_every_row_the_gan_scores_and_the_figures(quick):
    data = json.loads((quick / "results.json").read_text())
    assert set(data) >= {"gan", "methods", "command", "commit", "wilcoxon_vs_baseline", "friedman_nemenyi"}
    assert set(data["gan"]) == {"efficientnet-lite0", "task-resnet"}
    for scores in data["gan"].values():
        assert {"fid", "precision", "recall", "per_class"} <= set(scores) and set(scores["per_class"]) == {
            "0",
            "1",
        }
    methods = data["methods"]
    assert list(methods) == list(ExperimentConfig().rows)
    for row in methods.values():
        assert len(row["accuracy"]) == 2 and len(row["auc"]) == 2
    toy_train = 48
    assert methods["gan_r0.5"]["synthetic"] == [toy_train // 2] * 2  # r · N_i per class
    assert methods["selective_r1.0"]["synthetic"] == [toy_train] * 2
    assert methods["sg2sample"]["p"] == 0.5 and methods["baseline"]["p"] is None
    report = (quick / "report.md").read_text()
    assert "Selective augmentation, r = 0.5" in report and "Xue et al." in report
    for name in ("samples-per-class.png", "kept-vs-rejected.png", "fid-curve.png"):
        assert (quick / name).stat().st_size > 1000


@pytest.mark.slow
def test_rerunning_resumes_from_the_stored_stages(quick, tmp_path):
    before = json.loads((quick / "results.json").read_text())["methods"]
    run = _run(["--quick", "--out", str(quick), "--report", str(tmp_path)], quick.parent)
    assert "wrote" in run.stdout
    after = json.loads((tmp_path / "results.json").read_text())["methods"]
    assert after == before


@pytest.mark.slow
def test_work_that_depends_on_the_gan_is_stored_per_generator_so_another_gan_never_reuses_it(quick):
    from latent_transforms import GanBundle

    fingerprint = GanBundle.from_pretrained(quick / "work" / "gan" / "bundle").fingerprint
    per_gan = quick / "work" / f"gan-{fingerprint[:12]}"
    assert (per_gan / "fidelity.json").is_file()
    assert (per_gan / "rows" / "selective_r0.5" / "seed0.json").is_file()
    assert (per_gan / "rows" / "sg2sample" / "seed1.json").is_file()
    assert (per_gan / "synthetic").is_dir() and (per_gan / "latents").is_dir()
    # rows without a GAN are shared by every generator
    assert (quick / "work" / "rows" / "baseline" / "seed0.json").is_file()
    assert not (per_gan / "rows" / "baseline").exists()
    assert not (quick / "work" / "fidelity.json").exists()


def _copy_of_the_quick_gan(quick: Path, tmp_path: Path) -> tuple[ExperimentConfig, dict]:
    """The quick run's GAN folder and task network copied into ``tmp_path``: a quick config pointing there
    (no progress) and the GAN's ``done.json``."""
    from examples.selective_augmentation.pipeline import quick_config

    shutil.copytree(quick / "work" / "gan", tmp_path / "work" / "gan")
    shutil.copytree(quick / "work" / "rows" / "baseline", tmp_path / "work" / "rows" / "baseline")
    cfg = quick_config()
    cfg.out, cfg.progress = str(tmp_path), False
    return cfg, json.loads((tmp_path / "work" / "gan" / "done.json").read_text())


@pytest.mark.slow
def test_a_finished_gan_continues_on_class_balanced_batches_to_a_larger_kimg(quick, tmp_path):
    from examples.selective_augmentation.pipeline import Experiment
    from latent_transforms.training.checkpoint import load_training_state

    cfg, done = _copy_of_the_quick_gan(quick, tmp_path)
    cfg.recipe.kimg = done["kimg"]  # finished: the bundle is loaded, nothing trains
    Experiment(cfg).gan()
    assert load_training_state(tmp_path / "work" / "gan")["cur_nimg"] == round(done["kimg"] * 1000)
    cfg.recipe.kimg, cfg.recipe.class_balance = done["kimg"] + 0.064, True
    Experiment(cfg).gan()
    state = load_training_state(tmp_path / "work" / "gan")
    assert state["cur_nimg"] >= round((done["kimg"] + 0.064) * 1000)
    assert json.loads(state["options"])["class_balance"] is True
    assert json.loads((tmp_path / "work" / "gan" / "done.json").read_text())["kimg"] > done["kimg"]


@pytest.mark.slow
def test_the_class_recall_rule_picks_the_kept_snapshot_whose_worst_class_is_best_covered(quick, tmp_path):
    from examples.selective_augmentation.pipeline import Experiment
    from examples.selective_augmentation.report import selection_lines
    from latent_transforms import GanBundle
    from latent_transforms.training import snapshot_bundles

    cfg, done = _copy_of_the_quick_gan(quick, tmp_path)
    cfg.recipe.kimg, cfg.recipe.select = done["kimg"], "class-recall"
    with pytest.raises(ValueError, match="kept no snapshots"):  # trained without them: nothing to choose
        Experiment(cfg).gan()
    cfg.recipe.kimg = done["kimg"] + 0.256  # continued with the rule: snapshots are kept from now on
    chosen = Experiment(cfg).gan()
    kept = snapshot_bundles(tmp_path / "work" / "gan")
    assert len(kept) == 2
    selection = json.loads((tmp_path / "work" / "gan" / "selection.json").read_text())
    assert selection["settings"]["split"] == "val"
    assert set(selection["snapshots"]) == {path.name for _, path in kept}

    def worst(name: str) -> float:
        return min(c["recall"] for c in selection["snapshots"][name]["per_class"].values())

    best = max(selection["snapshots"], key=lambda n: (worst(n), -selection["snapshots"][n]["fid"]))
    assert selection["chosen"] == best
    snapshots = {path.name: GanBundle.from_pretrained(path).fingerprint for _, path in kept}
    assert chosen.fingerprint == snapshots[best] and len(set(snapshots.values())) == 2
    # a rerun reuses the stored scores and makes the same choice
    stamp = (tmp_path / "work" / "gan" / "selection.json").read_text()
    again = Experiment(cfg).gan()
    assert again.fingerprint == chosen.fingerprint
    assert json.loads((tmp_path / "work" / "gan" / "selection.json").read_text()) == json.loads(stamp)
    table = "\n".join(selection_lines(selection))
    assert "checkpoint choice" in table and table.count("| yes |") == 1 and best in table


def test_toy_data_has_two_separable_classes_in_the_medmnist_layout(tmp_path):
    path = make_toy_medmnist(tmp_path / "toy.npz", per_class=(10, 4, 6))
    splits = open_splits(ExperimentConfig(data=f"medmnist:{path}", resolution=16, out=str(tmp_path)))
    assert [len(splits[s]) for s in ("train", "val", "test")] == [10, 4, 6]
    item = splits["train"][1]
    assert item["image"].shape == (1, 16, 16) and item["label"] == 1


def test_statistics_compare_rows_over_runs_and_test_each_against_the_baseline():
    def record(acc):
        return {
            "test": dict.fromkeys(
                ("accuracy", "auc", "sensitivity", "specificity", "balanced_accuracy"), acc
            ),
            "p": None,
            "synthetic": 0,
            "best_epoch": 1,
        }

    rows = {
        "baseline": [record(a) for a in (0.70, 0.71, 0.72, 0.73, 0.74)],
        "selective_r0.5": [record(a) for a in (0.80, 0.81, 0.82, 0.83, 0.84)],
        "gan_r0.5": [record(a) for a in (0.60, 0.61, 0.62, 0.63, 0.64)],
    }
    methods = collect(rows)
    comparison, tests = statistics_tables(methods)
    assert comparison.friedman["accuracy"].pvalue < 0.05
    assert tests["selective_r0.5"]["accuracy"]["median_difference"] == pytest.approx(0.10)
    assert tests["selective_r0.5"]["accuracy"]["pvalue"] == pytest.approx(0.0625)  # 5 runs: the floor
    assert torch.tensor(methods["gan_r0.5"]["accuracy"]).mean() < 0.65


def test_paper_pattern_says_which_of_xue_et_al_orderings_the_measured_means_follow():
    def rows(acc):
        return [
            {
                "test": dict.fromkeys(
                    ("accuracy", "auc", "sensitivity", "specificity", "balanced_accuracy"), a
                ),
                "p": None,
                "synthetic": 0,
                "best_epoch": 1,
            }
            for a in acc
        ]

    methods = collect(
        {
            "baseline": rows((0.70, 0.72)),
            "gan_r0.5": rows((0.75, 0.77)),  # unfiltered beats the baseline: against the paper
            "selective_r0.5": rows((0.80, 0.80)),
        }
    )
    checks = {(c["better"], c["worse"]): c for c in paper_pattern(methods)}
    # only the orderings whose two rows were run
    assert set(checks) == {
        ("baseline", "gan_r0.5"),
        ("selective_r0.5", "baseline"),
        ("selective_r0.5", "gan_r0.5"),
    }
    assert checks[("baseline", "gan_r0.5")]["holds"] is False
    assert checks[("baseline", "gan_r0.5")]["here"] == pytest.approx((0.71, 0.76))
    assert checks[("baseline", "gan_r0.5")]["paper"] == (0.753, 0.726)
    assert checks[("selective_r0.5", "baseline")]["holds"] is True
    assert checks[("selective_r0.5", "gan_r0.5")]["holds"] is True
