"""``latent-transforms tune``: the hyper-parameter search and the baselines' grids from the command line.

:func:`add_parser` declares the sub-command on the CLI's sub-parsers; :func:`run_tune` runs it. For
LatentAugment with the F1 objective on a dataset: the reference is ``--n-real`` slices of the validation
split, the sources ``--n-sources`` slices of the training split, inverted once into a latent cache (in the
output folder unless ``--cache``; a second run reuses it) whose statistics LatentAugment's diversity terms
use. The data are prepared as ``latent-transforms evaluate`` prepares them
(:func:`~latent_transforms.evaluation.real_data.open_real_data` and
:func:`~latent_transforms.evaluation.real_data.prepare_latents`).
"""

from __future__ import annotations

import argparse
import json
import platform
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from latent_transforms.arguments import (
    BUILTIN_DATA,
    BUILTIN_GAN,
    PAIRED_DATA_HELP,
    CommonFlags,
    common_flags,
    data_options,
)
from latent_transforms.errors import ConfigError, LatentTransformsError

__all__ = ["DEFAULT_DATA", "DEFAULT_GAN", "add_parser", "run", "run_tune"]

#: The bundle ``tune`` searches by default (the shipped phantom GAN).
DEFAULT_GAN = BUILTIN_GAN
#: The data it was trained on (the demo's phantom spec): the split gives train sources and val reference.
DEFAULT_DATA = BUILTIN_DATA
POLICIES = ("latentaugment", "latentaugment-p", "standardda", "sg2sample")

DESCRIPTION = """\
Search LatentAugment's hyper-parameters with Optuna TPE (Tronchin et al. 2023: 50 trials), or grid-search the
baselines. Objectives: f1 (task-agnostic: F1 of precision/recall between --n-real validation images and
--n-samples LatentAugment samples, per modality, averaged; maximised) or downstream (--downstream
module:function or path/file.py:function, called with the transform, returning your validation metric;
minimised unless --direction maximize; p is tuned too). Spaces: paper (the paper's categorical grids) or
continuous. The study is kept in OUT/study.db: running the same command again resumes it up to --trials
completed trials. Writes OUT/best_config.json (LatentAugment.from_config loads it), trials.csv,
tuning.json, importance.json and importance.png (random-forest Gini importance with bootstrapped standard
errors, and Optuna's fANOVA importance).

Grids (--policy): standardda (the paper's 7 combinations of xflip / affine / deform x 10 values of p),
sg2sample (10 values of p), latentaugment-p (10 values of p around --config, e.g. best_config.json).
With --objective f1 the p values collapse to p = 1 (F1 samples are all augmented).

Examples:
  latent-transforms tune --gan runs/pelvis/bundle --data /data/pelvis --device cuda --out runs/tune-f1
  latent-transforms tune --reference inverted --n-real 320 --n-samples 1600 --batch 64 --device cuda
  latent-transforms tune --objective downstream --downstream train_pix2pix.py:validate_mae --out runs/tune-mae
  latent-transforms tune --policy standardda --downstream train_pix2pix.py:validate_mae --out runs/grid-da
  latent-transforms tune --policy latentaugment-p --config runs/tune-f1/best_config.json \\
      --downstream train_pix2pix.py:validate_mae --out runs/grid-p
"""


def add_parser(sub: Any, parents: CommonFlags | None = None) -> argparse.ArgumentParser:
    """Declare ``tune`` on ``sub`` (the ``add_subparsers()`` object of the CLI) and set its ``func``;
    ``parents`` gives the shared ``--device`` and ``--quiet`` flags.

    Example:
        >>> parser = argparse.ArgumentParser(prog="latent-transforms")
        >>> _ = add_parser(parser.add_subparsers(dest="command"))
        >>> args = parser.parse_args(["tune", "--trials", "3"])
        >>> args.trials, args.space, args.objective, args.func is run_tune
        (3, 'paper', 'f1', True)
    """
    flags = parents or common_flags()
    p = sub.add_parser(
        "tune",
        parents=[flags.device, flags.quiet, flags.data],
        help="tune LatentAugment with Optuna TPE (F1 or downstream objective); grid-search the baselines",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=DESCRIPTION,
    )
    p.add_argument(
        "--gan", default=DEFAULT_GAN, help=f"bundle folder, builtin:<name> or Hub repo id ({DEFAULT_GAN})"
    )
    p.add_argument("--data", default=DEFAULT_DATA, help=f"{PAIRED_DATA_HELP} (default {DEFAULT_DATA})")
    p.add_argument("--split-fractions", default="0.7,0.2,0.1", help="train,val[,test] patient fractions")
    p.add_argument("--split-seed", type=int, default=0)
    p.add_argument("--objective", choices=["f1", "downstream"], default="f1")
    p.add_argument(
        "--downstream", default=None, help="module:function or path/file.py:function, transform -> float"
    )
    p.add_argument(
        "--direction",
        choices=["minimize", "maximize"],
        default=None,
        help="default: f1 maximize, downstream minimize",
    )
    p.add_argument(
        "--policy", choices=POLICIES, default="latentaugment", help="what to search (default latentaugment)"
    )
    p.add_argument("--config", default=None, help="LatentAugment config JSON for --policy latentaugment-p")
    p.add_argument("--space", choices=["paper", "continuous"], default="paper")
    p.add_argument("--trials", type=int, default=50, help="completed trials in the study in all (default 50)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--storage",
        default=None,
        help="Optuna storage: a file (SQLite) or URL; default OUT/study.db; 'memory'",
    )
    p.add_argument("--study-name", default=None, help="default latent-augment-<objective>-<space>")
    p.add_argument(
        "--n-real",
        type=int,
        default=10_000,
        help="validation slices, the F1 reference (default 10000, capped)",
    )
    p.add_argument(
        "--n-samples", type=int, default=50_000, help="LatentAugment samples per trial (default 50000)"
    )
    p.add_argument(
        "--n-sources", type=int, default=None, help="training slices to augment/invert (default: all)"
    )
    p.add_argument(
        "--feature-network", default="efficientnet-lite0", help="F1 features (default efficientnet-lite0)"
    )
    p.add_argument("--k", type=int, default=3, help="neighbour of the precision/recall radii (default 3)")
    p.add_argument(
        "--reference",
        choices=["real", "inverted"],
        default="real",
        help="F1 reference: the validation images (real, the paper) or the GAN's reconstructions G(w*) of "
        "them (inverted: for a GAN whose images all lie off the real manifold)",
    )
    p.add_argument(
        "--perceptual",
        default="efficientnet-lite0",
        help="perceptual network of the statistics and inversion",
    )
    p.add_argument(
        "--cache", default=None, help="latent cache of the sources (default OUT/cache, made if missing)"
    )
    p.add_argument(
        "--inversion-steps", type=int, default=300, help="projector steps per inversion (default 300)"
    )
    p.add_argument(
        "--batch", type=int, default=16, help="images per LatentAugment / projector batch (default 16)"
    )
    p.add_argument(
        "--value-range",
        choices=["physical", "unit", "generator"],
        default="physical",
        help="the range of the images your --downstream function feeds the transform (default physical)",
    )
    p.add_argument(
        "--importance-rounds", type=int, default=1000, help="bootstrap rounds (default 1000, the paper)"
    )
    p.add_argument(
        "--max-minutes",
        type=float,
        default=None,
        help="start no trial this many minutes after the command started (run again to resume)",
    )
    p.add_argument("--out", default="tune", help="output folder (default tune)")
    p.set_defaults(func=run_tune)
    return p


def _say(args: argparse.Namespace, text: str) -> None:
    if not args.quiet:
        print(text, flush=True)


def _projector(args: argparse.Namespace, bundle: Any, device: Any) -> Any:
    """The projector of tune's inversions: ``--inversion-steps`` steps of pixel and ``--perceptual`` loss."""
    from latent_transforms.features.perceptual import perceptual_network
    from latent_transforms.inversion.projector import Projector

    perceptual = perceptual_network(args.perceptual, bundle=bundle, device=device)
    return Projector(
        bundle,
        steps=args.inversion_steps,
        perceptual=perceptual,
        batch_size=max(args.batch, 1),
        device=device,
        progress=False,
        seed=args.seed,
    )


def _latents(args: argparse.Namespace, bundle: Any, real: Any, device: Any) -> tuple[Path, Any]:
    """The cache folder holding the sources' latents (inverting them when needed) and its statistics."""
    from latent_transforms.evaluation.real_data import prepare_latents
    from latent_transforms.inversion.cache import CACHE_JSON
    from latent_transforms.inversion.job import STATS_NAME
    from latent_transforms.objectives.stats import DatasetStats

    folder = Path(args.cache) if args.cache else Path(args.out) / "cache"
    if not (args.cache and (folder / CACHE_JSON).is_file()):  # a --cache of yours is used as it is
        projector = _projector(args, bundle, device)
        _say(args, f"inverting {len(real.sources)} training slices into {folder} (skips those already there)")
        summary = prepare_latents(
            bundle,
            real,
            folder,
            perceptual=projector.perceptual,
            projector=projector,
            reuse=False,
            progress=not args.quiet,
        )
        _say(args, f"inversion: {summary}")
    stats_file = folder / STATS_NAME
    if not stats_file.is_file():
        raise ConfigError(
            f"the latent cache {folder} has no {STATS_NAME}. Fix: latent-transforms invert --gan {args.gan} "
            f"--data {args.data} --split train --cache {folder} (which writes it), or drop --cache."
        )
    return folder, DatasetStats.load(stats_file, device=device)


def _reconstructions(args: argparse.Namespace, bundle: Any, real: Any, device: Any) -> tuple[Any, Path]:
    """The GAN's reconstructions ``G(w*)`` ``[N, C, R, R]`` of the reference slices (inverted once, cached in
    ``OUT/cache-reference``)."""
    import torch

    from latent_transforms.inversion.cache import LatentCache
    from latent_transforms.inversion.job import invert_dataset

    folder = Path(args.out) / "cache-reference"
    projector = _projector(args, bundle, device)
    _say(args, f"inverting {len(real.reference)} validation slices into {folder} (the F1 reference: G(w*))")
    cache = LatentCache(folder, fingerprint=bundle.fingerprint, settings=projector.settings())
    invert_dataset(bundle, real.reference_items, cache, projector, progress=not args.quiet)
    w, _ = LatentCache.open(folder).get_batch(real.reference)
    generator = bundle.generator
    out = []
    with torch.no_grad():
        for chunk in w.split(max(args.batch, 1)):
            ws = chunk.to(device)
            ws = ws[:, None].expand(-1, generator.num_ws, -1) if ws.ndim == 2 else ws
            out.append(generator.synthesis(ws, noise_mode="const").clamp(-1, 1).cpu())
    return torch.cat(out), folder


def run_tune(args: argparse.Namespace) -> int:
    """Run ``latent-transforms tune`` with parsed ``args`` (see :func:`add_parser`); returns 0.

    Example:
        >>> callable(run_tune)
        True
    """
    import time

    import torch

    from latent_transforms.evaluation.real_data import open_real_data
    from latent_transforms.evaluation.run import load_utility
    from latent_transforms.networks.bundle import load_gan
    from latent_transforms.tasks.synthetic import resampled_labels
    from latent_transforms.tuning.grid import (
        latent_augment_p_grid,
        run_grid,
        sg2sample_grid,
        standard_da_grid,
    )
    from latent_transforms.tuning.objectives import DownstreamObjective, F1Objective
    from latent_transforms.tuning.spaces import P_VALUES
    from latent_transforms.tuning.study import SUMMARY_NAME, tune, write_atomic

    started = time.perf_counter()
    if args.objective == "downstream" and not args.downstream:
        raise ConfigError(
            "--objective downstream needs --downstream module:function (transform -> validation metric)."
        )
    if args.downstream and args.objective == "f1" and args.policy == "latentaugment":
        args.objective = "downstream"  # --downstream alone means the downstream objective
    if args.policy in ("standardda", "sg2sample", "latentaugment-p") and args.downstream:
        args.objective = "downstream"
    if args.policy == "latentaugment-p":
        if not args.config:
            raise ConfigError(
                "--policy latentaugment-p needs --config CONFIG.json (e.g. OUT/best_config.json)."
            )
        if args.objective != "downstream":
            raise ConfigError(
                "--policy latentaugment-p with --objective f1: F1 does not depend on p (its samples are all "
                "augmented). Fix: pass --downstream module:function."
            )
    direction = args.direction or ("maximize" if args.objective == "f1" else "minimize")
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    torch.manual_seed(args.seed)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    bundle = load_gan(args.gan, device=device)
    f1_reference = args.objective == "f1"
    if f1_reference and args.n_real < 1:
        raise ConfigError(f"expected --n-real >= 1, got {args.n_real}.")
    real = open_real_data(
        bundle,
        args.data,
        reference_split="val" if f1_reference else None,
        n_real=args.n_real,
        n_sources=args.n_sources,
        fractions=tuple(float(f) for f in args.split_fractions.split(",")),
        split_seed=args.split_seed,
        dataset_options=data_options(args),
    )
    needs_latents = args.policy in ("latentaugment", "latentaugment-p")
    conditional = bundle.config.c_dim > 0
    if needs_latents and conditional and real.source_labels is None:
        raise ConfigError(
            f"the GAN is class-conditional, and LatentAugment's fidelity term tells its discriminator each "
            f"source's class, but {args.data!r} has no labels. Fix: labelled data (medmnist:FILE.npz, a "
            "folder of class folders), or an unconditional GAN."
        )
    cache_folder, stats = _latents(args, bundle, real, device) if needs_latents else (None, None)
    fn: Any = (  # the user's validate(transform) -> float
        load_utility(args.downstream, option="--downstream", signature="validate(transform) -> float")
        if args.objective == "downstream"
        else None
    )

    f1: F1Objective | None = None
    if f1_reference:
        n_val = real.info["reference_slices_in_split"]
        if args.n_real > n_val:
            _say(args, f"--n-real {args.n_real} > {n_val} validation slices: using all {n_val}")
        if args.reference == "inverted":
            reference, _ = _reconstructions(args, bundle, real, device)
        else:
            reference = real.reference
        train_labels = real.training_labels() if conditional else None
        f1 = F1Objective(
            bundle,
            cache_folder,
            stats,
            reference,
            real.sources,
            # over a conditional GAN: each source keeps its class, drawn samples follow the training balance
            source_labels=real.source_labels if conditional else None,
            labels=None
            if train_labels is None
            else resampled_labels(train_labels, args.n_samples, args.seed),
            n_samples=args.n_samples,
            feature_network=args.feature_network,
            k=args.k,
            batch_size=args.batch,
            device=device,
            seed=args.seed,
            progress=not args.quiet,
        )
    run = {
        "command": "latent-transforms "
        + " ".join(shlex.quote(a) for a in getattr(args, "argv", sys.argv[1:])),
        "gan": args.gan,
        "data": args.data,
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.machine(),
        "torch": torch.__version__,
    }

    if args.policy == "latentaugment":
        if f1 is not None:
            objective: Any = f1
        else:
            assert fn is not None
            objective = DownstreamObjective(
                fn,
                direction,
                gan=bundle,
                cache=cache_folder,
                stats=stats,
                value_range=args.value_range,
                device=device,
                seed=args.seed,
            )
        points = None
        if f1 is not None:
            points = f1.reference_points()
            _say(args, f"reference points (F1 of the sources themselves and of G(w*)): {points}")
            if points["reconstructions"]["f1"] == 0.0:
                print(
                    "warning: the GAN's reconstructions G(w*) score F1 = 0 against the reference: its images "
                    "lie off the reference's manifold in this feature space, so every setting will likely "
                    "score 0. Consider --reference inverted (the GAN's reconstructions of the validation "
                    "images).",
                    file=sys.stderr,
                )
        storage = None if args.storage == "memory" else (args.storage or out / "study.db")
        result = tune(
            objective,
            space=args.space,
            n_trials=args.trials,
            seed=args.seed,
            storage=storage,
            study_name=args.study_name,
            direction=direction,
            out=out,
            importance_rounds=args.importance_rounds,
            timeout=None
            if args.max_minutes is None
            else max(0.0, 60.0 * args.max_minutes - (time.perf_counter() - started)),
            progress=not args.quiet,
        )
        summary = {"run": run, **result.summary(), "reference": args.reference, "reference_points": points}
        write_atomic(out / SUMMARY_NAME, json.dumps(summary, indent=2) + "\n")
        written = ", ".join(str(p) for p in result.files.values())
        print(
            f"{result.n_complete} trials complete; best {result.objective['objective']} = "
            f"{result.best_value} with {result.best_params}\nwrote {written}"
        )
        return 0

    p_values: Sequence[float] = (1.0,) if args.objective == "f1" else P_VALUES
    if args.policy == "standardda":
        grid_points = standard_da_grid(p_values, seed=args.seed)
    elif args.policy == "sg2sample":
        grid_points = sg2sample_grid(
            bundle, p_values, seed=args.seed, value_range=args.value_range, device=device
        )
    else:
        grid_points = latent_augment_p_grid(
            args.config,
            bundle,
            cache_folder,
            stats,
            p_values,
            value_range=args.value_range,
            device=device,
            seed=args.seed,
        )
    measure = f1.measure if f1 is not None else fn
    assert measure is not None
    grid = run_grid(
        grid_points,
        measure,
        direction=direction,
        out=out,
        name=f"grid-{args.policy}",
        progress=not args.quiet,
    )
    payload = {"run": run, **grid.to_dict()}
    write_atomic(out / f"grid-{args.policy}.json", json.dumps(payload, indent=2) + "\n")
    best = grid.best
    shown = "none" if best is None else f"{best['setting']} p={best['p']} ({best['value']})"
    print(f"{len(grid.rows)} settings; best: {shown}\nwrote {', '.join(str(p) for p in grid.files.values())}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m latent_transforms.tuning.command ...``: the ``tune`` sub-command on its own.

    Example:
        >>> callable(main)
        True
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] != "tune":
        argv = ["tune", *argv]
    parser = argparse.ArgumentParser(prog="latent-transforms")
    add_parser(parser.add_subparsers(dest="command", required=True, metavar="COMMAND"))
    args = parser.parse_args(argv)
    args.argv = argv
    try:
        return run_tune(args)
    except LatentTransformsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


#: The command's ``run(args)``, as every command module names it.
run = run_tune


if __name__ == "__main__":
    raise SystemExit(main())
