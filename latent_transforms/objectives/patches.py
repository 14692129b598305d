"""Patch positions of the perceptual term: a regular grid of top-left corners covering the image."""

from __future__ import annotations

import torch

from latent_transforms.errors import ConfigError

__all__ = ["RANGE_MARGIN", "patch_grid"]

#: Images given to :meth:`DatasetStatsAccumulator.update` must lie in ``[-1, 1]`` up to this margin.
RANGE_MARGIN = 0.1


def patch_grid(resolution: int, patch_size: int, stride: int) -> torch.Tensor:
    """Top-left corners ``[n_pos, 2]`` (row, column) of patches on a regular grid, row-major.

    Along each axis the corners are ``range(0, resolution - patch_size + 1, stride)``, plus
    ``resolution - patch_size`` when the grid misses it, so the patches cover the whole image. With
    ``patch_size >= resolution`` the one position is ``(0, 0)`` (the patch is the whole image).

    Example:
        >>> patch_grid(16, 8, 4)[:, 1].tolist() == [0, 4, 8] * 3
        True
        >>> tuple(patch_grid(16, 8, 6).shape), patch_grid(16, 8, 6)[-1].tolist() == [8, 8]
        ((9, 2), True)
    """
    if resolution < 1 or patch_size < 1 or stride < 1:
        raise ConfigError(
            f"expected resolution, patch_size and stride >= 1, got {resolution}, {patch_size}, {stride}."
        )
    if patch_size >= resolution:
        return torch.zeros(1, 2, dtype=torch.long)
    starts = list(range(0, resolution - patch_size + 1, stride))
    if starts[-1] != resolution - patch_size:
        starts.append(resolution - patch_size)
    axis = torch.tensor(starts, dtype=torch.long)
    rows, cols = torch.meshgrid(axis, axis, indexing="ij")
    return torch.stack([rows.reshape(-1), cols.reshape(-1)], dim=1)
