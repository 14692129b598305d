"""LatentAugment's speed knobs, each timed against the fp32 reference path in one run, with its error.

Every variant walks the same batch from the same latents ``w*`` with the same patch positions (one CPU
generator seed), so its output can be compared pixel for pixel with the fp32 reference: the PSNR of
the augmented images against the reference's (images in ``[-1, 1]``, peak-to-peak 2) is the accuracy
the performance issue asks for (>= 40 dB). Variants:

- ``fp32``: the reference (``precision="fp32"``, the default modulated-convolution path of the device,
  contiguous activations);
- ``fp32-grouped``: the grouped modulated convolution instead of the non-fused one;
- ``fp32-channels_last``: the synthesis network's activations in ``channels_last``;
- ``bf16``, ``bf16-channels_last``: CUDA autocast to bf16 for the networks (``w`` and Adam stay fp32);
  CUDA only (a CPU without native bf16 says nothing about a GPU).

Each row: median seconds per batch (warm-up, synchronised), peak CUDA memory, FLOPs of one call
(``torch.utils.flop_counter``), the share of the GPU's dense bf16 peak, the speed-up over ``fp32`` and the
PSNR against it. ::

    python -m benchmarks.latent_augment_variants --device cuda
    python -m benchmarks.latent_augment_variants --device cpu --gan builtin:pelvis-phantom-64 --repeats 3

Writes ``benchmarks/results/latent_augment_variants-<device>.json``.
"""

from __future__ import annotations

import argparse
import math
import tempfile
from collections.abc import Callable
from typing import Any

import torch

from benchmarks.common import measure, script_main
from benchmarks.setting import Setting, add_setting_arguments, build_setting
from latent_transforms import LatentAugment

#: name -> (precision, modulation path, channels_last)
VARIANTS: dict[str, tuple[str, str, bool]] = {
    "fp32": ("fp32", "auto", False),
    "fp32-grouped": ("fp32", "grouped", False),
    "fp32-channels_last": ("fp32", "auto", True),
    "bf16": ("bf16", "auto", False),
    "bf16-channels_last": ("bf16", "auto", True),
}


def psnr(a: torch.Tensor, b: torch.Tensor, peak_to_peak: float = 2.0) -> float:
    """PSNR in dB of ``a`` against ``b`` (``inf`` when identical)."""
    mse = float((a.float() - b.float()).pow(2).mean())
    return math.inf if mse == 0 else 10 * math.log10(peak_to_peak**2 / mse)


def walk(setting: Setting, variant: str, steps: int) -> Callable[[], torch.Tensor]:
    """A zero-argument call that augments the setting's batch with ``variant`` (always the same draws)."""
    precision, path, channels_last = VARIANTS[variant]
    G = setting.bundle.generator
    transform = LatentAugment(
        setting.bundle,
        setting.cache,
        setting.stats,
        p=1.0,
        steps=steps,
        precision=precision,
        perceptual=setting.perceptual,
        value_range="generator",
        on_missing="raise",
    )
    images, w = setting.images()

    def call() -> torch.Tensor:
        G.modulation, G.channels_last = path, channels_last
        try:
            return transform.augment(images, w_star=w, generator=torch.Generator().manual_seed(0))
        finally:
            G.modulation, G.channels_last = "auto", False

    return call


def run(args: argparse.Namespace) -> dict[str, Any]:
    device = torch.device(args.device)
    names = [n for n in args.variants.split(",") if n]
    unknown = [n for n in names if n not in VARIANTS]
    if unknown:
        raise SystemExit(f"unknown variants {unknown}; choose from {sorted(VARIANTS)}")
    if device.type != "cuda":
        names = [n for n in names if VARIANTS[n][0] == "fp32"]  # bf16 rows are GPU rows
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as folder:
        setting = build_setting(args, folder)
        reference = walk(setting, "fp32", args.steps)()
        for name in names:
            call = walk(setting, name, args.steps)
            out = call()
            timing = measure(call, device, warmup=args.warmup, repeats=args.repeats)
            row = {"variant": name, **timing, "psnr_vs_fp32_db": round(psnr(out, reference), 2)}
            rows.append(row)
            print(
                f"{name}: {timing['median_s'] * 1000:.2f} ms per batch, PSNR {row['psnr_vs_fp32_db']} dB",
                flush=True,
            )
        base = next((r["median_s"] for r in rows if r["variant"] == "fp32"), None)
        for row in rows:
            row["speedup_vs_fp32"] = round(base / row["median_s"], 3) if base else None
        return {"setting": setting.describe(args), "rows": rows}


def build_parser() -> argparse.ArgumentParser:
    """The command line (``benchmarks.run`` builds its settings from it too)."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_setting_arguments(parser)
    parser.add_argument(
        "--variants", default=",".join(VARIANTS), help="comma-separated subset of the variants"
    )
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--tag", default="", help="suffix of the result file name")
    parser.add_argument("--no-write", action="store_true", help="print only (smoke runs)")
    return parser


def markdown(result: dict[str, Any]) -> str:
    lines = [
        "| variant | ms per batch | speed-up | PSNR vs fp32 (dB) | GFLOP | bf16 peak share | peak GiB |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in result["rows"]:
        fraction = r.get("bf16_peak_fraction")
        share = f"{fraction:.1%}" if fraction is not None else "-"
        lines.append(
            f"| {r['variant']} | {r['median_s'] * 1000:.2f} | {r['speedup_vs_fp32']} | "
            f"{r['psnr_vs_fp32_db']} | {r['gflops']} | {share} | "
            f"{r['peak_memory_gib'] if r['peak_memory_gib'] is not None else '-'} |"
        )
    return "\n".join(lines)


def main() -> None:
    script_main("latent_augment_variants", "benchmarks.latent_augment_variants", build_parser, run, markdown)


if __name__ == "__main__":
    main()
