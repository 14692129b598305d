"""``latent-transforms train``: StyleGAN2-ADA on paired or labelled images, written as a GAN bundle.

Defaults are the settings of LatentAugment's GAN (Tronchin et al. 2023): batch 16, mapping depth 2,
channel_base 16384, R1 gamma from the resolution rule, ADA on scale, rotate, aniso and frac with target
0.6. The held-out patients of the split score the selected checkpoint.
"""

from __future__ import annotations

import argparse
import json
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
Train a StyleGAN2-ADA GAN on paired MRI/CT (or any paired) slices; defaults are the paper's settings
(batch 16, mapping depth 2, channel_base 16384, R1 gamma from the resolution rule, ADA on
scale,rotate,aniso,frac with target 0.6). Patients are split (--split) so the held-out ones score the
result. Re-running the same command in the same --out folder resumes where it stopped.

Examples:
  latent-transforms train --data phantom --out runs/phantom64 --resolution 64 --kimg 500
  latent-transforms train --data /data/SynthRAD2023/Task1/pelvis --out runs/pelvis --kimg 10000
  torchrun --nproc_per_node 4 -m latent_transforms.cli train --data /data/pelvis --out runs/p4
"""


def add_parser(sub: Any, parents: CommonFlags | None = None) -> argparse.ArgumentParser:
    """Declare ``train`` on ``sub`` (the CLI's ``add_subparsers()`` object).

    Example:
        >>> parser = argparse.ArgumentParser(prog="latent-transforms")
        >>> _ = add_parser(parser.add_subparsers(dest="command"))
        >>> args = parser.parse_args(["train", "--data", "phantom", "--out", "runs/p"])
        >>> args.resolution, args.batch, args.target, args.device, args.func is run
        (256, 16, 0.6, None, True)
    """
    flags = parents or common_flags()
    p = sub.add_parser(
        "train",
        parents=[flags.device, flags.data],
        help="train a StyleGAN2-ADA on paired or labelled images and write a bundle",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=DESCRIPTION,
    )
    p.add_argument(
        "--data",
        required=True,
        help="'phantom[:patients=N,slices=M,seed=S]', 'medmnist:PATH.npz', a folder of class folders "
        "(labelled images: a class-conditional GAN) or a folder of paired slices / volumes",
    )
    p.add_argument("--out", required=True, help="output folder (resumes if it holds a run)")
    p.add_argument("--name", default="", help="name written to the model card")
    p.add_argument("--resolution", type=int, default=256)
    p.add_argument(
        "--window",
        action="append",
        default=[],
        metavar="NAME=LOW,HIGH",
        help="intensity window of a modality (default: the paper's for mri/ct, else [-1, 1])",
    )
    p.add_argument(
        "--cond",
        metavar="KEY",
        help="item key of a class label: train a conditional GAN (labelled images: 'label', the default)",
    )
    p.add_argument(
        "--c-dim", type=int, default=None, help="number of classes with --cond (default 2; labelled: all)"
    )
    p.add_argument("--unconditional", action="store_true", help="labelled images: ignore the labels")
    p.add_argument("--z-dim", type=int, default=512)
    p.add_argument("--w-dim", type=int, default=512)
    p.add_argument("--mapping-layers", type=int, default=2)
    p.add_argument("--channel-base", type=int, default=16384)
    p.add_argument("--channel-max", type=int, default=512)
    p.add_argument(
        "--split",
        default="0.7,0.2,0.1",
        help="train,val,test fractions (of patients; per class for class folders; a MedMNIST file keeps "
        "its own splits)",
    )
    p.add_argument("--split-seed", type=int, default=0)
    p.add_argument("--kimg", type=float, default=10_000, help="training length in thousands of images")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--glr", type=float, default=0.0025)
    p.add_argument("--dlr", type=float, default=0.0025)
    p.add_argument("--gamma", type=float, default=None, help="R1 weight (default 0.0002 * res^2 / batch)")
    p.add_argument("--pl-weight", type=float, default=2.0, help="path-length weight (0 = off)")
    p.add_argument("--mixing", type=float, default=0.9, help="style-mixing probability")
    p.add_argument("--ema-kimg", type=float, default=None)
    p.add_argument(
        "--augment",
        default="geom",
        help="ADA transforms: blit | geom | all | color | bgc (ADA's default) | none | comma list",
    )
    p.add_argument(
        "--augment-strength",
        choices=["latentaugment", "ada"],
        default="latentaugment",
        help="magnitudes: the LatentAugment authors' (rotation ±3°, std 0.05) or the ADA paper's",
    )
    p.add_argument("--p", type=float, default=0.0, help="initial ADA probability")
    p.add_argument("--target", type=float, default=0.6, help="ADA target (0 = fixed --p)")
    p.add_argument("--ada-kimg", type=float, default=500, help="ADA speed: kimg for p to go 0 -> 1")
    p.add_argument("--precision", choices=["fp32", "bf16"], default="fp32")
    p.add_argument(
        "--minutes",
        type=float,
        default=None,
        help="stop after this many minutes of this run, the final scoring and held-out evaluation "
        "included (a scored checkpoint; the same command again continues the run)",
    )
    p.add_argument("--snap", type=float, default=50, help="checkpoint every this many kimg")
    p.add_argument("--metric-kimg", type=float, default=50, help="score every this many kimg (0: at the end)")
    p.add_argument("--metric-samples", type=int, default=2000, help="generated images per score")
    p.add_argument("--eval-samples", type=int, default=5000, help="generated images for the final evaluation")
    p.add_argument(
        "--metric-network", default="efficientnet-lite0", help="feature network for FID (or 'none')"
    )
    p.add_argument(
        "--score-on", choices=["train", "val"], default="train", help="real images that score checkpoints"
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=2, help="DataLoader workers (when not preloaded)")
    p.add_argument(
        "--class-balance",
        action="store_true",
        help="labelled images: show every class about as often as the largest (minority images repeated; "
        "may be switched on when resuming)",
    )
    p.add_argument(
        "--keep-snapshots",
        action="store_true",
        help="also keep every snapshot's generator as a bundle in OUT/snapshots (a checkpoint choice after "
        "training)",
    )
    p.add_argument("--no-resume", dest="resume", action="store_false", help="refuse an existing run in --out")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    """Run ``latent-transforms train`` with parsed ``args``; prints the trainer, the scores and the bundle.

    Example:
        >>> callable(run)
        True
    """
    from latent_transforms.networks.config import GanConfig
    from latent_transforms.training.options import TrainingOptions
    from latent_transforms.training.scoring import FidScorer, evaluate_generator
    from latent_transforms.training.trainer import Trainer, annotate_bundle

    join_torchrun(args.device)
    data = open_training_data(args)
    train_set, held_out, label_key = data.train, data.held_out, data.label_key
    command = command_line(args)
    config = GanConfig(
        resolution=args.resolution,
        modalities=data.modalities,
        z_dim=args.z_dim,
        w_dim=args.w_dim,
        c_dim=data.c_dim,
        mapping_layers=args.mapping_layers,
        channel_base=args.channel_base,
        channel_max=args.channel_max,
        training={"name": args.name or f"StyleGAN2-ADA on {args.data}", "command": command},
    )
    options = TrainingOptions(
        total_kimg=args.kimg,
        batch_size=args.batch,
        g_lr=args.glr,
        d_lr=args.dlr,
        r1_gamma=args.gamma,
        pl_weight=args.pl_weight,
        style_mixing=args.mixing,
        ema_kimg=args.ema_kimg,
        augment=args.augment,
        augment_strength=args.augment_strength,
        augment_p=args.p,
        ada_target=None if args.target <= 0 else args.target,
        ada_kimg=args.ada_kimg,
        precision=args.precision,
        snapshot_kimg=args.snap,
        metric_kimg=args.metric_kimg,
        metric_samples=args.metric_samples,
        metric_network=args.metric_network,
        seed=args.seed,
        num_workers=args.workers,
        class_balance=args.class_balance,
        keep_snapshots=args.keep_snapshots,
    )
    trainer = Trainer(
        config,
        train_set,
        args.out,
        options,
        label_key=label_key,
        device=args.device,
        resume="auto" if args.resume else False,
        description=f"{args.data}: {data.about} (split {args.split}, seed {args.split_seed})",
    )
    if args.metric_kimg >= 0 and args.metric_network != "none":
        trainer.scorer = FidScorer(
            _gan_images(data.reference(args.score_on), config, label_key),
            args.metric_network,
            config.modality_names,
            n_samples=args.metric_samples,
            device=trainer.device,
        )
    if trainer.rank == 0:
        print(trainer)
    evaluate = held_out is not None and len(held_out) > 0 and args.metric_network != "none"
    # --minutes covers the held-out evaluation too: keep room for it, in scorings' worth of time
    final = args.eval_samples / max(args.metric_samples, 1) if evaluate else 0.0
    bundle = trainer.run(max_minutes=args.minutes, final_scorings=final)
    if evaluate:
        scorer = FidScorer(
            _gan_images(held_out, config, label_key),
            args.metric_network,
            config.modality_names,
            n_samples=args.eval_samples,
            device=trainer.device,
            progress=True,
        )
        result = evaluate_generator(bundle.generator.to(trainer.device), scorer)
        annotate_bundle(
            f"{args.out}/bundle",
            {
                "command": command,  # the command that, run afresh, trains to this --kimg
                "evaluation": f"{_describe_held_out(held_out)}, {result['n_generated']} samples, "
                f"{result['feature_network']} features",
                **{
                    f"{name}_{key}": round(value, 4)
                    for name in [*config.modality_names, "mean"]
                    for key, value in result[name].items()
                },
            },
        )
        print(json.dumps({k: v for k, v in result.items() if isinstance(v, dict)}, indent=2))
    print(f"wrote the selected bundle to {args.out}/bundle")
    return 0


def _gan_images(dataset: Any, config: Any, label_key: str | None) -> Any:
    """``dataset`` as the trainer's ``(image in [-1, 1], label)`` pairs for a scorer."""
    from latent_transforms.training.data import GanImages

    windows = [m.window for m in config.modalities]
    return GanImages(dataset, config.modality_names, windows, label_key=label_key, c_dim=config.c_dim)


def _describe_held_out(held_out: Any) -> str:
    patients = getattr(held_out, "patients", None)
    if patients is not None:
        return f"{len(patients)} held-out patients ({len(held_out)} slices)"
    return f"{len(held_out)} held-out images (validation split)"
