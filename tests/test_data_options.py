"""Your own data from the command line: any channel names and counts, the patient pattern and the mask
threshold on every command that reads --data, labelled data only where it makes sense, honest splits,
budgets and progress, and no documented flag that does not exist."""

from __future__ import annotations

import argparse
import json
import logging
import re
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from latent_transforms import GanBundle, GanConfig
from latent_transforms.arguments import data_options, open_split
from latent_transforms.cli import build_parser, main

ROOT = Path(__file__).resolve().parent.parent
DATA_COMMANDS = ["train", "invert", "augment", "evaluate", "tune"]
TINY_TRAIN = [
    "--resolution", "16", "--z-dim", "8", "--w-dim", "8", "--channel-base", "128", "--channel-max", "16",
    "--batch", "4", "--snap", "0.004", "--workers", "0", "--kimg", "0.004", "--metric-network", "none",
]  # fmt: skip


def _subparsers() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def _folder(root: Path, channels: list[str], names: list[str], size: int = 16) -> Path:
    rng = np.random.default_rng(0)
    for channel in channels:
        (root / channel.upper()).mkdir(parents=True)
        for name in names:
            pixels = rng.integers(0, 256, (size, size), dtype=np.uint8)
            Image.fromarray(pixels).save(root / channel.upper() / f"{name}.png")
    return root


def test_every_command_that_reads_data_takes_the_same_data_flags() -> None:
    commands = _subparsers()
    for flag in ("modalities", "patient_pattern", "mask_threshold"):
        actions = {name: {a.dest: a for a in commands[name]._actions}.get(flag) for name in commands}
        users = [name for name, action in actions.items() if action is not None]
        assert set(DATA_COMMANDS) <= set(users), flag
        shared = [actions[name] for name in DATA_COMMANDS]
        assert all(a.help == shared[0].help and a.default is None for a in shared), flag  # type: ignore[union-attr]
    evaluate = commands["evaluate"].parse_args(["--synthetic", "real", "--data", "phantom"])
    assert evaluate.real == "phantom"  # --data is --real's other name
    help_text = " ".join(commands["invert"].format_help().split())
    assert "Labelled images" in help_text and "train only" in help_text  # which commands read them


def test_train_honours_any_channel_names_and_the_patient_pattern(tmp_path: Path) -> None:
    names = [f"case{p}-s{s}" for p in "ABCD" for s in range(2)]  # no '_': the default pattern sees 8 patients
    data = _folder(tmp_path / "slices", ["t1", "t2", "flair"], names)
    out = tmp_path / "run"
    args = ["train", "--data", str(data), "--out", str(out), *TINY_TRAIN, "--split", "0.5,0.5"]
    assert main([*args, "--modalities", "t1,t2,flair", "--patient-pattern", r"^(?P<patient>case[A-Z])"]) == 0
    bundle = GanBundle.from_pretrained(out / "bundle")
    assert bundle.modalities == ["t1", "t2", "flair"] and bundle.config.img_channels == 3
    assert "4 slices of 2 patients" in bundle.config.training["data"]  # the pattern found 4 patients
    one = tmp_path / "one"
    _folder(one, ["xray"], names)
    assert (
        main(["train", "--data", str(one), "--out", str(tmp_path / "x"), *TINY_TRAIN, "--modalities", "xray"])
        == 0
    )
    assert GanBundle.from_pretrained(tmp_path / "x" / "bundle").modalities == ["xray"]


def test_invert_reads_a_folder_with_the_bundles_channels(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = GanConfig(resolution=16, z_dim=8, w_dim=8, channel_base=128, channel_max=16)
    config = config.replace(
        modalities=tuple(
            m.__class__(n, m.window) for m, n in zip(config.modalities, ["t1", "flair"], strict=True)
        )
    )
    gan = GanBundle.random(config).save_pretrained(tmp_path / "gan", w_stats_samples=64)
    data = _folder(tmp_path / "slices", ["t1", "flair"], [f"p{i}_{s}" for i in range(3) for s in range(2)])
    common = [
        "invert",
        "--gan",
        str(gan),
        "--data",
        str(data),
        "--steps",
        "3",
        "--perceptual",
        "none",
        "--no-stats",
    ]
    assert main([*common, "--cache", str(tmp_path / "cache")]) == 0  # opened as (t1, flair), not (mri, ct)
    err = capsys.readouterr().err
    assert re.search(r"projecting: +\d+%.*\| [0-3]/3 \[", err), err[-500:]  # a bar counts the batch's steps
    assert main([*common, "--cache", str(tmp_path / "c2"), "--modalities", "mri,ct"]) == 2
    assert "does not name the bundle's channels ['t1', 'flair']" in capsys.readouterr().err


def test_mask_threshold_reaches_the_dataset_and_is_refused_where_it_means_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = _folder(tmp_path / "slices", ["mri", "ct"], [f"p{i}_{s}" for i in range(2) for s in range(2)])
    args = argparse.Namespace(modalities=None, patient_pattern=None, mask_threshold=12.5)
    dataset = open_split(str(data), resolution=16, **data_options(args, ["mri", "ct"]))
    assert dataset.mask_threshold == 12.5 and dataset.modalities == ("mri", "ct")
    code = main(["invert", "--gan", "builtin:pelvis-phantom-64", "--data", "phantom", "--cache",
                 str(tmp_path / "c"), "--mask-threshold", "40"])  # fmt: skip
    assert code == 2 and "--mask-threshold 40.0 does not apply to --data 'phantom'" in capsys.readouterr().err


def test_labelled_data_is_refused_by_the_paired_only_commands_with_the_command_that_reads_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for label in ("cat", "dog"):
        (tmp_path / "classes" / label).mkdir(parents=True)
        for i in range(2):
            Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "classes" / label / f"{i}.png")
    code = main(["invert", "--gan", "builtin:pelvis-phantom-64", "--data", str(tmp_path / "classes"),
                 "--cache", str(tmp_path / "c")])  # fmt: skip
    assert code == 2 and "read by `latent-transforms train`" in capsys.readouterr().err
    code = main(["train", "--data", str(tmp_path / "classes"), "--out", str(tmp_path / "t"), *TINY_TRAIN,
                 "--patient-pattern", "^x"])  # fmt: skip
    assert code == 2 and "labelled images" in capsys.readouterr().err


def test_a_split_with_one_held_out_patient_is_warned_about(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="latent_transforms.data.splits"):
        open_split("phantom:patients=10,slices=2", resolution=16, split="test")
    assert "leaves one patient in 'test'" in caplog.text and "not a population" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="latent_transforms.data.splits"):
        open_split("phantom:patients=40,slices=1", resolution=16, split="test")
    assert "leaves one patient" not in caplog.text


def test_train_minutes_keeps_room_for_the_final_scoring_and_shows_the_budget(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from latent_transforms.training.data import TensorImages
    from latent_transforms.training.options import TrainingOptions
    from latent_transforms.training.trainer import Trainer

    config = GanConfig(resolution=16, z_dim=8, w_dim=8, channel_base=128, channel_max=16)
    data = TensorImages(torch.rand(16, 2, 16, 16) * 2 - 1, torch.zeros(16, dtype=torch.long))
    options = TrainingOptions(total_kimg=100, batch_size=4, snapshot_kimg=100, metric_kimg=100)
    trainer = Trainer(config, data, tmp_path / "run", options, device="cpu")
    score_seconds = 3.0

    called_at: list[float] = []

    class SlowScorer:  # the protocol FidScorer follows: a call, and an estimate of its time
        def __call__(self, generator: torch.nn.Module) -> dict[str, float]:
            called_at.append(time.monotonic())
            time.sleep(score_seconds)
            return {"fid": 1.0}

        def estimate_seconds(self, generator: torch.nn.Module) -> float:
            return score_seconds

    trainer.run(stop_at_kimg=0.004)  # the first step's one-off costs (seconds on a loaded machine) paid here
    trainer.scorer = SlowScorer()  # type: ignore[assignment]
    budget = 12.0
    started = time.monotonic()
    trainer.run(max_minutes=budget / 60, final_scorings=1.0)
    # The loop stops early enough that the last scoring and the caller's own (3 s each) fit in the budget:
    # the last scoring starts at about 12 - 6 s, plus at most one training step and the snapshot written
    # before it (3 s of slack for a loaded machine); without the reserve it would start after 12 s. Timed
    # at the scoring's start, not at the call's end, so that slower file writes under load do not decide.
    assert called_at, "no scoring"
    assert called_at[-1] - started < budget - score_seconds, called_at[-1] - started
    records = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert records[-1]["score/fid"] == 1.0  # the last checkpoint was scored inside the budget
    assert trainer.cur_nimg < 100_000
    shown = capsys.readouterr().err
    assert "min budget" in shown
    assert shown.count("min budget") > 3, shown  # the bar is redrawn while it trains, not only at its ends


def test_evaluate_reuses_a_cache_that_invert_keyed_by_dataset(tmp_path: Path) -> None:
    from latent_transforms import LatentAugment, Projector
    from latent_transforms.evaluation.real_data import open_real_data, prepare_latents
    from latent_transforms.evaluation.sampling import generate_samples
    from latent_transforms.features.perceptual import perceptual_network
    from latent_transforms.inversion.job import invert_to_cache

    bundle = GanBundle.random(GanConfig(resolution=16, z_dim=8, w_dim=8, channel_base=128, channel_max=16))
    bundle.compute_w_stats(64)
    real = open_real_data(bundle, "phantom:patients=10,slices=2", n_real=2, n_sources=3)
    projector = Projector(bundle, steps=2, perceptual=None, progress=False)
    net = perceptual_network("random")
    invert_to_cache(bundle, real.source_items, tmp_path / "cache", projector, key="dataset", perceptual=net)
    found = prepare_latents(bundle, real, tmp_path / "cache", steps=2, perceptual=net)
    assert found["reused"] and found["keys"] == "dataset" and found["inverted"] == 0
    transform = LatentAugment(bundle, tmp_path / "cache", None, p=1.0, perceptual=net, on_missing="raise",
                              value_range="generator", steps=1)  # fmt: skip
    samples = generate_samples(transform, 4, sources=real.sources, source_keys=real.source_keys)
    assert samples.shape == (4, 2, 16, 16)


def _documented_commands() -> list[tuple[str, str, str]]:
    """``(file, command, text)`` for each ``latent-transforms COMMAND ...`` in the docs, README, examples
    and benchmarks (continued lines joined), up to the end of its line or code span."""
    found = []
    files = [
        ROOT / "README.md",
        *sorted((ROOT / "docs").rglob("*.md")),
        *sorted((ROOT / "examples").rglob("*.py")),
    ]
    files += sorted((ROOT / "benchmarks").rglob("*.py")) + sorted((ROOT / "latent_transforms").rglob("*.py"))
    for path in files:
        text = re.sub(r"\\\n\s*", " ", path.read_text(encoding="utf-8"))
        for match in re.finditer(r"latent-transforms ([a-z][a-z-]+)((?:[^`\n\"']|'[^'\n]*')*)", text):
            found.append((str(path.relative_to(ROOT)), match.group(1), match.group(2)))
    return found


#: Flags of other programs that help texts quote: torchrun's, and NVIDIA's stylegan3 train.py's.
FOREIGN_FLAGS = {"--nproc_per_node", "--nproc-per-node", "--cfg"}


def test_no_doc_or_help_names_a_flag_the_command_does_not_have() -> None:
    commands = _subparsers()
    unknown = []
    checked = 0
    for where, command, text in _documented_commands():
        if command not in commands:
            continue
        options = {s for a in commands[command]._actions for s in a.option_strings}
        for flag in re.findall(r"(?<![\w-])(--[a-z][a-z0-9_-]*)", text):
            checked += 1
            if flag not in options:
                unknown.append(f"{where}: latent-transforms {command} {flag}")
    for name, parser in commands.items():  # a command's help names only its own flags
        options = {s for a in parser._actions for s in a.option_strings}
        for flag in re.findall(r"(?<![\w-])(--[a-z][a-z0-9_-]*)", parser.format_help()):
            checked += 1
            if flag not in options and flag not in FOREIGN_FLAGS:
                unknown.append(f"help of {name}: {flag}")
    assert checked > 100 and not unknown, unknown
