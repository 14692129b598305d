"""`latent-transforms train`: the phantom end to end, with scoring, held-out evaluation and resume."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from latent_transforms import GanBundle
from latent_transforms.cli import main
from latent_transforms.data.open import open_paired_dataset, parse_phantom_spec
from latent_transforms.errors import ConfigError
from latent_transforms.training import snapshot_bundles
from latent_transforms.training.checkpoint import load_training_state

TINY = [
    "--resolution", "16", "--z-dim", "8", "--w-dim", "8", "--channel-base", "128", "--channel-max", "16",
    "--batch", "4", "--snap", "0.008", "--metric-kimg", "0.008", "--metric-samples", "8",
    "--eval-samples", "8", "--metric-network", "random", "--workers", "0",
]  # fmt: skip


def test_train_command_trains_scores_evaluates_and_resumes(tmp_path, capsys):
    out = tmp_path / "run"
    args = ["train", "--data", "phantom:patients=10,slices=2", "--out", str(out), *TINY]
    assert main([*args, "--kimg", "0.008"]) == 0
    first = GanBundle.from_pretrained(out / "bundle")
    training = first.config.training
    assert training["command"].startswith("latent-transforms train --data phantom:patients=10,slices=2")
    assert "held-out patients" in training["evaluation"]
    for key in ("mri_fid", "ct_precision", "mean_recall", "mean_f1"):
        assert np.isfinite(training[key]), key
    assert "7 patients" in training["data"]  # 70 % of 10 patients train the GAN
    card = (out / "bundle" / "README.md").read_text()
    assert "mean_fid" in card and "latent-transforms train" in card
    # same command with a larger --kimg continues the run (given twice: argparse keeps the last)
    assert main([*args, "--kimg", "0.008", "--kimg", "0.016"]) == 0
    command = GanBundle.from_pretrained(out / "bundle").config.training["command"]
    assert command.count("--kimg") == 1 and command.endswith("--kimg 0.016")  # the command to reproduce it
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [r["kimg"] for r in log] == [0.008, 0.016]
    assert all("score/fid" in r for r in log)
    assert capsys.readouterr().out.count("wrote the selected bundle") == 2


def test_train_command_refuses_an_unknown_data_source(tmp_path, capsys):
    code = main(["train", "--data", str(tmp_path / "missing"), "--out", str(tmp_path / "o"), *TINY])
    assert code == 2
    assert "neither 'phantom" in capsys.readouterr().err


def test_train_command_reads_8bit_png_folders_with_their_window(tmp_path):
    rng = np.random.default_rng(0)
    for modality in ("MRI", "CT"):
        (tmp_path / "slices" / modality).mkdir(parents=True)
        for patient in range(4):
            for s in range(2):
                pixels = rng.integers(0, 256, (16, 16), dtype=np.uint8)
                Image.fromarray(pixels).save(tmp_path / "slices" / modality / f"p{patient}_{s}.png")
    out = tmp_path / "run"
    args = ["train", "--data", str(tmp_path / "slices"), "--out", str(out), *TINY, "--kimg", "0.004"]
    assert main([*args, "--split", "0.5,0.5", "--metric-network", "none"]) == 0
    bundle = GanBundle.from_pretrained(out / "bundle")
    assert [(m.window.low, m.window.high) for m in bundle.config.modalities] == [(0, 255), (0, 255)]


def test_phantom_spec_parsing():
    assert parse_phantom_spec("phantom") == {"n_patients": 40, "slices_per_patient": 32, "seed": 0}
    with pytest.raises(ConfigError, match="patients=N"):
        parse_phantom_spec("phantom:patient=3")
    assert len(open_paired_dataset("phantom:patients=3,slices=2,seed=5", resolution=16)) == 6


def _labelled_npz(path):
    rng = np.random.default_rng(0)
    arrays = {}
    for split, n in (("train", 12), ("val", 4), ("test", 4)):
        arrays[f"{split}_images"] = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        arrays[f"{split}_labels"] = (np.arange(n) % 3)[:, None].astype(np.uint8)
    np.savez(path, **arrays)
    return path


def test_train_command_trains_a_class_conditional_gan_on_labelled_images(tmp_path):
    data = _labelled_npz(tmp_path / "toy.npz")
    out = tmp_path / "run"
    args = ["train", "--data", f"medmnist:{data}", "--modalities", "xray", "--out", str(out), *TINY]
    assert main([*args, "--kimg", "0.008", "--augment", "bgc", "--augment-strength", "ada"]) == 0
    bundle = GanBundle.from_pretrained(out / "bundle")
    assert bundle.config.c_dim == 3 and bundle.modalities == ["xray"]
    assert bundle.config.modalities[0].window.high == 255.0
    training = bundle.config.training
    assert "12 labelled images" in training["data"] and "validation split" in training["evaluation"]
    assert training["augment"] == "bgc" and training["augment_strength"] == "ada"
    # a finished run continues, on class-balanced batches, to a larger --kimg
    more = ["--kimg", "0.012", "--augment", "bgc", "--augment-strength", "ada", "--class-balance"]
    assert main([*args, *more, "--keep-snapshots"]) == 0
    state = load_training_state(out)
    assert json.loads(state["options"])["class_balance"] is True and state["cur_nimg"] >= 12
    assert json.loads(state["options"])["keep_snapshots"] is True
    assert [kimg for kimg, _ in snapshot_bundles(out)] == [state["cur_nimg"] / 1000]
    out2 = tmp_path / "uncond"
    args2 = ["train", "--data", f"medmnist:{data}", "--unconditional", "--out", str(out2), *TINY]
    assert main([*args2, "--kimg", "0.004"]) == 0
    plain = GanBundle.from_pretrained(out2 / "bundle")
    assert plain.config.c_dim == 0 and plain.modalities == ["image"]
