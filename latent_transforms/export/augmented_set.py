"""``latent-transforms augment``: write an augmented paired set to disk, the way the authors made their
offline sets (10,000 pairs from the GAN).

The set is written in the ``folders`` layout that :class:`~latent_transforms.data.PairedSliceFolder`
reads back: one sub-folder per modality, one file per slice, paired by name
``<source patient>_<index:06d>`` (``synthetic_<index>`` for SG2Sample, whose samples come from no
patient), so a patient-level split of the augmented set keeps each slice with its source patient.

- ``npz``: float32 ``[H, W]`` in physical units (HU for CT), array named after the modality;
- ``png``: 8-bit, windowed with the GAN bundle's intensity windows (``PairedSliceFolder`` reads them as
  ``units="uint8"``);
- ``nifti``: ``.nii.gz`` ``[H, W, 1]`` float32 in physical units (needs ``nibabel``).

``augment.json`` lists every file with the dataset key of its source slice, the policy (its ``repr``),
the command and the counts.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from latent_transforms.data.items import stack_modalities
from latent_transforms.errors import ConfigError, MissingDependencyError
from latent_transforms.networks.bundle import GanBundle

__all__ = ["FORMATS", "MANIFEST_NAME", "augment_dataset", "write_slice"]

FORMATS = ("npz", "png", "nifti")
MANIFEST_NAME = "augment.json"
_SUFFIX = {"npz": ".npz", "png": ".png", "nifti": ".nii.gz"}


def write_slice(
    path_stem: Path, modality: str, physical: torch.Tensor, normalized: torch.Tensor, fmt: str
) -> Path:
    """Write one modality of one slice. ``physical`` is ``[H, W]`` in physical units, ``normalized`` the
    same slice in ``[-1, 1]`` (for 8-bit PNG). Atomic: a temporary file renamed into place.

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
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp{_SUFFIX[fmt]}")
    if fmt == "npz":
        with open(tmp, "wb") as handle:
            np.savez(handle, **{modality: physical.detach().cpu().numpy().astype(np.float32)})
    elif fmt == "png":
        from PIL import Image

        pixels = ((normalized.detach().cpu().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).numpy()
        Image.fromarray(pixels, mode="L").save(tmp, format="PNG")
    else:
        try:
            import nibabel
        except ImportError as exc:
            raise MissingDependencyError(
                "format 'nifti' needs nibabel. Fix: pip install 'latent-transforms[nifti]' (or nibabel)."
            ) from exc
        data = physical.detach().cpu().numpy().astype(np.float32)[:, :, None]
        nibabel.save(nibabel.Nifti1Image(data, np.eye(4)), str(tmp))
    os.replace(tmp, path)
    return path


def _source_batches(
    dataset: Any, bundle: GanBundle, n: int, batch_size: int
) -> Iterator[tuple[torch.Tensor, list[str], list[str]]]:
    """Cycle through the dataset: (images [b, C, R, R] in [-1, 1], keys, patients) until ``n`` are given."""
    windows = [m.window for m in bundle.config.modalities]
    given = 0
    while given < n:
        images, keys, patients = [], [], []
        for _ in range(min(batch_size, n - given)):
            item = dataset[given % len(dataset)]
            images.append(stack_modalities(item, bundle.modalities, windows))
            keys.append(str(item.get("key", given % len(dataset))))
            patients.append(str(item.get("patient", "p")).replace("_", "-"))
            given += 1
        yield torch.stack(images), keys, patients


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
        ...     sorted(os.listdir(d))
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
    folder.mkdir(parents=True, exist_ok=True)
    files: list[dict[str, Any]] = []
    bar = tqdm(total=n, desc="augmenting", unit="img", disable=not progress)
    index = 0
    for images, keys, patients in _source_batches(dataset, bundle, n, batch_size):
        x = images.to(device)
        if by_key and hasattr(transform, "params_for"):
            params = transform.params_for(x, key=keys)
            params["keys"] = keys
            y = transform.transform(x, params)
        else:
            y = transform(x)
        y = y.detach().to("cpu", torch.float32).clamp(-1, 1)
        physical = bundle.denormalize(y)
        for i in range(y.shape[0]):
            stem = f"{'synthetic' if synthetic else patients[i]}_{index:06d}"
            written = {
                modality: str(
                    write_slice(folder / modality / stem, modality, physical[i, c], y[i, c], fmt).relative_to(
                        folder
                    )
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
    tmp = folder / f".{MANIFEST_NAME}.{os.getpid()}.tmp"
    tmp.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, folder / MANIFEST_NAME)
    return manifest


def policy_names() -> Sequence[str]:
    """The ``--policy`` choices of ``latent-transforms augment``.

    Example:
        >>> list(policy_names())
        ['latent-augment', 'latent-augment-mae', 'sg2', 'standard']
    """
    return ("latent-augment", "latent-augment-mae", "sg2", "standard")
