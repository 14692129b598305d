"""The translation grid of the report: MRI sources of split 0, their CycleGAN and DUIIT translations, and
real CT slices of held-out CT patients for comparison (other patients: the study is unpaired)."""

from __future__ import annotations

from pathlib import Path

import torch

from latent_transforms.networks import labelled_grid
from latent_transforms.translation import load_translator

from .config import StudyConfig
from .data import make_split

METHODS = {"cyclegan": "CycleGAN", "duiit": "DUIIT"}


def evenly(images: torch.Tensor, n: int) -> torch.Tensor:
    """``n`` images spread over the set (several patients, not the first patient's slices)."""
    pick = torch.linspace(0, len(images) - 1, min(n, len(images))).round().long()
    return images[pick]


def translation_grid(config: StudyConfig, path: str | Path, *, n: int = 8) -> Path | None:
    """Write the grid to ``path`` (PNG) from split 0's translators; ``None`` when they are not trained."""
    folders = {m: Path(config.out) / "split-0" / m / "bundle" for m in METHODS}
    if not all(f.is_dir() for f in folders.values()):
        return None
    split = make_split(config, 0)
    sources = evenly(split.mri.images, n)
    rows = [("MRI (source)", sources)]
    for method, folder in folders.items():
        rows.append((f"{METHODS[method]} -> CT", load_translator(folder).translate(sources)))
    rows.append(("real CT (other patients)", evenly(split.ct_test.images, n)))
    # [N, 1, H, W] in [-1, 1] -> grayscale tiles [N, H, W] in [0, 1]
    return labelled_grid([(name, (x[:, 0].clamp(-1, 1) + 1) / 2) for name, x in rows], path, scale=3)
