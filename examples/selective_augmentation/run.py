"""Selective synthetic augmentation (Xue et al. 2021) on labelled images, end to end, in one command.

    python examples/selective_augmentation/run.py --quick                     # CI smoke run, ~2 min
    python examples/selective_augmentation/run.py \\
        --data medmnist:../shared/data/pneumoniamnist.npz --out runs/pneumoniamnist

It trains the task classifier on the real training images, trains (or loads, --gan) a class-conditional
StyleGAN2 whose checkpoints are chosen by the smoothed FID on the classifier's features (or, with
--gan-select class-recall, by the worst-covered class's recall on the validation split), scores the GAN
on the held-out test split (FID, per-class precision / recall), filters 4·r·N_i synthetic samples per
class with SelectiveFilter, and trains the classifier with every augmentation row (runs seeds each):
baseline, StandardDA, unfiltered GAN, entropy-only, centroid-only and selective augmentation at
r = 0.5 / 0.8 / 1.0, SG2Sample and LatentAugment online at the p the validation split picks. It writes
report.md, results.json and the figures into --report (default: --out). Rerun the same command to
resume (--max-minutes stops it on purpose between units of work).
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # makes `selective_augmentation` importable

from latent_transforms.evaluation import commit_label
from selective_augmentation import report
from selective_augmentation.pipeline import (
    ROW_ORDER,
    SELECTIONS,
    Experiment,
    ExperimentConfig,
    Stopped,
    quick_config,
)


def _floats(text: str) -> tuple[float, ...]:
    return tuple(float(x) for x in text.split(",") if x.strip())


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="run.py",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n\n", 1)[1],
    )
    p.add_argument("--data", default=None, help="medmnist:PATH.npz | a folder with one sub-folder per class")
    p.add_argument("--out", default=None, help="work folder (default runs/selective-<data>[-quick])")
    p.add_argument("--report", default=None, help="where report.md / results.json go (default: --out)")
    p.add_argument("--quick", action="store_true", help="smoke size: generated toy data, tiny networks")
    p.add_argument("--gan", default=None, help="a trained class-conditional bundle (else one is trained)")
    p.add_argument("--gan-kimg", type=float, default=None, help="length of the GAN training (kimg)")
    p.add_argument("--gan-minutes", type=float, default=None, help="stop the GAN training after this long")
    p.add_argument(
        "--gan-class-balance",
        action="store_true",
        help="train the GAN on class-balanced batches (also when continuing a finished run to more kimg)",
    )
    p.add_argument(
        "--gan-select",
        choices=SELECTIONS,
        default=None,
        help="checkpoint rule: smoothed-fid (Xue et al., default) or class-recall (the kept snapshot with "
        "the highest smallest per-class recall on the validation split)",
    )
    p.add_argument("--runs", type=int, default=None, help="runs (seeds) per row (Xue et al.: 5)")
    p.add_argument("--epochs", type=int, default=None, help="classifier epochs")
    p.add_argument("--rows", default=None, help=f"comma list of rows (default all: {','.join(ROW_ORDER)})")
    p.add_argument("--ratios", type=_floats, default=None, help="selective augmentation ratios r")
    p.add_argument("--p-grid", type=_floats, default=None, help="p values tried for the online policies")
    p.add_argument("--resolution", type=int, default=None, help="image side (28 px MedMNIST -> 32)")
    p.add_argument("--channel-names", default=None, help="comma list of channel names (default xray)")
    p.add_argument("--device", default=None, help="cpu or cuda (default cpu)")
    p.add_argument("--max-minutes", type=float, default=None, help="stop between units of work after this")
    p.add_argument("--no-progress", action="store_true")
    return p


def config_from_args(args: argparse.Namespace, argv: list[str]) -> ExperimentConfig:
    cfg = quick_config() if args.quick else ExperimentConfig()
    if args.data is not None:
        cfg.data = args.data
    slug = Path(cfg.data.split(":", 1)[-1]).stem or "data"
    cfg.out = args.out or f"runs/selective-{slug}{'-quick' if args.quick else ''}"
    cfg.command = "python examples/selective_augmentation/run.py " + " ".join(shlex.quote(a) for a in argv)
    if args.gan is not None:
        cfg.gan = args.gan
    if args.gan_kimg is not None:
        cfg.recipe.kimg = args.gan_kimg
    if args.gan_class_balance:
        cfg.recipe.class_balance = True
    if args.gan_select is not None:
        cfg.recipe.select = args.gan_select
    if args.gan_minutes is not None:
        cfg.recipe.max_minutes = args.gan_minutes
    if args.runs is not None:
        cfg.runs = args.runs
    if args.epochs is not None:
        cfg.classifier = cfg.classifier.replace(epochs=args.epochs)
    if args.rows is not None:
        rows = tuple(r.strip() for r in args.rows.split(",") if r.strip())
        unknown = [r for r in rows if r not in ROW_ORDER and not r.startswith(("selective_r", "gan_r"))]
        if unknown:
            raise SystemExit(f"unknown rows {unknown}; known: {', '.join(ROW_ORDER)}")
        cfg.rows = rows
    if args.ratios is not None:
        cfg.ratios = args.ratios
        cfg.rows = tuple(r for r in cfg.rows if not r.startswith("selective_r")) + tuple(
            f"selective_r{r}" for r in args.ratios
        )
    if args.p_grid is not None:
        cfg.p_grid = args.p_grid
    if args.resolution is not None:
        cfg.resolution = args.resolution
    if args.channel_names is not None:
        cfg.channel_names = tuple(c.strip() for c in args.channel_names.split(","))
    if args.device is not None:
        cfg.device = args.device
    cfg.max_minutes = args.max_minutes
    cfg.progress = cfg.progress and not args.no_progress
    return cfg


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    cfg = config_from_args(args, argv)
    experiment = Experiment(cfg)
    try:
        results = experiment.run()
    except Stopped:
        print(f"stopped after --max-minutes; rerun the same command to resume ({cfg.out})")
        return 3
    out = Path(args.report) if args.report else Path(cfg.out)
    report.write(
        out, experiment, results, commit=commit_label(Path(__file__).resolve().parent), command=cfg.command
    )
    print(f"wrote {out / 'report.md'} and {out / 'results.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
