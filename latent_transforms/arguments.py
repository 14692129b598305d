"""What the ``latent-transforms`` commands share: the common flags and the parsing of a few arguments.

Every package's ``command`` module declares its sub-commands with ``add_parser(subparsers, parents)``;
``parents`` is a :class:`CommonFlags`, whose parsers give the flags several commands take with one name,
default and help (``--device``; ``--revision`` / ``--cache-dir``; ``--quiet``). The helpers below parse
``--window`` / ``--modalities``, open a (split) dataset from ``--data`` (and the training data of
``train`` / ``train-diffusion``), join a ``torchrun`` process group and rebuild the command line for the
files a command writes. Nothing heavy is imported here: ``latent-transforms --help`` stays fast.
"""

from __future__ import annotations

import argparse
import os
import shlex
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from latent_transforms.data.windows import IntensityWindow
    from latent_transforms.networks.config import Modality

__all__ = [
    "BUILTIN_DATA",
    "BUILTIN_GAN",
    "DEVICE_HELP",
    "CommonFlags",
    "TrainingData",
    "canonical_argv",
    "command_line",
    "common_flags",
    "data_options",
    "join_torchrun",
    "open_split",
    "open_training_data",
    "parse_modalities",
    "parse_windows",
    "split_fractions",
]

DEVICE_HELP = "cuda, cuda:1, cpu (default: CUDA when available)"
#: The default ``--gan`` of the commands that have one: the bundle shipped inside the package.
BUILTIN_GAN = "builtin:pelvis-phantom-64"
#: The default ``--data`` / ``--real`` beside it: the phantom that bundle was trained on (split by patient
#: 0.7 / 0.2 / 0.1 with seed 0, so its validation patients are held out). Kept here, as text, so that
#: building the parser imports no dataset code.
BUILTIN_DATA = "phantom:patients=48,slices=32,seed=0"


@dataclass(frozen=True)
class CommonFlags:
    """Parent parsers (``argparse`` ``parents=``) of the flags several commands share.

    Attributes:
        device: ``--device`` (default ``None``: CUDA when available, else the CPU).
        hub: ``--revision`` and ``--cache-dir`` of a Hugging Face Hub bundle (defaults ``None``).
        quiet: ``--quiet`` (no progress output; the command prints only its result).
        data: how to read ``--data``: ``--modalities``, ``--patient-pattern`` and ``--mask-threshold``
            (defaults ``None``: the dataset's or the bundle's own), for every command that reads data.

    Example:
        >>> flags = common_flags()
        >>> parser = argparse.ArgumentParser(parents=[flags.device, flags.quiet])
        >>> args = parser.parse_args(["--device", "cpu"])
        >>> args.device, args.quiet
        ('cpu', False)
    """

    device: argparse.ArgumentParser
    hub: argparse.ArgumentParser
    quiet: argparse.ArgumentParser
    data: argparse.ArgumentParser = field(default_factory=lambda: _data_flags())


def common_flags() -> CommonFlags:
    """Build the :class:`CommonFlags` parent parsers (fresh ones on each call).

    Example:
        >>> parser = argparse.ArgumentParser(parents=[common_flags().hub])
        >>> vars(parser.parse_args(["--revision", "v1"]))
        {'revision': 'v1', 'cache_dir': None}
    """
    device = argparse.ArgumentParser(add_help=False)
    device.add_argument("--device", default=None, help=DEVICE_HELP)
    hub = argparse.ArgumentParser(add_help=False)
    hub.add_argument("--revision", default=None, help="Hub branch, tag or commit")
    hub.add_argument("--cache-dir", default=None, help="Hugging Face cache folder")
    quiet = argparse.ArgumentParser(add_help=False)
    quiet.add_argument("--quiet", action="store_true", help="no progress output: print only the result")
    return CommonFlags(device=device, hub=hub, quiet=quiet, data=_data_flags())


#: What the paired-only commands say about ``--data`` (``invert``, ``augment``, ``evaluate``, ``tune``).
PAIRED_DATA_HELP = (
    "paired data: phantom[:patients=N,slices=M,seed=S], a folder of paired slices (PNG/NPY/NPZ) or of "
    "NIfTI volumes (<patient>/mr.nii.gz, ct.nii.gz). Labelled images (medmnist:, class folders) are read "
    "by train only"
)


def _data_flags() -> argparse.ArgumentParser:
    data = argparse.ArgumentParser(add_help=False)
    group = data.add_argument_group("reading --data")
    group.add_argument(
        "--modalities",
        default=None,
        metavar="NAMES",
        help="comma-separated channel names of the data, in channel order (a folder's sub-folders or its "
        "files' channels: any names, any number). Default: the bundle's channels where a GAN reads the "
        "data (given, they must be the bundle's); for train mri,ct on paired data, 'image' on labelled "
        "images",
    )
    group.add_argument(
        "--patient-pattern",
        default=None,
        metavar="REGEX",
        help="folder of slices: regex whose group 'patient' (or group 1) in a file name is the patient id "
        "(default: everything before the first '_')",
    )
    group.add_argument(
        "--mask-threshold",
        type=float,
        default=None,
        metavar="VALUE",
        help="folders of slices and NIfTI volumes: body-mask threshold on the ct channel, in stored units "
        "(default -500 for HU; 42.5 for 8-bit PNGs, where -500 HU falls in the paper's CT window "
        "[-1000, 2000]: set it for other windows, e.g. brain-windowed 8-bit CT)",
    )
    return data


def data_options(args: argparse.Namespace, channels: Sequence[str] | None = None) -> dict[str, Any]:
    """The dataset keyword arguments of the shared ``--modalities`` / ``--patient-pattern`` /
    ``--mask-threshold`` flags (:func:`~latent_transforms.data.open.open_paired_dataset` takes them).

    ``channels``: the bundle's channel names, for commands with ``--gan``: the default of
    ``modalities``; ``--modalities`` given must name the same channels (in any order: items are keyed by
    name), or :class:`~latent_transforms.errors.ConfigError` says both.

    Example:
        >>> args = argparse.Namespace(modalities="t1,flair", patient_pattern=None, mask_threshold=10.0)
        >>> data_options(args)
        {'modalities': ('t1', 'flair'), 'mask_threshold': 10.0}
        >>> data_options(argparse.Namespace(modalities=None), channels=["mri", "ct"])
        {'modalities': ('mri', 'ct')}
    """
    from latent_transforms.errors import ConfigError

    options: dict[str, Any] = {}
    given = getattr(args, "modalities", None)
    names = tuple(n.strip() for n in given.split(",") if n.strip()) if given else None
    if channels is not None:
        if names is not None and sorted(names) != sorted(channels):
            raise ConfigError(
                f"--modalities {given!r} does not name the bundle's channels {list(channels)}; the data must "
                "hold the channels the GAN was trained on. Fix: drop --modalities (the bundle's are the "
                "default) or rename the data's folders / arrays to them."
            )
        names = tuple(channels)
    if names is not None:
        options["modalities"] = names
    for key in ("patient_pattern", "mask_threshold"):
        if getattr(args, key, None) is not None:
            options[key] = getattr(args, key)
    return options


def parse_windows(items: Sequence[str]) -> dict[str, IntensityWindow]:
    """``--window NAME=LOW,HIGH`` values as ``{name: IntensityWindow}``; a bad one exits with the syntax.

    Example:
        >>> parse_windows(["ct=-1000,2000"])["ct"].high
        2000.0
    """
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


def parse_modalities(names: str, windows: Sequence[str]) -> tuple[Modality, ...]:
    """``--modalities a,b`` with their ``--window`` values (default: the paper's for mri/ct, else [-1, 1]).

    Example:
        >>> [(m.name, m.window.low) for m in parse_modalities("mri,ct,mask", ["mask=0,1"])]
        [('mri', 0.0), ('ct', -1000.0), ('mask', 0.0)]
    """
    from latent_transforms.data.windows import IntensityWindow
    from latent_transforms.networks.config import PAPER_MODALITIES, Modality

    parsed = parse_windows(windows)
    known = {m.name: m.window for m in PAPER_MODALITIES}
    mods = []
    for name in [n.strip() for n in names.split(",") if n.strip()]:
        window = parsed.get(name, known.get(name, IntensityWindow(-1.0, 1.0)))
        mods.append(Modality(name, window))
    unknown = set(parsed) - {m.name for m in mods}
    if unknown:
        raise SystemExit(f"--window names {sorted(unknown)} are not among --modalities {names!r}")
    return tuple(mods)


def split_fractions(text: str) -> tuple[float, ...]:
    """``"0.7,0.2,0.1"`` as fractions.

    Example:
        >>> split_fractions("0.7,0.2,0.1")
        (0.7, 0.2, 0.1)
    """
    return tuple(float(f) for f in text.split(","))


def open_split(
    data: str,
    *,
    resolution: int,
    split: str = "all",
    fractions: str = "0.7,0.2,0.1",
    seed: int = 0,
    **kwargs: Any,
) -> Any:
    """The dataset ``--data`` names (:func:`~latent_transforms.data.open.open_paired_dataset`), or one part
    of its patient split (``split`` ``train``, ``val`` or ``test``; ``all`` keeps every patient).

    For the commands that read paired data only: labelled images (``medmnist:``, class folders) raise
    :class:`~latent_transforms.errors.ConfigError` saying which command reads them.

    Example:
        >>> len(open_split("phantom:patients=10,slices=2", resolution=16, split="val"))
        4
    """
    from latent_transforms.data.open import is_labelled_spec, open_paired_dataset
    from latent_transforms.data.splits import split_dataset
    from latent_transforms.errors import ConfigError

    if is_labelled_spec(data, kwargs.get("modalities")):
        raise ConfigError(
            f"--data {data!r} holds labelled images (one class per folder or a MedMNIST file), but this "
            "command works on paired slices (the channels of one patient's slice, e.g. MRI and CT) with "
            "a GAN trained on them. Labelled images are read by `latent-transforms train` (a "
            "class-conditional GAN), `train-diffusion`, `evaluate` and "
            "examples/selective_augmentation/run.py."
        )

    dataset = open_paired_dataset(data, resolution=resolution, **kwargs)
    if split == "all":
        return dataset
    return split_dataset(dataset, split_fractions(fractions), seed=seed)[split]


def canonical_argv(parser: argparse.ArgumentParser, argv: Sequence[str]) -> list[str]:
    """``argv`` with every option that takes one value (or none) kept once, at its last occurrence.

    ``argparse`` lets a later ``--kimg 70`` override an earlier ``--kimg 400``; the files a command writes
    record the command that reproduces the run, so the overridden occurrence is dropped. Options that
    accumulate (``append``, ``count``, e.g. ``--window``) and positional arguments are kept as typed.
    ``argv`` starts with the sub-command's name when ``parser`` has sub-commands.

    Example:
        >>> parser = argparse.ArgumentParser()
        >>> sub = parser.add_subparsers(dest="command")
        >>> train = sub.add_parser("train")
        >>> _ = train.add_argument("--kimg", type=float)
        >>> _ = train.add_argument("--window", action="append")
        >>> canonical_argv(parser, ["train", "--kimg", "400", "--window", "a=0,1", "--kimg=70", "--window",
        ...                         "b=0,1"])
        ['train', '--window', 'a=0,1', '--kimg=70', '--window', 'b=0,1']
    """
    argv = list(argv)
    for action in parser._actions:  # the sub-command's own parser knows its options
        if isinstance(action, argparse._SubParsersAction) and argv and argv[0] in action.choices:
            return [argv[0], *canonical_argv(action.choices[argv[0]], argv[1:])]
    single: dict[str, argparse.Action] = {}
    for action in parser._actions:
        if isinstance(action, argparse._AppendAction | argparse._AppendConstAction | argparse._CountAction):
            continue
        if action.option_strings and action.nargs in (None, 0, "?"):
            single.update(dict.fromkeys(action.option_strings, action))
    groups: list[tuple[argparse.Action | None, list[str]]] = []
    i = 0
    while i < len(argv):
        token = argv[i]
        name = token.split("=", 1)[0] if token.startswith("--") else token
        found = single.get(name)
        if found is None or token == "--":
            groups.append((None, [token]))
            i += 1
            continue
        takes_value = found.nargs is None and "=" not in token
        optional_value = found.nargs == "?" and "=" not in token and i + 1 < len(argv)
        if optional_value and not argv[i + 1].startswith("-"):
            takes_value = True
        width = 2 if takes_value and i + 1 < len(argv) else 1
        groups.append((found, argv[i : i + width]))
        i += width
    last = {id(action): index for index, (action, _) in enumerate(groups) if action is not None}
    return [
        token
        for index, (action, tokens) in enumerate(groups)
        if action is None or last[id(action)] == index
        for token in tokens
    ]


def command_line(args: argparse.Namespace) -> str:
    """The command as typed (``latent-transforms`` and its arguments, shell-quoted), for the files it writes.

    Example:
        >>> command_line(argparse.Namespace(argv=["info", "my gan"]))
        "latent-transforms info 'my gan'"
    """
    return "latent-transforms " + shlex.join(getattr(args, "argv", []) or [])


@dataclass(frozen=True)
class TrainingData:
    """What ``train`` and ``train-diffusion`` read from ``--data``: the splits and what the model learns.

    Attributes:
        splits: ``{"train", "val", "test"}`` parts (:func:`~latent_transforms.data.open.open_splits`).
        modalities: the channels of the model, with their intensity windows.
        label_key: the items' class key of a conditional model (``None``: unconditional).
        c_dim: number of classes (0: unconditional).
        about: one line about the training part (for the model card).
    """

    splits: dict[str, Any]
    modalities: tuple[Modality, ...]
    label_key: str | None
    c_dim: int
    about: str

    @property
    def train(self) -> Any:
        """The part the model trains on."""
        return self.splits["train"]

    @property
    def held_out(self) -> Any | None:
        """The validation part (``None`` when the data has none)."""
        return self.splits.get("val")

    def reference(self, score_on: str) -> Any:
        """The real images a score compares with: ``"val"`` (when it holds images) or ``"train"``."""
        held_out = self.held_out
        if score_on == "val" and held_out is not None and len(held_out):
            return held_out
        return self.train


def open_training_data(args: argparse.Namespace) -> TrainingData:
    """Open the ``--data`` of a training command, split by ``--split`` / ``--split-seed``.

    Labelled images (a MedMNIST file, class folders) give their channels (``--window`` overrides their
    windows) and, unless ``--unconditional``, a conditional model of all their classes (``--c-dim``
    overrides); paired data give ``--modalities`` (default ``mri,ct``) with their ``--window`` (8-bit slices
    carry their own [0, 255] windows), conditional only with ``--cond`` (``--c-dim``, default 2). The
    shared ``--patient-pattern`` / ``--mask-threshold`` are read where the command has them.

    Example:
        >>> args = argparse.Namespace(data="phantom:patients=4,slices=2", resolution=16, split_seed=0,
        ...                           split="0.5,0.25,0.25", modalities=None, window=[], cond=None,
        ...                           c_dim=None, unconditional=False)
        >>> data = open_training_data(args)
        >>> [m.name for m in data.modalities], data.c_dim, data.about
        (['mri', 'ct'], 0, '4 slices of 2 patients')
    """
    from latent_transforms.data.open import is_labelled_spec, open_splits
    from latent_transforms.networks.config import Modality

    fractions = split_fractions(args.split)
    reading = data_options(args)  # --modalities, and --patient-pattern, --mask-threshold where present
    names = reading.pop("modalities", None)
    if is_labelled_spec(args.data, names):
        splits = open_splits(
            args.data,
            resolution=args.resolution,
            fractions=fractions,
            seed=args.split_seed,
            channel_names=names,
            **reading,
        )
        base = getattr(splits["train"], "dataset", splits["train"])
        modalities = tuple(Modality(n, base.window) for n in base.channel_names)
        if args.window:
            given = {m.name: m.window for m in parse_modalities(",".join(base.channel_names), args.window)}
            modalities = tuple(Modality(m.name, given[m.name]) for m in modalities)
        label_key = None if args.unconditional else (args.cond or "label")
        c_dim = (args.c_dim or base.num_classes) if label_key else 0
        about = f"{len(splits['train'])} labelled images ({', '.join(base.class_names)})"
        return TrainingData(splits, modalities, label_key, c_dim, about)
    modalities = parse_modalities(args.modalities or "mri,ct", args.window)
    splits = open_splits(
        args.data,
        resolution=args.resolution,
        fractions=fractions,
        seed=args.split_seed,
        channel_names=[m.name for m in modalities],
        **reading,
    )
    train_set = splits["train"]
    windows = getattr(train_set, "windows", None) or getattr(
        getattr(train_set, "dataset", None), "windows", None
    )
    if windows and not args.window:  # 8-bit slices carry their own [0, 255] windows
        modalities = tuple(Modality(m.name, windows[m.name]) for m in modalities if m.name in windows)
    label_key = args.cond
    c_dim = (args.c_dim or 2) if label_key else 0
    patients = getattr(train_set, "patients", None)
    about = f"{len(train_set)} slices" + (f" of {len(patients)} patients" if patients is not None else "")
    return TrainingData(splits, modalities, label_key, c_dim, about)


def join_torchrun(device: str | None) -> None:
    """Under ``torchrun`` (``WORLD_SIZE`` > 1) join its process group, once: NCCL when the command runs on
    CUDA (``--device``, default CUDA when available), gloo on the CPU. A plain run does nothing.

    Example:
        >>> join_torchrun(None)  # not under torchrun: nothing to join
    """
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return
    import torch
    import torch.distributed as dist

    if not dist.is_initialized():
        cuda = (device or ("cuda" if torch.cuda.is_available() else "cpu")).startswith("cuda")
        dist.init_process_group("nccl" if cuda else "gloo")
