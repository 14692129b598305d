"""Up/down-sampling with StyleGAN2's [1, 3, 3, 1] low-pass filter, in plain PyTorch.

The 2D filter is the normalised outer product of ``[1, 3, 3, 1]`` (it sums to 1). It is separable,
so the blurs here run as two 1D depthwise convolutions; the results equal the reference 2D
formulation up to float rounding. Sizes and offsets match StyleGAN2-ADA so converted checkpoints
reproduce their original outputs.
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F

_TAPS = (1.0, 3.0, 3.0, 1.0)


def _make_taps(gain: float, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    taps = torch.tensor(_TAPS, dtype=torch.float64)
    return (taps / taps.sum() * gain).to(device=device, dtype=dtype)


_cached_taps = functools.lru_cache(maxsize=64)(_make_taps)


def _taps(gain: float, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    # torch.compile traces the plain function (the taps become constants of the graph).
    if torch.compiler.is_compiling():
        return _make_taps(gain, device, dtype)
    return _cached_taps(gain, device, dtype)


def filter_2d(device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """The ``[4, 4]`` normalised 2D resampling filter (sums to 1)."""
    t = _taps(1.0, torch.device(device), torch.float64)
    return torch.outer(t, t).to(dtype)


def blur(x: torch.Tensor, pad: tuple[int, int], gain: float = 1.0, stride: int = 1) -> torch.Tensor:
    """Filter each channel of ``x`` [B, C, H, W] with the 4x4 filter times ``gain``.

    ``pad = (before, after)`` zero padding on both spatial axes; ``stride`` keeps every n-th output.
    Output size per axis: ``(H + before + after - 4) // stride + 1``.
    """
    channels = x.shape[1]
    t = _taps(gain**0.5, x.device, x.dtype)
    x = F.pad(x, (pad[0], pad[1], pad[0], pad[1]))
    x = F.conv2d(x, t.view(1, 1, 1, 4).expand(channels, 1, 1, 4), stride=(1, stride), groups=channels)
    return F.conv2d(x, t.view(1, 1, 4, 1).expand(channels, 1, 4, 1), stride=(stride, 1), groups=channels)


def upsample2d(x: torch.Tensor) -> torch.Tensor:
    """Double the size of ``x`` [B, C, H, W] -> [B, C, 2H, 2W] (zero insertion + filter, gain 4)."""
    channels = x.shape[1]
    t = _taps(2.0, x.device, x.dtype)
    kernel = torch.outer(t, t).view(1, 1, 4, 4).expand(channels, 1, 4, 4)
    return F.conv_transpose2d(x, kernel, stride=2, padding=1, groups=channels)


def downsample2d(x: torch.Tensor) -> torch.Tensor:
    """Halve the size of ``x`` [B, C, H, W] -> [B, C, H/2, W/2] (filter, then keep every 2nd pixel)."""
    return blur(x, (1, 1), stride=2)
