"""Reconstruction quality per sample and modality: PSNR and SSIM of images in ``[-1, 1]``.

The projector reports these for every inverted image and uses PSNR for its per-sample early stop, so
they are computed batched on the images' device, without leaving the graph's dtype or a host sync.
(The metrics layer builds on these; they live here because inversion sits below it.)
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from latent_transforms.errors import ConfigError

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
    equal. Inputs ``[B, C, H, W]``; ``data_range`` 2 for images in ``[-1, 1]``.

    Example:
        >>> x = torch.zeros(1, 2, 8, 8)
        >>> psnr(x, x + 0.02).round(decimals=2)
        tensor([[40., 40.]])
    """
    _check_pair(x, y)
    mse = (x.float() - y.float()).square().mean(dim=(2, 3))
    return 10.0 * torch.log10(data_range**2 / mse)


def _gaussian_window(size: int, sigma: float, device: torch.device) -> torch.Tensor:
    coords = torch.arange(size, dtype=torch.float32, device=device) - (size - 1) / 2
    g = torch.exp(-(coords**2) / (2 * sigma**2))
    return g / g.sum()


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
    """Structural similarity per sample and channel, ``[B, C]``, in ``[-1, 1]`` (1: identical).

    Wang et al.'s SSIM with an ``window_size`` Gaussian window (σ = ``sigma``), population statistics and
    only the windows that fit inside the image ("valid"), the convention of
    ``skimage.metrics.structural_similarity(..., gaussian_weights=True, use_sample_covariance=False)``;
    the tests pin it to scikit-image. Images smaller than the window use a window of their size.

    Example:
        >>> x = torch.rand(2, 2, 16, 16, generator=torch.Generator().manual_seed(0)) * 2 - 1
        >>> ssim(x, x)
        tensor([[1., 1.],
                [1., 1.]])
    """
    _check_pair(x, y)
    c, h, w = x.shape[1:]
    size = min(window_size, h, w)
    g = _gaussian_window(size, sigma, x.device)
    kernel = (g[:, None] * g[None, :]).expand(c, 1, size, size)

    def blur(t: torch.Tensor) -> torch.Tensor:
        return F.conv2d(t, kernel, groups=c)

    x, y = x.float(), y.float()
    mu_x, mu_y = blur(x), blur(y)
    var_x = blur(x * x) - mu_x.square()
    var_y = blur(y * y) - mu_y.square()
    cov = blur(x * y) - mu_x * mu_y
    c1, c2 = (k1 * data_range) ** 2, (k2 * data_range) ** 2
    value = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / (
        (mu_x.square() + mu_y.square() + c1) * (var_x + var_y + c2)
    )
    return value.mean(dim=(2, 3))


def mse_for_psnr(target_db: float, *, data_range: float = DATA_RANGE) -> float:
    """The per-pixel MSE at which :func:`psnr` equals ``target_db``.

    Example:
        >>> mse_for_psnr(40.0)
        0.0004
    """
    return round(data_range**2 / math.pow(10.0, target_db / 10.0), 12)
