"""Modulated convolution with weight demodulation (StyleGAN2), in two equivalent execution paths.

``grouped``: build one weight per sample (``weight * style``, demodulated) and run a single grouped
convolution over the whole batch. ``nonfused``: scale the input activations by the styles, run one
shared convolution, then scale the output by the demodulation coefficients. Both compute the same
function (a test pins them equal to 1e-5); which is faster depends on the device, batch and width.
``"auto"`` picks :data:`DEFAULT_PATH` for the tensor's device type.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F

from latent_transforms.networks.resample import blur

ModulationPath = Literal["auto", "grouped", "nonfused"]
MODULATION_PATHS: tuple[str, ...] = ("auto", "grouped", "nonfused")

#: Path used by ``"auto"`` per device type. CPU: measured by ``benchmarks/generator_forward.py``
#: (non-fused 1.2-1.5x faster at 256 px batch 4 and 4-5x at 64 px batch 16; benchmarks/results/).
#: CUDA: non-fused provisionally (it keeps one shared cuDNN convolution per layer); the H100
#: measurement is pending, see benchmarks/results/README.md.
DEFAULT_PATH: dict[str, str] = {"cpu": "nonfused", "cuda": "nonfused"}


def resolve_path(path: str, device: torch.device) -> str:
    """Turn ``"auto"`` into the concrete path for ``device``; validate the name."""
    if path not in MODULATION_PATHS:
        raise ValueError(f"modulation path must be one of {MODULATION_PATHS}, got {path!r}")
    if path == "auto":
        return DEFAULT_PATH.get(device.type, "nonfused")
    return path


def demodulation_coefficients(weight: torch.Tensor, styles: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """``1 / ||weight * style||`` per sample and output channel: ``[B, out]``.

    Uses ``sum_{i,k} (w_oik s_i)^2 = sum_i s_i^2 sum_k w_oik^2`` so no per-sample weight is built.
    """
    return (styles.square() @ weight.square().sum(dim=(2, 3)).t().to(styles.dtype) + eps).rsqrt()


def modulated_conv2d(
    x: torch.Tensor,
    weight: torch.Tensor,
    styles: torch.Tensor,
    *,
    demodulate: bool = True,
    up: bool = False,
    path: str = "auto",
) -> torch.Tensor:
    """Modulated (and optionally demodulated) convolution, 'same' padding, optional 2x up-sampling.

    Args:
        x: activations ``[B, in, H, W]``.
        weight: shared kernel ``[out, in, k, k]`` (k odd).
        styles: per-sample input-channel scales ``[B, in]``.
        demodulate: normalise each output channel of each sample's kernel to unit norm.
        up: transposed convolution with stride 2 followed by the [1,3,3,1] blur (gain 4), as
            StyleGAN2 does; output ``[B, out, 2H, 2W]``.
        path: ``"grouped"``, ``"nonfused"`` or ``"auto"``.

    Returns:
        ``[B, out, H', W']`` in ``x``'s dtype.
    """
    batch, in_channels = x.shape[:2]
    out_channels, _, kh, kw = weight.shape
    path = resolve_path(path, x.device)
    styles = styles.to(x.dtype)
    weight = weight.to(x.dtype)
    dcoefs = demodulation_coefficients(weight, styles) if demodulate else None

    if path == "nonfused":
        x = x * styles.view(batch, in_channels, 1, 1)
        if up:
            x = F.conv_transpose2d(x, weight.transpose(0, 1), stride=2)
        else:
            x = F.conv2d(x, weight, padding=kh // 2)
        if dcoefs is not None:
            x = x * dcoefs.view(batch, out_channels, 1, 1)
    else:
        w = weight.unsqueeze(0) * styles.view(batch, 1, in_channels, 1, 1)
        if dcoefs is not None:
            w = w * dcoefs.view(batch, out_channels, 1, 1, 1)
        x = x.reshape(1, batch * in_channels, *x.shape[2:])
        if up:
            w = w.transpose(1, 2).reshape(batch * in_channels, out_channels, kh, kw)
            x = F.conv_transpose2d(x, w, stride=2, groups=batch)
        else:
            x = F.conv2d(
                x, w.reshape(batch * out_channels, in_channels, kh, kw), padding=kh // 2, groups=batch
            )
        x = x.reshape(batch, out_channels, *x.shape[2:])
    if up:
        # conv_transpose gave 2H + k - 2; the blur (padding k//2 each side) brings it to 2H.
        x = blur(x, (kh // 2, kh // 2), gain=4.0)
    return x
