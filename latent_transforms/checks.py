"""Argument and image-batch checks shared by every public entry point, and the one default-device rule.

Every check raises :class:`~latent_transforms.errors.ConfigError` with what was expected, what was given
and the fix, so the library's errors read alike wherever they come from.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, TypeVar

import torch

from latent_transforms.errors import ConfigError

__all__ = [
    "canonical_device",
    "check_choice",
    "check_class_labels",
    "check_image_batch",
    "check_int",
    "check_number",
    "check_probability",
    "default_device",
]

T = TypeVar("T")

#: ``check_image_batch(..., value_limit=...)`` default: catches ``[0, 255]`` and HU input while tolerating
#: a generator's overshoot of ``[-1, 1]``.
GENERATOR_RANGE_LIMIT = 4.0


def default_device(device: torch.device | str | None = None) -> torch.device:
    """The device to run on: ``device`` when given, else CUDA when available, else the CPU.

    A CUDA device asked for on a machine without one is refused here, with the fix.

    Example:
        >>> default_device("cpu")
        device(type='cpu')
        >>> default_device().type in ("cpu", "cuda")
        True
    """
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(
            f"device={str(device)!r} was requested but no CUDA device is available. Fix: pass device='cpu' "
            "(or leave the device unset to use CUDA only when there is one). CUDA is not available here: "
            "torch.cuda.is_available() is False."
        )
    return dev


def canonical_device(device: torch.device | str | None) -> torch.device:
    """``device`` with an explicit index for CUDA (``"cuda"`` -> ``cuda:<current>``); ``None`` is the CPU.

    Two spellings of one device compare equal after this, so it can key per-device caches.

    Example:
        >>> canonical_device(None), canonical_device("cpu")
        (device(type='cpu'), device(type='cpu'))
    """
    dev = torch.device(device) if device is not None else torch.device("cpu")
    if dev.type == "cuda" and dev.index is None:
        dev = torch.device("cuda", torch.cuda.current_device())
    return dev


def check_number(
    name: str,
    value: Any,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    fix: str = "",
) -> float:
    """``value`` as a finite float in ``[low, high]`` (``(low, high]`` with ``low_open``), else an error
    (ending in ``" Fix: <fix>"`` when ``fix`` is given).

    Example:
        >>> check_number("lr", 0.01, low=0, low_open=True)
        0.01
        >>> check_number("alpha", -1, low=0)
        Traceback (most recent call last):
        ...
        latent_transforms.errors.ConfigError: alpha must be a finite number >= 0; got -1.
    """
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if ok and low is not None:
        ok = value > low if low_open else value >= low
    if ok and high is not None:
        ok = value <= high
    if not ok:
        bounds = []
        if low is not None:
            bounds.append(f"{'>' if low_open else '>='} {low:g}")
        if high is not None:
            bounds.append(f"<= {high:g}")
        raise ConfigError(
            f"{name} must be a finite number {' and '.join(bounds) or ''}".rstrip()
            + f"; got {value!r}."
            + _fix(fix)
        )
    return float(value)


def check_probability(name: str, value: Any, *, fix: str = "") -> float:
    """``value`` as a probability in ``[0, 1]`` (``fix``: as for :func:`check_number`).

    Example:
        >>> check_probability("p", 0.5)
        0.5
    """
    return check_number(name, value, low=0.0, high=1.0, fix=fix)


def check_int(
    name: str, value: Any, *, low: int | None = None, high: int | None = None, fix: str = ""
) -> int:
    """``value`` as an int in ``[low, high]``; whole floats (``3.0``, e.g. from JSON) are accepted
    (``fix``: as for :func:`check_number`).

    Example:
        >>> check_int("steps", 9.0, low=0)
        9
    """
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{name} must be an integer; got {value!r}.{_fix(fix)}")
    if (low is not None and value < low) or (high is not None and value > high):
        span = f"[{low if low is not None else '-inf'}, {high if high is not None else 'inf'}]"
        raise ConfigError(f"{name} must be an integer in {span}; got {value!r}.{_fix(fix)}")
    return int(value)


def check_choice(name: str, value: T, choices: Sequence[T], *, fix: str = "") -> T:
    """``value`` when it is one of ``choices``, else an error listing them (``fix``: as for
    :func:`check_number`).

    Example:
        >>> check_choice("precision", "fp32", ("fp32", "bf16"))
        'fp32'
    """
    if value not in choices:
        raise ConfigError(f"{name} must be one of {tuple(choices)}; got {value!r}.{_fix(fix)}")
    return value


def check_class_labels(labels: Any, n: int, c_dim: int, *, who: str = "labels") -> torch.Tensor | None:
    """Class labels for ``n`` images as an int64 CPU tensor ``[n]`` (``None`` stays ``None``).

    ``labels`` is one class index for every image (an int), or ``n`` indices (a sequence or an integer
    tensor ``[n]``; a single entry is repeated), each in ``[0, c_dim)``. An unconditional generator
    (``c_dim = 0``) takes none. What every generator's ``sample(n, labels=...)`` and the conditional
    transforms accept.

    Example:
        >>> check_class_labels(1, 3, 2).tolist(), check_class_labels([0, 1], 2, 2).tolist()
        ([1, 1, 1], [0, 1])
        >>> check_class_labels(2, 1, 2)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        latent_transforms.errors.ConfigError: labels must be class indices in [0, 2), got 2 ...
    """
    if labels is None:
        return None
    if c_dim == 0:
        raise ConfigError(
            f"{who} were given but this generator is unconditional (c_dim = 0). Fix: drop {who}, or train a "
            "class-conditional model."
        )
    if isinstance(labels, bool) or (isinstance(labels, float) and not float(labels).is_integer()):
        raise ConfigError(f"{who} must be class indices (ints), got {labels!r}.")
    if isinstance(labels, (int, float)):
        tensor = torch.full((n,), int(labels), dtype=torch.int64)
    else:
        tensor = torch.as_tensor(labels)
        if tensor.is_floating_point() or tensor.dtype == torch.bool or tensor.ndim > 1:
            raise ConfigError(
                f"{who} must be class indices: an int or an integer tensor [n], got {tensor.dtype} of shape "
                f"{tuple(tensor.shape)}. Fix: pass labels.argmax(1) for one-hot vectors."
            )
        tensor = tensor.reshape(-1).to(device="cpu", dtype=torch.int64)
        if tensor.numel() == 1 and n != 1:
            tensor = tensor.expand(n).clone()
        if tensor.numel() != n:
            raise ConfigError(f"{who} has {tensor.numel()} entries for {n} images; give one per image.")
    bad = tensor[(tensor < 0) | (tensor >= c_dim)]
    if bad.numel():
        raise ConfigError(
            f"{who} must be class indices in [0, {c_dim}), got {int(bad[0])} (the generator has {c_dim} "
            "classes)."
        )
    return tensor


def _fix(fix: str) -> str:
    return f" Fix: {fix}" if fix else ""


def _describe(x: Any) -> str:
    if isinstance(x, torch.Tensor):
        return f"a {x.dtype} tensor of shape {tuple(x.shape)}"
    return type(x).__name__


def check_image_batch(
    images: Any,
    *,
    what: str = "images",
    channels: int | None = None,
    resolution: int | None = None,
    allow_single: bool = False,
    finite: bool = True,
    value_limit: float | None = None,
    context: str = "",
    allow_empty: bool = False,
) -> torch.Tensor:
    """Check a float image batch ``[B, C, H, W]`` and return it (``[C, H, W]`` gets a batch axis when
    ``allow_single``).

    Args:
        images: the batch.
        what: how the error names it.
        channels: required ``C`` (``None``: any, at least 1).
        resolution: required ``H = W`` (``None``: any size).
        allow_single: accept one image ``[C, H, W]`` (returned as ``[1, C, H, W]``).
        finite: refuse NaN/Inf (reads values on the host: a device synchronisation on CUDA).
        value_limit: refuse values beyond ``±value_limit`` (e.g. :data:`GENERATOR_RANGE_LIMIT` for images
            that should be in ``[-1, 1]``; ``None``: no range check).
        context: appended to the shape error's fix (e.g. what the channels mean).
        allow_empty: accept an empty batch ``[0, C, H, W]`` (for running metrics that skip it).

    Example:
        >>> check_image_batch(torch.zeros(2, 1, 8, 8), channels=1, resolution=8).shape
        torch.Size([2, 1, 8, 8])
        >>> check_image_batch(torch.zeros(1, 8, 8), allow_single=True).shape
        torch.Size([1, 1, 8, 8])
        >>> check_image_batch(torch.zeros(2, 3, 8, 8), channels=1)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        latent_transforms.errors.ConfigError: expected images [B, 1, H, W] with B >= 1, got (2, 3, 8, 8). ...
    """
    c = "C" if channels is None else str(channels)
    r = ("H", "W") if resolution is None else (str(resolution), str(resolution))
    shape = f"[B, {c}, {r[0]}, {r[1]}]"
    if not isinstance(images, torch.Tensor) or not images.is_floating_point():
        raise ConfigError(
            f"expected {what} as a float tensor {shape} in [-1, 1], got {_describe(images)}. "
            "Fix: convert with .float() (and scale to [-1, 1]); only float images are accepted."
        )
    if allow_single and images.ndim == 3:
        images = images[None]
    if images.ndim != 4:
        extra = " or one image [C, H, W]" if allow_single else ""
        raise ConfigError(
            f"expected {what} {shape}{extra}, got shape {tuple(images.shape)}. "
            "Fix: add a batch dimension with images[None]."
        )
    empty = images.shape[0] == 0
    bad = (
        (empty and not allow_empty)
        or images.shape[1] == 0
        or (channels is not None and images.shape[1] != channels)
        or (resolution is not None and tuple(images.shape[2:]) != (resolution, resolution))
    )
    if bad:
        note = " (an empty batch: expected at least one image)" if empty else ""
        raise ConfigError(
            f"expected {what} {shape} with B >= 1, got {tuple(images.shape)}{note}. Fix: pass images with "
            f"that shape ({context or 'stack the modalities as channels and resize'})."
        )
    if finite and not bool(torch.isfinite(images).all()):
        raise ConfigError(
            f"{what} hold NaN or Inf values. Fix: clean the data first (e.g. torch.nan_to_num) and check "
            "the network that made them. Expected finite values."
        )
    if value_limit is not None and images.numel() > 0:
        lo, hi = float(images.min()), float(images.max())
        if lo < -value_limit or hi > value_limit:
            raise ConfigError(
                f"expected {what} in [-1, 1], got values in [{lo:.3g}, {hi:.3g}]. Fix: normalise them "
                "with the bundle's intensity windows (bundle.normalize) or pass the value range."
            )
    return images
