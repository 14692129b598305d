"""Resumable training state on disk: written atomically, read back with ``weights_only=True``."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import torch

from latent_transforms.errors import ConfigError

CHECKPOINT_NAME = "training-state.pt"


def save_training_state(state: dict[str, Any], folder: str | Path) -> Path:
    """Write ``state`` (tensors, numbers, strings, lists, dicts) to ``folder/training-state.pt``.

    The file is written under a temporary name, flushed to disk and renamed into place, so a run killed
    at any moment leaves either the previous complete checkpoint or the new complete one.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / CHECKPOINT_NAME
    fd, tmp = tempfile.mkstemp(prefix=".training-state-", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as handle:
            torch.save(state, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


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
