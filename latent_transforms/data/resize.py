"""Resizing of 2D slices shared by the paired datasets: bilinear for images, nearest for masks.

Both use the pixel-centre convention of ``align_corners=False`` (output pixel ``i`` samples input
coordinate ``(i + 0.5) * in_size / out_size - 0.5``). Images are low-pass filtered (``antialias=True``)
along every axis that shrinks, so 512 -> 256 averages instead of aliasing; masks use
``"nearest-exact"``, the nearest-neighbour rule with that same pixel-centre convention.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from latent_transforms.errors import ConfigError


def as_size(resolution: int | tuple[int, int]) -> tuple[int, int]:
    """A ``(height, width)`` pair from one side length or a pair; both must be positive integers.

    Example:
        >>> as_size(256)
        (256, 256)
        >>> as_size((128, 96))
        (128, 96)
    """
    size = (resolution, resolution) if isinstance(resolution, int) else tuple(resolution)
    if len(size) != 2 or not all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in size):
        raise ConfigError(
            f"resolution must be a positive int or a (height, width) pair of them; got {resolution!r}. "
            "Example: resolution=256."
        )
    return size[0], size[1]


def _as_batch(x: torch.Tensor, what: str) -> tuple[torch.Tensor, bool]:
    if x.ndim == 3:
        return x[None], True
    if x.ndim == 4:
        return x, False
    raise ConfigError(
        f"{what} must be [C, H, W] or [B, C, H, W]; got shape {tuple(x.shape)}. "
        "Add a channel axis with x[None]."
    )


def resize_image(image: torch.Tensor, resolution: int | tuple[int, int]) -> torch.Tensor:
    """Bilinear resize (``align_corners=False``, antialiased when shrinking) of an image.

    Args:
        image: ``[C, H, W]`` or ``[B, C, H, W]``, any real dtype, any value range (physical units are
            kept: interpolation is a weighted average with non-negative weights summing to 1).
        resolution: output side length, or ``(height, width)``.

    Returns:
        ``float32`` (or the input's floating dtype) tensor ``[..., C, height, width]``; the input itself
        (as float) when it already has that size.

    Example:
        >>> x = torch.tensor([[[0.0, 10.0], [20.0, 30.0]]])
        >>> resize_image(x, 4)
        tensor([[[ 0.0000,  2.5000,  7.5000, 10.0000],
                 [ 5.0000,  7.5000, 12.5000, 15.0000],
                 [15.0000, 17.5000, 22.5000, 25.0000],
                 [20.0000, 22.5000, 27.5000, 30.0000]]])
        >>> y = resize_image(torch.full((1, 512, 512), -1000.0), 256)  # the paper's 512 -> 256
        >>> y.shape, round(y.mean().item(), 3)
        (torch.Size([1, 256, 256]), -1000.0)
        >>> resize_image(x, (2, 2)) is x
        True
    """
    height, width = as_size(resolution)
    if not image.is_floating_point():
        image = image.to(torch.float32)
    if tuple(image.shape[-2:]) == (height, width):
        return image
    batch, squeeze = _as_batch(image, "image")
    shrinking = height < batch.shape[-2] or width < batch.shape[-1]
    out = F.interpolate(
        batch, size=(height, width), mode="bilinear", align_corners=False, antialias=shrinking
    )
    return out[0] if squeeze else out


def resize_mask(mask: torch.Tensor, resolution: int | tuple[int, int]) -> torch.Tensor:
    """Nearest-neighbour resize (``"nearest-exact"``) of a mask, returned as ``float32`` values in {0, 1}.

    Args:
        mask: ``[C, H, W]`` or ``[B, C, H, W]``; any dtype, non-zero means inside.
        resolution: output side length, or ``(height, width)``.

    Returns:
        ``float32`` tensor ``[..., C, height, width]`` with values in {0, 1}.

    Example:
        >>> m = torch.tensor([[[0, 0, 1, 1], [0, 0, 1, 1], [0, 0, 1, 1], [0, 0, 1, 1]]])
        >>> resize_mask(m, 2)
        tensor([[[0., 1.],
                 [0., 1.]]])
    """
    height, width = as_size(resolution)
    binary = (mask != 0).to(torch.float32)
    if tuple(binary.shape[-2:]) == (height, width):
        return binary
    batch, squeeze = _as_batch(binary, "mask")
    out = F.interpolate(batch, size=(height, width), mode="nearest-exact")
    return out[0] if squeeze else out
