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

from benchmarks.common import time_call, write_result
from latent_transforms import (
    DatasetStats,
    GanBundle,
    GanConfig,
    LatentAugment,
    LatentCache,
    SG2Sample,
    StandardDA,
    image_key,
)
from latent_transforms.features.perceptual import perceptual_network

PAPER_LATENT_AUGMENT_S = 2.55  # seed 000, Table II: one batch of 16 paired 256 px images, RTX A5000


def run(args: argparse.Namespace) -> dict[str, Any]:
    device = torch.device(args.device)
    if device.type == "cpu" and args.threads:
        torch.set_num_threads(args.threads)
    cfg = GanConfig(
        resolution=args.resolution,
        channel_base=args.channel_base,
        channel_max=args.channel_max,
        z_dim=args.z_dim,
        w_dim=args.z_dim,
        mapping_layers=2,
    )
    bundle = GanBundle.random(cfg, seed=0).to(device)
    bundle.compute_w_stats(2000)
    g = torch.Generator(device=device).manual_seed(0)
    with torch.no_grad():
        w = bundle.generator.mapping(torch.randn(args.real, cfg.z_dim, device=device, generator=g), None)[
            :, 0
        ]
        real = bundle.generator.synthesis(w[:, None].expand(-1, bundle.generator.num_ws, -1)).clamp(-1, 1)
    perceptual = perceptual_network(args.perceptual, device=device)
    stats = DatasetStats.compute(
        [(real[i : i + 16], w[i : i + 16]) for i in range(0, args.real, 16)],
        perceptual=perceptual,
        patch_size=64,
        device=device,
        progress=False,
    )
    batch = real[: args.batch]
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        cache = LatentCache(folder, fingerprint=bundle.fingerprint, settings={"space": "w"})
        cache.put_batch([image_key(x) for x in real.cpu()], w.cpu())
        cache.flush()
        policies = {
            "StandardDA": StandardDA(p=1.0, seed=0),
            "SG2Sample": SG2Sample(bundle, p=1.0, seed=0, value_range="generator"),
            "LatentAugment": LatentAugment(
                bundle,
                cache,
                stats,
                p=1.0,
                seed=0,
                value_range="generator",
                perceptual=perceptual,
                on_missing="raise",
            ),
        }
        for name, transform in policies.items():
            timing = time_call(lambda t=transform: t(batch), device, warmup=args.warmup, repeats=args.repeats)
            rows.append({"policy": name, "repr": repr(transform), **timing})
            print(f"{name}: {timing['median_s'] * 1000:.2f} ms per batch", flush=True)
    sg2 = next(r["median_s"] for r in rows if r["policy"] == "SG2Sample")
    for row in rows:
        row["vs_sg2sample"] = row["median_s"] / sg2
    la = next(r for r in rows if r["policy"] == "LatentAugment")
    la["vs_paper_2_55_s"] = PAPER_LATENT_AUGMENT_S / la["median_s"]
    return {
        "setting": {
            "resolution": args.resolution,
            "channels": 2,
            "channel_base": args.channel_base,
            "channel_max": args.channel_max,
            "z_dim": args.z_dim,
            "batch": args.batch,
            "real_images": args.real,
            "perceptual": args.perceptual,
            "patch_size": stats.patch_size,
        },
        "rows": rows,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--resolution", type=int, default=256)
    parser.add_argument("--channel-base", type=int, default=16384)
    parser.add_argument("--channel-max", type=int, default=512)
    parser.add_argument("--z-dim", type=int, default=512)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--real", type=int, default=64, help="real images in the cache and statistics")
    parser.add_argument("--perceptual", default="efficientnet-lite0")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--threads", type=int, default=0, help="CPU threads (0: torch's default)")
    parser.add_argument("--no-write", action="store_true", help="print only (smoke runs)")
    args = parser.parse_args()
    result = run(args)
    print("| policy | ms per batch | vs SG2Sample |")
    print("|---|---|---|")
    for row in result["rows"]:
        print(f"| {row['policy']} | {row['median_s'] * 1000:.2f} | {row['vs_sg2sample']:.2f}x |")
    if not args.no_write:
        path = write_result("transforms", result, torch.device(args.device), "benchmarks.transforms")
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
