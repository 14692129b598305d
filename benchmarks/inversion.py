"""GAN inversion throughput: the batched projector against one image at a time, at equal PSNR.

The issue's setting: 256 px, 2 channels, channel_base 16384, mapping depth 2 (random weights: no
trained 256 px GAN ships; its W statistics are measured), targets rendered from random latents and
clipped to ``[-1, 1]`` like real images. Three ways to invert them, timed in the same run:

1. ``baseline``: the reference projector, one image at a time (the first ``--baseline-images``),
   ``--baseline-steps`` (1,000) steps, no early stop (Karras et al.'s schedule, EfficientNet-Lite0
   perceptual loss + pixel MSE);
2. ``batched``: the same projector on batches of ``--batch`` images, each sample stopping once its PSNR
   reaches the baseline's mean PSNR + ``--margin`` dB (or after ``--baseline-steps``);
3. ``batched+encoder``: as 2, starting from an encoder trained for ``--encoder-steps`` on generator
   samples (its training time is reported apart: it is paid once per GAN, not per image).

Images/s and mean PSNR per modality of each; the speed-up of 2 and 3 over 1. On CPU the same script
gives ratios at tiny sizes (never absolute times)::

    python -m benchmarks.inversion --device cuda
    python -m benchmarks.inversion --device cpu --resolution 32 --channel-base 1024 --z-dim 64 \
        --images 16 --batch 16 --baseline-images 2 --baseline-steps 200 --encoder-steps 100 --threads 2

Writes ``benchmarks/results/inversion-<device>.json`` and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import torch

from benchmarks.common import synchronize, write_result
from benchmarks.setting import gan_config
from latent_transforms import GanBundle
from latent_transforms.features import perceptual_network
from latent_transforms.inversion import ProjectionResult, Projector, train_encoder


def _row(name: str, result: ProjectionResult, seconds: float, n: int) -> dict[str, Any]:
    return {
        "method": name,
        "images": n,
        "seconds": round(seconds, 3),
        "images_per_s": round(n / seconds, 4),
        "psnr": [round(float(v), 3) for v in result.psnr.mean(dim=0)],
        "psnr_mean": round(float(result.psnr.mean()), 3),
        "ssim_mean": round(float(result.ssim.mean()), 4),
        "mean_steps": round(float(result.stopped.float().mean() + 1), 1),
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    device = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = gan_config(args)
    bundle = GanBundle.random(cfg, seed=0, discriminator=False).to(device)
    bundle.compute_w_stats(5000)
    gen = torch.Generator(device=device).manual_seed(args.seed)
    with torch.no_grad():
        targets = bundle.sample(args.images, generator=gen).clamp(-1, 1)
    perceptual = perceptual_network(args.perceptual, device=device)
    common = dict(perceptual=perceptual, device=device, progress=False, precision=args.precision)

    # 1. one image at a time, fixed number of steps (or a baseline measured before, when given)
    if args.baseline_psnr is None:
        baseline = Projector(bundle, steps=args.baseline_steps, patience=None, batch_size=1, **common)
        synchronize(device)
        started = time.perf_counter()
        base = baseline.project_all(targets[: args.baseline_images])
        synchronize(device)
        rows = [_row("baseline", base, time.perf_counter() - started, args.baseline_images)]
    else:
        rows = [
            {
                "method": "baseline (given: --baseline-psnr/--baseline-rate, an earlier run)",
                "images": args.baseline_images,
                "images_per_s": args.baseline_rate,
                "psnr_mean": args.baseline_psnr,
            }
        ]
    print(rows[-1], flush=True)
    target_db = rows[0]["psnr_mean"] + args.margin

    # 2. batched with a per-sample PSNR stop
    batched = Projector(
        bundle,
        steps=args.baseline_steps,
        psnr_target=target_db,
        patience=None,
        batch_size=args.batch,
        **common,
    )
    batched.project(targets[: min(2, args.images)])  # warm-up (kernels, allocator)
    synchronize(device)
    started = time.perf_counter()
    result = batched.project_all(targets)
    synchronize(device)
    rows.append(_row("batched", result, time.perf_counter() - started, args.images))
    k = args.baseline_images
    rows[-1]["psnr_mean_on_baseline_images"] = round(float(result.psnr[:k].mean()), 3)
    print(rows[-1], flush=True)

    # 3. batched from an encoder's start
    encoder_seconds = None
    if args.encoder_steps > 0:
        synchronize(device)
        started = time.perf_counter()
        encoder = train_encoder(
            bundle, steps=args.encoder_steps, batch_size=args.encoder_batch, device=device, progress=False
        )
        synchronize(device)
        encoder_seconds = round(time.perf_counter() - started, 2)
        print(f"encoder trained in {encoder_seconds} s", flush=True)
        with_encoder = Projector(
            bundle,
            steps=args.baseline_steps,
            psnr_target=target_db,
            patience=None,
            batch_size=args.batch,
            encoder=encoder.eval(),
            **common,
        )
        synchronize(device)
        started = time.perf_counter()
        result = with_encoder.project_all(targets)
        synchronize(device)
        rows.append(_row("batched+encoder", result, time.perf_counter() - started, args.images))
        rows[-1]["psnr_mean_on_baseline_images"] = round(float(result.psnr[:k].mean()), 3)

    for row in rows:
        row["speedup_vs_baseline"] = round(row["images_per_s"] / rows[0]["images_per_s"], 2)
    return {
        "setting": {
            "resolution": args.resolution,
            "channels": 2,
            "channel_base": args.channel_base,
            "channel_max": args.channel_max,
            "z_dim": args.z_dim,
            "mapping_layers": 2,
            "perceptual": args.perceptual,
            "precision": args.precision,
            "batch": args.batch,
            "baseline_steps": args.baseline_steps,
            "psnr_target_db": round(target_db, 3),
            "encoder_steps": args.encoder_steps,
            "encoder_batch": args.encoder_batch,
            "generator": "random weights (seed 0), W statistics from 5,000 samples",
            "targets": f"{args.images} generated images (seed {args.seed}) clipped to [-1, 1]",
        },
        "encoder_training_seconds": encoder_seconds,
        "rows": rows,
    }


def build_parser() -> argparse.ArgumentParser:
    """The command line (``benchmarks.run`` builds its settings from it too)."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--resolution", type=int, default=256)
    parser.add_argument("--channel-base", type=int, default=16384)
    parser.add_argument("--channel-max", type=int, default=512)
    parser.add_argument("--z-dim", type=int, default=512, help="z and w size")
    parser.add_argument("--images", type=int, default=64, help="images for the batched runs")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--baseline-images", type=int, default=4)
    parser.add_argument("--baseline-steps", type=int, default=1000)
    parser.add_argument("--margin", type=float, default=0.5, help="dB above the baseline's mean PSNR")
    parser.add_argument("--encoder-steps", type=int, default=1000, help="0 skips the encoder run")
    parser.add_argument("--encoder-batch", type=int, default=32)
    parser.add_argument("--perceptual", default="efficientnet-lite0")
    parser.add_argument("--precision", default="fp32", choices=["fp32", "bf16"])
    parser.add_argument("--baseline-psnr", type=float, default=None, help="skip the baseline: its mean PSNR")
    parser.add_argument(
        "--baseline-rate", type=float, default=None, help="with --baseline-psnr: its images/s"
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--threads", type=int, default=0, help="CPU threads (0 = torch default)")
    parser.add_argument("--tag", default="", help="suffix of the result file name")
    parser.add_argument("--no-write", action="store_true", help="print only, do not write results/")
    return parser


def main() -> None:
    parser = build_parser()
    args = parser.parse_args()
    payload = run(args)
    print(f"PSNR target for the batched runs: {payload['setting']['psnr_target_db']} dB")
    print(
        "| method | images | images/s | speed-up | mean PSNR (dB) | PSNR per modality | SSIM | mean steps |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for r in payload["rows"]:
        print(
            f"| {r['method']} | {r['images']} | {r['images_per_s']} | {r['speedup_vs_baseline']} | "
            f"{r['psnr_mean']} | {r.get('psnr', '')} | {r.get('ssim_mean', '')} | {r.get('mean_steps', '')} |"
        )
    if payload["encoder_training_seconds"] is not None:
        print(f"encoder training: {payload['encoder_training_seconds']} s (once per GAN)")
    if not args.no_write:
        name = "inversion" + (f"-{args.tag}" if args.tag else "")
        print(f"wrote {write_result(name, payload, torch.device(args.device), 'benchmarks.inversion')}")


if __name__ == "__main__":
    main()
