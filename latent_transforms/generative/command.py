"""``latent-transforms train-diffusion``: a (class-conditional) DDPM on labelled or paired images, written
as a diffusion bundle.

The defaults are sized for a CPU at 32 px: a three-level MONAI UNet (32, 64, 64 channels, attention at the
lowest level, one residual block per level; about 1.1 M parameters for one channel), 1000 linear-schedule
timesteps, batch 32, AdamW at 5e-4 after a 2 kimg warm-up, EMA half-life 2 kimg, 10 % label dropout for
classifier-free guidance, and an FID of 500 DDIM samples (25 steps) every 20 kimg for the FID-vs-kimg
curve in ``log.jsonl``. One training step of batch 32 takes about 1.1 s on one busy CPU thread (0.6 min
per kimg); 500 DDIM samples of 25 steps about 2.3 min.
"""

from __future__ import annotations

import argparse
from typing import Any

from latent_transforms.arguments import (
    CommonFlags,
    command_line,
    common_flags,
    join_torchrun,
    open_training_data,
)

__all__ = ["add_parser", "run"]

DESCRIPTION = """\
Train a denoising diffusion model (DDPM, Ho et al. 2020) on MONAI's DiffusionModelUNet and write it as a
diffusion bundle (OUT/bundle: config.json, unet.safetensors with the EMA weights, README.md). Labelled
images (a MedMNIST .npz, or a folder of class folders) train a class-conditional model, one class
embedding per class plus a "no class" one for classifier-free guidance; paired slices train on their
modalities stacked as channels. Every --snap kimg: a checkpoint (re-running the same command in the same
--out resumes exactly), a sample grid (OUT/samples) and a log.jsonl record; every --metric-kimg: the FID
of --metric-samples DDIM samples against the real images (the FID-vs-kimg curve), and the bundle is the
snapshot with the lowest smoothed FID (Xue et al. 2021). Needs: pip install 'latent-transforms[generative]'.

Examples:
  latent-transforms train-diffusion --data medmnist:pneumoniamnist.npz --out runs/ddpm32 --modalities xray
  latent-transforms train-diffusion --data phantom --out runs/ddpm-phantom --resolution 32 --kimg 100
  torchrun --nproc_per_node 4 -m latent_transforms.cli train-diffusion --data DATA --out runs/ddpm4
"""


def _ints(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers (e.g. 32,64,64), got {text!r}"
        ) from None
    if not values:
        raise argparse.ArgumentTypeError("expected at least one integer, e.g. 32,64,64")
    return values


def _flags(text: str) -> tuple[bool, ...]:
    return tuple(bool(v) for v in _ints(text))


def add_parser(sub: Any, parents: CommonFlags | None = None) -> argparse.ArgumentParser:
    """Declare ``train-diffusion`` on ``sub`` (the CLI's ``add_subparsers()`` object).

    Example:
        >>> parser = argparse.ArgumentParser(prog="latent-transforms")
        >>> _ = add_parser(parser.add_subparsers(dest="command"))
        >>> args = parser.parse_args(["train-diffusion", "--data", "phantom", "--out", "runs/d"])
        >>> args.resolution, args.channels, args.attention, args.batch, args.func is run
        (32, (32, 64, 64), (False, False, True), 32, True)
    """
    from latent_transforms.generative.names import PREDICTION_TYPES, SCHEDULES

    flags = parents or common_flags()
    p = sub.add_parser(
        "train-diffusion",
        parents=[flags.device, flags.quiet],
        help="train a (class-conditional) diffusion model on labelled or paired images and write a bundle",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=DESCRIPTION,
    )
    data = p.add_argument_group("data")
    data.add_argument(
        "--data",
        required=True,
        help="'medmnist:PATH.npz' or a folder of class folders (labelled images: a class-conditional model), "
        "'phantom[:patients=N,slices=M,seed=S]' or a folder of paired slices / volumes",
    )
    data.add_argument("--out", required=True, help="output folder (resumes if it holds a run)")
    data.add_argument("--name", default="", help="name written to the model card")
    data.add_argument("--resolution", type=int, default=32, help="image side in pixels (default 32)")
    data.add_argument(
        "--modalities",
        default=None,
        help="comma-separated channel names (default mri,ct for paired data; labelled images: 'image', "
        "e.g. --modalities xray)",
    )
    data.add_argument(
        "--window",
        action="append",
        default=[],
        metavar="NAME=LOW,HIGH",
        help="intensity window of a modality (default: the paper's for mri/ct, the data's for labelled "
        "images, else [-1, 1])",
    )
    data.add_argument(
        "--cond", metavar="KEY", help="item key of a class label (paired data; labelled images: 'label')"
    )
    data.add_argument(
        "--c-dim",
        type=int,
        default=None,
        help="number of classes (default: all of the labelled data; 2 with --cond)",
    )
    data.add_argument("--unconditional", action="store_true", help="labelled images: ignore the labels")
    data.add_argument(
        "--split",
        default="0.7,0.2,0.1",
        help="train,val,test fractions (of patients; per class for class folders; a MedMNIST file keeps its "
        "own splits); the model trains on train (default 0.7,0.2,0.1)",
    )
    data.add_argument("--split-seed", type=int, default=0, help="seed of the split (default 0)")
    net = p.add_argument_group("UNet and noise schedule")
    net.add_argument(
        "--channels", type=_ints, default=(32, 64, 64), help="feature maps per UNet level (default 32,64,64)"
    )
    net.add_argument(
        "--attention",
        type=_flags,
        default=(False, False, True),
        help="attention per level, 0/1 (default 0,0,1)",
    )
    net.add_argument("--res-blocks", type=int, default=1, help="residual blocks per level (default 1)")
    net.add_argument("--head-channels", type=int, default=32, help="channels per attention head (default 32)")
    net.add_argument("--norm-groups", type=int, default=16, help="group-norm groups (default 16)")
    net.add_argument("--timesteps", type=int, default=1000, help="diffusion timesteps T (default 1000)")
    net.add_argument(
        "--schedule", choices=SCHEDULES, default="linear_beta", help="noise schedule (default linear_beta)"
    )
    net.add_argument("--beta-start", type=float, default=1e-4, help="first noise variance (default 1e-4)")
    net.add_argument("--beta-end", type=float, default=0.02, help="last noise variance (default 0.02)")
    net.add_argument(
        "--prediction",
        choices=PREDICTION_TYPES,
        default="epsilon",
        help="what the UNet predicts (default epsilon)",
    )
    net.add_argument(
        "--no-null-class",
        dest="null_class",
        action="store_false",
        help="no 'no class' embedding (and no classifier-free guidance)",
    )
    train = p.add_argument_group("training")
    train.add_argument(
        "--kimg", type=float, default=200, help="training length in thousands of images (default 200)"
    )
    train.add_argument("--batch", type=int, default=32, help="images per step over all ranks (default 32)")
    train.add_argument("--lr", type=float, default=5e-4, help="AdamW learning rate (default 5e-4)")
    train.add_argument(
        "--warmup-kimg", type=float, default=2.0, help="linear learning-rate warm-up (default 2)"
    )
    train.add_argument("--ema-kimg", type=float, default=2.0, help="half-life of the EMA weights (default 2)")
    train.add_argument(
        "--label-dropout", type=float, default=0.1, help="probability of the 'no class' label (default 0.1)"
    )
    train.add_argument("--xflip", action="store_true", help="flip half the images left-right (default off)")
    train.add_argument(
        "--precision", choices=["fp32", "bf16"], default="fp32", help="CUDA autocast (default fp32)"
    )
    train.add_argument(
        "--minutes",
        type=float,
        default=None,
        help="stop after this many minutes of this run (scored checkpoint; re-run to continue)",
    )
    train.add_argument(
        "--snap", type=float, default=5, help="checkpoint and sample grid every this many kimg"
    )
    train.add_argument(
        "--sample-steps", type=int, default=25, help="DDIM steps of the sample grids (default 25)"
    )
    train.add_argument("--seed", type=int, default=0, help="seed of everything (default 0)")
    train.add_argument(
        "--workers", type=int, default=0, help="DataLoader workers when not preloaded (default 0)"
    )
    train.add_argument(
        "--class-balance",
        action="store_true",
        help="labelled images: show every class about as often as the largest (minority images repeated; "
        "may be switched on when resuming)",
    )
    train.add_argument(
        "--keep-snapshots",
        action="store_true",
        help="also keep every snapshot's model as a bundle in OUT/snapshots (a checkpoint choice after "
        "training)",
    )
    train.add_argument(
        "--no-resume", dest="resume", action="store_false", help="refuse an existing run in --out"
    )
    score = p.add_argument_group("FID along the way")
    score.add_argument(
        "--metric-kimg", type=float, default=20, help="score every this many kimg (0: at the end)"
    )
    score.add_argument(
        "--metric-samples", type=int, default=500, help="generated images per score (default 500)"
    )
    score.add_argument(
        "--metric-steps", type=int, default=25, help="DDIM steps of the scored samples (default 25)"
    )
    score.add_argument(
        "--metric-network",
        default="efficientnet-lite0",
        help="feature network of the FID (default efficientnet-lite0, offline), or 'none' for no scoring",
    )
    score.add_argument(
        "--score-on",
        choices=["train", "val"],
        default="train",
        help="real images the FID compares with (default train)",
    )
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    """Run ``latent-transforms train-diffusion`` with parsed ``args``; prints the trainer and the bundle.

    Under ``torchrun`` (``WORLD_SIZE`` > 1) it joins the process group (NCCL on CUDA, gloo on the CPU).

    Example:
        >>> callable(run)
        True
    """
    from latent_transforms.generative.config import DiffusionConfig
    from latent_transforms.training.data import GanImages
    from latent_transforms.training.diffusion_options import DiffusionOptions
    from latent_transforms.training.diffusion_trainer import DiffusionTrainer
    from latent_transforms.training.scoring import FidScorer

    join_torchrun(args.device)
    data = open_training_data(args)
    command = command_line(args)
    config = DiffusionConfig(
        resolution=args.resolution,
        modalities=data.modalities,
        c_dim=data.c_dim,
        null_class=args.null_class,
        channels=args.channels,
        attention_levels=args.attention,
        num_res_blocks=args.res_blocks,
        num_head_channels=args.head_channels,
        norm_num_groups=args.norm_groups,
        timesteps=args.timesteps,
        schedule=args.schedule,
        beta_start=args.beta_start,
        beta_end=args.beta_end,
        prediction_type=args.prediction,
        training={"name": args.name or f"DDPM on {args.data}", "command": command},
    )
    options = DiffusionOptions(
        total_kimg=args.kimg,
        batch_size=args.batch,
        lr=args.lr,
        warmup_kimg=args.warmup_kimg,
        ema_kimg=args.ema_kimg,
        label_dropout=args.label_dropout,
        xflip=args.xflip,
        precision=args.precision,
        snapshot_kimg=args.snap,
        sample_steps=args.sample_steps,
        metric_kimg=args.metric_kimg,
        metric_samples=args.metric_samples,
        metric_steps=args.metric_steps,
        seed=args.seed,
        num_workers=args.workers,
        class_balance=args.class_balance,
        keep_snapshots=args.keep_snapshots,
    )
    trainer = DiffusionTrainer(
        config,
        data.train,
        args.out,
        options,
        label_key=data.label_key,
        device=args.device,
        resume="auto" if args.resume else False,
        progress=not args.quiet,
        description=f"{args.data}: {data.about} (split {args.split}, seed {args.split_seed})",
    )
    if args.metric_network != "none":
        windows = [m.window for m in config.modalities]
        reference = data.reference(args.score_on)
        trainer.scorer = FidScorer(
            GanImages(reference, config.modality_names, windows, label_key=data.label_key, c_dim=data.c_dim),
            args.metric_network,
            config.modality_names,
            n_samples=args.metric_samples,
            device=trainer.device,
        )
    if trainer.rank == 0:
        print(trainer)
    trainer.run(max_minutes=args.minutes)
    if trainer.rank == 0:
        print(f"wrote the bundle to {args.out}/bundle and the FID curve to {args.out}/log.jsonl")
    return 0
