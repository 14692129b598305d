"""Open a dataset from one string, as ``--data`` takes it: ``"phantom[:key=value,...]"``,
``"medmnist:PATH.npz"``, a folder of class folders, or a folder of paired slices / volumes."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from latent_transforms.errors import ConfigError

PHANTOM_KEYS = {"patients": "n_patients", "slices": "slices_per_patient", "seed": "seed"}


def parse_phantom_spec(spec: str) -> dict[str, int]:
    """Arguments of :class:`~latent_transforms.data.phantom.PelvisPhantom` from ``"phantom:k=v,..."``.

    Keys: ``patients`` (default 40), ``slices`` (per patient, default 32), ``seed`` (default 0).

    Example:
        >>> parse_phantom_spec("phantom:patients=10,seed=3")
        {'n_patients': 10, 'slices_per_patient': 32, 'seed': 3}
    """
    args = {"n_patients": 40, "slices_per_patient": 32, "seed": 0}
    _, _, rest = spec.partition(":")
    for part in filter(None, (p.strip() for p in rest.split(","))):
        key, sep, value = part.partition("=")
        if not sep or key not in PHANTOM_KEYS or not value.strip().lstrip("-").isdigit():
            raise ConfigError(
                f"cannot read {part!r} in {spec!r}; expected phantom:patients=N,slices=M,seed=S "
                f"(keys {sorted(PHANTOM_KEYS)}, integer values)."
            )
        args[PHANTOM_KEYS[key]] = int(value)
    return args


def _refuse(option: str, value: Any, spec: str, why: str) -> None:
    if value is not None:
        raise ConfigError(f"--{option} {value!r} does not apply to --data {spec!r}: {why}")


def open_paired_dataset(
    spec: str | Path,
    *,
    resolution: int,
    meta: bool = False,
    modalities: Sequence[str] | None = None,
    patient_pattern: str | None = None,
    mask_threshold: float | None = None,
    **kwargs: Any,
) -> Any:
    """A paired dataset from a string, as the command line takes it.

    - ``"phantom"`` / ``"phantom:patients=40,slices=32,seed=0"``: the built-in :class:`PelvisPhantom`;
    - a folder whose sub-folders hold ``mr.nii.gz`` / ``ct.nii.gz`` (SynthRAD2023):
      :class:`PairedVolumeDataset`;
    - any other folder: :class:`PairedSliceFolder` (PNG / NPY / NPZ slices).

    Args:
        spec: the string above.
        resolution: output size in pixels (slices are resized to it).
        meta: NIfTI volumes give MONAI ``MetaTensor`` s carrying each slice's affine
            (``PairedVolumeDataset(meta=True)``); the other layouts have no affine and ignore it.
        modalities: the channel names (item keys) to read, in channel order (``--modalities``; default:
            the dataset class's, ``("mri", "ct")``). Any names for a folder of slices (its sub-folders or
            its files' channels); the phantom has ``mri`` and ``ct``.
        patient_pattern: a folder of slices: the regex that finds the patient in a file name
            (``--patient-pattern``; :class:`PairedSliceFolder`). The phantom and NIfTI volumes (one
            sub-folder per patient) name their patients themselves and refuse it.
        mask_threshold: the body-mask threshold on the ``ct`` channel in stored units
            (``--mask-threshold``): folders of slices and NIfTI volumes; the phantom draws its masks.
        **kwargs: passed to the dataset class.

    Raises:
        ConfigError: an unknown spec, or an option the layout does not have (the message says why).

    Example:
        >>> ds = open_paired_dataset("phantom:patients=2,slices=3", resolution=32)
        >>> item = ds[0]
        >>> len(ds), item["ct"].shape
        (6, torch.Size([1, 32, 32]))
        >>> try:
        ...     open_paired_dataset("phantom", resolution=32, patient_pattern="^p")
        ... except ConfigError as exc:
        ...     print(str(exc)[:76])
        --patient-pattern '^p' does not apply to --data 'phantom': the phantom names
    """
    text = str(spec)
    if modalities is not None:
        kwargs["modalities"] = tuple(modalities)
    if text == "phantom" or text.startswith("phantom:"):
        from latent_transforms.data.phantom import PelvisPhantom

        _refuse(
            "patient-pattern",
            patient_pattern,
            text,
            "the phantom names its own patients; the pattern is for a folder of slices.",
        )
        _refuse(
            "mask-threshold",
            mask_threshold,
            text,
            "the phantom draws its own body masks; the threshold is for CT values read from files.",
        )
        options: dict[str, Any] = {**parse_phantom_spec(text), **kwargs}
        return PelvisPhantom(resolution=resolution, **options)
    root = Path(text).expanduser()
    if not root.is_dir():
        raise ConfigError(
            f"--data {text!r} is neither 'phantom[:patients=N,slices=M,seed=S]' nor an existing folder. "
            "Give a SynthRAD2023-style folder (<patient>/mr.nii.gz, ct.nii.gz) or a folder of paired slices."
        )
    if mask_threshold is not None:
        kwargs["mask_threshold"] = float(mask_threshold)
    if any((sub / "mr.nii.gz").is_file() or (sub / "ct.nii.gz").is_file() for sub in root.iterdir()):
        from latent_transforms.data.volumes import PairedVolumeDataset

        _refuse(
            "patient-pattern",
            patient_pattern,
            text,
            "NIfTI volumes take the patient from the name of "
            "their sub-folder (<patient>/mr.nii.gz); the pattern is for a folder of slices.",
        )
        return PairedVolumeDataset(root, resolution=resolution, meta=meta, **kwargs)
    from latent_transforms.data.slice_folder import PairedSliceFolder

    if patient_pattern is not None:
        kwargs["patient_pattern"] = patient_pattern
    return PairedSliceFolder(root, resolution=resolution, **kwargs)


#: Prefix of a MedMNIST-style labelled ``.npz`` file (or a MedMNIST flag) in a dataset string.
MEDMNIST_PREFIX = "medmnist:"


def is_labelled_spec(spec: str | Path, modalities: Sequence[str] | None = None) -> bool:
    """Whether a dataset string names labelled single-modality images: ``medmnist:...`` or a folder whose
    sub-folders hold images directly (one per class) rather than paired slices or volumes.

    A folder of paired slices has one sub-folder per modality: ``MRI/``, ``CT/``, or the ``modalities``
    given (``--modalities t1,flair`` makes ``T1/`` and ``FLAIR/`` channels, not classes).

    Example:
        >>> is_labelled_spec("medmnist:pneumoniamnist.npz"), is_labelled_spec("phantom")
        (True, False)
    """
    text = str(spec)
    if text.startswith(MEDMNIST_PREFIX):
        return True
    root = Path(text).expanduser()
    if text.startswith("phantom") or not root.is_dir():
        return False
    subs = [s for s in root.iterdir() if s.is_dir()]
    if not subs or any(s.name.lower() in ("mri", "ct", "mr") for s in subs):
        return False
    names = {s.name.lower() for s in subs}
    if modalities and all(m.lower() in names for m in modalities):
        return False
    if any((s / "mr.nii.gz").is_file() or (s / "ct.nii.gz").is_file() for s in subs):
        return False
    suffixes = {".png", ".npy"}
    return all(any(f.suffix.lower() in suffixes for f in s.iterdir() if f.is_file()) for s in subs)


def open_dataset(
    spec: str | Path,
    *,
    resolution: int,
    split: str = "train",
    channel_names: tuple[str, ...] | list[str] | None = None,
    **kwargs: Any,
) -> Any:
    """Any dataset from a string, as ``--data`` takes it: labelled images or paired slices.

    - ``"medmnist:PATH.npz"``: one split (``split``) of a MedMNIST-style file
      (:meth:`LabelledImages.from_medmnist`); ``"medmnist:pneumoniamnist"`` fetches the official file
      through the optional ``medmnist`` package (internet needed once);
    - a folder with one sub-folder of PNG / NPY images per class: :meth:`LabelledImages.from_folder`
      (the whole folder; see :func:`open_splits` for its stratified split);
    - anything else: :func:`open_paired_dataset` (``split`` ignored; ``kwargs`` go to it).

    Example:
        >>> len(open_dataset("phantom:patients=2,slices=3", resolution=16))
        6
    """
    from latent_transforms.data.classification import LabelledImages

    text = str(spec)
    labelled = is_labelled_spec(text, kwargs.get("modalities", channel_names))
    if labelled:
        _refuse_paired_options(text, kwargs)
    if text.startswith(MEDMNIST_PREFIX):
        return LabelledImages.from_medmnist(
            text[len(MEDMNIST_PREFIX) :], split, resolution=resolution, channel_names=channel_names
        )
    if labelled:
        return LabelledImages.from_folder(text, resolution=resolution, channel_names=channel_names)
    if channel_names is not None:
        kwargs.setdefault("modalities", tuple(channel_names))
    return open_paired_dataset(text, resolution=resolution, **kwargs)


def _refuse_paired_options(spec: str, kwargs: dict[str, Any]) -> None:
    """Labelled images have no patients and no CT to mask: refuse the options of paired data by name."""
    for key in ("patient_pattern", "mask_threshold"):
        _refuse(
            key.replace("_", "-"),
            kwargs.pop(key, None),
            spec,
            "labelled images (one image per file or array row, a class per folder) have no patients to find "
            "and no CT channel to mask.",
        )


def open_splits(
    spec: str | Path,
    *,
    resolution: int,
    fractions: tuple[float, ...] = (0.7, 0.2, 0.1),
    seed: int = 0,
    channel_names: tuple[str, ...] | list[str] | None = None,
    **kwargs: Any,
) -> dict[str, Any]:
    """``{"train", "val", "test"}`` parts of the dataset ``spec`` names.

    A MedMNIST file keeps its own splits; a class-folder set is split per class (stratified, ``seed``);
    paired data are split by patient (:func:`~latent_transforms.data.splits.split_dataset`).

    Example:
        >>> parts = open_splits("phantom:patients=10,slices=2", resolution=16)
        >>> [len(parts[k]) for k in ("train", "val", "test")]
        [14, 4, 2]
    """
    text = str(spec)
    labelled = is_labelled_spec(text, kwargs.get("modalities", channel_names))
    if labelled:
        _refuse_paired_options(text, kwargs)
    if text.startswith(MEDMNIST_PREFIX):
        return {
            s: open_dataset(text, resolution=resolution, split=s, channel_names=channel_names)
            for s in ("train", "val", "test")
        }
    if labelled:
        from latent_transforms.data.stratified import stratified_split

        whole = open_dataset(text, resolution=resolution, channel_names=channel_names)
        parts = stratified_split(whole, fractions, seed=seed)
        return dict(zip(("train", "val", "test"), parts, strict=False))
    from latent_transforms.data.splits import split_dataset

    if channel_names is not None:
        kwargs.setdefault("modalities", tuple(channel_names))
    dataset = open_paired_dataset(text, resolution=resolution, **kwargs)
    return dict(split_dataset(dataset, fractions, seed=seed))
