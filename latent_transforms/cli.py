"""The ``latent-transforms`` command: a dispatcher over the commands the packages own.

Each package declares its sub-commands in a ``command`` module with ``add_parser(subparsers, parents)``
(``parents``: the :class:`~latent_transforms.arguments.CommonFlags` shared by several commands) and a
``run(args)`` it sets as the parser's ``func``:

- ``demo`` (:mod:`latent_transforms.demo.command`): the main job, augmenting held-out phantom slices with
  every policy on the built-in bundle, offline;
- ``info``, ``init``, ``convert`` (:mod:`latent_transforms.networks.command`): describe, create and
  convert GAN bundles;
- ``train`` (:mod:`latent_transforms.training.command`): StyleGAN2-ADA on paired images;
- ``train-diffusion`` (:mod:`latent_transforms.generative.command`): a (class-conditional) diffusion model
  on labelled or paired images;
- ``train-translation`` (:mod:`latent_transforms.translation.command`): a CycleGAN or DUIIT translator
  on unpaired images of two modalities;
- ``train-encoder``, ``invert`` (:mod:`latent_transforms.inversion.command`): the inversion encoder, and a
  dataset inverted into a latent cache;
- ``augment`` (:mod:`latent_transforms.export.command`): an augmented set written to disk;
- ``evaluate`` (:mod:`latent_transforms.evaluation.command`): several policies measured side by side
  (fidelity, variety, utility and efficiency, after Xing et al. 2023);
- ``tune`` (:mod:`latent_transforms.tuning.command`): Optuna search over LatentAugment's hyper-parameters
  (Tronchin et al. 2023) and grids for StandardDA and SG2Sample.

Command modules are imported only when the parser is built, and import their heavy dependencies only
when they run. Library errors (:class:`~latent_transforms.errors.LatentTransformsError`) exit with
status 2 and their message; progress that library code logs (the ``latent_transforms`` loggers, INFO)
goes to stderr unless ``--quiet``.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import sys
from collections.abc import Iterator, Sequence

from latent_transforms._version import __version__
from latent_transforms.errors import LatentTransformsError

__all__ = ["COMMAND_MODULES", "build_parser", "main"]

#: The modules that declare the sub-commands, in the order ``--help`` lists them.
COMMAND_MODULES = (
    "latent_transforms.demo.command",
    "latent_transforms.networks.command",
    "latent_transforms.training.command",
    "latent_transforms.generative.command",
    "latent_transforms.translation.command",
    "latent_transforms.inversion.command",
    "latent_transforms.export.command",
    "latent_transforms.evaluation.command",
    "latent_transforms.tuning.command",
)


def build_parser() -> argparse.ArgumentParser:
    """The ``latent-transforms`` parser with every sub-command of :data:`COMMAND_MODULES`.

    Example:
        >>> args = build_parser().parse_args(["info", "builtin:pelvis-phantom-64", "--json"])
        >>> args.command, args.json, args.revision
        ('info', True, None)
    """
    from latent_transforms.arguments import common_flags

    parser = argparse.ArgumentParser(
        prog="latent-transforms",
        description="GAN-based data augmentation for medical imaging (StyleGAN2 bundles, LatentAugment).",
    )
    parser.add_argument("--version", action="version", version=f"latent-transforms {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    parents = common_flags()
    for name in COMMAND_MODULES:
        importlib.import_module(name).add_parser(sub, parents)
    return parser


@contextlib.contextmanager
def _progress_to_stderr(quiet: bool) -> Iterator[None]:
    """Show what the library logs (INFO and up; WARNING and up with ``--quiet``) on stderr while running."""
    logger = logging.getLogger("latent_transforms")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.WARNING if quiet else logging.INFO)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``latent-transforms`` console script; returns the exit status.

    Example:
        >>> main(["info", "no/such/folder/anywhere"])  # doctest: +SKIP
        2
    """
    from latent_transforms.arguments import canonical_argv

    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = canonical_argv(parser, argv)  # what the written files record: each option once
    try:
        with _progress_to_stderr(bool(getattr(args, "quiet", False))):
            return int(args.func(args))
    except LatentTransformsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
