"""LatentAugment and StandardDA in a torchvision v2 pipeline, per sample and per batch (GPUAugment).

What it does, on the built-in bundle ``builtin:pelvis-phantom-64`` and a few slices of the built-in pelvis
phantom (no download):

1. inverts the slices into a latent cache and computes the dataset statistics, with the functions
   ``latent-transforms invert`` runs (``invert_dataset``, ``compute_cache_stats``); a second run
   with the same ``--cache`` folder skips the inversion;
2. per sample, in the DataLoader's workers (CPU): ``v2.Compose([lt.LatentAugment(...), lt.StandardDA(...)])``
   on ``[2, 64, 64]`` images (MRI and CT as channels, physical units). The GAN is given as its source
   string, so each worker loads it lazily; inside workers the draws are keyed by sample and epoch, so
   the data are the same for any ``--workers`` of 1 or more (0 draws in the main process, in call order:
   other data);
3. per batch, in the main process, on the GPU when there is one: ``lt.GPUAugment(loader, pipeline)`` moves
   each ``[B, 2, 64, 64]`` batch to the device and augments it there (the way to use a GPU with
   workers that keep decoding on the CPU).

It prints what it did and, with ``--out grid.png``, writes a picture: rows real MRI, augmented MRI, real
CT, augmented CT (the batch path). ``--quick`` keeps everything tiny: on a CPU, 38 s on 2 cores that
other jobs kept at a load average of 4.5.

    python examples/torchvision_pipeline.py --quick --out grid.png
    python examples/torchvision_pipeline.py --cache latents/phantom-example --workers 2
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset
from torchvision.transforms import v2
from torchvision.utils import make_grid, save_image

import latent_transforms as lt
from latent_transforms.inversion import invert_to_cache

GAN = "builtin:pelvis-phantom-64"


class PairedSlices(Dataset):
    """Phantom slices as single images ``[2, H, W]``: the bundle's modalities as channels, physical units
    (MRI scanner units, CT in HU), optionally transformed per sample."""

    def __init__(self, phantom: lt.PelvisPhantom, modalities: list[str], transform: Any = None) -> None:
        self.phantom = phantom
        self.modalities = modalities
        self.transform = transform

    def __len__(self) -> int:
        return len(self.phantom)

    def __getitem__(self, index: int) -> torch.Tensor:
        item = self.phantom[index]
        image = torch.cat([item[m] for m in self.modalities])
        return self.transform(image) if self.transform is not None else image


def changed(before: torch.Tensor, after: torch.Tensor) -> torch.Tensor:
    """Which samples of a batch ``[B, C, H, W]`` the pipeline changed (bool ``[B]``)."""
    return (before != after).flatten(1).any(1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes on the CPU (a smoke test)")
    parser.add_argument("--out", type=Path, help="write a PNG grid of real and augmented slices here")
    parser.add_argument("--cache", type=Path, help="latent cache folder (default: a temporary one)")
    parser.add_argument("--patients", type=int, default=4, help="phantom patients (default 4)")
    parser.add_argument("--slices", type=int, default=8, help="slices per patient (default 8)")
    parser.add_argument("--steps", type=int, default=200, help="projector steps per inversion (default 200)")
    parser.add_argument("--batch", type=int, default=8, help="batch size (default 8)")
    parser.add_argument("--workers", type=int, default=2, help="DataLoader workers (default 2)")
    parser.add_argument("--device", help="where GPUAugment runs (default: cuda if available, else cpu)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.quick:
        args.patients, args.slices, args.steps, args.batch, args.workers = 2, 2, 20, 4, 1
        args.device = args.device or "cpu"
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    started = time.perf_counter()

    bundle = lt.load_gan(GAN)
    modalities = bundle.modalities  # the channel order every image follows: ['mri', 'ct']
    phantom = lt.PelvisPhantom(args.patients, args.slices, resolution=bundle.resolution, seed=args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.cache or Path(tmp) / "cache"
        summary = invert_to_cache(
            bundle,
            phantom,
            folder,
            lt.Projector(bundle, steps=args.steps, perceptual=None, patience=None, progress=False),
            key="content",
        )
        print(
            f"latent cache {folder}: inverted {summary['inverted']} slices ({summary['skipped']} already "
            f"there), mean PSNR {summary['mean_psnr_this_run']} dB, {summary['seconds']} s"
        )

        # 1. Per sample, inside the workers (CPU). The GAN travels as its source string.
        per_sample = v2.Compose(
            [
                lt.LatentAugment(GAN, folder, p=0.5, on_missing="raise", seed=args.seed, device="cpu"),
                lt.StandardDA(p=0.5, seed=args.seed + 1),
            ]
        )
        plain = torch.stack([PairedSlices(phantom, modalities)[i] for i in range(len(phantom))])
        loader = DataLoader(
            PairedSlices(phantom, modalities, per_sample),
            batch_size=args.batch,
            num_workers=args.workers,
            generator=torch.Generator().manual_seed(args.seed),
        )
        t0 = time.perf_counter()
        augmented = torch.cat(list(loader))
        print(
            f"per-sample pipeline in {args.workers} worker(s): {int(changed(plain, augmented).sum())} of "
            f"{len(plain)} slices augmented in {time.perf_counter() - t0:.1f} s; {per_sample}"
        )

        # 2. Per batch, in the main process, on the device: GPUAugment around a plain loader.
        batch_pipeline = v2.Compose(
            [
                lt.LatentAugment(bundle, folder, p=0.5, on_missing="raise", seed=args.seed),
                lt.StandardDA(p=0.5, seed=args.seed + 1),
            ]
        )
        raw_loader = DataLoader(
            PairedSlices(phantom, modalities), batch_size=args.batch, num_workers=args.workers
        )
        batches = lt.GPUAugment(raw_loader, batch_pipeline, device=device)
        t0 = time.perf_counter()
        outputs = []
        for i, (raw, batch) in enumerate(zip(raw_loader, batches, strict=True)):
            moved = int(changed(raw.to(device), batch).sum())
            delta = (batch - raw.to(device)).abs().flatten(2).mean(-1).mean(0)  # per modality
            print(
                f"  batch {i}: {tuple(batch.shape)} on {batch.device}, {moved} of {len(batch)} augmented, "
                f"mean |change| MRI {delta[0]:.1f}, CT {delta[1]:.1f} HU"
            )
            outputs.append((raw, batch.cpu()))
        print(f"GPUAugment on {device}: {len(batches)} batches in {time.perf_counter() - t0:.1f} s")

        if args.out is not None:
            real = torch.cat([o[0] for o in outputs])[:8]
            aug = torch.cat([o[1] for o in outputs])[:8]
            rows = []
            for c in range(len(modalities)):  # real and augmented, per modality, windowed to [0, 1]
                rows += [
                    (bundle.normalize(real)[:, c : c + 1] + 1) / 2,
                    (bundle.normalize(aug)[:, c : c + 1] + 1) / 2,
                ]
            args.out.parent.mkdir(parents=True, exist_ok=True)
            save_image(make_grid(torch.cat(rows).clamp(0, 1), nrow=len(real), padding=2), args.out)
            print(f"wrote {args.out} (rows: real MRI, augmented MRI, real CT, augmented CT)")
    print(f"done in {time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
