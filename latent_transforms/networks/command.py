"""``latent-transforms info``, ``init`` and ``convert``: GAN bundles from the command line.

``info`` describes a bundle (folder, ``builtin:<name>`` or Hub repo id) and can draw samples; ``init``
writes a randomly initialised bundle; ``convert`` turns an NVIDIA StyleGAN2 snapshot into a bundle.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from latent_transforms.arguments import CommonFlags, common_flags, parse_modalities

__all__ = ["add_parser", "run"]

CONVERT_DESCRIPTION = """\
Convert a training snapshot of NVIDIA's stylegan2-ada-pytorch, or of the stylegan3 code base trained
with --cfg=stylegan2 (network-snapshot-*.pkl), into a latent-transforms GAN bundle folder:
config.json, generator.safetensors (from G_ema), discriminator.safetensors (from D), w_stats.safetensors
and a model card.

Safety: those pickles embed Python source that normal unpickling executes. This command never runs
anything from the file: it reads only the persisted tensors and settings through an allow-list and
refuses any other pickle content with an error. Supported: the StyleGAN2 'skip' generator and
'resnet' discriminator, conditional or not, any resolution and channel count.

Example:
  latent-transforms convert network-snapshot-005000.pkl pelvis-gan --modalities mri,ct
"""

WINDOW_HELP = "intensity window of a modality (default: the paper's for mri/ct, else [-1, 1])"


def add_parser(sub: Any, parents: CommonFlags | None = None) -> None:
    """Declare ``info``, ``init`` and ``convert`` on ``sub`` (the CLI's ``add_subparsers()`` object).

    Example:
        >>> parser = argparse.ArgumentParser(prog="latent-transforms")
        >>> add_parser(parser.add_subparsers(dest="command"))
        >>> args = parser.parse_args(["init", "out", "--resolution", "16"])
        >>> args.resolution, args.modalities, args.func is run
        (16, 'mri,ct', True)
    """
    flags = parents or common_flags()
    p = sub.add_parser(
        "info",
        parents=[flags.hub],
        help="describe a GAN bundle (folder, builtin:<name> or Hub repo id)",
    )
    p.add_argument("source", help="bundle folder, builtin:<name>, or Hugging Face repo id 'namespace/name'")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.add_argument("--samples", metavar="PNG", help="also write a grid of random samples to this PNG")
    p.add_argument("--n", type=int, default=8, help="number of samples in the grid (default 8)")
    p.add_argument("--seed", type=int, default=0, help="seed of the samples (default 0)")
    p.add_argument("--psi", type=float, default=1.0, help="truncation psi of the samples (default 1.0)")
    p.set_defaults(func=run)

    p = sub.add_parser(
        "init",
        help="write a randomly initialised (untrained) bundle",
        description="Write a randomly initialised StyleGAN2 bundle: useful to try pipelines end to end "
        "before a GAN is trained, and as the architecture a training run starts from.",
    )
    p.add_argument("out", help="output folder")
    p.add_argument("--resolution", type=int, default=32, help="power of two in [16, 1024] (default 32)")
    p.add_argument("--modalities", default="mri,ct", help="comma-separated channel names (default mri,ct)")
    p.add_argument("--window", action="append", default=[], metavar="NAME=LOW,HIGH", help=WINDOW_HELP)
    p.add_argument("--z-dim", type=int, default=64)
    p.add_argument("--w-dim", type=int, default=64)
    p.add_argument("--c-dim", type=int, default=0, help="number of classes (0 = unconditional)")
    p.add_argument("--mapping-layers", type=int, default=2)
    p.add_argument("--channel-base", type=int, default=2048)
    p.add_argument("--channel-max", type=int, default=128)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--w-stats-samples", type=int, default=4096)
    p.set_defaults(func=run)

    p = sub.add_parser(
        "convert",
        help="convert an NVIDIA StyleGAN2 network-snapshot-*.pkl into a bundle (safely)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=CONVERT_DESCRIPTION,
    )
    p.add_argument("snapshot", help="path of network-snapshot-*.pkl")
    p.add_argument("out", help="output bundle folder")
    p.add_argument("--modalities", help="comma-separated channel names, e.g. mri,ct (default ch0,ch1,...)")
    p.add_argument("--window", action="append", default=[], metavar="NAME=LOW,HIGH", help=WINDOW_HELP)
    p.add_argument("--no-discriminator", action="store_true", help="do not keep D")
    p.add_argument("--w-stats-samples", type=int, default=10_000, help="z samples for W mean/covariance")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run ``info``, ``init`` or ``convert`` (``args.command``) with parsed ``args``; returns 0.

    Example:
        >>> callable(run)
        True
    """
    commands = {"info": _info, "init": _init, "convert": _convert}
    return commands[args.command](args)


def _info(args: argparse.Namespace) -> int:
    from latent_transforms.networks.bundle import load_gan
    from latent_transforms.networks.model_card import evaluation_notes

    bundle = load_gan(args.source, revision=args.revision, cache_dir=args.cache_dir)
    summary = bundle.summary()
    if args.json:
        print(json.dumps({**summary, "notes": evaluation_notes(summary["training"])}, indent=2))
    else:
        print(f"GAN bundle: {args.source}")
        print(f"  resolution      {summary['resolution']} x {summary['resolution']}")
        for i, m in enumerate(bundle.config.modalities):
            print(
                f"  channel {i}       {m.name:<8} "
                f"window [{m.window.low:g}, {m.window.high:g}] {m.window.unit}"
            )
        print(f"  z_dim / w_dim   {summary['z_dim']} / {summary['w_dim']}   num_ws {summary['num_ws']}")
        print(f"  classes         {summary['c_dim'] or 'unconditional'}")
        print(f"  mapping layers  {summary['mapping_layers']}")
        print(f"  channels        base {summary['channel_base']}, max {summary['channel_max']}")
        print(f"  generator       {summary['generator_parameters']:,} parameters")
        d = summary["discriminator_parameters"]
        print(f"  discriminator   {f'{d:,} parameters' if d else 'not included'}")
        print(f"  w statistics    {', '.join(summary['w_stats']) or 'none'}")
        print(f"  fingerprint     {summary['fingerprint']}")
        for key, value in summary["training"].items():
            print(f"  training.{key}: {value}")
        for note in evaluation_notes(summary["training"]):
            print(f"  note: {note}")
    if args.samples:
        from latent_transforms.networks.preview import save_sample_grid

        path = save_sample_grid(bundle, args.samples, n=args.n, seed=args.seed, truncation_psi=args.psi)
        print(f"wrote {args.n} samples to {path}")
    return 0


def _init(args: argparse.Namespace) -> int:
    from latent_transforms.networks.bundle import GanBundle
    from latent_transforms.networks.config import GanConfig

    config = GanConfig(
        resolution=args.resolution,
        modalities=parse_modalities(args.modalities, args.window),
        z_dim=args.z_dim,
        w_dim=args.w_dim,
        c_dim=args.c_dim,
        mapping_layers=args.mapping_layers,
        channel_base=args.channel_base,
        channel_max=args.channel_max,
        training={"name": "randomly initialised StyleGAN2", "trained": False, "seed": args.seed},
    )
    bundle = GanBundle.random(config, seed=args.seed)
    bundle.compute_w_stats(args.w_stats_samples, seed=args.seed)
    bundle.save_pretrained(args.out)
    print(f"wrote an untrained {args.resolution}px bundle ({', '.join(config.modality_names)}) to {args.out}")
    return 0


def _convert(args: argparse.Namespace) -> int:
    from latent_transforms.networks.convert import convert_stylegan2_pickle

    mods = parse_modalities(args.modalities, args.window) if args.modalities else None
    bundle = convert_stylegan2_pickle(
        args.snapshot,
        args.out,
        modalities=mods,
        include_discriminator=not args.no_discriminator,
        w_stats_samples=args.w_stats_samples,
    )
    cfg = bundle.config
    print(
        f"converted {args.snapshot} -> {args.out}: {cfg.resolution}px, channels {cfg.modality_names}, "
        f"c_dim {cfg.c_dim}, discriminator {'yes' if bundle.discriminator else 'no'}, "
        f"fingerprint {bundle.fingerprint[:16]}"
    )
    return 0
