"""``latent-transforms demo``: the command line of :func:`~latent_transforms.demo.run.run_demo`."""

from __future__ import annotations

import argparse
from typing import Any

from latent_transforms.arguments import CommonFlags, common_flags

__all__ = ["add_parser", "run"]

DESCRIPTION = """\
Load the built-in bundle (builtin:pelvis-phantom-64), take 8 slices of held-out phantom patients and
their latents (shipped with the package for the default --n, --steps and --seed; other settings project
them once into OUT/cache, which later runs reuse), augment them with StandardDA, SG2Sample and
LatentAugment, and write OUT/augmentations.png (rows: real / its inversion G(w*) / StandardDA /
SG2Sample / LatentAugment, for MRI and CT), OUT/table.md and OUT/report.json (each policy's mean
distance to the real set in pixel, perceptual and latent space). No download, no GPU needed; a progress
bar names each stage.

Examples:
  latent-transforms demo
  latent-transforms demo --out demo --n 12 --device cuda
"""


def add_parser(sub: Any, parents: CommonFlags | None = None) -> argparse.ArgumentParser:
    """Declare ``demo`` on ``sub`` (the CLI's ``add_subparsers()`` object).

    Example:
        >>> parser = argparse.ArgumentParser(prog="latent-transforms")
        >>> _ = add_parser(parser.add_subparsers(dest="command"))
        >>> args = parser.parse_args(["demo", "--n", "4"])
        >>> args.out, args.gan, args.n, args.steps, args.quiet, args.func is run
        ('demo', 'builtin:pelvis-phantom-64', 4, 150, False, True)
    """
    flags = parents or common_flags()
    p = sub.add_parser(
        "demo",
        parents=[flags.device, flags.quiet],
        help="the main job: augment held-out slices with every policy (offline, CPU; latents shipped)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=DESCRIPTION,
    )
    p.add_argument("--out", default="demo", help="output folder (default demo)")
    p.add_argument("--gan", default="builtin:pelvis-phantom-64", help="bundle (default the built-in one)")
    p.add_argument("--n", type=int, default=8, help="held-out slices to augment (default 8)")
    p.add_argument("--steps", type=int, default=150, help="projector steps per inversion (default 150)")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    """Run ``latent-transforms demo`` with parsed ``args``: prints the distance table and the files.

    Example:
        >>> callable(run)
        True
    """
    from latent_transforms.demo.run import format_summary, run_demo

    result = run_demo(
        args.out,
        gan=args.gan,
        n=args.n,
        steps=args.steps,
        seed=args.seed,
        device=args.device,
        progress=not args.quiet,
    )
    print(format_summary(result))
    return 0
