"""PSNR and SSIM per sample and channel: the one implementation the whole library uses.

:mod:`latent_transforms.inversion.quality` (the projector's early stop and report, images in ``[-1, 1]``)
and :mod:`latent_transforms.metrics.paired` (downstream slices in physical units) both compute them here.
It depends on torch only, so every layer may import it. The functions take batches ``[B, C, H, W]`` on any
device, stay differentiable and never read values on the host.

The SSIM is Wang et al.'s with a Gaussian window, population statistics and only the windows that fit
inside the image ("valid"): the convention of MONAI's ``compute_ssim_and_cs`` (whose operations it follows,
so the values are identical) and of ``skimage.metrics.structural_similarity(..., gaussian_weights=True,
use_sample_covariance=False)``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from latent_transforms.errors import ConfigError

__all__ = ["DATA_RANGE", "psnr", "ssim"]

#: Peak-to-peak range of images in the generator's ``[-1, 1]``.
DATA_RANGE = 2.0


def _check_pair(x: torch.Tensor, y: torch.Tensor) -> None:
    if x.ndim != 4 or x.shape != y.shape:
        raise ConfigError(
            f"expected two image batches [B, C, H, W] of one shape, got {tuple(x.shape)} and "
            f"{tuple(y.shape)}. Fix: add a batch dimension with image[None]."
        )


def psnr(x: torch.Tensor, y: torch.Tensor, *, data_range: float = DATA_RANGE) -> torch.Tensor:
    """Peak signal-to-noise ratio in dB per sample and channel, ``[B, C]``.

    ``10 log10(data_range² / MSE)`` with the MSE over each channel's pixels; ``inf`` where the images are
    equal. Inputs ``[B, C, H, W]``; ``data_range`` 2 for images in ``[-1, 1]``. Computed in the inputs'
    precision, at least ``float32`` (``float64`` inputs give ``float64``).

    Example:
        >>> x = torch.zeros(1, 2, 8, 8)
        >>> psnr(x, x + 0.02).round(decimals=2)
        tensor([[40., 40.]])
    """
    _check_pair(x, y)
    dtype = torch.promote_types(torch.promote_types(x.dtype, y.dtype), torch.float32)
    mse = (x.to(dtype) - y.to(dtype)).square().mean(dim=(2, 3))
    return 10.0 * torch.log10(data_range**2 / mse)


def _gaussian_kernel(size: int, sigma: float) -> torch.Tensor:
    """``[size, size]`` normalised Gaussian, built as MONAI builds it (on the CPU, in float32)."""
    dist = torch.arange(start=(1 - size) / 2, end=(1 + size) / 2, step=1)
    g = torch.exp(-torch.pow(dist / sigma, 2) / 2)
    g = (g / g.sum()).unsqueeze(dim=0)
    return torch.matmul(g.t(), g)


def ssim(
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    data_range: float = DATA_RANGE,
    window_size: int = 11,
    sigma: float = 1.5,
    k1: float = 0.01,
    k2: float = 0.03,
) -> torch.Tensor:
    """Structural similarity per sample and channel, ``[B, C]`` (``float32``), in ``[-1, 1]`` (1: identical).

    A ``window_size`` Gaussian window (σ = ``sigma``), stability constants ``(k1·data_range)²`` and
    ``(k2·data_range)²``, the SSIM map where the window fits inside the image, averaged per channel. Images
    smaller than the window use a window of their size. The luminance term depends on the values' offset:
    images are expected in a range of width ``data_range`` (``[-1, 1]`` with 2, or ``[0, data_range]``).

    Example:
        >>> x = torch.rand(2, 2, 16, 16, generator=torch.Generator().manual_seed(0)) * 2 - 1
        >>> ssim(x, x)
        tensor([[1., 1.],
                [1., 1.]])
    """
    _check_pair(x, y)
    c, h, w = x.shape[1:]
    size = min(window_size, h, w)
    kernel = _gaussian_kernel(size, sigma).to(x.device).expand(c, 1, size, size)

    def blur(t: torch.Tensor) -> torch.Tensor:
        return F.conv2d(t, kernel, groups=c)

    x, y = x.float(), y.float()
    mu_x, mu_y = blur(x), blur(y)
    var_x = blur(x * x) - mu_x * mu_x
    var_y = blur(y * y) - mu_y * mu_y
    cov = blur(x * y) - mu_x * mu_y
    c1, c2 = (k1 * data_range) ** 2, (k2 * data_range) ** 2
    contrast = (2 * cov + c2) / (var_x + var_y + c2)
    value = ((2 * mu_x * mu_y + c1) / (mu_x**2 + mu_y**2 + c1)) * contrast
    return value.flatten(2).mean(dim=2)
