"""Safetensors weight files: strict loading with errors that name the first mismatch, and fingerprints."""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from latent_transforms.errors import WeightMismatchError
from latent_transforms.files import atomic_write


def state_tensors(module: nn.Module) -> dict[str, torch.Tensor]:
    """The persistent parameters and buffers of ``module``, detached, contiguous, on CPU."""
    return {k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()}


def fingerprint(module: nn.Module) -> str:
    """SHA-256 (hex) of a module's weights: names, dtypes, shapes and bytes, in sorted name order.

    Two generators with the same fingerprint compute the same function; the latent cache uses it to
    refuse latents inverted with a different generator.
    """
    digest = hashlib.sha256()
    for name, tensor in sorted(state_tensors(module).items()):
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def atomic_save(
    tensors: dict[str, torch.Tensor], path: str | Path, metadata: dict[str, str] | None = None
) -> None:
    """Write a safetensors file atomically (:func:`latent_transforms.files.atomic_write`: temp file in the
    same folder, fsync, rename; the file gets the usual ``umask`` permissions, not safetensors' 0600)."""
    contiguous = {k: v.contiguous() for k, v in tensors.items()}
    atomic_write(path, lambda tmp: save_file(contiguous, str(tmp), metadata=metadata))


def load_strict(module: nn.Module, path: str | Path, what: str) -> None:
    """Load ``path`` into ``module``; any missing, unexpected or mis-shaped tensor raises.

    The error names the first tensor (in the module's own order) that differs and both shapes, so a
    config that does not match its weights is easy to diagnose.
    """
    path = Path(path)
    try:
        tensors = load_file(str(path), device="cpu")
    except Exception as exc:  # safetensors raises its own error types
        raise WeightMismatchError(
            f"cannot read {what} weights from {path}: {exc}. Re-save the bundle."
        ) from exc
    check_state_matches(module, tensors, f"{what} weights in {path}")
    module.load_state_dict(tensors, strict=True)


def check_state_matches(module: nn.Module, tensors: dict[str, torch.Tensor], source: str) -> None:
    """Raise :class:`WeightMismatchError` naming the first difference between ``module`` and ``tensors``."""
    expected = module.state_dict()
    for name, ref in expected.items():
        if name not in tensors:
            raise WeightMismatchError(
                f"{source} lack tensor '{name}' (config expects shape {tuple(ref.shape)}); "
                "the weights were saved for a different architecture than config.json describes."
            )
        got = tensors[name]
        if tuple(got.shape) != tuple(ref.shape):
            raise WeightMismatchError(
                f"{source} do not match config.json: tensor '{name}' has shape {tuple(got.shape)} in the "
                f"file but the config builds {tuple(ref.shape)}. Check resolution, channel_base, "
                "channel_max, z_dim/w_dim and the number of modalities in config.json."
            )
    extra = [k for k in tensors if k not in expected]
    if extra:
        raise WeightMismatchError(
            f"{source} hold tensor '{extra[0]}' (shape {tuple(tensors[extra[0]].shape)}) that the "
            f"architecture in config.json does not have ({len(extra)} unexpected in all)."
        )
