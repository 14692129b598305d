"""Reconstruction quality per sample and modality: PSNR and SSIM of images in ``[-1, 1]``.

The projector reports these for every inverted image and uses PSNR for its per-sample early stop, so
they are computed batched on the images' device, without leaving the graph's dtype or a host sync. They
are the library's one PSNR/SSIM (:mod:`latent_transforms.image_quality`, also behind
:mod:`latent_transforms.metrics.paired`), here with the generator's range (``data_range = 2``) as default.

Example:
    >>> import torch
    >>> x = torch.zeros(1, 2, 8, 8)
    >>> psnr(x, x + 0.02).round(decimals=2), ssim(x, x)
    (tensor([[40., 40.]]), tensor([[1., 1.]]))
"""

from __future__ import annotations

import math

from latent_transforms.image_quality import DATA_RANGE, psnr, ssim

__all__ = ["DATA_RANGE", "mse_for_psnr", "psnr", "ssim"]


def mse_for_psnr(target_db: float, *, data_range: float = DATA_RANGE) -> float:
    """The per-pixel MSE at which :func:`psnr` equals ``target_db``.

    Example:
        >>> mse_for_psnr(40.0)
        0.0004
    """
    return round(data_range**2 / math.pow(10.0, target_db / 10.0), 12)
