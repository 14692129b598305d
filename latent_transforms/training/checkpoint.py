"""Resumable training state on disk (written atomically, read back with ``weights_only=True``) and the
snapshot bundles a run keeps with ``keep_snapshots``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from latent_transforms.errors import ConfigError
from latent_transforms.files import atomic_write

CHECKPOINT_NAME = "training-state.pt"
#: The folder of a run's kept snapshot bundles (``TrainingOptions(keep_snapshots=True)``).
SNAPSHOTS = "snapshots"


def snapshot_name(kimg: float) -> str:
    """The folder name of the snapshot bundle at ``kimg`` under ``out/snapshots`` (sorts by kimg).

    Example:
        >>> snapshot_name(260), snapshot_name(1.5)
        ('kimg-000260.000', 'kimg-000001.500')
    """
    return f"kimg-{float(kimg):010.3f}"


def snapshot_bundles(folder: str | Path) -> list[tuple[float, Path]]:
    """The snapshot bundles a run kept in ``folder/snapshots``: ``(kimg, bundle folder)`` by kimg.

    A folder without kept snapshots gives ``[]``. Load one with
    :meth:`~latent_transforms.GanBundle.from_pretrained` (or ``DiffusionBundle.from_pretrained``).

    Example:
        >>> import tempfile
        >>> run = Path(tempfile.mkdtemp())
        >>> for kimg in (20, 40):
        ...     (run / SNAPSHOTS / snapshot_name(kimg)).mkdir(parents=True)
        >>> {kimg: path.name for kimg, path in snapshot_bundles(run)}
        {20.0: 'kimg-000020.000', 40.0: 'kimg-000040.000'}
    """
    root = Path(folder) / SNAPSHOTS
    if not root.is_dir():
        return []
    found = []
    for path in root.iterdir():
        if path.is_dir() and path.name.startswith("kimg-"):
            try:
                found.append((float(path.name.removeprefix("kimg-")), path))
            except ValueError:
                continue
    return sorted(found)


def save_training_state(state: dict[str, Any], folder: str | Path) -> Path:
    """Write ``state`` (tensors, numbers, strings, lists, dicts) to ``folder/training-state.pt``.

    The file is written under a temporary name, flushed to disk and renamed into place, so a run killed
    at any moment leaves either the previous complete checkpoint or the new complete one.
    """
    return atomic_write(Path(folder) / CHECKPOINT_NAME, lambda tmp: torch.save(state, tmp))


def load_training_state(folder: str | Path) -> dict[str, Any] | None:
    """The state saved in ``folder`` (``None`` if there is none). Loaded with ``weights_only=True``."""
    path = Path(folder) / CHECKPOINT_NAME
    if not path.is_file():
        return None
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a foreign or damaged file: say so instead of a pickle traceback
        raise ConfigError(
            f"{path} is not a readable latent-transforms training state ({exc}); "
            "delete it to start over, or pass another output folder."
        ) from exc
