"""Resumable training state on disk: written atomically, read back with ``weights_only=True``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from latent_transforms.errors import ConfigError
from latent_transforms.files import atomic_write

CHECKPOINT_NAME = "training-state.pt"


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
