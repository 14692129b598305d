"""``latent-transforms train-diffusion``: one command trains a bundle on labelled or paired data, resumes,
and logs the FID curve."""

from __future__ import annotations

import json

import numpy as np

from latent_transforms import load_diffusion
from latent_transforms.cli import build_parser, main
from latent_transforms.training import snapshot_bundles

TINY = [
    "--resolution", "16", "--channels", "8,16", "--attention", "0,1", "--head-channels", "8",
    "--norm-groups", "8", "--timesteps", "20", "--batch", "4", "--snap", "0.004", "--metric-kimg", "0.008",
    "--metric-samples", "4", "--metric-steps", "2", "--sample-steps", "2", "--metric-network", "random",
    "--quiet", "--device", "cpu",
]  # fmt: skip


def _medmnist(tmp_path, n: int = 12):
    rng = np.random.default_rng(0)
    arrays = {}
    for split in ("train", "val", "test"):
        arrays[f"{split}_images"] = rng.integers(0, 256, size=(n, 16, 16), dtype=np.uint8)
        arrays[f"{split}_labels"] = (np.arange(n) % 2).reshape(-1, 1)
    path = tmp_path / "toy.npz"
    np.savez(path, **arrays)
    return path


def test_labelled_images_train_a_class_conditional_bundle_and_rerunning_resumes(tmp_path, capsys):
    data = f"medmnist:{_medmnist(tmp_path)}"
    out = tmp_path / "run"

    def argv(kimg: str) -> list[str]:
        return [
            "train-diffusion",
            "--data",
            data,
            "--out",
            str(out),
            "--modalities",
            "xray",
            "--kimg",
            kimg,
            *TINY,
        ]

    assert main(argv("0.008")) == 0
    bundle = load_diffusion(out / "bundle")
    assert bundle.config.c_dim == 2 and bundle.modalities == ["xray"] and bundle.config.null_label == 2
    assert bundle.config.modalities[0].window.high == 255
    assert bundle.config.training["command"].startswith("latent-transforms train-diffusion --data medmnist:")
    records = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [r["kimg"] for r in records] == [0.004, 0.008] and "score/fid" in records[-1]
    assert "DiffusionTrainer(" in capsys.readouterr().out
    assert main([*argv("0.012"), "--keep-snapshots"]) == 0  # the same folder: resumes from 8 images
    records = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [r["kimg"] for r in records] == [0.004, 0.008, 0.012]
    assert [kimg for kimg, _ in snapshot_bundles(out)] == [0.012]  # kept from the resumed part on


def test_paired_slices_train_on_their_modalities_as_channels(tmp_path):
    out = tmp_path / "run"
    argv = [
        "train-diffusion",
        "--data",
        "phantom:patients=4,slices=2",
        "--out",
        str(out),
        "--kimg",
        "0.004",
        *TINY,
    ]
    assert main(argv) == 0
    bundle = load_diffusion(out / "bundle")
    assert bundle.modalities == ["mri", "ct"] and bundle.config.c_dim == 0
    assert bundle.config.modalities[1].window.low == -1000


def test_every_option_has_help_and_the_cpu_defaults():
    parser = build_parser()
    args = parser.parse_args(["train-diffusion", "--data", "phantom", "--out", "x"])
    assert (args.resolution, args.kimg, args.batch, args.lr, args.timesteps) == (32, 200, 32, 5e-4, 1000)
    assert args.metric_network == "efficientnet-lite0" and args.null_class and args.resume
    sub = next(
        a for a in parser._actions if hasattr(a, "choices") and a.choices and "train-diffusion" in a.choices
    )
    command = sub.choices["train-diffusion"]
    undocumented = [a.dest for a in command._actions if a.dest != "help" and not a.help]
    assert undocumented == []
