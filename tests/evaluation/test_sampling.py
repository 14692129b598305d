"""Policy samples: every sample augmented, seeded, sources cycled without repeats, keys followed."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from latent_transforms import LatentAugment, SG2Sample, StandardDA
from latent_transforms.errors import ConfigError
from latent_transforms.evaluation.sampling import augment_all, generate_samples, iter_samples
from tests.transforms.conftest import make_tiny_setup


def test_augment_all_ignores_p_and_keeps_shape_and_range() -> None:
    x = torch.rand(4, 2, 16, 16) * 2 - 1
    out = augment_all(StandardDA(p=0.0), x, generator=torch.Generator().manual_seed(0))
    assert out.shape == x.shape and out.dtype == torch.float32
    assert out.min() >= -1 and out.max() <= 1
    assert all(bool((o != i).any()) for o, i in zip(out, x, strict=True))


def test_sg2sample_samples_are_seeded_and_independent_of_batch_size(tmp_path: Path) -> None:
    setup = make_tiny_setup(tmp_path, n=4)
    policy = SG2Sample(setup.bundle, p=0.0)
    a = generate_samples(policy, 6, batch_size=6, seed=3)
    b = generate_samples(policy, 6, batch_size=6, seed=3)
    c = generate_samples(policy, 6, batch_size=6, seed=4)
    assert a.shape == (6, 2, 16, 16) and torch.equal(a, b) and not torch.equal(a, c)
    assert a.min() >= -1 and a.max() <= 1


def test_sources_are_each_used_once_before_any_repeats() -> None:
    class Identity(StandardDA):
        def apply_batch(self, x, params, kind):  # type: ignore[no-untyped-def]
            return x

    sources = torch.arange(5, dtype=torch.float32).view(5, 1, 1, 1).expand(5, 1, 4, 4) / 10
    out = generate_samples(Identity(), 10, sources=sources, batch_size=3, seed=0)
    used = (out[:, 0, 0, 0] * 10).round().long().tolist()
    assert sorted(used[:5]) == [0, 1, 2, 3, 4] and sorted(used[5:]) == [0, 1, 2, 3, 4]
    assert [b.shape[0] for b in iter_samples(Identity(), 10, sources=sources, batch_size=3)] == [3, 3, 3, 1]


def test_latent_augment_samples_walk_from_the_cached_latents(tmp_path: Path) -> None:
    setup = make_tiny_setup(tmp_path, n=4)
    policy = LatentAugment(setup.bundle, setup.cache, setup.stats, perceptual=setup.perceptual, steps=2)
    out = generate_samples(policy, 6, sources=setup.images, batch_size=4, seed=0)
    again = generate_samples(policy, 6, sources=setup.images, batch_size=4, seed=0)
    assert out.shape == (6, 2, 16, 16) and torch.equal(out, again)
    keys = [f"k{i}" for i in range(4)]
    with pytest.raises(ConfigError):  # keys the cache does not hold, and on_missing="raise"
        raising = LatentAugment(
            setup.bundle, setup.cache, setup.stats, perceptual=setup.perceptual, on_missing="raise", steps=1
        )
        generate_samples(raising, 2, sources=setup.images, source_keys=keys)


def test_transforming_policies_need_sources() -> None:
    with pytest.raises(ConfigError, match="sources"):
        generate_samples(StandardDA(), 2)
    with pytest.raises(ConfigError, match="n must be"):
        generate_samples(StandardDA(), 0, sources=torch.zeros(1, 1, 4, 4))
