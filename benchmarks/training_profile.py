"""Where a StyleGAN2-ADA training step spends its time: ``torch.profiler`` over a few steps.

The built-in phantom bundle's setting by default (64 px, channel_base 2048, channel_max 64, z/w 64,
batch 64, ADA geom at p = 0.2, every regulariser at its lazy rate)::

    python -m benchmarks.training_profile --device cuda

Prints the step time (median of ``--repeats`` timed blocks of 16 steps) and the operators with the
most self time (CPU and, on a GPU, CUDA). Nothing is written: it is a diagnosis, not a figure.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import torch
from torch.profiler import ProfilerActivity, profile

from benchmarks.common import synchronize
from latent_transforms import GanConfig
from latent_transforms.training import TensorImages, Trainer, TrainingOptions


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--resolution", type=int, default=64)
    parser.add_argument("--channel-base", type=int, default=2048)
    parser.add_argument("--channel-max", type=int, default=64)
    parser.add_argument("--z-dim", type=int, default=64)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--rows", type=int, default=25)
    args = parser.parse_args()
    device = torch.device(args.device)
    cfg = GanConfig(
        resolution=args.resolution,
        channel_base=args.channel_base,
        channel_max=args.channel_max,
        z_dim=args.z_dim,
        w_dim=args.z_dim,
    )
    n = args.batch * 4
    images = torch.rand(n, 2, args.resolution, args.resolution, generator=torch.Generator().manual_seed(0))
    data = TensorImages(images * 2 - 1, torch.zeros(n, dtype=torch.long))
    opts = TrainingOptions(
        total_kimg=1e6, batch_size=args.batch, augment_p=0.2, ada_target=None, metric_kimg=0
    )
    with tempfile.TemporaryDirectory() as out:
        trainer = Trainer(cfg, data, out, opts, device=device, progress=False)
        real = data.images[: args.batch].to(device)
        labels = data.labels[: args.batch].to(device)
        for _ in range(16):
            trainer._train_step(real, labels)
        times = []
        for _ in range(args.repeats):
            synchronize(device)
            started = time.perf_counter()
            for _ in range(16):
                trainer._train_step(real, labels)
            synchronize(device)
            times.append((time.perf_counter() - started) / 16)
        step = statistics.median(times)
        print(f"step: {step * 1e3:.1f} ms, {args.batch / step:.0f} img/s ({args.batch} per step)")
        activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
        with profile(activities=activities) as prof:
            for _ in range(16):
                trainer._train_step(real, labels)
            synchronize(device)
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=args.rows))
    if device.type == "cuda":
        print(prof.key_averages().table(sort_by="self_cuda_time_total", row_limit=args.rows))


if __name__ == "__main__":
    main()
