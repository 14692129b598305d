"""The walk as a public object: the transform is a thin layer over it, and its properties hold alone."""

from __future__ import annotations

import pytest
import torch

from latent_transforms import LatentAugment, LatentAugmentConfig, LatentWalk
from latent_transforms.errors import ConfigError
from latent_transforms.objectives.walk import check_latents, single_sample_mbstd
from tests.transforms.conftest import TinySetup, make_tiny_setup


@pytest.fixture
def tiny(tmp_path) -> TinySetup:
    return make_tiny_setup(tmp_path)


def test_the_transform_is_the_walk_on_looked_up_latents(tiny: TinySetup) -> None:
    t = LatentAugment(tiny.bundle, tiny.cache, tiny.stats, p=1.0, value_range="generator", seed=0, steps=3)
    x = tiny.images[:3]
    out, w = t.augment(x, generator=torch.Generator().manual_seed(5), return_latents=True)
    walk = LatentWalk(tiny.bundle, tiny.stats, t.hyperparameters)
    positions = t.draw_params(3, torch.Generator().manual_seed(5))["positions"]
    alone, w_alone = walk.run(tiny.w[:3], positions)
    assert torch.equal(alone, out) and torch.equal(w_alone, w)
    assert t.walk("cpu") is t.walk(torch.device("cpu"))  # one walk per device


def test_the_discriminator_group_is_one_sample_only_around_the_walk(tiny: TinySetup) -> None:
    D = tiny.bundle.discriminator
    before = D.b4.mbstd.group_size
    walk = LatentWalk(tiny.bundle, tiny.stats, LatentAugmentConfig(steps=2))
    seen: list[int] = []
    D.register_forward_hook(lambda *_: seen.append(D.b4.mbstd.group_size))
    walk.optimize(tiny.w[:2], torch.zeros(2, 2, dtype=torch.long))
    assert seen == [1, 1] and D.b4.mbstd.group_size == before
    with single_sample_mbstd(None):  # no discriminator: nothing to set
        pass


def test_without_an_active_term_the_walk_takes_no_step(tiny: TinySetup) -> None:
    walk = LatentWalk(
        tiny.bundle, None, LatentAugmentConfig(alpha_f=0, alpha_pix=0, alpha_perc=0, alpha_lat=0)
    )
    assert not walk.active and torch.equal(walk.optimize(tiny.w[:2]), tiny.w[:2])
    with pytest.raises(ConfigError, match="latents"):
        check_latents(tiny.bundle, torch.zeros(2, 7), 2)
    with pytest.raises(ConfigError, match="compile_mode"):
        LatentWalk(tiny.bundle, None, LatentAugmentConfig(), compile_mode="fastest")
