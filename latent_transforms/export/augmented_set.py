"""Write an augmented paired set to disk (what ``latent-transforms augment`` runs), the way the authors of
LatentAugment (Tronchin et al. 2023) made their offline sets (10,000 pairs from the GAN).

The set is written in the ``folders`` layout that :class:`~latent_transforms.data.PairedSliceFolder`
reads back: one sub-folder per modality, one file per slice, paired by name
``<source patient>_<index:06d>`` (``synthetic_<index>`` for SG2Sample, whose samples come from no
patient), so a patient-level split of the augmented set keeps each slice with its source patient.

- ``npz``: float32 ``[H, W]`` in physical units (HU for CT), array named after the modality;
- ``png``: 8-bit, windowed with the GAN bundle's intensity windows (``PairedSliceFolder`` reads them as
  ``units="uint8"``);
- ``nifti``: ``.nii.gz`` ``[H, W, 1]`` float32 in physical units (needs ``nibabel``), with the affine of
  the source slice when the dataset gives one (MONAI ``MetaTensor`` items, e.g.
  ``PairedVolumeDataset(..., meta=True)``), else the identity.

Every file is written atomically (:func:`latent_transforms.files.atomic_write`).

``augment.json`` lists every file with the dataset key of its source slice, the policy (its ``repr``),
the command and the counts.
"""

from __future__ import annotations

import gzip
import io
import json
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from latent_transforms.data.items import stack_modalities
from latent_transforms.errors import ConfigError, MissingDependencyError
from latent_transforms.files import atomic_path, atomic_write
from latent_transforms.networks.bundle import GanBundle

__all__ = ["FORMATS", "MANIFEST_NAME", "augment_dataset", "slice_affine", "write_slice"]

FORMATS = ("npz", "png", "nifti")
MANIFEST_NAME = "augment.json"
_SUFFIX = {"npz": ".npz", "png": ".png", "nifti": ".nii.gz"}


def write_slice(
    path_stem: Path,
    modality: str,
    physical: torch.Tensor,
    normalized: torch.Tensor,
    fmt: str,
    *,
    affine: np.ndarray | None = None,
) -> Path:
    """Write one modality of one slice. ``physical`` is ``[H, W]`` in physical units, ``normalized`` the
    same slice in ``[-1, 1]`` (for 8-bit PNG). ``affine`` (4 x 4, voxel ``(row, column, 0)`` to world
    millimetres) goes into a NIfTI header; the identity when ``None``. Atomic: nothing half-written is
    left behind.

    Example:
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as d:
        ...     zeros = torch.zeros(4, 4)
        ...     p = write_slice(Path(d) / "ct" / "p1_000000", "ct", zeros, zeros, "png")
        ...     p.name
        'p1_000000.png'
    """
    if fmt not in FORMATS:
        raise ConfigError(f"format must be one of {FORMATS}, got {fmt!r}.")
    path = path_stem.with_name(path_stem.name + _SUFFIX[fmt])
    if fmt == "npz":
        buffer = io.BytesIO()
        arrays: dict[str, Any] = {modality: physical.detach().cpu().numpy().astype(np.float32)}
        np.savez(buffer, **arrays)
        return atomic_write(path, buffer.getvalue())
    if fmt == "png":
        from PIL import Image

        pixels = ((normalized.detach().cpu().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).numpy()
        with atomic_path(path) as tmp:
            Image.fromarray(pixels, mode="L").save(tmp, format="PNG")
        return path
    try:
        import nibabel
    except ImportError as exc:
        raise MissingDependencyError(
            "format 'nifti' needs nibabel. Fix: pip install 'latent-transforms[nifti]' (or nibabel)."
        ) from exc
    data = physical.detach().cpu().numpy().astype(np.float32)[:, :, None]
    image = nibabel.Nifti1Image(data, np.eye(4) if affine is None else np.asarray(affine, dtype=np.float64))
    # nibabel picks the format from the file name, so serialise in memory and write the bytes atomically.
    return atomic_write(path, gzip.compress(image.to_bytes(), mtime=0))


def slice_affine(item: dict[str, Any], modalities: Sequence[str]) -> np.ndarray | None:
    """The 4 x 4 affine of a dataset item's slice: the ``affine`` of its first modality when that is a
    MONAI ``MetaTensor`` (e.g. from ``PairedVolumeDataset(..., meta=True)``), else ``None``.

    Example:
        >>> slice_affine({"mri": torch.zeros(1, 4, 4), "ct": torch.zeros(1, 4, 4)}, ["mri", "ct"]) is None
        True
    """
    affine = getattr(item.get(modalities[0]), "affine", None)
    if affine is None:
        return None
    return np.asarray(torch.as_tensor(affine).detach().cpu().double().numpy())


def _plain(item: dict[str, Any], modalities: Sequence[str]) -> dict[str, Any]:
    """``item`` with its images as plain tensors (a MetaTensor's metadata stays out of the transforms)."""
    return {
        key: value.as_subclass(torch.Tensor)
        if key in modalities and isinstance(value, torch.Tensor)
        else value
        for key, value in item.items()
    }


def _source_batches(
    dataset: Any, bundle: GanBundle, n: int, batch_size: int
) -> Iterator[tuple[torch.Tensor, list[str], list[str], list[np.ndarray | None]]]:
    """Cycle through the dataset: (images [b, C, R, R] in [-1, 1], keys, patients, affines) until ``n``."""
    windows = [m.window for m in bundle.config.modalities]
    given = 0
    while given < n:
        images, keys, patients, affines = [], [], [], []
        for _ in range(min(batch_size, n - given)):
            item = dataset[given % len(dataset)]
            affines.append(slice_affine(item, bundle.modalities))
            images.append(stack_modalities(_plain(item, bundle.modalities), bundle.modalities, windows))
            keys.append(str(item.get("key", given % len(dataset))))
            patients.append(str(item.get("patient", "p")).replace("_", "-"))
            given += 1
        yield torch.stack(images), keys, patients, affines


def augment_dataset(
    bundle: GanBundle,
    dataset: Any,
    transform: Callable[..., torch.Tensor],
    out: str | Path,
    *,
    n: int,
    batch_size: int = 16,
    fmt: str = "npz",
    device: str | torch.device = "cpu",
    by_key: bool = False,
    synthetic: bool = False,
    command: str | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Augment ``n`` slices of ``dataset`` (cycling through it) with ``transform`` and write them to ``out``.

    Args:
        bundle: the GAN bundle (channel order and intensity windows).
        dataset: paired items (``data.items`` contract), e.g. from ``open_paired_dataset``.
        transform: a batch transform taking ``[B, C, R, R]`` in ``[-1, 1]`` (built with
            ``value_range="generator"`` and ``p=1``), e.g. ``LatentAugment``; with ``by_key`` it is
            called as ``transform.transform(x, params)`` with the dataset keys in ``params["keys"]``.
        out: output folder (created; files of an earlier run with the same names are replaced).
        n: slices to write.
        batch_size: slices per transform call.
        fmt: ``"npz"``, ``"png"`` or ``"nifti"``.
        device: where the transform runs.
        by_key: look latents up by dataset key instead of image content.
        synthetic: the outputs come from no source slice (SG2Sample): name them ``synthetic_<index>``.
        command: the command line, written to ``augment.json``.
        progress: show a progress bar.

    Returns:
        The manifest (also written as ``augment.json``).

    Example:
        >>> import tempfile
        >>> from latent_transforms import GanBundle, GanConfig
        >>> from latent_transforms.data import PelvisPhantom
        >>> bundle = GanBundle.random(GanConfig(resolution=16, channel_base=256, channel_max=32))
        >>> data = PelvisPhantom(1, 2, resolution=16)
        >>> with tempfile.TemporaryDirectory() as d:
        ...     manifest = augment_dataset(bundle, data, lambda x: -x, d, n=3, progress=False)
        ...     sorted(p.name for p in Path(d).iterdir())
        ['augment.json', 'ct', 'mri']
        >>> len(manifest["files"])
        3
    """
    if fmt not in FORMATS:
        raise ConfigError(f"format must be one of {FORMATS}, got {fmt!r}.")
    if n < 1:
        raise ConfigError(f"n must be >= 1, got {n}.")
    if len(dataset) == 0:
        raise ConfigError("the dataset is empty; nothing to augment.")
    folder = Path(out)
    files: list[dict[str, Any]] = []
    bar = tqdm(total=n, desc="augmenting", unit="img", disable=not progress)
    index = 0
    for images, keys, patients, affines in _source_batches(dataset, bundle, n, batch_size):
        x = images.to(device)
        if by_key and hasattr(transform, "params_for"):
            keyed: Any = transform  # a RandomTransform: draw its parameters for these keys
            params = keyed.params_for(x, key=keys)
            params["keys"] = keys
            y = keyed.transform(x, params)
        else:
            y = transform(x)
        y = y.detach().to("cpu", torch.float32).clamp(-1, 1)
        physical = bundle.denormalize(y)
        for i in range(y.shape[0]):
            stem = f"{'synthetic' if synthetic else patients[i]}_{index:06d}"
            affine = None if synthetic else affines[i]
            written = {
                modality: str(
                    write_slice(
                        folder / modality / stem, modality, physical[i, c], y[i, c], fmt, affine=affine
                    ).relative_to(folder)
                )
                for c, modality in enumerate(bundle.modalities)
            }
            files.append({"name": stem, "source": None if synthetic else keys[i], "files": written})
            index += 1
        bar.update(y.shape[0])
    bar.close()
    manifest = {
        "command": command,
        "policy": repr(transform),
        "format": fmt,
        "modalities": list(bundle.modalities),
        "windows": {m.name: m.window.to_dict() for m in bundle.config.modalities},
        "count": len(files),
        "files": files,
    }
    atomic_write(folder / MANIFEST_NAME, json.dumps(manifest, indent=2) + "\n")
    return manifest
