"""``latent-transforms invert`` and ``train-encoder``: GAN inversion from the command line.

``invert`` runs :func:`~latent_transforms.inversion.job.invert_to_cache` on a dataset (resumable; under
``torchrun`` every rank takes its share) and writes the quality report; ``train-encoder`` trains the
encoder that gives the projector its starting point and stores it in the bundle.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from latent_transforms.arguments import (
    PAIRED_DATA_HELP,
    CommonFlags,
    command_line,
    common_flags,
    data_options,
    open_split,
)

__all__ = ["add_parser", "run"]

ENCODER_DESCRIPTION = """\
Train a small encoder on the GAN's own samples (z -> G -> image -> encoder -> w; no data needed) that
gives the projector its starting point, so inversion needs far fewer steps. It is stored in the bundle
as encoder.safetensors (and so travels with the bundle to the Hub). Prints the held-out latent error and
the PSNR of G(E(G(w))) vs G(w) on fresh samples, next to the same from w_avg (the projector's default
start).

Examples:
  latent-transforms train-encoder --gan runs/pelvis/bundle
  latent-transforms train-encoder --gan builtin:pelvis-phantom-64 --out pelvis-phantom-64-enc --steps 500
"""

INVERT_DESCRIPTION = """\
Invert every image of a paired dataset to the GAN's latent space with the batched projector and store
the latents (with each image's PSNR and SSIM) in a latent cache folder, which LatentAugment reads. A run
that is killed resumes where it stopped: images already in the cache are skipped. Under torchrun every
rank takes its share of the images. At the end: report.json (PSNR/SSIM per modality: mean and
percentiles), reconstructions.png (real above reconstructed) and stats.safetensors (the dataset means
LatentAugment's diversity terms use).

Examples:
  latent-transforms invert --gan builtin:pelvis-phantom-64 --data phantom --cache latents/phantom64
  torchrun --nproc-per-node 4 -m latent_transforms.cli invert --gan runs/pelvis/bundle \\
      --data /data/SynthRAD2023/Task1/pelvis --cache latents/pelvis --encoder
"""


def add_parser(sub: Any, parents: CommonFlags | None = None) -> None:
    """Declare ``train-encoder`` and ``invert`` on ``sub`` (the CLI's ``add_subparsers()`` object).

    Example:
        >>> parser = argparse.ArgumentParser(prog="latent-transforms")
        >>> add_parser(parser.add_subparsers(dest="command"))
        >>> args = parser.parse_args(["invert", "--gan", "g", "--data", "phantom", "--cache", "c"])
        >>> args.steps, args.key, args.stats, args.revision, args.func is run
        (500, 'content', True, None, True)
    """
    flags = parents or common_flags()
    common = [flags.device, flags.hub, flags.quiet]
    p = sub.add_parser(
        "train-encoder",
        parents=common,
        help="train the inversion encoder of a bundle and store it there (encoder.safetensors)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=ENCODER_DESCRIPTION,
    )
    p.add_argument("--gan", required=True, help="bundle folder, builtin:<name> or Hub repo id")
    p.add_argument(
        "--out",
        default=None,
        help="bundle folder to write (default: the --gan folder; required for builtin:/Hub bundles, "
        "whose files are then copied there)",
    )
    p.add_argument("--steps", type=int, default=2000, help="optimiser steps (default 2000)")
    p.add_argument("--batch", type=int, default=32, help="generated images per step (default 32)")
    p.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate (default 1e-3)")
    p.add_argument("--space", choices=["w", "w+"], default="w", help="predict W or W+ (default w)")
    p.add_argument(
        "--pixel-weight", type=float, default=1.0, help="weight of the image MSE of G(E(x)) (0 = off)"
    )
    p.add_argument("--latent-weight", type=float, default=1.0, help="weight of the latent MSE (0 = off)")
    p.add_argument("--psi", type=float, default=1.0, help="truncation psi of the training samples")
    p.add_argument("--precision", choices=["fp32", "bf16"], default="fp32")
    p.add_argument("--eval-samples", type=int, default=256, help="held-out samples for the summary")
    p.add_argument("--seed", type=int, default=0, help="seed (the held-out samples use seed + 1)")
    p.set_defaults(func=run)

    p = sub.add_parser(
        "invert",
        parents=[*common, flags.data],
        help="invert a paired dataset into a latent cache (resumable; torchrun shards it across GPUs)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=INVERT_DESCRIPTION,
    )
    p.add_argument("--gan", required=True, help="bundle folder, builtin:<name> or Hub repo id")
    p.add_argument("--data", required=True, help=PAIRED_DATA_HELP)
    p.add_argument("--cache", required=True, help="latent cache folder (created, or resumed)")
    p.add_argument(
        "--split",
        default="all",
        help="all (default), train, val or test (patient split, see --split-fractions)",
    )
    p.add_argument("--split-fractions", default="0.7,0.2,0.1", help="train,val[,test] fractions")
    p.add_argument("--split-seed", type=int, default=0)
    p.add_argument("--limit", type=int, default=None, help="only the first N images")
    p.add_argument(
        "--key", choices=["content", "dataset"], default="content", help="cache keys (default content)"
    )
    p.add_argument("--space", choices=["w", "w+"], default="w")
    p.add_argument("--steps", type=int, default=500, help="maximum projector steps (default 500)")
    p.add_argument("--lr", type=float, default=0.1)
    p.add_argument("--batch", type=int, default=32, help="images optimised together (default 32)")
    p.add_argument(
        "--perceptual", default="efficientnet-lite0", help="efficientnet-lite0, vgg16, discriminator or none"
    )
    p.add_argument("--pixel-weight", type=float, default=1.0)
    p.add_argument("--psnr-target", type=float, default=None, help="stop a sample at this mean PSNR (dB)")
    p.add_argument(
        "--patience", type=int, default=100, help="stop a sample after N steps without gain (0: off)"
    )
    p.add_argument("--encoder", action="store_true", help="start from the bundle's encoder (train-encoder)")
    p.add_argument("--precision", choices=["fp32", "bf16"], default="fp32")
    p.add_argument("--no-stats", dest="stats", action="store_false", help="skip the dataset statistics")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run ``invert`` or ``train-encoder`` (``args.command``) with parsed ``args``; returns 0.

    Example:
        >>> callable(run)
        True
    """
    return _invert(args) if args.command == "invert" else _train_encoder(args)


def _bundle_files(folder: Path) -> list[Path]:
    """Files of the bundle in ``folder`` that make a complete copy (config.json last), encoder excluded."""
    from latent_transforms.inversion.encoder import ENCODER_NAME

    files = sorted(p for p in folder.glob("*.safetensors") if p.name != ENCODER_NAME)
    files += [p for p in (folder / "README.md", folder / "config.json") if p.is_file()]
    return files


def _train_encoder(args: argparse.Namespace) -> int:
    import filecmp
    import functools
    import shutil

    from latent_transforms.checks import default_device
    from latent_transforms.errors import ConfigError
    from latent_transforms.files import atomic_write
    from latent_transforms.inversion.encoder import evaluate_encoder, save_encoder, train_encoder
    from latent_transforms.networks.bundle import load_gan
    from latent_transforms.networks.hub import resolve_source

    local = Path(args.gan).expanduser()
    if args.out is None and not local.is_dir():
        raise ConfigError(
            f"--gan {args.gan!r} is not a local bundle folder (a built-in bundle lives inside the installed "
            "package, a Hub bundle in the download cache), so the encoder is not written next to it: pass "
            "--out FOLDER. The bundle's files are copied there and encoder.safetensors added, making a "
            "complete bundle to load from FOLDER (or push to the Hub)."
        )
    folder = resolve_source(args.gan, revision=args.revision, cache_dir=args.cache_dir)
    out = Path(args.out).expanduser() if args.out is not None else folder
    copy = out.resolve() != folder.resolve()
    if copy:  # refuse to mix two bundles in one folder before spending time on training
        for src in _bundle_files(folder):
            dst = out / src.name
            if dst.exists() and not filecmp.cmp(src, dst, shallow=False):
                raise ConfigError(
                    f"--out {out} already holds a different {src.name} than the bundle {args.gan!r}; "
                    "choose an empty folder (or the bundle folder itself)."
                )
    device = default_device(args.device)
    bundle = load_gan(folder, device=device, load_discriminator=False)
    encoder = train_encoder(
        bundle,
        steps=args.steps,
        batch_size=args.batch,
        lr=args.lr,
        space=args.space,
        pixel_weight=args.pixel_weight,
        latent_weight=args.latent_weight,
        truncation_psi=args.psi,
        seed=args.seed,
        precision=args.precision,
        progress=not args.quiet,
    )
    eval_seed = args.seed + 1
    result = evaluate_encoder(encoder, bundle, n_samples=args.eval_samples, seed=eval_seed)
    encoder.config.training["evaluation"] = {
        "n_samples": args.eval_samples,
        "seed": eval_seed,
        **{k: round(v, 4) for k, v in result.items() if k != "n_samples"},
    }
    if copy:
        for src in _bundle_files(folder):  # copyfile follows the Hub cache's symlinks
            atomic_write(out / src.name, functools.partial(shutil.copyfile, src))
    path = save_encoder(encoder, out)
    t = encoder.config.training
    n_params = sum(p.numel() for p in encoder.parameters())
    print(
        f"trained a {args.space.upper()} encoder ({n_params:,} parameters) for {args.steps} steps of "
        f"{args.batch} in {t['seconds']:.1f} s on {t['device']}"
    )
    if t["final_latent_mse"] is not None:
        pixel = f", pixel MSE {t['final_pixel_mse']:.4f}" if t["final_pixel_mse"] is not None else ""
        print(f"  final training loss: latent MSE {t['final_latent_mse']:.4f}{pixel}")
    print(f"  held out ({args.eval_samples} fresh samples, seed {eval_seed}):   encoder    from w_avg")
    print(
        f"    latent MSE (in W std units)              {result['latent_mse']:8.4f}  "
        f"{result['latent_mse_w_avg']:9.4f}"
    )
    print(f"    PSNR of G(E(G(w))) vs G(w) (dB)          {result['psnr']:8.2f}  {result['psnr_w_avg']:9.2f}")
    print(f"wrote {path}" + (f" (with a copy of the bundle {args.gan})" if copy else ""))
    return 0


def _invert(args: argparse.Namespace) -> int:
    import torch

    from latent_transforms.features.perceptual import perceptual_network
    from latent_transforms.inversion.cache import LatentCache
    from latent_transforms.inversion.encoder import load_encoder
    from latent_transforms.inversion.job import (
        GRID_NAME,
        STATS_NAME,
        ShardInfo,
        invert_to_cache,
        quality_report,
        write_report,
    )
    from latent_transforms.inversion.projector import Projector
    from latent_transforms.networks.bundle import load_gan
    from latent_transforms.objectives.stats import DatasetStats

    shard = ShardInfo.from_env()
    if args.device:
        device = torch.device(args.device)
    elif torch.cuda.is_available():
        device = torch.device("cuda", shard.local_rank)  # one GPU per torchrun rank
    else:
        device = torch.device("cpu")
    if shard.world_size > 1:
        import torch.distributed as dist

        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    bundle = load_gan(args.gan, revision=args.revision, cache_dir=args.cache_dir, device=device)
    dataset = open_split(
        args.data,
        resolution=bundle.resolution,
        split=args.split,
        fractions=args.split_fractions,
        seed=args.split_seed,
        **data_options(args, bundle.modalities),
    )
    perceptual = (
        None
        if args.perceptual == "none"
        else perceptual_network(args.perceptual, bundle=bundle, device=device)
    )
    encoder = load_encoder(bundle, device=device).eval() if args.encoder else None
    projector = Projector(
        bundle,
        space=args.space,
        steps=args.steps,
        lr=args.lr,
        perceptual=perceptual,
        pixel_weight=args.pixel_weight,
        psnr_target=args.psnr_target,
        patience=args.patience if args.patience > 0 else None,
        optimize_noise=False,
        encoder=encoder,
        precision=args.precision,
        batch_size=args.batch,
        device=device,
        progress=False,
        seed=args.seed,
    )
    if shard.rank == 0:
        print(f"{projector}\nlatent cache: {args.cache}")
    summary = invert_to_cache(
        bundle,
        dataset,
        args.cache,
        projector,
        key=args.key,
        perceptual=perceptual,
        progress=not args.quiet,
        limit=args.limit,
        shard=shard,
        grid_path=Path(args.cache) / GRID_NAME,
        stats=args.stats,
        device=device,
        stats_info={"gan": args.gan},
    )
    if shard.rank != 0:
        return 0
    cache = LatentCache.open(args.cache)
    report = {
        "command": command_line(args),
        "gan": args.gan,
        "data": args.data,
        "split": args.split,
        "device": str(device),
        "world_size": shard.world_size,
        "this_run": summary,
        "quality": quality_report(cache, bundle.modalities),
        "settings": projector.settings(),
    }
    if args.stats:
        report["stats"] = repr(DatasetStats.load(Path(args.cache) / STATS_NAME))
    write_report(args.cache, report)
    print(json.dumps({"this_run": summary, "quality": report["quality"]}, indent=2))
    print(f"wrote {args.cache}/report.json and {args.cache}/{GRID_NAME}")
    return 0
