"""``latent-transforms evaluate``: the command line of ``evaluate_policies``.

:func:`add_parser` declares the sub-command on the ``latent-transforms`` parser's sub-parsers; its
function runs the evaluation and prints the summary table.
"""

from __future__ import annotations

import argparse
from typing import Any

from latent_transforms.arguments import (
    BUILTIN_DATA as DEFAULT_DATA,
    BUILTIN_GAN as DEFAULT_GAN,
    PAIRED_DATA_HELP,
    CommonFlags,
    command_line,
    common_flags,
    data_options,
)
from latent_transforms.errors import ConfigError

__all__ = ["add_parser", "run", "run_command"]

DESCRIPTION = """\
Measure synthetic data the way Xing et al. (2023) do, for several augmentation policies side by
side: fidelity (FID, precision), variety (recall, mean-image file size), utility (downstream gain with a
Wilcoxon test, when --utility gives a training function, or the built-in task classifier on labelled
data: --utility classifier) and efficiency (time per 1000 images, peak GPU memory; peak RSS on a CPU in
results.json). The generator (--gan) is a StyleGAN2 or a diffusion bundle; a diffusion bundle next to a
GAN is a diffusion:bundle=PATH policy. Every policy is sampled with p = 1 (all samples augmented) and
compared per modality with the held-out reference slices (--reference-split, default val: patients the
GAN never saw). StandardDA and LatentAugment transform training slices (--n-sources); LatentAugment's
latents for them are inverted once into OUT/cache (or --cache) and reused.

Writes OUT/report.md (Xing et al.'s table, per-modality sub-tables), OUT/results.json,
OUT/precision_recall.png (as Fig. 7 of Tronchin et al. 2023: one point per policy, SG2Sample psi values
joined) and OUT/samples.png. Each finished utility run is kept in OUT/utility-runs: the same command
run again (after a kill, say) reuses the runs made with the same settings and trains only the rest
(--retrain-utility: train them all again).

Policy specs (--synthetic, repeatable; each takes name=... for its display name):
  sg2sample:psi=0.7                 random GAN samples, truncation psi
  diffusion:bundle=PATH,steps=50    random samples of a diffusion bundle, DDIM with 50 steps (sampler=ddpm,
                                    eta, guidance, c also taken; no bundle=: --gan, if it is one)
  latentaugment:preset=f1           LatentAugment, the paper's F1 set (preset=mae: the MAE set), with any
                                    constructor overrides: latentaugment:preset=f1,steps=3,alpha_f=0.1
  latentaugment:config=best.json    a LatentAugment.config() JSON file
  standardda                        flip/rotate/translate/elastic (rotate=5,elastic=none, ...)
  real                              the training slices themselves (the no-augmentation row)
  dir:PATH or PATH                  a folder written by latent-transforms augment

Examples:
  latent-transforms evaluate --synthetic sg2sample:psi=0.7 --synthetic latentaugment:preset=f1
  latent-transforms evaluate --out eval --n-samples 2000 --synthetic sg2sample:psi=0.3 \\
      --synthetic sg2sample:psi=1.0 --synthetic latentaugment:preset=mae --synthetic real \\
      --utility my_task.py:train_and_score --utility-seeds 0,1,2,3,4 --lower-is-better
  latent-transforms evaluate --gan runs/cgan/bundle --real medmnist:pneumoniamnist.npz \\
      --reference-split test --synthetic standardda --synthetic sg2sample:psi=1 \\
      --synthetic diffusion:bundle=runs/ddpm32/bundle --utility classifier --utility-seeds 0,1,2,3,4
"""


def _seeds(text: str) -> list[int]:
    try:
        seeds = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers (e.g. 0,1,2), got {text!r}"
        ) from None
    if not seeds:
        raise argparse.ArgumentTypeError("expected at least one seed, e.g. 0,1,2")
    return seeds


def _fractions(text: str) -> list[float]:
    try:
        return [float(f) for f in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected train,val[,test] fractions, got {text!r}") from None


def add_parser(sub: Any, parents: CommonFlags | None = None) -> argparse.ArgumentParser:
    """Declare the ``evaluate`` sub-command on ``sub`` (an ``ArgumentParser.add_subparsers()`` object);
    ``parents`` gives the shared ``--device``, ``--revision`` / ``--cache-dir`` and ``--quiet`` flags.

    Example:
        >>> parser = argparse.ArgumentParser(prog="latent-transforms")
        >>> _ = add_parser(parser.add_subparsers(dest="command"))
        >>> args = parser.parse_args(["evaluate", "--synthetic", "sg2sample:psi=0.7", "--k", "5"])
        >>> args.synthetic, args.k, args.gan, args.func is run_command
        (['sg2sample:psi=0.7'], 5, 'builtin:pelvis-phantom-64', True)
    """
    flags = parents or common_flags()
    p = sub.add_parser(
        "evaluate",
        parents=[flags.device, flags.hub, flags.quiet, flags.data],
        help="compare augmentation policies: fidelity, variety, utility, efficiency (Xing et al. 2023)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=DESCRIPTION,
    )
    p.add_argument(
        "--synthetic",
        action="append",
        required=True,
        metavar="SPEC",
        help="a policy spec (repeat for several; see above)",
    )
    p.add_argument(
        "--real",
        "--data",
        dest="real",
        default=DEFAULT_DATA,
        metavar="DATA",
        help=f"the real data, {PAIRED_DATA_HELP}, or labelled images (medmnist:FILE.npz, a folder of class "
        f"folders) (default {DEFAULT_DATA})",
    )
    p.add_argument(
        "--gan",
        default=DEFAULT_GAN,
        help="the generator: a GAN or diffusion bundle folder, builtin:<name> or Hub id "
        f"(default {DEFAULT_GAN})",
    )
    p.add_argument("--out", default="evaluation", help="output folder (default evaluation)")
    p.add_argument("--n-samples", type=int, default=1000, help="samples per policy (default 1000)")
    p.add_argument(
        "--n-real", type=int, default=None, help="reference slices, spread over the split (default: all)"
    )
    p.add_argument(
        "--n-sources",
        type=int,
        default=128,
        help="training slices StandardDA/LatentAugment transform (default 128)",
    )
    p.add_argument(
        "--reference-split",
        choices=["val", "test", "train", "all"],
        default="val",
        help="where the reference slices come from (default val: held-out patients)",
    )
    p.add_argument(
        "--split-fractions",
        type=_fractions,
        default=[0.7, 0.2, 0.1],
        help="train,val,test (default 0.7,0.2,0.1)",
    )
    p.add_argument("--split-seed", type=int, default=0, help="seed of the patient split (default 0)")
    p.add_argument(
        "--cache", default=None, metavar="DIR", help="latent cache of the sources (default OUT/cache)"
    )
    p.add_argument(
        "--inversion-steps",
        type=int,
        default=150,
        help="projector steps per source not yet cached (default 150)",
    )
    p.add_argument(
        "--feature-network",
        default="efficientnet-lite0",
        help="features for FID and precision/recall: efficientnet-lite0 (default, offline), inception-v3, "
        "vgg16, discriminator, random",
    )
    p.add_argument(
        "--perceptual",
        default="efficientnet-lite0",
        help="LatentAugment's perceptual network for new statistics (default efficientnet-lite0)",
    )
    p.add_argument("--k", type=int, default=3, help="k of the k-NN precision/recall radii (default 3)")
    p.add_argument("--batch", type=int, default=16, help="images per policy call (default 16)")
    p.add_argument(
        "--efficiency-images",
        type=int,
        default=None,
        help="images timed per policy (default 1000 on CUDA, 64 on CPU; 0 = skip)",
    )
    p.add_argument(
        "--mean-image-format",
        choices=["png", "jpeg"],
        default="png",
        help="mean-image file format (default png)",
    )
    p.add_argument(
        "--utility",
        default=None,
        metavar="MODULE:FUNCTION",
        help="train_and_score(policy_or_None, seed) -> a score or per-sample scores, as module:function "
        "or file.py:function; or 'classifier' (the built-in task classifier on labelled --real data, "
        "augmentation utility) / 'classifier:feature-extraction' (Xing et al. 2023)",
    )
    p.add_argument(
        "--utility-seeds", type=_seeds, default=[0], help="comma-separated training seeds (default 0)"
    )
    p.add_argument(
        "--lower-is-better", action="store_true", help="the utility score is better when lower (e.g. MAE)"
    )
    p.add_argument(
        "--retrain-utility",
        dest="reuse_utility",
        action="store_false",
        help="train every utility run again, overwriting those kept in OUT/utility-runs (by default a run "
        "finished there with the same settings is reused, so a killed evaluation resumes)",
    )
    p.add_argument("--grid-images", type=int, default=8, help="images per row of samples.png (default 8)")
    p.add_argument("--seed", type=int, default=0, help="seed of every policy's draws (default 0)")
    p.set_defaults(func=run_command)
    return p


def run_command(args: argparse.Namespace) -> int:
    """Run ``latent-transforms evaluate`` with parsed ``args``; prints the summary and the files written.

    Example:
        >>> callable(run_command)
        True
    """
    from latent_transforms.evaluation.run import evaluate_policies

    command = command_line(args) if getattr(args, "argv", None) is not None else None
    gan: Any = args.gan
    if args.revision or getattr(args, "cache_dir", None):
        from latent_transforms.generative.load import load_generator

        gan = load_generator(args.gan, revision=args.revision, cache_dir=getattr(args, "cache_dir", None))
    if args.n_samples is None or args.n_samples < 1:
        raise ConfigError(f"--n-samples must be >= 1, got {args.n_samples}.")
    report = evaluate_policies(
        args.synthetic,
        gan=gan,
        data=args.real,
        out=args.out,
        n_samples=args.n_samples,
        n_real=args.n_real,
        n_sources=args.n_sources,
        reference_split=args.reference_split,
        split_fractions=args.split_fractions,
        split_seed=args.split_seed,
        feature_network=args.feature_network,
        k=args.k,
        batch_size=args.batch,
        seed=args.seed,
        device=args.device,
        cache=args.cache,
        inversion_steps=args.inversion_steps,
        perceptual=args.perceptual,
        efficiency_images=args.efficiency_images,
        mean_image_format=args.mean_image_format,
        utility=args.utility,
        utility_seeds=args.utility_seeds,
        lower_is_better=args.lower_is_better,
        reuse_utility=args.reuse_utility,
        grid_images=args.grid_images,
        command=command,
        progress=not args.quiet,
        dataset_options=data_options(args),
    )
    print(report.summary_markdown())
    print(f"\nwrote {args.out}/report.md, results.json, precision_recall.png and samples.png")
    return 0


#: The command's ``run(args)``, as every command module names it.
run = run_command
