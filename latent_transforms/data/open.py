"""Open a paired dataset from one string: ``"phantom[:key=value,...]"`` or a folder on disk."""

from __future__ import annotations

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


def open_paired_dataset(spec: str | Path, *, resolution: int, meta: bool = False, **kwargs: Any) -> Any:
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
        **kwargs: passed to the dataset class.

    Example:
        >>> ds = open_paired_dataset("phantom:patients=2,slices=3", resolution=32)
        >>> item = ds[0]
        >>> len(ds), item["ct"].shape
        (6, torch.Size([1, 32, 32]))
    """
    text = str(spec)
    if text == "phantom" or text.startswith("phantom:"):
        from latent_transforms.data.phantom import PelvisPhantom

        options: dict[str, Any] = {**parse_phantom_spec(text), **kwargs}
        return PelvisPhantom(resolution=resolution, **options)
    root = Path(text).expanduser()
    if not root.is_dir():
        raise ConfigError(
            f"--data {text!r} is neither 'phantom[:patients=N,slices=M,seed=S]' nor an existing folder. "
            "Give a SynthRAD2023-style folder (<patient>/mr.nii.gz, ct.nii.gz) or a folder of paired slices."
        )
    if any((sub / "mr.nii.gz").is_file() or (sub / "ct.nii.gz").is_file() for sub in root.iterdir()):
        from latent_transforms.data.volumes import PairedVolumeDataset

        return PairedVolumeDataset(root, resolution=resolution, meta=meta, **kwargs)
    from latent_transforms.data.slice_folder import PairedSliceFolder

    return PairedSliceFolder(root, resolution=resolution, **kwargs)
