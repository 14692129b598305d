"""Patch positions of the perceptual term: a regular grid of top-left corners covering the image, and the
grid positions inside the centre square the authors' code cut its patches from."""

from __future__ import annotations

import math

import torch

from latent_transforms.errors import ConfigError

__all__ = ["CENTRE_FRACTION", "RANGE_MARGIN", "centre_positions", "patch_grid"]

#: Images given to :meth:`DatasetStatsAccumulator.update` must lie in ``[-1, 1]`` up to this margin.
RANGE_MARGIN = 0.1
#: Side of the centre square, as a fraction of the image side, inside which the authors' code (Tronchin
#: et al. 2023) cut its perceptual patches: ``1/√2`` (181 px of 256).
CENTRE_FRACTION = 1.0 / math.sqrt(2.0)


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


def centre_positions(positions: torch.Tensor, resolution: int, patch_size: int) -> torch.Tensor:
    """Indices of the grid ``positions`` (``[n_pos, 2]`` top-left corners) whose ``patch_size`` patch lies
    inside the centre square of side ``resolution · CENTRE_FRACTION`` (``R/√2``).

    When no patch fits (patches wider than that square, e.g. one whole-image patch), the positions whose
    patch centre is nearest the image centre. Returns a ``[k]`` long tensor, ``k >= 1``, ascending.

    Example:
        >>> grid = patch_grid(256, 64, 32)  # 7 x 7 corners, 0 ... 192
        >>> grid[centre_positions(grid, 256, 64)].unique().tolist()  # inside the centre 181 px
        [64, 96, 128]
        >>> centre_positions(patch_grid(64, 64, 32), 64, 64).tolist()  # one whole-image patch
        [0]
    """
    side = resolution * CENTRE_FRACTION
    low, high = (resolution - side) / 2.0, (resolution + side) / 2.0
    corners = positions.to(torch.float64)
    inside = (corners >= low).all(dim=1) & (corners + patch_size <= high).all(dim=1)
    if bool(inside.any()):
        return inside.nonzero().flatten()
    offset = (corners + patch_size / 2.0 - resolution / 2.0).abs().amax(dim=1)
    return (offset == offset.min()).nonzero().flatten()
