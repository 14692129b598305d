"""Forward time of the StyleGAN2 generator: fp32 vs bf16, grouped vs non-fused modulation.

The issue's reference setting: 256 px, 2 channels (MRI+CT), channel_base 16384, mapping depth 2,
batch 16. Run on a GPU for absolute figures, on CPU for ratios measured side by side::

    python -m benchmarks.generator_forward --device cuda
    python -m benchmarks.generator_forward --device cpu --batch 4 --repeats 3

Writes ``benchmarks/results/generator_forward-<device>.json`` and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import contextlib
from typing import Any

import torch

from benchmarks.common import synchronize, time_call, write_result
from latent_transforms import GanConfig, Generator


def run(args: argparse.Namespace) -> dict[str, Any]:
    device = torch.device(args.device)
    if device.type == "cpu" and args.threads:
        torch.set_num_threads(args.threads)
    cfg = GanConfig(resolution=args.resolution, channel_base=args.channel_base, mapping_layers=2)
    torch.manual_seed(0)
    gen = Generator(cfg).eval().requires_grad_(False).to(device)
    z = torch.randn(args.batch, cfg.z_dim, device=device, generator=torch.Generator(device).manual_seed(0))
    ws = gen.mapping(z)
    rows = []
    reference = None
    for dtype in args.dtypes.split(","):
        for path in ("grouped", "nonfused"):
            for channels_last in [layout == "channels_last" for layout in args.layouts.split(",")]:
                gen.modulation = path
                gen.channels_last = channels_last
                autocast = (
                    torch.autocast(device.type, dtype=torch.bfloat16)
                    if dtype == "bf16"
                    else contextlib.nullcontext()
                )

                def forward(autocast=autocast) -> torch.Tensor:
                    with torch.no_grad(), autocast:
                        return gen.synthesis(ws)

                out = forward()
                if reference is None:
                    reference = out
                err = ((out - reference).abs().max()).item()
                if device.type == "cuda":
                    torch.cuda.reset_peak_memory_stats(device)
                timing = time_call(forward, device, warmup=args.warmup, repeats=args.repeats)
                synchronize(device)
                peak = torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None
                rows.append(
                    {
                        "dtype": dtype,
                        "modulation": path,
                        "channels_last": channels_last,
                        **timing,
                        "images_per_s": args.batch / timing["median_s"],
                        "max_abs_diff_vs_first_row": err,
                        "peak_memory_mib": peak,
                    }
                )
                print(
                    f"{dtype:5} {path:9} channels_last={channels_last!s:5} "
                    f"median {timing['median_s'] * 1e3:9.2f} ms  max|diff| {err:.2e}",
                    flush=True,
                )
    base = next(
        r for r in rows if r["dtype"] == "fp32" and r["modulation"] == "grouped" and not r["channels_last"]
    )
    for r in rows:
        r["speedup_vs_first_row"] = base["median_s"] / r["median_s"]
    return {
        "benchmark": "generator_forward",
        "setting": {
            "resolution": args.resolution,
            "channels": 2,
            "channel_base": args.channel_base,
            "mapping_layers": 2,
            "batch": args.batch,
            "z_dim": cfg.z_dim,
            "w_dim": cfg.w_dim,
            "what": "synthesis network forward from fixed ws, const noise, no grad",
        },
        "rows": rows,
    }


def markdown(result: dict[str, Any]) -> str:
    lines = [
        "| dtype | modulation | channels_last | median ms | images/s | speed-up vs row 1 "
        "| max abs diff vs row 1 |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in result["rows"]:
        lines.append(
            f"| {r['dtype']} | {r['modulation']} | {r['channels_last']} | {r['median_s'] * 1e3:.2f} | "
            f"{r['images_per_s']:.1f} | {r['speedup_vs_first_row']:.2f}x | "
            f"{r['max_abs_diff_vs_first_row']:.1e} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--resolution", type=int, default=256)
    parser.add_argument("--channel-base", type=int, default=16384)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--dtypes", default="fp32,bf16", help="comma-separated subset of fp32,bf16")
    parser.add_argument(
        "--layouts",
        default="contiguous,channels_last",
        help="comma-separated subset of contiguous,channels_last",
    )
    parser.add_argument("--threads", type=int, default=0, help="CPU threads (0 = torch default)")
    parser.add_argument("--tag", default="", help="suffix of the result file name")
    parser.add_argument("--no-write", action="store_true", help="print only, do not write results/")
    args = parser.parse_args()
    result = run(args)
    print(markdown(result))
    if not args.no_write:
        print(
            "wrote",
            write_result(
                "generator_forward" + (f"-{args.tag}" if args.tag else ""),
                result,
                torch.device(args.device),
                __spec__.name,
            ),
        )


if __name__ == "__main__":
    main()
