"""Shared fixtures: tiny configurations that keep the whole suite fast on 2 CPU cores."""

from __future__ import annotations

import pytest
import torch
from hypothesis import settings

from latent_transforms import GanConfig

# Timing deadlines make property tests flaky on a loaded 2-core CI machine; correctness is what they pin.
settings.register_profile("latent-transforms", deadline=None, max_examples=50)
settings.load_profile("latent-transforms")


def tiny_config(resolution: int = 32, c_dim: int = 0, **overrides) -> GanConfig:
    """A 2-channel (mri, ct) StyleGAN2 small enough for CPU tests."""
    base = dict(
        resolution=resolution,
        z_dim=32,
        w_dim=32,
        c_dim=c_dim,
        channel_base=512,
        channel_max=64,
        mapping_layers=2,
        d_mapping_layers=2,
    )
    base.update(overrides)
    return GanConfig(**base)


@pytest.fixture
def config() -> GanConfig:
    return tiny_config()


@pytest.fixture
def seeded() -> torch.Generator:
    return torch.Generator().manual_seed(1234)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked ``cuda`` are skipped where no CUDA device is available."""
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)
