"""The caller's memory layout, kept: what a transform returns is laid out like what it was given.

The work inside a transform may use another layout (the StyleGAN2 generator runs ``torch.channels_last``
where that is faster, a resampling returns a contiguous tensor, a channel slice of a stacked batch is
strided); :func:`keep_layout` puts the result back in the caller's order of dimensions in memory, so
``out.view(-1)`` works on a contiguous input and a ``channels_last`` pipeline stays ``channels_last``.
"""

from __future__ import annotations

import torch

__all__ = ["keep_layout"]


def keep_layout(y: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """``y`` in ``like``'s memory layout: the same order of dimensions in memory (a copy only when the
    layouts differ; differentiable).

    A contiguous ``like`` gives a contiguous ``y`` (so ``y.view(-1)`` works), a ``torch.channels_last``
    one a ``channels_last`` ``y``, any other layout (e.g. ``[C, H, W]`` made by permuting an ``[H, W, C]``
    array) its order of strides. The shapes may differ (a filter keeps fewer samples); a ``y`` of another
    rank comes back as it is. The transforms use it so the GAN's own layout (the generator may run
    ``channels_last``) never leaks out.

    Example:
        >>> x = torch.zeros(2, 3, 4, 4)
        >>> y = torch.ones(2, 3, 4, 4).contiguous(memory_format=torch.channels_last)
        >>> keep_layout(y, x).is_contiguous()
        True
        >>> keep_layout(x, y).is_contiguous(memory_format=torch.channels_last)
        True
        >>> hwc = torch.zeros(4, 4, 3).permute(2, 0, 1)  # [C, H, W] over an [H, W, C] buffer
        >>> keep_layout(torch.ones(3, 4, 4), hwc).stride() == hwc.stride()
        True
    """
    if y.ndim != like.ndim or y.ndim == 0:
        return y
    if like.is_contiguous():
        return y.contiguous()
    if like.ndim == 4 and like.is_contiguous(memory_format=torch.channels_last):
        return y.contiguous(memory_format=torch.channels_last)
    # Any other order: outermost dimension (largest stride) first; ties (size-1 dims) in index order.
    order = sorted(range(like.ndim), key=lambda d: (-like.stride(d), d))
    inverse = sorted(range(like.ndim), key=lambda d: order[d])
    return y.permute(order).contiguous().permute(inverse)
