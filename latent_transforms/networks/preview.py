"""Sample grids of a bundle as PNG: one row per modality, one column per sample."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torchvision.utils import make_grid, save_image

if TYPE_CHECKING:
    from latent_transforms.networks.bundle import GanBundle


def sample_grid(images: torch.Tensor, padding: int = 2) -> torch.Tensor:
    """Arrange ``images`` [N, C, H, W] in ``[-1, 1]`` as one grayscale grid in ``[0, 1]``, rows = channels."""
    n, c = images.shape[:2]
    tiles = images.detach().float().cpu().clamp(-1, 1).add(1).div(2)
    tiles = tiles.transpose(0, 1).reshape(c * n, 1, *images.shape[2:])
    return make_grid(tiles, nrow=n, padding=padding, pad_value=1.0)[:1]


def save_sample_grid(
    bundle: GanBundle, path: str | Path, *, n: int = 8, seed: int = 0, truncation_psi: float = 1.0
) -> Path:
    """Draw ``n`` samples (seeded) and save them as a PNG grid (rows = modalities)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    images = bundle.sample(n, seed=seed, truncation_psi=truncation_psi)
    save_image(sample_grid(images), path)
    return path


def labelled_grid(
    rows: Sequence[tuple[str, torch.Tensor]], path: str | Path, *, scale: int = 2, padding: int = 2
) -> Path:
    """Save rows of grayscale tiles as one PNG with each row's label written on its left.

    Args:
        rows: ``(label, tiles)`` pairs; ``tiles`` is ``[N, H, W]`` in ``[0, 1]`` (every row the same shape).
        path: the PNG to write (folders are created).
        scale: nearest-neighbour magnification of the tiles (small images are hard to see).
        padding: white pixels between tiles (before scaling).

    Example:
        >>> import tempfile, os
        >>> with tempfile.TemporaryDirectory() as d:
        ...     rows = [("real", torch.rand(3, 8, 8)), ("flip", torch.rand(3, 8, 8))]
        ...     p = labelled_grid(rows, f"{d}/g.png")
        ...     os.path.getsize(p) > 0
        True
    """
    from PIL import Image, ImageDraw

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    strips = [
        make_grid(
            t.detach().float().cpu().clamp(0, 1)[:, None], nrow=t.shape[0], padding=padding, pad_value=1.0
        )[0]
        for _, t in rows
    ]
    height, width = strips[0].shape
    label_width = 8 + 7 * max(len(label) for label, _ in rows)
    canvas = Image.new("L", (label_width + width * scale, height * scale * len(rows)), color=255)
    draw = ImageDraw.Draw(canvas)
    for i, ((label, _), strip) in enumerate(zip(rows, strips, strict=True)):
        tile = Image.fromarray((strip.numpy() * 255).round().astype("uint8"), mode="L")
        tile = tile.resize((width * scale, height * scale), Image.Resampling.NEAREST)
        top = i * height * scale
        canvas.paste(tile, (label_width, top))
        draw.text((4, top + height * scale // 2 - 5), label, fill=0)
    canvas.save(path)
    return path
