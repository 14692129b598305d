"""Fixtures for the transform tests: a tiny GAN whose "real" images have exactly known latents.

The real set is ``G(w_j)`` (clamped to ``[-1, 1]`` and put on a 2⁻¹⁰ grid so content keys survive a round
trip through physical units) for latents ``w_j`` of the tiny random generator itself; the latent cache
holds those ``w_j`` as the "inverted" latents, so no projector has to run.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from latent_transforms import DatasetStats, GanBundle, GanConfig, LatentCache, image_key
from latent_transforms.features.perceptual import PerceptualNetwork, perceptual_network


def tiny_gan_config(resolution: int = 16) -> GanConfig:
    """A 2-channel (mri, ct) GAN of a few thousand parameters: milliseconds per forward on CPU."""
    return GanConfig(
        resolution=resolution,
        z_dim=16,
        w_dim=16,
        channel_base=256,
        channel_max=32,
        mapping_layers=2,
        d_mapping_layers=2,
    )


@dataclass
class TinySetup:
    """A GAN bundle, its real set (``images`` in [-1, 1], their latents ``w``), the cache and statistics."""

    bundle: GanBundle
    images: torch.Tensor  # [N, 2, R, R] in [-1, 1]
    w: torch.Tensor  # [N, w_dim], the latents the images were rendered from
    cache: LatentCache
    stats: DatasetStats
    perceptual: PerceptualNetwork
    folder: Path

    def physical(self, images: torch.Tensor | None = None) -> torch.Tensor:
        """The images in physical units (the bundle's windows: MRI 0-1900, CT -1000-2000 HU)."""
        return self.bundle.denormalize(self.images if images is None else images)


def make_tiny_setup(folder: Path, n: int = 8, resolution: int = 16, seed: int = 0) -> TinySetup:
    bundle = GanBundle.random(tiny_gan_config(resolution), seed=seed)
    bundle.compute_w_stats(2000, seed=seed)
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        w = bundle.generator.mapping(bundle.generator.sample_z(n, generator=g), None)[:, 0]
        images = bundle.generator.synthesis(w[:, None].expand(-1, bundle.generator.num_ws, -1))
    # Round-tripping through physical units must not move the content keys: quantise to the key grid.
    images = (images.clamp(-1, 1) * 2**10).round() / 2**10
    cache = LatentCache(folder / "cache", fingerprint=bundle.fingerprint, settings={"space": "w"})
    cache.put_batch([image_key(x) for x in images], w)
    cache.flush()
    perceptual = perceptual_network("random")
    stats = DatasetStats.compute([(images, w)], perceptual=perceptual, patch_size=8, progress=False)
    stats.save(folder / "cache" / "stats.safetensors")
    return TinySetup(bundle, images, w, cache, stats, perceptual, folder / "cache")


@pytest.fixture
def tiny(tmp_path: Path) -> TinySetup:
    """A fresh :class:`TinySetup` (16 px, 8 real images) in a temporary folder."""
    return make_tiny_setup(tmp_path)


def assert_shape_dtype_device_and_range(
    t, x: torch.Tensor, out: torch.Tensor, value_range: str, p: float
) -> None:
    """The property every GAN transform keeps: shape, dtype and device of ``x``, ``out is x`` at ``p = 0``,
    and values inside the declared range (``value_range`` "unit", "generator", "physical" or "uint8")."""
    assert out.shape == x.shape and out.dtype == x.dtype and out.device == x.device
    if p == 0:
        assert out is x
    if value_range == "unit":
        assert out.min() >= 0 and out.max() <= 1
    elif value_range == "generator":
        assert out.min() >= -1 and out.max() <= 1
    elif value_range == "physical":
        for c, window in enumerate(t.windows()):
            assert out[..., c, :, :].min() >= window.low and out[..., c, :, :].max() <= window.high


def tiny_diffusion(c_dim: int = 0, resolution: int = 16, seed: int = 0):
    """A 2-channel (mri, ct) diffusion bundle (the GAN's windows) of a few thousand parameters, 20
    timesteps; its weights are nudged off MONAI's zero-initialised output layer so samples depend on the
    starting noise and on the class."""
    from latent_transforms import DiffusionBundle, DiffusionConfig

    config = DiffusionConfig(
        resolution=resolution,
        c_dim=c_dim,
        channels=(8, 16),
        attention_levels=(False, True),
        num_head_channels=8,
        norm_num_groups=8,
        timesteps=20,
    )
    bundle = DiffusionBundle.random(config, seed=seed)
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for p in bundle.unet.parameters():
            p.add_(torch.randn(p.shape, generator=g) * 0.05)
    return bundle
