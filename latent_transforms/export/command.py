"""``latent-transforms augment``: the command line of :func:`~latent_transforms.export.augment_dataset`."""

from __future__ import annotations

import argparse
import importlib.util
import logging
from typing import Any

from latent_transforms.arguments import (
    PAIRED_DATA_HELP,
    CommonFlags,
    command_line,
    common_flags,
    data_options,
    open_split,
)
from latent_transforms.errors import LatentTransformsError

__all__ = ["add_parser", "policy_names", "run"]

logger = logging.getLogger(__name__)

DESCRIPTION = """\
Augment N slices of a paired dataset (cycling through it) with one policy and write them in the
folders layout PairedSliceFolder reads (OUT/<modality>/<patient>_<index>.<ext>), with OUT/augment.json
listing each file's source slice, the policy and this command. Policies: latent-augment (F1 preset),
latent-augment-mae (MAE preset), sg2 (random GAN samples, truncation --psi), standard (StandardDA).
LatentAugment needs the latent cache of the data (latent-transforms invert). NIfTI files of NIfTI
volumes keep the source slice's affine.

Examples:
  latent-transforms invert --gan builtin:pelvis-phantom-64 --data phantom --split train --cache latents
  latent-transforms augment --gan builtin:pelvis-phantom-64 --cache latents --data phantom --split train \\
      --out augmented --n 10000 --policy latent-augment --format npz
"""


def policy_names() -> tuple[str, ...]:
    """The ``--policy`` choices of ``latent-transforms augment``: LatentAugment's F1 and MAE presets
    (Tronchin et al. 2023), GAN samples (SG2Sample) and StandardDA.

    Example:
        >>> list(policy_names())
        ['latent-augment', 'latent-augment-mae', 'sg2', 'standard']
    """
    return ("latent-augment", "latent-augment-mae", "sg2", "standard")


def add_parser(sub: Any, parents: CommonFlags | None = None) -> argparse.ArgumentParser:
    """Declare ``augment`` on ``sub`` (the CLI's ``add_subparsers()`` object).

    Example:
        >>> parser = argparse.ArgumentParser(prog="latent-transforms")
        >>> _ = add_parser(parser.add_subparsers(dest="command"))
        >>> args = parser.parse_args(["augment", "--gan", "g", "--data", "d", "--out", "o", "--n", "4",
        ...                           "--policy", "sg2"])
        >>> args.format, args.batch, args.cache_dir, args.func is run
        ('npz', 16, None, True)
    """
    flags = parents or common_flags()
    p = sub.add_parser(
        "augment",
        parents=[flags.device, flags.hub, flags.quiet, flags.data],
        help="write an augmented paired set to disk (NPZ, PNG or NIfTI) with one policy",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=DESCRIPTION,
    )
    p.add_argument("--gan", required=True, help="bundle folder, builtin:<name> or Hub repo id")
    p.add_argument("--cache", default=None, help="latent cache folder (LatentAugment policies)")
    p.add_argument("--data", required=True, help=PAIRED_DATA_HELP)
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--n", type=int, required=True, help="augmented pairs to write")
    p.add_argument("--policy", choices=list(policy_names()), required=True)
    p.add_argument(
        "--format", choices=["npz", "png", "nifti"], default="npz", help="file format (default npz)"
    )
    p.add_argument("--psi", type=float, default=1.0, help="truncation psi of --policy sg2 (default 1.0)")
    p.add_argument("--split", default="all", help="all (default), train, val or test")
    p.add_argument("--split-fractions", default="0.7,0.2,0.1", help="train,val[,test] fractions")
    p.add_argument("--split-seed", type=int, default=0)
    p.add_argument(
        "--key", choices=["content", "dataset"], default="content", help="cache keys, as at inversion"
    )
    p.add_argument("--batch", type=int, default=16, help="slices per transform call (default 16)")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=run)
    return p


def _policy(args: argparse.Namespace, bundle: Any, device: Any) -> Any:
    """The transform ``--policy`` names, drawing every sample (``p = 1``) in the generator's range."""
    if args.policy == "standard":
        from latent_transforms.transforms.standard_da import StandardDA

        return StandardDA(p=1.0, seed=args.seed)
    if args.policy == "sg2":
        from latent_transforms.transforms.sg2sample import SG2Sample

        return SG2Sample(bundle, truncation_psi=args.psi, p=1.0, seed=args.seed, value_range="generator")
    from latent_transforms.transforms.latent_augment import LatentAugment

    if not args.cache:
        raise LatentTransformsError(
            f"--policy {args.policy} needs --cache: the latent cache of the data (with stats.safetensors). "
            f"Fix: latent-transforms invert --gan {args.gan} --data {args.data} --cache CACHE first."
        )
    preset = "mae" if args.policy == "latent-augment-mae" else "f1"
    return LatentAugment(
        bundle, args.cache, None, preset=preset, p=1.0, seed=args.seed, value_range="generator", device=device
    )


def run(args: argparse.Namespace) -> int:
    """Run ``latent-transforms augment`` with parsed ``args``; prints the policy and what it wrote.

    Example:
        >>> callable(run)
        True
    """
    import torch

    from latent_transforms.checks import default_device
    from latent_transforms.export.augmented_set import augment_dataset
    from latent_transforms.networks.bundle import load_gan

    device = default_device(args.device)
    torch.manual_seed(args.seed)
    bundle = load_gan(args.gan, revision=args.revision, cache_dir=args.cache_dir, device=device)
    meta = args.format == "nifti"  # NIfTI volumes as MetaTensors: the files keep their slice's affine
    if meta and importlib.util.find_spec("monai") is None:
        logger.warning(
            "MONAI is not installed, so NIfTI files get an identity affine instead of their source slice's. "
            "Fix: pip install 'latent-transforms[monai]'."
        )
        meta = False
    dataset = open_split(
        args.data,
        resolution=bundle.resolution,
        split=args.split,
        fractions=args.split_fractions,
        seed=args.split_seed,
        meta=meta,
        **data_options(args, bundle.modalities),
    )
    policy = _policy(args, bundle, device)
    print(policy)
    manifest = augment_dataset(
        bundle,
        dataset,
        policy,
        args.out,
        n=args.n,
        batch_size=args.batch,
        fmt=args.format,
        device=device,
        by_key=args.key == "dataset",
        synthetic=args.policy == "sg2",
        command=command_line(args),
        progress=not args.quiet,
    )
    print(f"wrote {manifest['count']} augmented {args.format} pairs to {args.out} (manifest: augment.json)")
    return 0
