"""What augmentation costs inside training: a Pix2Pix epoch with each policy against the epoch without.

The performance issue's target: a Pix2Pix epoch with LatentAugment at p = 0.3 costs at most 1.5x the
epoch without augmentation. The epoch is the benchmark example's training loop
(``examples/pix2pix_mri2ct``: ``train_pix2pix`` with the policy applied by ``GPUAugment`` to each
paired batch, latents found by dataset key), over ``--batches`` batches of ``--batch`` images of the
setting (``benchmarks.setting``: 256 px, 2 channels, channel_base 16384 by default); Pix2Pix has its
default 64 filters. Two epochs are run per policy and the second is timed (the first pays for lazy
loading and cuDNN autotuning). ::

    python -m benchmarks.training_overhead --device cuda
    python -m benchmarks.training_overhead --device cpu --gan builtin:pelvis-phantom-64 --batches 4

Writes ``benchmarks/results/training_overhead-<device>.json``.
"""

from __future__ import annotations

import argparse
import tempfile
from typing import Any

import torch
from torch.utils.data import Dataset

from benchmarks.common import script_main
from benchmarks.setting import add_setting_arguments, add_speed_arguments, build_setting, speed_options
from examples.pix2pix_mri2ct.model import Pix2PixOptions
from examples.pix2pix_mri2ct.training import train_pix2pix
from latent_transforms import IntensityWindow, LatentAugment, LatentCache, SG2Sample, StandardDA


class _Slices(Dataset):
    """``n`` items ``{"mri", "ct", "key"}`` cycling over the setting's real images (generator range)."""

    def __init__(self, real: torch.Tensor, n: int) -> None:
        self.real, self.n = real.cpu(), n
        self.resolution = real.shape[-1]
        self.preloaded = True

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> dict[str, Any]:
        j = i % len(self.real)
        return {"mri": self.real[j, :1], "ct": self.real[j, 1:], "key": f"bench/{j:04d}"}


def run(args: argparse.Namespace) -> dict[str, Any]:
    device = torch.device(args.device)
    identity = {"mri": IntensityWindow(-1, 1), "ct": IntensityWindow(-1, 1)}  # data already in [-1, 1]
    options = Pix2PixOptions(epochs=2, epochs_decay=0, batch_size=args.batch, ngf=args.ngf, ndf=args.ngf)
    rows = []
    with tempfile.TemporaryDirectory() as folder, tempfile.TemporaryDirectory() as keyed:
        setting = build_setting(args, folder)
        cache = LatentCache(keyed, fingerprint=setting.bundle.fingerprint, settings={"space": "w"})
        cache.put_batch([f"bench/{j:04d}" for j in range(len(setting.real))], setting.w.cpu())
        cache.flush()
        data = _Slices(setting.real, args.batches * args.batch)
        common = {"p": args.p, "seed": 0, "value_range": "generator", "device": device}
        policies: dict[str, Any] = {
            "none": None,
            "StandardDA": StandardDA(p=args.p, seed=0, device=device),
            "SG2Sample": SG2Sample(setting.bundle, **common),
            "LatentAugment": LatentAugment(
                setting.bundle,
                cache,
                setting.stats,
                perceptual=setting.perceptual,
                steps=args.steps,
                **speed_options(args),
                on_missing="raise",
                **common,
            ),
        }
        for name, transform in policies.items():
            _, log = train_pix2pix(data, transform, windows=identity, options=options, device=device, seed=0)
            seconds = log.epochs[-1]["seconds"]
            calls = log.augment_seconds[len(log.augment_seconds) // 2 :]
            rows.append(
                {
                    "policy": name,
                    "epoch_seconds": seconds,
                    "batches": args.batches,
                    "augment_seconds_per_batch": round(sum(calls) / len(calls), 6) if calls else 0.0,
                    "augmented_fraction": log.summary()["augmented_fraction"],
                }
            )
            print(f"{name}: {seconds:.3f} s per epoch of {args.batches} batches", flush=True)
    base = rows[0]["epoch_seconds"]
    for row in rows:
        row["vs_no_augmentation"] = round(row["epoch_seconds"] / base, 3)
    return {
        "setting": {
            **setting.describe(args),
            "p": args.p,
            "pix2pix_ngf": args.ngf,
        },
        "rows": rows,
    }


def build_parser() -> argparse.ArgumentParser:
    """The command line (``benchmarks.run`` builds its settings from it too)."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_setting_arguments(parser)
    parser.add_argument("--batches", type=int, default=20, help="batches per timed epoch")
    parser.add_argument("--p", type=float, default=0.3, help="augmentation probability (default 0.3)")
    parser.add_argument("--ngf", type=int, default=64, help="Pix2Pix base filters (default 64)")
    add_speed_arguments(parser)
    parser.add_argument("--tag", default="", help="suffix of the result file name")
    parser.add_argument("--no-write", action="store_true", help="print only (smoke runs)")
    return parser


def markdown(result: dict[str, Any]) -> str:
    lines = ["| policy | s per epoch | vs no augmentation | augmentation s / batch |", "|---|---|---|---|"]
    for r in result["rows"]:
        lines.append(
            f"| {r['policy']} | {r['epoch_seconds']:.3f} | {r['vs_no_augmentation']:.2f}x | "
            f"{r['augment_seconds_per_batch']:.4f} |"
        )
    return "\n".join(lines)


def main() -> None:
    script_main("training_overhead", "benchmarks.training_overhead", build_parser, run, markdown)


if __name__ == "__main__":
    main()
