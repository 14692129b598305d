"""The ``latent-transforms`` command.

Sub-commands in this release: ``demo`` (the main job: augment held-out phantom slices with every policy
on the built-in bundle, offline), ``info`` (describe a bundle, optionally draw samples), ``init`` (write
a randomly initialised bundle), ``convert`` (NVIDIA StyleGAN2 snapshot -> bundle), ``train``
(StyleGAN2-ADA on paired images -> bundle), ``train-encoder`` (the inversion encoder, stored in the
bundle), ``invert`` (a dataset -> latent cache), ``augment`` (write an augmented set to disk),
``evaluate`` (seed 004's table for several policies side by side) and ``tune`` (Optuna search over
LatentAugment's hyper-parameters; grids for StandardDA and SG2Sample).
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path

from latent_transforms._version import __version__
from latent_transforms.errors import LatentTransformsError


def _parse_windows(items: Sequence[str]) -> dict:
    from latent_transforms.data.windows import IntensityWindow

    windows = {}
    for item in items:
        try:
            name, rng = item.split("=", 1)
            low, high = (float(v) for v in rng.split(","))
        except ValueError:
            raise SystemExit(f"--window expects NAME=LOW,HIGH (e.g. ct=-1000,2000), got {item!r}") from None
        windows[name] = IntensityWindow(low, high)
    return windows


def _modalities(names: str, windows: Sequence[str]) -> tuple:
    from latent_transforms.data.windows import IntensityWindow
    from latent_transforms.networks.config import PAPER_MODALITIES, Modality

    parsed = _parse_windows(windows)
    known = {m.name: m.window for m in PAPER_MODALITIES}
    mods = []
    for name in [n.strip() for n in names.split(",") if n.strip()]:
        window = parsed.get(name, known.get(name, IntensityWindow(-1.0, 1.0)))
        mods.append(Modality(name, window))
    unknown = set(parsed) - {m.name for m in mods}
    if unknown:
        raise SystemExit(f"--window names {sorted(unknown)} are not among --modalities {names!r}")
    return tuple(mods)


def _cmd_info(args: argparse.Namespace) -> int:
    from latent_transforms.networks.bundle import load_gan

    bundle = load_gan(args.source, revision=args.revision, cache_dir=args.cache_dir)
    summary = bundle.summary()
    if args.json:
        print(json.dumps(summary, indent=2))
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
    if args.samples:
        from latent_transforms.networks.preview import save_sample_grid

        path = save_sample_grid(bundle, args.samples, n=args.n, seed=args.seed, truncation_psi=args.psi)
        print(f"wrote {args.n} samples to {path}")
    return 0


def _cmd_init(args: argparse.Namespace) -> int:
    from latent_transforms.networks.bundle import GanBundle
    from latent_transforms.networks.config import GanConfig

    config = GanConfig(
        resolution=args.resolution,
        modalities=_modalities(args.modalities, args.window),
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


def _cmd_convert(args: argparse.Namespace) -> int:
    from latent_transforms.networks.convert import convert_stylegan2_pickle

    mods = _modalities(args.modalities, args.window) if args.modalities else None
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


def _cmd_train(args: argparse.Namespace) -> int:
    import shlex

    from latent_transforms.data.open import open_paired_dataset
    from latent_transforms.data.splits import split_dataset
    from latent_transforms.networks.config import GanConfig, Modality
    from latent_transforms.training.options import TrainingOptions
    from latent_transforms.training.scoring import FidScorer, evaluate_generator
    from latent_transforms.training.trainer import Trainer, annotate_bundle

    modalities = _modalities(args.modalities, args.window)
    dataset = open_paired_dataset(args.data, resolution=args.resolution)
    windows = getattr(dataset, "windows", None)
    if windows and not args.window:  # 8-bit slices carry their own [0, 255] windows
        modalities = tuple(Modality(m.name, windows[m.name]) for m in modalities if m.name in windows)
    fractions = tuple(float(f) for f in args.split.split(","))
    splits = split_dataset(dataset, fractions, seed=args.split_seed)
    train_set, held_out = splits["train"], splits.get("val")
    command = "latent-transforms " + " ".join(shlex.quote(a) for a in args.argv)
    config = GanConfig(
        resolution=args.resolution,
        modalities=modalities,
        z_dim=args.z_dim,
        w_dim=args.w_dim,
        c_dim=args.c_dim if args.cond else 0,
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
    )
    trainer = Trainer(
        config,
        train_set,
        args.out,
        options,
        label_key=args.cond,
        device=args.device,
        resume="auto" if args.resume else False,
        description=f"{args.data}: {len(train_set)} slices of {len(splits['train'].patients)} patients "
        f"(split {args.split}, seed {args.split_seed})",
    )
    if args.metric_kimg >= 0 and args.metric_network != "none":
        reference = held_out if args.score_on == "val" and held_out is not None else train_set
        trainer.scorer = FidScorer(
            trainer._prepare_data(reference, args.cond),
            args.metric_network,
            config.modality_names,
            n_samples=args.metric_samples,
            device=trainer.device,
        )
    print(trainer)
    bundle = trainer.run(max_minutes=args.minutes)
    if held_out is not None and len(held_out) and args.metric_network != "none":
        scorer = FidScorer(
            trainer._prepare_data(held_out, args.cond),
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
                "evaluation": f"{len(held_out.patients)} held-out patients ({len(held_out)} slices), "
                f"{result['n_generated']} samples, {result['feature_network']} features",
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


def _bundle_files(folder: Path) -> list[Path]:
    """Files of the bundle in ``folder`` that make a complete copy (config.json last), encoder excluded."""
    from latent_transforms.inversion.encoder import ENCODER_NAME

    files = sorted(p for p in folder.glob("*.safetensors") if p.name != ENCODER_NAME)
    files += [p for p in (folder / "README.md", folder / "config.json") if p.is_file()]
    return files


def _cmd_train_encoder(args: argparse.Namespace) -> int:
    import filecmp
    import os
    import shutil

    import torch

    from latent_transforms.errors import ConfigError
    from latent_transforms.inversion.encoder import evaluate_encoder, save_encoder, train_encoder
    from latent_transforms.networks.bundle import load_gan
    from latent_transforms.networks.hub import resolve_source

    local = Path(args.gan).expanduser()
    if args.out is None and not local.is_dir():
        raise ConfigError(
            f"--gan {args.gan!r} is not a local bundle folder (a built-in bundle lives inside the installed "
            "package, a Hub bundle in the download cache), so the encoder is not written next to it: pass "
            "--out FOLDER. The bundle's files are copied there and encoder.safetensors added, making a "
            "complete bundle to load from FOLDER (or push to the Hub)."
        )
    folder = resolve_source(args.gan, revision=args.revision, cache_dir=args.cache_dir)
    out = Path(args.out).expanduser() if args.out is not None else folder
    copy = out.resolve() != folder.resolve()
    if copy:  # refuse to mix two bundles in one folder before spending time on training
        for src in _bundle_files(folder):
            dst = out / src.name
            if dst.exists() and not filecmp.cmp(src, dst, shallow=False):
                raise ConfigError(
                    f"--out {out} already holds a different {src.name} than the bundle {args.gan!r}; "
                    "choose an empty folder (or the bundle folder itself)."
                )
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    bundle = load_gan(folder, device=device, load_discriminator=False)
    encoder = train_encoder(
        bundle,
        steps=args.steps,
        batch_size=args.batch,
        lr=args.lr,
        space=args.space,
        pixel_weight=args.pixel_weight,
        latent_weight=args.latent_weight,
        truncation_psi=args.psi,
        seed=args.seed,
        precision=args.precision,
        progress=not args.quiet,
    )
    eval_seed = args.seed + 1
    result = evaluate_encoder(encoder, bundle, n_samples=args.eval_samples, seed=eval_seed)
    encoder.config.training["evaluation"] = {
        "n_samples": args.eval_samples,
        "seed": eval_seed,
        **{k: round(v, 4) for k, v in result.items() if k != "n_samples"},
    }
    if copy:
        out.mkdir(parents=True, exist_ok=True)
        for src in _bundle_files(folder):
            tmp = out / f".{src.name}.tmp"
            shutil.copyfile(src, tmp)  # follows the Hub cache's symlinks
            os.replace(tmp, out / src.name)
    path = save_encoder(encoder, out)
    t = encoder.config.training
    n_params = sum(p.numel() for p in encoder.parameters())
    print(
        f"trained a {args.space.upper()} encoder ({n_params:,} parameters) for {args.steps} steps of "
        f"{args.batch} in {t['seconds']:.1f} s on {t['device']}"
    )
    if t["final_latent_mse"] is not None:
        pixel = f", pixel MSE {t['final_pixel_mse']:.4f}" if t["final_pixel_mse"] is not None else ""
        print(f"  final training loss: latent MSE {t['final_latent_mse']:.4f}{pixel}")
    print(f"  held out ({args.eval_samples} fresh samples, seed {eval_seed}):   encoder    from w_avg")
    print(
        f"    latent MSE (in W std units)              {result['latent_mse']:8.4f}  "
        f"{result['latent_mse_w_avg']:9.4f}"
    )
    print(f"    PSNR of G(E(G(w))) vs G(w) (dB)          {result['psnr']:8.2f}  {result['psnr_w_avg']:9.2f}")
    print(f"wrote {path}" + (f" (with a copy of the bundle {args.gan})" if copy else ""))
    return 0


def _cmd_invert(args: argparse.Namespace) -> int:
    import torch

    from latent_transforms.data.open import open_paired_dataset
    from latent_transforms.data.splits import split_dataset
    from latent_transforms.features.perceptual import perceptual_network
    from latent_transforms.inversion.cache import LatentCache
    from latent_transforms.inversion.encoder import load_encoder
    from latent_transforms.inversion.job import (
        GRID_NAME,
        STATS_NAME,
        ShardInfo,
        compute_cache_stats,
        invert_dataset,
        quality_report,
        write_report,
    )
    from latent_transforms.inversion.projector import Projector
    from latent_transforms.networks.bundle import load_gan

    shard = ShardInfo.from_env()
    if args.device:
        device = torch.device(args.device)
    elif torch.cuda.is_available():
        device = torch.device("cuda", shard.local_rank)
    else:
        device = torch.device("cpu")
    if shard.world_size > 1:
        import torch.distributed as dist

        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    bundle = load_gan(args.gan, revision=args.revision, cache_dir=args.cache_dir, device=device)
    dataset = open_paired_dataset(args.data, resolution=bundle.resolution)
    if args.split != "all":
        fractions = tuple(float(f) for f in args.split_fractions.split(","))
        dataset = split_dataset(dataset, fractions, seed=args.split_seed)[args.split]
    perceptual = (
        None
        if args.perceptual == "none"
        else perceptual_network(args.perceptual, bundle=bundle, device=device)
    )
    encoder = load_encoder(bundle, device=device).eval() if args.encoder else None
    projector = Projector(
        bundle,
        space=args.space,
        steps=args.steps,
        lr=args.lr,
        perceptual=perceptual,
        pixel_weight=args.pixel_weight,
        psnr_target=args.psnr_target,
        patience=args.patience if args.patience > 0 else None,
        optimize_noise=False,
        encoder=encoder,
        precision=args.precision,
        batch_size=args.batch,
        device=device,
        progress=False,
        seed=args.seed,
    )
    settings = projector.settings()
    cache = LatentCache(args.cache, fingerprint=bundle.fingerprint, settings=settings)
    print(f"{projector}\n{cache}")
    summary = invert_dataset(
        bundle,
        dataset,
        cache,
        projector,
        key=args.key,
        limit=args.limit,
        shard=shard,
        progress=not args.quiet and shard.rank == 0,
        grid_path=Path(args.cache) / GRID_NAME if shard.rank == 0 else None,
    )
    if shard.world_size > 1:
        import torch.distributed as dist

        dist.barrier()
    if shard.rank != 0:
        return 0
    cache = LatentCache.open(args.cache)
    report = {
        "command": "latent-transforms " + " ".join(shlex.quote(a) for a in args.argv),
        "gan": args.gan,
        "data": args.data,
        "split": args.split,
        "device": str(device),
        "world_size": shard.world_size,
        "this_run": summary,
        "quality": quality_report(cache, bundle.modalities),
        "settings": settings,
    }
    if args.stats:
        stats_net = (
            perceptual if perceptual is not None else perceptual_network("efficientnet-lite0", device=device)
        )
        stats = compute_cache_stats(
            bundle,
            dataset,
            cache,
            stats_net,
            key=args.key,
            limit=args.limit,
            device=device,
            progress=not args.quiet,
        )
        stats.info.update({"generator_fingerprint": bundle.fingerprint, "gan": args.gan})
        stats.save(Path(args.cache) / STATS_NAME)
        report["stats"] = repr(stats)
    write_report(args.cache, report)
    print(json.dumps({"this_run": summary, "quality": report["quality"]}, indent=2))
    print(f"wrote {args.cache}/report.json and {args.cache}/{GRID_NAME}")
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from latent_transforms.transforms.demo import format_summary, run_demo

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


def _augment_policy(args: argparse.Namespace, bundle: object, device: object) -> object:
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


def _cmd_augment(args: argparse.Namespace) -> int:
    import torch

    from latent_transforms.data.open import open_paired_dataset
    from latent_transforms.data.splits import split_dataset
    from latent_transforms.networks.bundle import load_gan
    from latent_transforms.transforms.export import augment_dataset

    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    torch.manual_seed(args.seed)
    bundle = load_gan(args.gan, revision=args.revision, cache_dir=args.cache_dir, device=device)
    dataset = open_paired_dataset(args.data, resolution=bundle.resolution)
    if args.split != "all":
        fractions = tuple(float(f) for f in args.split_fractions.split(","))
        dataset = split_dataset(dataset, fractions, seed=args.split_seed)[args.split]
    policy = _augment_policy(args, bundle, device)
    print(policy)
    manifest = augment_dataset(
        bundle,
        dataset,
        policy,  # type: ignore[arg-type]
        args.out,
        n=args.n,
        batch_size=args.batch,
        fmt=args.format,
        device=device,
        by_key=args.key == "dataset",
        synthetic=args.policy == "sg2",
        command="latent-transforms " + " ".join(shlex.quote(a) for a in args.argv),
        progress=not args.quiet,
    )
    print(f"wrote {manifest['count']} augmented {args.format} pairs to {args.out} (manifest: augment.json)")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="latent-transforms",
        description="GAN-based data augmentation for medical imaging (StyleGAN2 bundles, LatentAugment).",
    )
    parser.add_argument("--version", action="version", version=f"latent-transforms {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser(
        "demo",
        help="the main job: augment held-out phantom slices with every policy (offline, CPU, ~2 minutes)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="""\
Load the built-in bundle (builtin:pelvis-phantom-64), invert a few slices of held-out phantom patients
into a latent cache (once: later runs reuse it), augment them with StandardDA, SG2Sample and
LatentAugment, and write OUT/augmentations.png (rows: real / its inversion G(w*) / StandardDA /
SG2Sample / LatentAugment, for MRI and CT), OUT/table.md and OUT/report.json (each policy's mean
distance to the real set in pixel, perceptual and latent space). No download, no GPU needed.

Examples:
  latent-transforms demo
  latent-transforms demo --out demo --n 12 --device cuda
""",
    )
    p.add_argument("--out", default="demo", help="output folder (default demo)")
    p.add_argument("--gan", default="builtin:pelvis-phantom-64", help="bundle (default the built-in one)")
    p.add_argument("--n", type=int, default=8, help="held-out slices to augment (default 8)")
    p.add_argument("--steps", type=int, default=150, help="projector steps per inversion (default 150)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default=None, help="cuda, cpu (default: CUDA when available)")
    p.add_argument("--quiet", action="store_true", help="print only the result")
    p.set_defaults(func=_cmd_demo)

    p = sub.add_parser("info", help="describe a GAN bundle (folder, builtin:<name> or Hub repo id)")
    p.add_argument("source", help="bundle folder, builtin:<name>, or Hugging Face repo id 'namespace/name'")
    p.add_argument("--revision", help="Hub branch, tag or commit")
    p.add_argument("--cache-dir", help="Hugging Face cache folder")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.add_argument("--samples", metavar="PNG", help="also write a grid of random samples to this PNG")
    p.add_argument("--n", type=int, default=8, help="number of samples in the grid (default 8)")
    p.add_argument("--seed", type=int, default=0, help="seed of the samples (default 0)")
    p.add_argument("--psi", type=float, default=1.0, help="truncation psi of the samples (default 1.0)")
    p.set_defaults(func=_cmd_info)

    p = sub.add_parser(
        "init",
        help="write a randomly initialised (untrained) bundle",
        description="Write a randomly initialised StyleGAN2 bundle: useful to try pipelines end to end "
        "before a GAN is trained, and as the architecture a training run starts from.",
    )
    p.add_argument("out", help="output folder")
    p.add_argument("--resolution", type=int, default=32, help="power of two in [16, 1024] (default 32)")
    p.add_argument("--modalities", default="mri,ct", help="comma-separated channel names (default mri,ct)")
    p.add_argument(
        "--window",
        action="append",
        default=[],
        metavar="NAME=LOW,HIGH",
        help="intensity window of a modality (default: the paper's for mri/ct, else [-1, 1])",
    )
    p.add_argument("--z-dim", type=int, default=64)
    p.add_argument("--w-dim", type=int, default=64)
    p.add_argument("--c-dim", type=int, default=0, help="number of classes (0 = unconditional)")
    p.add_argument("--mapping-layers", type=int, default=2)
    p.add_argument("--channel-base", type=int, default=2048)
    p.add_argument("--channel-max", type=int, default=128)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--w-stats-samples", type=int, default=4096)
    p.set_defaults(func=_cmd_init)

    p = sub.add_parser(
        "convert",
        help="convert an NVIDIA StyleGAN2 network-snapshot-*.pkl into a bundle (safely)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="""\
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
""",
    )
    p.add_argument("snapshot", help="path of network-snapshot-*.pkl")
    p.add_argument("out", help="output bundle folder")
    p.add_argument("--modalities", help="comma-separated channel names, e.g. mri,ct (default ch0,ch1,...)")
    p.add_argument(
        "--window",
        action="append",
        default=[],
        metavar="NAME=LOW,HIGH",
        help="intensity window of a modality (default: the paper's for mri/ct, else [-1, 1])",
    )
    p.add_argument("--no-discriminator", action="store_true", help="do not keep D")
    p.add_argument("--w-stats-samples", type=int, default=10_000, help="z samples for W mean/covariance")
    p.set_defaults(func=_cmd_convert)

    p = sub.add_parser(
        "train",
        help="train a StyleGAN2-ADA on paired images and write a bundle",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="""\
Train a StyleGAN2-ADA GAN on paired MRI/CT (or any paired) slices; defaults are the paper's settings
(batch 16, mapping depth 2, channel_base 16384, R1 gamma from the resolution rule, ADA on
scale,rotate,aniso,frac with target 0.6). Patients are split (--split) so the held-out ones score the
result. Re-running the same command in the same --out folder resumes where it stopped.

Examples:
  latent-transforms train --data phantom --out runs/phantom64 --resolution 64 --kimg 500
  latent-transforms train --data /data/SynthRAD2023/Task1/pelvis --out runs/pelvis --kimg 10000
  torchrun --nproc_per_node 4 -m latent_transforms.cli train --data /data/pelvis --out runs/p4
""",
    )
    p.add_argument("--data", required=True, help="'phantom[:patients=N,slices=M,seed=S]' or a data folder")
    p.add_argument("--out", required=True, help="output folder (resumes if it holds a run)")
    p.add_argument("--name", default="", help="name written to the model card")
    p.add_argument("--resolution", type=int, default=256)
    p.add_argument("--modalities", default="mri,ct", help="comma-separated channel names (default mri,ct)")
    p.add_argument("--window", action="append", default=[], metavar="NAME=LOW,HIGH")
    p.add_argument("--cond", metavar="KEY", help="item key of a class label: train a conditional GAN")
    p.add_argument("--c-dim", type=int, default=2, help="number of classes with --cond (default 2)")
    p.add_argument("--z-dim", type=int, default=512)
    p.add_argument("--w-dim", type=int, default=512)
    p.add_argument("--mapping-layers", type=int, default=2)
    p.add_argument("--channel-base", type=int, default=16384)
    p.add_argument("--channel-max", type=int, default=512)
    p.add_argument("--split", default="0.7,0.2,0.1", help="train,val,test patient fractions")
    p.add_argument("--split-seed", type=int, default=0)
    p.add_argument("--kimg", type=float, default=10_000, help="training length in thousands of images")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--glr", type=float, default=0.0025)
    p.add_argument("--dlr", type=float, default=0.0025)
    p.add_argument("--gamma", type=float, default=None, help="R1 weight (default 0.0002 * res^2 / batch)")
    p.add_argument("--pl-weight", type=float, default=2.0, help="path-length weight (0 = off)")
    p.add_argument("--mixing", type=float, default=0.9, help="style-mixing probability")
    p.add_argument("--ema-kimg", type=float, default=None)
    p.add_argument("--augment", default="geom", help="blit | geom | all | none | comma list of transforms")
    p.add_argument("--p", type=float, default=0.0, help="initial ADA probability")
    p.add_argument("--target", type=float, default=0.6, help="ADA target (0 = fixed --p)")
    p.add_argument("--ada-kimg", type=float, default=500, help="ADA speed: kimg for p to go 0 -> 1")
    p.add_argument("--precision", choices=["fp32", "bf16"], default="fp32")
    p.add_argument(
        "--minutes",
        type=float,
        default=None,
        help="stop after this many minutes of this run (scored checkpoint; --resume continues)",
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
    p.add_argument("--device", default=None, help="cuda, cuda:1, cpu (default: CUDA when available)")
    p.add_argument("--no-resume", dest="resume", action="store_false", help="refuse an existing run in --out")
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser(
        "train-encoder",
        help="train the inversion encoder of a bundle and store it there (encoder.safetensors)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="""\
Train a small encoder on the GAN's own samples (z -> G -> image -> encoder -> w; no data needed) that
gives the projector its starting point, so inversion needs far fewer steps. It is stored in the bundle
as encoder.safetensors (and so travels with the bundle to the Hub). Prints the held-out latent error and
the PSNR of G(E(G(w))) vs G(w) on fresh samples, next to the same from w_avg (the projector's default
start).

Examples:
  latent-transforms train-encoder --gan runs/pelvis/bundle
  latent-transforms train-encoder --gan builtin:pelvis-phantom-64 --out pelvis-phantom-64-enc --steps 500
""",
    )
    p.add_argument("--gan", required=True, help="bundle folder, builtin:<name> or Hub repo id")
    p.add_argument(
        "--out",
        default=None,
        help="bundle folder to write (default: the --gan folder; required for builtin:/Hub bundles, "
        "whose files are then copied there)",
    )
    p.add_argument("--steps", type=int, default=2000, help="optimiser steps (default 2000)")
    p.add_argument("--batch", type=int, default=32, help="generated images per step (default 32)")
    p.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate (default 1e-3)")
    p.add_argument("--space", choices=["w", "w+"], default="w", help="predict W or W+ (default w)")
    p.add_argument(
        "--pixel-weight", type=float, default=1.0, help="weight of the image MSE of G(E(x)) (0 = off)"
    )
    p.add_argument("--latent-weight", type=float, default=1.0, help="weight of the latent MSE (0 = off)")
    p.add_argument("--psi", type=float, default=1.0, help="truncation psi of the training samples")
    p.add_argument("--precision", choices=["fp32", "bf16"], default="fp32")
    p.add_argument("--eval-samples", type=int, default=256, help="held-out samples for the summary")
    p.add_argument("--seed", type=int, default=0, help="seed (the held-out samples use seed + 1)")
    p.add_argument("--device", default=None, help="cuda, cuda:1, cpu (default: CUDA when available)")
    p.add_argument("--revision", help="Hub branch, tag or commit")
    p.add_argument("--cache-dir", help="Hugging Face cache folder")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_train_encoder)

    p = sub.add_parser(
        "invert",
        help="invert a paired dataset into a latent cache (resumable; torchrun shards it across GPUs)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="""\
Invert every image of a paired dataset to the GAN's latent space with the batched projector and store
the latents (with each image's PSNR and SSIM) in a latent cache folder, which LatentAugment reads. A run
that is killed resumes where it stopped: images already in the cache are skipped. Under torchrun every
rank takes its share of the images. At the end: report.json (PSNR/SSIM per modality: mean and
percentiles), reconstructions.png (real above reconstructed) and stats.safetensors (the dataset means
LatentAugment's diversity terms use).

Examples:
  latent-transforms invert --gan builtin:pelvis-phantom-64 --data phantom --cache latents/phantom64
  torchrun --nproc-per-node 4 -m latent_transforms.cli invert --gan runs/pelvis/bundle \\
      --data /data/SynthRAD2023/Task1/pelvis --cache latents/pelvis --encoder
""",
    )
    p.add_argument("--gan", required=True, help="bundle folder, builtin:<name> or Hub repo id")
    p.add_argument("--data", required=True, help="dataset folder or phantom[:patients=N,slices=M,seed=S]")
    p.add_argument("--cache", required=True, help="latent cache folder (created, or resumed)")
    p.add_argument(
        "--split",
        default="all",
        help="all (default), train, val or test (patient split, see --split-fractions)",
    )
    p.add_argument("--split-fractions", default="0.7,0.2,0.1", help="train,val[,test] fractions")
    p.add_argument("--split-seed", type=int, default=0)
    p.add_argument("--limit", type=int, default=None, help="only the first N images")
    p.add_argument(
        "--key", choices=["content", "dataset"], default="content", help="cache keys (default content)"
    )
    p.add_argument("--space", choices=["w", "w+"], default="w")
    p.add_argument("--steps", type=int, default=500, help="maximum projector steps (default 500)")
    p.add_argument("--lr", type=float, default=0.1)
    p.add_argument("--batch", type=int, default=32, help="images optimised together (default 32)")
    p.add_argument(
        "--perceptual", default="efficientnet-lite0", help="efficientnet-lite0, vgg16, discriminator or none"
    )
    p.add_argument("--pixel-weight", type=float, default=1.0)
    p.add_argument("--psnr-target", type=float, default=None, help="stop a sample at this mean PSNR (dB)")
    p.add_argument(
        "--patience", type=int, default=100, help="stop a sample after N steps without gain (0: off)"
    )
    p.add_argument("--encoder", action="store_true", help="start from the bundle's encoder (train-encoder)")
    p.add_argument("--precision", choices=["fp32", "bf16"], default="fp32")
    p.add_argument("--no-stats", dest="stats", action="store_false", help="skip the dataset statistics")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default=None, help="cuda, cuda:1, cpu (default: CUDA when available)")
    p.add_argument("--revision", help="Hub branch, tag or commit")
    p.add_argument("--cache-dir", help="Hugging Face cache folder")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_cmd_invert)

    p = sub.add_parser(
        "augment",
        help="write an augmented paired set to disk (NPZ, PNG or NIfTI) with one policy",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="""\
Augment N slices of a paired dataset (cycling through it) with one policy and write them in the
folders layout PairedSliceFolder reads (OUT/<modality>/<patient>_<index>.<ext>), with OUT/augment.json
listing each file's source slice, the policy and this command. Policies: latent-augment (F1 preset),
latent-augment-mae (MAE preset), sg2 (random GAN samples, truncation --psi), standard (StandardDA).
LatentAugment needs the latent cache of the data (latent-transforms invert).

Examples:
  latent-transforms invert --gan builtin:pelvis-phantom-64 --data phantom --split train --cache latents
  latent-transforms augment --gan builtin:pelvis-phantom-64 --cache latents --data phantom --split train \\
      --out augmented --n 10000 --policy latent-augment --format npz
""",
    )
    p.add_argument("--gan", required=True, help="bundle folder, builtin:<name> or Hub repo id")
    p.add_argument("--cache", default=None, help="latent cache folder (LatentAugment policies)")
    p.add_argument("--data", required=True, help="dataset folder or phantom[:patients=N,slices=M,seed=S]")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--n", type=int, required=True, help="augmented pairs to write")
    p.add_argument(
        "--policy", choices=["latent-augment", "latent-augment-mae", "sg2", "standard"], required=True
    )
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
    p.add_argument("--device", default=None, help="cuda, cpu (default: CUDA when available)")
    p.add_argument("--revision", help="Hub branch, tag or commit")
    p.add_argument("--cache-dir", help="Hugging Face cache folder")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_augment)
    from latent_transforms.evaluation.command import add_parser as add_evaluate_parser
    from latent_transforms.tuning.command import add_parser as add_tune_parser

    add_evaluate_parser(sub)
    add_tune_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``latent-transforms`` console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    args.argv = argv
    try:
        return int(args.func(args))
    except LatentTransformsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
