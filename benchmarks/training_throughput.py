"""StyleGAN2-ADA training throughput (kimg/hour): fp32 vs bf16, with every regulariser on.

The issue's reference setting: 256 px, 2 channels (MRI+CT), channel_base 16384, mapping depth 2,
batch 16, ADA (scale, rotate, aniso, frac) at p = 0.2, lazy R1 every 16 and path length every 4
steps. One "step" below is a full training iteration (G main, D main, and the regularisers at their
lazy rate, averaged by timing a whole number of intervals). On a GPU for absolute figures, on CPU only
for the fp32/bf16 ratio measured side by side::

    python -m benchmarks.training_throughput --device cuda
    python -m benchmarks.training_throughput --device cpu --resolution 64 --channel-base 2048 \
        --channel-max 64 --z-dim 64 --threads 1 --warmup 4 --repeats 2

Writes ``benchmarks/results/training_throughput-<device>.json`` and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from typing import Any

import torch

from benchmarks.common import synchronize, write_result
from benchmarks.setting import gan_config
from latent_transforms.training import TensorImages, Trainer, TrainingOptions


def measure(args: argparse.Namespace, precision: str, out: str) -> dict[str, Any]:
    device = torch.device(args.device)
    cfg = gan_config(args)
    n = max(args.batch * 4, 64)
    gen = torch.Generator().manual_seed(0)
    data = TensorImages(
        torch.rand(n, 2, args.resolution, args.resolution, generator=gen) * 2 - 1,
        torch.zeros(n, dtype=torch.long),
    )
    opts = TrainingOptions(
        total_kimg=1e6,
        batch_size=args.batch,
        precision=precision,
        augment_p=0.2,
        ada_target=None,
        metric_kimg=0,
        seed=0,
    )
    trainer = Trainer(cfg, data, out, opts, device=device, progress=False)
    real = data.images[: args.batch].to(device)
    labels = data.labels[: args.batch].to(device)
    cycle = 16  # lcm of the lazy intervals: R1 every 16, path length every 4
    for _ in range(args.warmup):
        trainer._train_step(real, labels)
    synchronize(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    times = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        for _ in range(cycle):
            trainer._train_step(real, labels)
        synchronize(device)
        times.append((time.perf_counter() - start) / cycle)
    step = statistics.median(times)
    return {
        "precision": precision,
        "median_step_s": step,
        "min_step_s": min(times),
        "kimg_per_hour": args.batch * 3600 / step / 1000,
        "images_per_s": args.batch / step,
        "peak_memory_mib": torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None,
        "repeats_of_16_steps": args.repeats,
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    device = torch.device(args.device)
    if device.type == "cpu" and args.threads:
        torch.set_num_threads(args.threads)
    rows = []
    with tempfile.TemporaryDirectory() as out:
        for precision in args.precisions.split(","):
            rows.append(measure(args, precision, f"{out}/{precision}"))
            r = rows[-1]
            print(
                f"{precision:5} {r['median_step_s'] * 1e3:9.1f} ms/step  {r['kimg_per_hour']:8.2f} kimg/h",
                flush=True,
            )
    base = rows[0]
    for r in rows:
        r["speedup_vs_first_row"] = base["median_step_s"] / r["median_step_s"]
    return {
        "benchmark": "training_throughput",
        "setting": {
            "resolution": args.resolution,
            "channels": 2,
            "channel_base": args.channel_base,
            "channel_max": args.channel_max,
            "z_dim": args.z_dim,
            "mapping_layers": 2,
            "batch": args.batch,
            "augment": "geom at p=0.2",
            "what": "full StyleGAN2-ADA iterations incl. lazy R1 (1/16) and path length (1/4), fixed batch",
        },
        "rows": rows,
    }


def markdown(result: dict[str, Any]) -> str:
    lines = [
        "| precision | ms / step | kimg / hour | speed-up vs row 1 | peak MiB |",
        "|---|---|---|---|---|",
    ]
    for r in result["rows"]:
        peak = f"{r['peak_memory_mib']:.0f}" if r["peak_memory_mib"] is not None else "-"
        lines.append(
            f"| {r['precision']} | {r['median_step_s'] * 1e3:.1f} | {r['kimg_per_hour']:.2f} | "
            f"{r['speedup_vs_first_row']:.2f}x | {peak} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--resolution", type=int, default=256)
    parser.add_argument("--channel-base", type=int, default=16384)
    parser.add_argument("--channel-max", type=int, default=512)
    parser.add_argument("--z-dim", type=int, default=512, help="z and w size")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--warmup", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--precisions", default="fp32,bf16", help="comma-separated subset of fp32,bf16")
    parser.add_argument("--threads", type=int, default=0, help="CPU threads (0 = torch default)")
    parser.add_argument("--tag", default="", help="suffix of the result file name")
    parser.add_argument("--no-write", action="store_true", help="print only, do not write results/")
    args = parser.parse_args()
    result = run(args)
    print(markdown(result))
    if not args.no_write:
        name = "training_throughput" + (f"-{args.tag}" if args.tag else "")
        print("wrote", write_result(name, result, torch.device(args.device), __spec__.name))


if __name__ == "__main__":
    main()
