"""Fixtures for the tuning tests: a tiny random GAN whose "real" images have known latents.

The real set is ``G(w_j)`` clamped to ``[-1, 1]`` for latents of the generator itself; the latent cache
holds those ``w_j`` (no projector runs) and the statistics use the small random perceptual network.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from latent_transforms import DatasetStats, GanBundle, GanConfig, LatentCache, image_key
from latent_transforms.features.perceptual import perceptual_network
from latent_transforms.tuning.objectives import Objective


@dataclass
class TinyTuningSetup:
    bundle: GanBundle
    reference: torch.Tensor  # [N, 2, 16, 16] in [-1, 1], not in the cache
    sources: torch.Tensor  # [S, 2, 16, 16] in [-1, 1], latents in the cache
    cache: LatentCache
    stats: DatasetStats


def _images(bundle: GanBundle, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        w = bundle.generator.mapping(bundle.generator.sample_z(n, generator=g), None)[:, 0]
        images = bundle.generator.synthesis(w[:, None].expand(-1, bundle.generator.num_ws, -1))
    return images.clamp(-1, 1), w


@pytest.fixture
def tiny(tmp_path: Path) -> TinyTuningSetup:
    bundle = GanBundle.random(GanConfig(resolution=16, channel_base=256, channel_max=32), seed=0)
    sources, w = _images(bundle, 8, seed=1)
    reference, _ = _images(bundle, 12, seed=2)
    cache = LatentCache(tmp_path / "cache", fingerprint=bundle.fingerprint, settings={"space": "w"})
    cache.put_batch([image_key(x) for x in sources], w)
    cache.flush()
    stats = DatasetStats.compute(
        [(sources, w)], perceptual=perceptual_network("random"), patch_size=8, progress=False
    )
    return TinyTuningSetup(bundle, reference, sources, cache, stats)


class SyntheticObjective(Objective):
    """``10 * alpha_f - lr + 0.01 * (steps == 9)``: cheap, deterministic, maximised; counts its calls."""

    name = "synthetic"
    direction = "maximize"

    def __init__(self) -> None:
        self.calls: list[dict] = []

    def evaluate(self, params):
        self.calls.append(dict(params))
        return 10 * params["alpha_f"] - params["lr"] + 0.01 * (params["steps"] == 9), {
            "calls": len(self.calls)
        }
