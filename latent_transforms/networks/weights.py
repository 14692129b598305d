"""Safetensors weight files: strict loading with errors that name the first mismatch, and fingerprints."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from latent_transforms.errors import NonFiniteWeightsError, WeightMismatchError
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


def load_strict(
    module: nn.Module,
    path: str | Path,
    what: str,
    *,
    finite: Callable[[dict[str, torch.Tensor], str], None] | None = None,
) -> None:
    """Load ``path`` into ``module``; any missing, unexpected, mis-shaped or non-finite tensor raises.

    The error names the first tensor (in the module's own order) that differs and both shapes, so a
    config that does not match its weights is easy to diagnose. ``finite`` checks the tensors for NaN and
    Inf (called with them and ``"<what> weights in <path>"``; default :func:`check_finite`).
    """
    path = Path(path)
    try:
        tensors = load_file(str(path), device="cpu")
    except Exception as exc:  # safetensors raises its own error types
        raise WeightMismatchError(
            f"cannot read {what} weights from {path}: {exc}. Re-save the bundle."
        ) from exc
    check_state_matches(module, tensors, f"{what} weights in {path}")
    (finite or check_finite)(tensors, f"{what} weights in {path}")
    module.load_state_dict(tensors, strict=True)


#: What to do about a diverged network's weights (the default advice of :func:`check_finite`).
RETRAIN_FIX = (
    "The network would compute NaN; the run that saved it diverged. Fix: load an earlier checkpoint or "
    "retrain (e.g. a lower learning rate or a larger R1 gamma)."
)


def check_finite(tensors: dict[str, torch.Tensor], source: str, fix: str = RETRAIN_FIX) -> None:
    """Raise :class:`NonFiniteWeightsError` naming the first tensor (sorted by name) with NaN or Inf values.

    A generator with such weights samples NaN images and a discriminator gives NaN scores, silently; a
    training run that diverged writes them. The check reads every floating-point value once.

    Example:
        >>> check_finite({"a": torch.ones(2)}, "generator weights")
        >>> check_finite({"a": torch.tensor([1.0, float("nan")])}, "generator weights")
        Traceback (most recent call last):
        ...
        latent_transforms.errors.NonFiniteWeightsError: generator weights hold non-finite values: tensor 'a' \
has 1 NaN and 0 infinite of 2 values. The network would compute NaN; the run that saved it diverged. Fix: \
load an earlier checkpoint or retrain (e.g. a lower learning rate or a larger R1 gamma).
    """
    for name in sorted(tensors):
        tensor = tensors[name]
        if not tensor.is_floating_point() or bool(torch.isfinite(tensor).all()):
            continue
        nan = int(torch.isnan(tensor).sum())
        inf = int(torch.isinf(tensor).sum())
        raise NonFiniteWeightsError(
            f"{source} hold non-finite values: tensor '{name}' has {nan} NaN and {inf} infinite of "
            f"{tensor.numel()} values. {fix}"
        )


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
