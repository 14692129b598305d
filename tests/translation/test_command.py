"""``latent-transforms train-translation``: one command trains a translator bundle from two folders of
unpaired images (labels from a CSV or the file names) or the phantom, and re-running it resumes."""

from __future__ import annotations

import json

import numpy as np
import pytest

from latent_transforms.cli import build_parser, main
from latent_transforms.errors import ConfigError
from latent_transforms.translation import load_translator

TINY = [
    "--resolution", "16", "--width", "4", "--blocks", "1", "--disc-width", "4", "--predictor-width", "4",
    "--batch", "4", "--quiet", "--device", "cpu",
]  # fmt: skip


def _folders(tmp_path):
    """MRI slices named with the patient's age; CT slices listed in a CSV."""
    rng = np.random.default_rng(0)
    mri, ct = tmp_path / "mri", tmp_path / "ct"
    (mri / "p1").mkdir(parents=True)
    ct.mkdir()
    for i, age in enumerate((41, 57, 63)):
        np.save(mri / "p1" / f"slice{i}_age{age}.npy", rng.uniform(0, 1900, (20, 20)).astype(np.float32))
    rows = ["file,age"]
    for i, age in enumerate((35, 70)):
        np.save(ct / f"ct{i}.npy", rng.uniform(-1000, 2000, (20, 20)).astype(np.float32))
        rows.append(f"ct{i}.npy,{age}")
    (tmp_path / "ct.csv").write_text("\n".join(rows) + "\n")
    return mri, ct, tmp_path / "ct.csv"


def test_two_folders_with_labels_from_file_names_and_a_csv_train_a_duiit_bundle(tmp_path, capsys):
    mri, ct, csv = _folders(tmp_path)
    out = tmp_path / "run"
    argv = [
        "train-translation", "--source", str(mri), "--source-label-pattern", r"age(\d+)", "--target", str(ct),
        "--target-labels", str(csv), "--label-column", "age", "--task", "regression", "--epochs", "2",
        "--out", str(out), "--name", "toy mri to ct", *TINY,
    ]  # fmt: skip
    assert main(argv) == 0
    bundle = load_translator(out / "bundle")
    assert bundle.config.task == "regression" and bundle.config.source_names == ["mri"]
    assert bundle.config.training["name"] == "toy mri to ct" and bundle.config.training["steps"] == 2
    assert bundle.config.training["command"].startswith("latent-transforms train-translation --source")
    labels = [41.0, 57.0, 63.0, 35.0, 70.0]
    assert bundle.config.label_mean == pytest.approx(float(np.mean(labels)))
    assert "wrote the translator bundle" in capsys.readouterr().out
    history = json.loads((out / "history.json").read_text())
    assert [row["epoch"] for row in history] == [1, 2] and "prediction" in history[0]


def test_a_stopped_run_resumes_when_the_same_command_runs_again(tmp_path, capsys):
    out = tmp_path / "run"
    argv = [
        "train-translation", "--source", "phantom:mri:patients=0-1,slices=2", "--target",
        "phantom:ct:patients=2-3,slices=2", "--epochs", "2", "--out", str(out), *TINY,
    ]  # fmt: skip
    assert main([*argv, "--minutes", "0"]) == 0  # stops after one step
    assert "stopped at step 1 of 2" in capsys.readouterr().out
    assert not (out / "bundle").exists()
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "steps=1/2" in text and "wrote the translator bundle" in text
    assert load_translator(out / "bundle").config.task is None  # no --task: a plain CycleGAN


def test_overlapping_phantom_patients_are_refused(tmp_path):
    argv = [
        "train-translation", "--source", "phantom:mri:patients=0-2,slices=1", "--target",
        "phantom:ct:patients=2-3,slices=1", "--out", str(tmp_path / "o"), *TINY,
    ]  # fmt: skip
    with pytest.raises(ConfigError, match="overlap"):
        build_parser().parse_args(argv).func(build_parser().parse_args(argv))


def test_a_bad_phantom_spec_exits_with_the_syntax(tmp_path):
    argv = ["train-translation", "--source", "phantom:mri:patient=1", "--target", "phantom:ct", "--out", "o"]
    with pytest.raises(SystemExit, match="patients=A-B"):
        main([*argv, *TINY])
