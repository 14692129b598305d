"""``latent-transforms train-translation``: a CycleGAN (Zhu et al. 2017) or DUIIT (Yang & Xie) translator on
two sets of unpaired images, written as a translator bundle.

The defaults are the papers' (Adam 2e-4, β = (0.5, 0.999), a constant learning rate for the first half of
the epochs then a linear decay to zero, image pool of 50, λ_cyc = 10, λ = 0.001, predictor learning rate
1e-3) with networks sized for a CPU at 32 px (generator width 16 with 6 residual blocks, discriminator width
16 with the depth that keeps Zhu et al.'s patch-to-image ratio, a ResNet-10 predictor of width 8) and
batches of 4.
"""

from __future__ import annotations

import argparse
import re
from typing import Any

from latent_transforms.arguments import CommonFlags, command_line, common_flags, parse_modalities

__all__ = ["add_parser", "parse_phantom_spec", "run"]

DESCRIPTION = """\
Train an unpaired translator from a source modality (e.g. MRI) to a target modality (e.g. CT) and write it
as a translator bundle (OUT/bundle: config.json, source_to_target.safetensors, target_to_source.safetensors,
predictor.safetensors for DUIIT, README.md). Without --task it is a plain CycleGAN; with --task it is DUIIT
(Yang & Xie): the translator is trained jointly with a task predictor that learns from real target images
with their labels and from translated source images with the source labels, so the translation keeps what
the task needs. The two sets share no patient. Each is a folder of PNG / NPY images (sub-folders included)
with labels from a CSV file (columns file,label) or from the file names (a regular expression), or one
modality of the built-in phantom. A checkpoint is written every --checkpoint-every steps and at the end of
each epoch; re-running the same command in the same --out resumes exactly.

Examples:
  latent-transforms train-translation --source mri_slices/ --source-labels mri_ages.csv \\
      --target ct_slices/ --target-labels ct_ages.csv --task regression --out runs/mri2ct
  latent-transforms train-translation --source phantom:mri:patients=0-11 --target phantom:ct:patients=12-19 \\
      --task regression --resolution 32 --epochs 20 --out runs/phantom-duiit
"""

PHANTOM_SPEC = re.compile(r"^phantom:(?P<modality>mri|ct)(?::(?P<options>.*))?$")


def parse_phantom_spec(spec: str) -> dict[str, Any] | None:
    """``phantom:<mri|ct>[:patients=A-B,slices=N,seed=S]`` as keyword arguments of
    :func:`~latent_transforms.translation.phantom_images` (``None`` for any other text).

    Example:
        >>> parse_phantom_spec("phantom:ct:patients=12-15,slices=4")
        {'modality': 'ct', 'patients': [12, 13, 14, 15], 'slices_per_patient': 4, 'seed': 0}
        >>> parse_phantom_spec("scans/ct") is None
        True
    """
    found = PHANTOM_SPEC.match(spec)
    if found is None:
        return None
    out: dict[str, Any] = {"modality": found["modality"], "patients": list(range(8)), "slices_per_patient": 8}
    out["seed"] = 0
    for item in filter(None, (found["options"] or "").split(",")):
        key, _, value = item.partition("=")
        try:
            if key == "patients":
                first, _, last = value.partition("-")
                out["patients"] = list(range(int(first), int(last or first) + 1))
            elif key in ("slices", "seed"):
                out["slices_per_patient" if key == "slices" else "seed"] = int(value)
            else:
                raise ValueError(key)
        except ValueError:
            raise SystemExit(
                f"{spec!r}: expected phantom:<mri|ct>[:patients=A-B,slices=N,seed=S], e.g. "
                "phantom:mri:patients=0-11,slices=8"
            ) from None
    return out


def add_parser(sub: Any, parents: CommonFlags | None = None) -> argparse.ArgumentParser:
    """Declare ``train-translation`` on ``sub`` (the CLI's ``add_subparsers()`` object).

    Example:
        >>> parser = argparse.ArgumentParser(prog="latent-transforms")
        >>> _ = add_parser(parser.add_subparsers(dest="command"))
        >>> args = parser.parse_args(["train-translation", "--source", "a", "--target", "b", "--out", "o"])
        >>> args.task, args.epochs, args.lr, args.cycle_weight, args.prediction_weight, args.func is run
        ('none', 20, 0.0002, 10.0, 0.001, True)
    """
    flags = parents or common_flags()
    p = sub.add_parser(
        "train-translation",
        parents=[flags.device, flags.quiet],
        help="train a CycleGAN or DUIIT translator on unpaired images of two modalities and write a bundle",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=DESCRIPTION,
    )
    data = p.add_argument_group("data")
    for side, default in (("source", "mri"), ("target", "ct")):
        data.add_argument(
            f"--{side}",
            required=True,
            help=f"the {side} images: a folder of PNG / NPY images, or "
            f"'phantom:{default}[:patients=A-B,slices=N]'",
        )
        data.add_argument(f"--{side}-modality", default=default, help=f"its name (default {default})")
        data.add_argument(f"--{side}-labels", metavar="CSV", help="labels: a CSV with file and label columns")
        data.add_argument(
            f"--{side}-label-pattern",
            metavar="REGEX",
            help=r"labels from the file names: the first group of REGEX (e.g. 'age(\d+)')",
        )
    data.add_argument("--label-column", default="label", help="the CSV's label column (default label)")
    data.add_argument(
        "--window",
        action="append",
        default=[],
        metavar="NAME=LOW,HIGH",
        help="intensity window of a modality (default: MRI 0-1900, CT -1000-2000 HU, else [-1, 1])",
    )
    data.add_argument("--out", required=True, help="output folder (resumes if it holds a run)")
    data.add_argument("--name", default="", help="name written to the model card")
    data.add_argument("--resolution", type=int, default=32, help="image side in pixels (default 32)")
    net = p.add_argument_group("networks")
    net.add_argument(
        "--task",
        choices=["none", "regression", "classification"],
        default="none",
        help="none: CycleGAN; regression (MSE) or classification (cross-entropy): DUIIT with its predictor",
    )
    net.add_argument("--width", type=int, default=16, help="generator width (Zhu et al.: 64; default 16)")
    net.add_argument(
        "--blocks", type=int, default=None, help="residual blocks (default 6 up to 128 px, 9 above)"
    )
    net.add_argument("--disc-width", type=int, default=16, help="discriminator width (Zhu et al.: 64)")
    net.add_argument("--disc-layers", type=int, default=None, help="PatchGAN stride-2 layers (3: 70x70)")
    net.add_argument("--predictor-depth", type=int, choices=[10, 18, 34], default=10, help="ResNet depth")
    net.add_argument("--predictor-width", type=int, default=8, help="predictor width (default 8)")
    train = p.add_argument_group("training")
    train.add_argument("--epochs", type=int, default=20, help="epochs (default 20; Zhu et al.: 200)")
    train.add_argument("--decay-from", type=int, default=None, help="first epoch of the decay (default half)")
    train.add_argument("--batch", type=int, default=4, help="image pairs per step (Zhu et al.: 1; default 4)")
    train.add_argument("--lr", type=float, default=2e-4, help="Adam learning rate (default 2e-4)")
    train.add_argument("--predictor-lr", type=float, default=1e-3, help="predictor learning rate (1e-3)")
    train.add_argument("--cycle-weight", type=float, default=10.0, help="λ_cyc (default 10)")
    train.add_argument("--prediction-weight", type=float, default=0.001, help="DUIIT's λ (default 0.001)")
    train.add_argument("--pool-size", type=int, default=50, help="image pool of the discriminators (50)")
    train.add_argument("--checkpoint-every", type=int, default=200, help="steps between checkpoints (200)")
    train.add_argument(
        "--minutes", type=float, default=None, help="stop after this many minutes (re-run to go on)"
    )
    train.add_argument("--seed", type=int, default=0, help="seed of everything (default 0)")
    train.add_argument("--no-resume", dest="resume", action="store_false", help="refuse an existing run")
    p.set_defaults(func=run)
    return p


def _open_side(args: argparse.Namespace, side: str, task: str | None) -> Any:
    """The images of ``side`` as :class:`~latent_transforms.translation.UnpairedImages`."""
    from latent_transforms.translation.data import phantom_images, read_image_folder

    spec = getattr(args, side)
    phantom = parse_phantom_spec(spec)
    name = getattr(args, f"{side}_modality")
    if phantom is not None:
        label = {"regression": "attribute", "classification": "label"}.get(task or "")
        return phantom_images(resolution=args.resolution, label=label, **phantom)
    (modality,) = parse_modalities(name, [w for w in args.window if w.startswith(f"{name}=")])
    return read_image_folder(
        spec,
        modality=modality,
        resolution=args.resolution,
        labels=getattr(args, f"{side}_labels"),
        label_pattern=getattr(args, f"{side}_label_pattern"),
        label_column=args.label_column,
        label_kind="class" if task == "classification" else "value",
    )


def run(args: argparse.Namespace) -> int:
    """Run ``latent-transforms train-translation`` with parsed ``args``; prints the trainer and the bundle.

    Example:
        >>> callable(run)
        True
    """
    from latent_transforms.errors import ConfigError
    from latent_transforms.translation.config import TranslatorConfig
    from latent_transforms.translation.options import TranslatorOptions
    from latent_transforms.translation.trainer import TranslatorTrainer

    task = None if args.task == "none" else args.task
    source, target = _open_side(args, "source", task), _open_side(args, "target", task)
    if set(source.groups) & set(target.groups) and parse_phantom_spec(args.source):
        raise ConfigError(
            "the source and target phantom patients overlap; unpaired data share no patient (e.g. "
            "phantom:mri:patients=0-11 and phantom:ct:patients=12-19)."
        )
    outputs = 1
    if task == "classification":
        assert source.labels is not None and target.labels is not None
        outputs = int(max(int(source.labels.max()), int(target.labels.max())) + 1)
    config = TranslatorConfig(
        resolution=args.resolution,
        source=source.modalities,
        target=target.modalities,
        width=args.width,
        blocks=args.blocks,
        disc_width=args.disc_width,
        disc_layers=args.disc_layers,
        task=task,
        outputs=max(outputs, 2) if task == "classification" else 1,
        predictor_depth=args.predictor_depth,
        predictor_width=args.predictor_width,
        training={"command": command_line(args), **({"name": args.name} if args.name else {})},
    )
    options = TranslatorOptions(
        epochs=args.epochs,
        decay_from=args.decay_from,
        batch_size=args.batch,
        lr=args.lr,
        predictor_lr=args.predictor_lr,
        cycle_weight=args.cycle_weight,
        prediction_weight=args.prediction_weight,
        pool_size=args.pool_size,
        checkpoint_every=args.checkpoint_every,
        seed=args.seed,
    )
    trainer = TranslatorTrainer(
        config,
        source,
        target,
        args.out,
        options,
        device=args.device,
        resume=args.resume,
        progress=not args.quiet,
    )
    print(trainer)
    bundle = trainer.run(max_minutes=args.minutes)
    if trainer.finished:
        print(f"wrote the translator bundle to {args.out}/bundle: {bundle!r}")
    else:
        print(f"stopped at step {trainer.step} of {trainer.total_steps}; run the same command again to go on")
    return 0
