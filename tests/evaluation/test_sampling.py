"""Policy samples: every sample augmented, seeded, sources cycled without repeats, keys followed."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from latent_transforms import GanBundle, GanConfig, LatentAugment, SG2Sample, StandardDA
from latent_transforms.errors import ConfigError
from latent_transforms.evaluation.sampling import augment_all, generate_samples, iter_samples
from latent_transforms.inversion.cache import LatentCache, image_key
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


# -- the classes of the samples over a class-conditional generator --------------------------------------
def _cgan() -> GanBundle:
    return GanBundle.random(GanConfig(resolution=16, channel_base=256, channel_max=32, c_dim=2), seed=0)


def test_labels_choose_each_samples_class_and_keep_the_draws_seeded() -> None:
    policy = SG2Sample(_cgan(), p=0.0)
    labels = torch.tensor([0, 1, 1, 0, 1])
    a = generate_samples(policy, 5, labels=labels, batch_size=2, seed=3)
    assert torch.equal(a, generate_samples(policy, 5, labels=labels, batch_size=2, seed=3))
    all0 = generate_samples(policy, 5, labels=torch.zeros(5, dtype=torch.long), batch_size=2, seed=3)
    all1 = generate_samples(policy, 5, labels=torch.ones(5, dtype=torch.long), batch_size=2, seed=3)
    assert not torch.equal(all0, all1)  # the class changes the image
    for i, c in enumerate(labels.tolist()):  # each sample is its class's image of the same draws
        assert torch.equal(a[i], (all1 if c else all0)[i])
    # the images of class 0 are the transform's own sample(..., labels=0) of the same seeded draws
    direct = policy.sample(5, 0, generator=torch.Generator().manual_seed(3), value_range="generator")
    assert torch.allclose(generate_samples(policy, 5, labels=0, batch_size=5, seed=3), direct.clamp(-1, 1))
    # without labels the classes are drawn (the draws stay those of the seed)
    drawn = generate_samples(policy, 5, batch_size=2, seed=3)
    assert torch.equal(drawn, generate_samples(policy, 5, batch_size=2, seed=3))


def test_labels_are_refused_where_they_cannot_choose_a_class(tmp_path: Path) -> None:
    setup = make_tiny_setup(tmp_path, n=2)
    with pytest.raises(ConfigError, match="cannot choose"):  # an unconditional generator
        generate_samples(SG2Sample(setup.bundle), 2, labels=torch.tensor([0, 1]))
    with pytest.raises(ConfigError, match="cannot choose"):  # fixed to one class
        generate_samples(SG2Sample(_cgan(), c=1), 2, labels=torch.tensor([0, 1]))
    with pytest.raises(ConfigError, match="3 entries for 2 images"):
        generate_samples(SG2Sample(_cgan()), 2, labels=torch.tensor([0, 1, 1]))
    with pytest.raises(ConfigError, match=r"in \[0, 2\)"):
        generate_samples(SG2Sample(_cgan()), 2, labels=torch.tensor([0, 2]))
    with pytest.raises(ConfigError, match="source_labels"):  # a transform of sources keeps their classes
        generate_samples(StandardDA(), 2, sources=setup.images, labels=torch.tensor([0, 1]))
    with pytest.raises(ConfigError, match="source_labels"):
        generate_samples(StandardDA(), 2, sources=setup.images, source_labels=torch.tensor([0, 1, 1]))
    # a transform that cannot choose classes ignores the sources' labels
    plain = generate_samples(StandardDA(), 3, sources=setup.images, seed=1)
    assert torch.equal(
        plain,
        generate_samples(StandardDA(), 3, sources=setup.images, source_labels=torch.tensor([1, 0]), seed=1),
    )


def test_latent_augment_over_a_conditional_gan_tells_its_discriminator_each_sources_class(
    tmp_path: Path,
) -> None:
    bundle = _cgan()
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        z = bundle.generator.sample_z(1, generator=g)
        w = bundle.generator.mapping(z, F.one_hot(torch.tensor([1]), 2).float())[:, 0]
        image = bundle.generator.synthesis(w[:, None].expand(-1, bundle.generator.num_ws, -1))
    image = (image.clamp(-1, 1) * 2**10).round() / 2**10
    cache = LatentCache(tmp_path / "cache", fingerprint=bundle.fingerprint, settings={"space": "w"})
    cache.put_batch([image_key(image[0])], w)
    cache.flush()
    policy = LatentAugment(bundle, cache, None, alpha_pix=0, alpha_perc=0, alpha_lat=0, alpha_f=1.0, steps=3)
    with pytest.raises(ConfigError, match="conditional"):  # the fidelity term needs the class
        generate_samples(policy, 2, sources=image)
    out = generate_samples(policy, 2, sources=image, source_labels=torch.tensor([1]), batch_size=2)
    one_hot = F.one_hot(torch.tensor([1, 1]), 2).float()
    expected = policy.augment(image.expand(2, -1, -1, -1), c=one_hot)
    assert torch.allclose(out, expected.clamp(-1, 1), atol=1e-6)
    other = policy.augment(image.expand(2, -1, -1, -1), c=1 - one_hot)
    assert not torch.allclose(out, other.clamp(-1, 1), atol=1e-6)  # the class reached the discriminator


def test_apply_with_labels_is_the_transforms_call_with_each_images_class(tmp_path: Path) -> None:
    from latent_transforms.evaluation.sampling import apply_with_labels

    bundle = _cgan()
    g = torch.Generator().manual_seed(2)
    with torch.no_grad():
        z = bundle.generator.sample_z(2, generator=g)
        w = bundle.generator.mapping(z, F.one_hot(torch.tensor([0, 1]), 2).float())[:, 0]
        images = bundle.generator.synthesis(w[:, None].expand(-1, bundle.generator.num_ws, -1))
    images = (images.clamp(-1, 1) * 2**10).round() / 2**10
    cache = LatentCache(tmp_path / "cache", fingerprint=bundle.fingerprint, settings={"space": "w"})
    cache.put_batch([image_key(x) for x in images], w)
    cache.flush()
    policy = LatentAugment(
        bundle, cache, None, alpha_pix=0, alpha_perc=0, alpha_lat=0, alpha_f=1.0, steps=3,
        p=1.0, value_range="generator", seed=0,
    )  # fmt: skip
    with pytest.raises(ConfigError, match="conditional"):  # a plain call tells no class
        policy(images)
    labels = torch.tensor([1, 0])
    out = apply_with_labels(policy, images, labels)
    expected = policy.augment(images, c=F.one_hot(labels, 2).float()).clamp(-1, 1)
    assert torch.allclose(out, expected, atol=1e-6)
    other = apply_with_labels(policy, images, 1 - labels)
    assert not torch.allclose(out, other, atol=1e-6)  # the class reached the discriminator
    # a transform that cannot use classes is just called: the same draws as transform(images)
    x = torch.rand(3, 2, 16, 16, generator=g) * 2 - 1
    assert torch.equal(
        apply_with_labels(StandardDA(p=0.5, seed=4), x, torch.tensor([0, 1, 0])), StandardDA(p=0.5, seed=4)(x)
    )
