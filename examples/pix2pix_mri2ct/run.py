"""The Pix2Pix MRI-to-CT benchmark of Tronchin et al. 2023, end to end, in one command.

    python examples/pix2pix_mri2ct/run.py --data phantom --quick          # CPU, a few minutes
    python examples/pix2pix_mri2ct/run.py --data phantom --device cuda    # the full protocol, one GPU
    python examples/pix2pix_mri2ct/run.py --data /data/SynthRAD2023/Task1/pelvis --device cuda
    python examples/pix2pix_mri2ct/run.py --data /data/my_slices --gan my-org/my-gan --device cuda

It trains Pix2Pix (MRI -> CT) with no augmentation, Standard DA, Standard SG2 DA and LatentAugment
(F1 and MAE presets), each on several seeds, plus the loss-term ablations and a ``p`` sweep, scores them
on held-out patients, and writes ``report.md``, ``results.json`` and the figures into ``--out``. Rerun
the same command to resume an interrupted benchmark (``--max-minutes`` stops it on purpose).
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # makes `pix2pix_mri2ct` importable

from pix2pix_mri2ct.model import Pix2PixOptions
from pix2pix_mri2ct.pipeline import BenchmarkConfig, quick_config, run_benchmark


def _floats(text: str) -> list[float]:
    return [float(x) for x in text.split(",") if x.strip()]


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def build_parser() -> argparse.ArgumentParser:
    """The command line (every option has the paper's value as its default)."""
    p = argparse.ArgumentParser(
        prog="run.py",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n\n", 1)[1],
    )
    p.add_argument("--data", default="phantom", help="phantom | phantom:patients=N,... | a data folder")
    p.add_argument("--out", default=None, help="output folder (default runs/pix2pix-<data>[-quick])")
    p.add_argument("--quick", action="store_true", help="smoke size on CPU: every table, tiny models")
    p.add_argument("--gan", default=None, help="GAN bundle (Hub id, folder, builtin:...); default: see docs")
    p.add_argument("--device", default=None, help="cuda, cpu (default: CUDA when available; --quick: cpu)")
    p.add_argument("--seeds", type=_ints, default=None, help="Table II seeds, e.g. 0,1,2")
    p.add_argument("--ablation-seeds", type=_ints, default=None, help="Table V seeds")
    p.add_argument("--no-ablation", action="store_true", help="skip Table V")
    p.add_argument("--sweep-policy", default=None, help="policy swept for Fig. 6 ('' to skip)")
    p.add_argument("--sweep-p", type=_floats, default=None, help="p values of the sweep, e.g. 0.1,0.3,0.5")
    p.add_argument("--epochs", type=int, default=None, help="Pix2Pix epochs (paper: 40)")
    p.add_argument("--epochs-decay", type=int, default=None, help="of which decaying linearly (paper: 20)")
    p.add_argument("--batch", type=int, default=None, help="batch size (paper: 16)")
    p.add_argument("--ngf", type=int, default=None, help="generator base filters (pix2pix: 64)")
    p.add_argument("--ndf", type=int, default=None, help="discriminator base filters (pix2pix: 64)")
    p.add_argument("--max-slices", type=_ints, default=None, help="at most train,val,test slices")
    p.add_argument("--split", type=_floats, default=None, help="train,val,test patient fractions")
    p.add_argument("--split-seed", type=int, default=None)
    p.add_argument("--inversion-steps", type=int, default=None, help="projector steps per slice")
    p.add_argument(
        "--cache",
        default=None,
        help="latent cache of the training slices by dataset key, reused (default OUT/latents); make it "
        "with: latent-transforms invert --gan GAN --data DATA --split train --key dataset --cache DIR",
    )
    p.add_argument("--lpips", default=None, help="LPIPS backbone: alex (default), vgg, squeeze, none")
    p.add_argument("--gan-kimg", type=float, default=None, help="GAN training length when one is trained")
    p.add_argument("--gan-resolution", type=int, default=None, help="resolution of a GAN trained here")
    p.add_argument("--max-minutes", type=float, default=None, help="stop between runs after this long")
    p.add_argument("--workers", type=int, default=None, help="DataLoader workers for lazily read data")
    p.add_argument("--save-models", action="store_true", help="keep each run's Pix2Pix weights")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    return p


def config_from_args(args: argparse.Namespace, argv: list[str]) -> BenchmarkConfig:
    """A :class:`BenchmarkConfig` from the parsed options (``--quick`` sets the smoke defaults first)."""
    cfg = quick_config() if args.quick else BenchmarkConfig()
    slug = Path(args.data).name.split(":")[0] or "data"
    cfg.data = args.data
    cfg.out = args.out or f"runs/pix2pix-{slug}{'-quick' if args.quick else ''}"
    cfg.command = "python examples/pix2pix_mri2ct/run.py " + " ".join(shlex.quote(a) for a in argv)
    simple = {
        "gan": args.gan,
        "device": args.device,
        "seeds": args.seeds,
        "ablation_seeds": args.ablation_seeds,
        "sweep_policy": args.sweep_policy,
        "sweep_ps": args.sweep_p,
        "max_slices": args.max_slices,
        "split": args.split,
        "split_seed": args.split_seed,
        "inversion_steps": args.inversion_steps,
        "cache": args.cache,
        "gan_kimg": args.gan_kimg,
        "gan_resolution": args.gan_resolution,
        "max_minutes": args.max_minutes,
        "workers": args.workers,
    }
    for key, value in simple.items():
        if value is not None:
            setattr(cfg, key, value)
    if args.lpips is not None:
        cfg.lpips = None if args.lpips == "none" else args.lpips
    if args.no_ablation:
        cfg.ablation = False
    cfg.progress = not args.no_progress
    cfg.save_models = cfg.save_models or args.save_models
    px = cfg.pix2pix.to_dict()
    for key, value in {
        "epochs": args.epochs,
        "epochs_decay": args.epochs_decay,
        "batch_size": args.batch,
        "ngf": args.ngf,
        "ndf": args.ndf,
    }.items():
        if value is not None:
            px[key] = value
    if args.epochs is not None and args.epochs_decay is None:
        px["epochs_decay"] = args.epochs // 2  # the paper: the last half decays
    cfg.pix2pix = Pix2PixOptions.from_dict(px)
    return cfg


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark from the command line; returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    import latent_transforms as lt

    try:
        run_benchmark(config_from_args(args, argv))
    except lt.LatentTransformsError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
