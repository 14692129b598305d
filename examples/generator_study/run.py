"""Xing et al. 2023's study of generators (fidelity, variety, utility, efficiency) on labelled images, in one
resumable command.

    python examples/generator_study/run.py --quick                    # CI smoke run on generated data
    python examples/generator_study/run.py --data medmnist:../shared/data/pneumoniamnist.npz \\
        --gan runs/pneumoniamnist/work/gan/bundle --diffusion runs/ddpm32/bundle \\
        --out runs/generator-study --report benchmarks/results/pneumoniamnist-generators

Rows: real (no augmentation), StandardDA, SG2Sample (the class-conditional StyleGAN2, psi = 1),
LatentAugment (walks of the inverted training images, each keeping its class) and DDPM (the diffusion
bundle, DDIM). Columns: FID / precision / recall on EfficientNet-Lite0 and on the task network's features
against the held-out test split, the mean-image size, the augmentation and feature-extraction utility of
the task classifier (--runs runs each, Wilcoxon against real), seconds per 1,000 images and peak memory.
The GAN comes from examples/selective_augmentation (its recipe trains it into <out>/work/gan/bundle), the
diffusion bundle from `latent-transforms train-diffusion`. Every stage is stored under --out/work; rerun
the same command to resume (--max-minutes stops it on purpose between units of work).
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # makes `generator_study` importable

from generator_study import report
from generator_study.pipeline import GROUP, MissingInput, Stopped, Study, StudyConfig, quick_config
from latent_transforms.evaluation import commit_label
from latent_transforms.tasks import CLASSIFICATION_METRICS


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="run.py",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n\n", 1)[1],
    )
    d = StudyConfig()
    p.add_argument("--data", default=None, help=f"medmnist:PATH.npz or a folder of class folders ({d.data})")
    p.add_argument("--gan", default=None, help=f"the class-conditional StyleGAN2 bundle ({d.gan})")
    p.add_argument(
        "--diffusion", default=None, help=f"the class-conditional diffusion bundle ({d.diffusion})"
    )
    p.add_argument("--out", default=None, help=f"work folder ({d.out}; --quick: {d.out}-quick)")
    p.add_argument("--report", default=None, help="where report.md / results.json go (default: --out)")
    p.add_argument("--quick", action="store_true", help="smoke size: generated toy data, tiny bundles")
    p.add_argument("--runs", type=int, default=None, help=f"runs (seeds) per utility figure ({d.runs})")
    p.add_argument("--steps", type=int, default=None, help=f"DDIM steps of the diffusion row ({d.steps})")
    p.add_argument("--psi", type=float, default=None, help=f"SG2Sample truncation psi ({d.psi})")
    p.add_argument("--preset", default=None, help=f"LatentAugment preset ({d.preset})")
    p.add_argument("--samples", type=int, default=None, help=f"images per row for fidelity ({d.n_samples})")
    p.add_argument("--epochs", type=int, default=None, help=f"classifier epochs ({d.classifier.epochs})")
    p.add_argument(
        "--metric", default=None, choices=CLASSIFICATION_METRICS, help=f"utility score ({d.metric})"
    )
    p.add_argument(
        "--inversion-steps", type=int, default=None, help=f"projector steps per image ({d.inversion_steps})"
    )
    p.add_argument(
        "--latents",
        default=None,
        help="a latent cache of the same GAN and training images to reuse (default: inverted into the work "
        "folder), e.g. the selective example's <out>/work/gan-<fingerprint>/latents",
    )
    p.add_argument(
        "--efficiency-images",
        type=int,
        default=None,
        help="images timed per row (default: 1000 on CUDA, 64 on CPU)",
    )
    p.add_argument("--device", default=None, help="cpu or cuda (default: CUDA when available)")
    p.add_argument("--max-minutes", type=float, default=None, help="stop between units of work after this")
    p.add_argument(
        "--groups",
        default=None,
        help="comma list of the row groups to measure now: real (real, StandardDA), gan (SG2Sample, "
        "LatentAugment), diffusion (DDPM); the report is written when all three are measured (default all)",
    )
    p.add_argument("--no-progress", action="store_true")
    return p


def config_from_args(args: argparse.Namespace, argv: list[str]) -> StudyConfig:
    cfg = quick_config() if args.quick else StudyConfig()
    cfg.out = args.out or (f"{StudyConfig().out}-quick" if args.quick else cfg.out)
    cfg.command = "python examples/generator_study/run.py " + " ".join(shlex.quote(a) for a in argv)
    for name, value in (
        ("data", args.data),
        ("gan", args.gan),
        ("diffusion", args.diffusion),
        ("runs", args.runs),
        ("steps", args.steps),
        ("psi", args.psi),
        ("preset", args.preset),
        ("n_samples", args.samples),
        ("metric", args.metric),
        ("inversion_steps", args.inversion_steps),
        ("latents", args.latents),
        ("efficiency_images", args.efficiency_images),
        ("device", args.device),
    ):
        if value is not None:
            setattr(cfg, name, value)
    if args.epochs is not None:
        cfg.classifier = cfg.classifier.replace(epochs=args.epochs)
    cfg.max_minutes = args.max_minutes
    if args.groups is not None:
        groups = tuple(g.strip() for g in args.groups.split(",") if g.strip())
        unknown = sorted(set(groups) - set(GROUP.values()))
        if unknown or not groups:
            raise SystemExit(f"--groups: unknown {unknown or groups}; choose from real, gan, diffusion")
        cfg.groups = groups
    cfg.progress = cfg.progress and not args.no_progress
    return cfg


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    cfg = config_from_args(args, argv)
    try:
        study = Study(cfg)
        results = study.run()
    except MissingInput as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except Stopped:
        print(f"stopped after --max-minutes; rerun the same command to resume ({cfg.out})")
        return 3
    if not study.complete:
        print(f"measured the groups {', '.join(cfg.groups)}; run without --groups for the report ({cfg.out})")
        return 0
    out = Path(args.report) if args.report else Path(cfg.out)
    report.write(
        out, study, results, commit=commit_label(Path(__file__).resolve().parent), command=cfg.command
    )
    print(f"wrote {out / 'report.md'} and {out / 'results.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
