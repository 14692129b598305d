"""LatentAugment's speed knobs, each timed against the fp32 reference path in one run, with its error.

Every variant walks the same batch from the same latents ``w*`` with the same patch positions (one CPU
generator seed), so its output can be compared pixel for pixel with the fp32 reference: the PSNR of
the augmented images against the reference's (images in ``[-1, 1]``, peak-to-peak 2) is the accuracy
the performance issue asks for (>= 40 dB). Variants:

- ``fp32``: the reference (``precision="fp32"``, the default modulated-convolution path of the device,
  contiguous activations, whatever the device's default memory format);
- ``fp32-grouped``: the grouped modulated convolution instead of the non-fused one;
- ``fp32-channels_last``: the synthesis network's activations in ``channels_last``;
- ``bf16``, ``bf16-channels_last``: CUDA autocast to bf16 for the networks (``w`` and Adam stay fp32);
  CUDA only (a CPU without native bf16 says nothing about a GPU);
- ``*-compiled``: the same with ``compile_mode="default"`` (``torch.compile`` of one step: render, loss,
  backward); ``*-cudagraphs``: ``compile_mode="reduce-overhead"``, the step captured in CUDA graphs
  (CUDA only). Their first call compiles; it is timed on its own (``first_call_s``) and left out of the
  median. Their FLOPs are counted on the eager twin.

The default ``--variants`` are the eager ones; :data:`COMPILED` (``benchmarks.run``'s ``compiled``
section) the compiled ones with the eager rows they are compared with.

The variants are timed in turn (each repeat calls every one once), so a CPU that speeds up or slows down
during the run shifts them alike. Each row: median seconds per batch (warm-up, synchronised), peak CUDA
memory, FLOPs of one call
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
import time
from collections.abc import Callable
from typing import Any

import torch

from benchmarks.common import measure_side_by_side, script_main
from benchmarks.setting import Setting, build_setting, timing_parser
from latent_transforms import LatentAugment

#: name -> (precision, modulation path, channels_last, compile_mode)
VARIANTS: dict[str, tuple[str, str, bool, str | None]] = {
    "fp32": ("fp32", "auto", False, None),
    "fp32-grouped": ("fp32", "grouped", False, None),
    "fp32-channels_last": ("fp32", "auto", True, None),
    "bf16": ("bf16", "auto", False, None),
    "bf16-channels_last": ("bf16", "auto", True, None),
    "fp32-compiled": ("fp32", "auto", False, "default"),
    "fp32-channels_last-compiled": ("fp32", "auto", True, "default"),
    "fp32-cudagraphs": ("fp32", "auto", False, "reduce-overhead"),
    "bf16-channels_last-compiled": ("bf16", "auto", True, "default"),
    "bf16-channels_last-cudagraphs": ("bf16", "auto", True, "reduce-overhead"),
}
#: The eager variants (the default selection).
EAGER = [name for name, v in VARIANTS.items() if v[3] is None]
#: The compiled variants and the eager rows they are compared with (``benchmarks.run``'s ``compiled``).
COMPILED = [
    "fp32",
    "fp32-compiled",
    "fp32-channels_last-compiled",
    "fp32-cudagraphs",
    "bf16-channels_last",
    "bf16-channels_last-compiled",
    "bf16-channels_last-cudagraphs",
]


def psnr(a: torch.Tensor, b: torch.Tensor, peak_to_peak: float = 2.0) -> float:
    """PSNR in dB of ``a`` against ``b`` (``inf`` when identical)."""
    mse = float((a.float() - b.float()).pow(2).mean())
    return math.inf if mse == 0 else 10 * math.log10(peak_to_peak**2 / mse)


def walk(setting: Setting, variant: str, steps: int, *, eager: bool = False) -> Callable[[], torch.Tensor]:
    """A zero-argument call that augments the setting's batch with ``variant`` (always the same draws);
    ``eager=True``: its eager twin (no ``compile_mode``)."""
    precision, path, channels_last, compile_mode = VARIANTS[variant]
    G = setting.bundle.generator
    transform = LatentAugment(
        setting.bundle,
        setting.cache,
        setting.stats,
        p=1.0,
        steps=steps,
        precision=precision,
        compile_mode=None if eager else compile_mode,
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
            G.modulation, G.channels_last = "auto", "auto"

    return call


def run(args: argparse.Namespace) -> dict[str, Any]:
    device = torch.device(args.device)
    names = [n for n in args.variants.split(",") if n]
    unknown = [n for n in names if n not in VARIANTS]
    if unknown:
        raise SystemExit(f"unknown variants {unknown}; choose from {sorted(VARIANTS)}")
    if device.type != "cuda":  # bf16 and CUDA-graph rows are GPU rows
        names = [n for n in names if VARIANTS[n][0] == "fp32" and VARIANTS[n][3] != "reduce-overhead"]
    # Every compiled variant is a compiled step of its own, all alive while they are timed in turn.
    torch._dynamo.config.recompile_limit = max(torch._dynamo.config.recompile_limit, 64)
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as folder:
        setting = build_setting(args, folder)
        reference = walk(setting, "fp32", args.steps)()
        calls, twins, extra = {}, {}, {}
        for name in names:
            calls[name] = walk(setting, name, args.steps)
            started = time.perf_counter()
            out = calls[name]()  # the first call: networks to the device, compilation if compiled
            extra[name] = {
                "first_call_s": round(time.perf_counter() - started, 3),
                "psnr_vs_fp32_db": round(psnr(out, reference), 2),
            }
            if VARIANTS[name][3]:
                twins[name] = walk(setting, name, args.steps, eager=True)
            print(f"{name}: first call {extra[name]['first_call_s']} s", flush=True)
        timings = measure_side_by_side(
            calls, device, warmup=args.warmup, repeats=args.repeats, flops_of=twins
        )
        for name in names:
            rows.append({"variant": name, **timings[name], **extra[name]})
            print(
                f"{name}: {timings[name]['median_s'] * 1000:.2f} ms per batch, "
                f"PSNR {extra[name]['psnr_vs_fp32_db']} dB",
                flush=True,
            )
        base = next((r["median_s"] for r in rows if r["variant"] == "fp32"), None)
        for row in rows:
            row["speedup_vs_fp32"] = round(base / row["median_s"], 3) if base else None
        return {"setting": setting.describe(args), "rows": rows}


def build_parser() -> argparse.ArgumentParser:
    """The command line (``benchmarks.run`` builds its settings from it too)."""
    parser = timing_parser(__doc__, speed=False)  # the variants are the speed settings
    parser.add_argument(
        "--variants",
        default=",".join(EAGER),
        help=f"comma-separated, from {', '.join(VARIANTS)} (default: the eager ones)",
    )
    return parser


def markdown(result: dict[str, Any]) -> str:
    lines = [
        "| variant | ms per batch | speed-up | PSNR vs fp32 (dB) | GFLOP | bf16 peak share | peak GiB | "
        "first call s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in result["rows"]:
        fraction = r.get("bf16_peak_fraction")
        share = f"{fraction:.1%}" if fraction is not None else "-"
        lines.append(
            f"| {r['variant']} | {r['median_s'] * 1000:.2f} | {r['speedup_vs_fp32']} | "
            f"{r['psnr_vs_fp32_db']} | {r['gflops']} | {share} | "
            f"{r['peak_memory_gib'] if r['peak_memory_gib'] is not None else '-'} | "
            f"{r.get('first_call_s', '-')} |"
        )
    return "\n".join(lines)


def main() -> None:
    script_main("latent_augment_variants", "benchmarks.latent_augment_variants", build_parser, run, markdown)


if __name__ == "__main__":
    main()
