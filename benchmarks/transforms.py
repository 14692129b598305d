"""Time per batch of the three augmentation policies, side by side in one run.

The performance issue's reference setting by default: 256 px, 2 channels (MRI+CT), channel_base 16384,
mapping depth 2, batch 16, LatentAugment F1 preset (K = 9, every loss term on, 64 x 64 perceptual patches
on EfficientNet-Lite0), random-weight generator and discriminator (timing does not depend on the
weights). The "real" images are G(w) of mapped latents, stored in a temporary latent cache with their
dataset statistics, so LatentAugment runs exactly as it would on inverted data. ::

    python -m benchmarks.transforms --device cuda
    python -m benchmarks.transforms --device cpu --resolution 64 --channel-base 2048 --batch 16 --repeats 3

Writes ``benchmarks/results/transforms-<device>.json`` and prints a Markdown table with each policy's
median time per batch, its ratio to SG2Sample, and LatentAugment against the paper's 2.55 s per batch of
16 (RTX A5000).
"""

from __future__ import annotations

import argparse
import tempfile
from typing import Any

import torch

from benchmarks.common import measure_side_by_side, write_result
from benchmarks.setting import build_setting, speed_options, timing_parser
from latent_transforms import (
    LatentAugment,
    SG2Sample,
    StandardDA,
)

PAPER_LATENT_AUGMENT_S = (
    2.55  # Tronchin et al. 2023, Table II: one batch of 16 paired 256 px images, RTX A5000
)


def run(args: argparse.Namespace) -> dict[str, Any]:
    device = torch.device(args.device)
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        setting = build_setting(args, folder)
        bundle, stats, perceptual, cache = setting.bundle, setting.stats, setting.perceptual, setting.cache
        batch, _ = setting.images()

        def latent_augment(**speed: Any) -> LatentAugment:
            return LatentAugment(
                bundle,
                cache,
                stats,
                p=1.0,
                seed=0,
                value_range="generator",
                perceptual=perceptual,
                on_missing="raise",
                steps=args.steps,
                **speed,
            )

        policies = {
            "StandardDA": StandardDA(p=1.0, seed=0),
            "SG2Sample": SG2Sample(bundle, p=1.0, seed=0, value_range="generator"),
            "LatentAugment": latent_augment(**speed_options(args)),
        }
        # A compiled walk's kernels are invisible to the FLOP counter: count on its eager twin.
        twin = latent_augment(precision=args.precision) if args.compile_mode else None
        timings = measure_side_by_side(
            {name: (lambda t=transform: t(batch)) for name, transform in policies.items()},
            device,
            warmup=args.warmup,
            repeats=args.repeats,
            flops_of={"LatentAugment": lambda: twin(batch)} if twin is not None else None,
        )
        for name, transform in policies.items():
            rows.append({"policy": name, "repr": repr(transform), **timings[name]})
            print(f"{name}: {timings[name]['median_s'] * 1000:.2f} ms per batch", flush=True)
    sg2 = next(r["median_s"] for r in rows if r["policy"] == "SG2Sample")
    for row in rows:
        row["vs_sg2sample"] = row["median_s"] / sg2
    la = next(r for r in rows if r["policy"] == "LatentAugment")
    la["vs_paper_2_55_s"] = PAPER_LATENT_AUGMENT_S / la["median_s"]
    return {
        "setting": setting.describe(args),
        "rows": rows,
    }


def build_parser() -> argparse.ArgumentParser:
    """The command line (``benchmarks.run`` builds its settings from it too)."""
    return timing_parser(__doc__)


def main() -> None:
    parser = build_parser()
    args = parser.parse_args()
    result = run(args)
    print("| policy | ms per batch | vs SG2Sample |")
    print("|---|---|---|")
    for row in result["rows"]:
        print(f"| {row['policy']} | {row['median_s'] * 1000:.2f} | {row['vs_sg2sample']:.2f}x |")
    if not args.no_write:
        name = "transforms" + (f"-{args.tag}" if args.tag else "")
        path = write_result(name, result, torch.device(args.device), "benchmarks.transforms")
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
