"""SG2Sample: random GAN samples in place of real ones, seeded on the CPU, in the caller's range."""

from __future__ import annotations

import copy
import dataclasses
import pickle

import pytest
import torch
from hypothesis import given, settings, strategies as st

from latent_transforms import ConfigError, GanBundle
from latent_transforms.transforms.base import from_working_range
from latent_transforms.transforms.sg2sample import SG2Sample, noise_resolutions

from .conftest import assert_shape_dtype_device_and_range, tiny_gan_config

GAN_EXAMPLES = settings(max_examples=10, deadline=None)


@pytest.fixture(scope="module")
def bundle() -> GanBundle:
    return GanBundle.random(tiny_gan_config(), seed=0)


def real(n: int = 3, seed: int = 0) -> torch.Tensor:
    """Images in [-1, 1] (what the transform replaces; their content does not matter)."""
    return torch.rand(n, 2, 16, 16, generator=torch.Generator().manual_seed(seed)) * 2 - 1


@GAN_EXAMPLES
@given(
    value_range=st.sampled_from(["physical", "unit", "generator", "uint8"]),
    batch=st.integers(1, 4),
    batched=st.booleans(),
    p=st.sampled_from([0.0, 0.5, 1.0]),
    seed=st.integers(0, 2**31),
)
def test_shape_dtype_device_and_range_are_kept(bundle, value_range, batch, batched, p, seed):
    vr = "physical" if value_range == "uint8" else value_range
    t = SG2Sample(bundle, p=p, value_range=vr, seed=seed)
    like = torch.zeros(1, dtype=torch.uint8) if value_range == "uint8" else real(1)
    x = from_working_range(real(batch, seed % 7), like, vr, t.windows())
    x = x if batched else x[0]
    out = t(x)
    assert_shape_dtype_device_and_range(t, x, out, value_range, p)
    if p == 1:
        changed = (out != x).flatten(1).any(1) if batched else (out != x).any()[None]
        assert bool(changed.all())
    again = SG2Sample(bundle, p=p, value_range=vr, seed=seed)(x)
    assert torch.equal(again, out)  # seeded: bit-identical


def test_replaced_samples_are_the_images_of_the_drawn_latents(bundle):
    t = SG2Sample(bundle, p=0.5, value_range="generator", seed=4)
    x = real(8)
    out = t(x)
    params = t.last_params
    chosen = params["apply"]
    assert 0 < int(chosen.sum()) < 8
    assert torch.equal(out[~chosen], x[~chosen])
    with torch.no_grad():
        expected = bundle.generator(params["z"][chosen], noise_mode="const").clamp(-1, 1)
    torch.testing.assert_close(out[chosen], expected)
    # a sample's image depends on its own z only, not on the rest of the batch
    alone = t.render({"z": params["z"][chosen][:1]})
    torch.testing.assert_close(alone[0].clamp(-1, 1), expected[0], rtol=1e-5, atol=1e-5)


def test_truncation_psi_zero_gives_g_of_w_avg(bundle):
    t = SG2Sample(bundle, truncation_psi=0.0, value_range="generator", seed=0)
    pool = t.sample(4)
    assert torch.equal(pool, pool[:1].expand_as(pool))
    G = bundle.generator
    with torch.no_grad():
        avg = G.synthesis(G.mapping.w_avg.expand(1, G.num_ws, -1), noise_mode="const").clamp(-1, 1)
    torch.testing.assert_close(pool[:1], avg)
    half = SG2Sample(bundle, truncation_psi=0.5, truncation_cutoff=2, value_range="generator", seed=0).sample(
        4
    )
    assert not torch.equal(half, pool) and not torch.equal(half[0], half[1])


def test_sample_shapes_and_ranges(bundle):
    t = SG2Sample(bundle, seed=0)
    physical = t.sample(6)
    assert physical.shape == (6, 2, 16, 16) and physical.dtype == torch.float32
    for c, window in enumerate(t.windows()):
        assert physical[:, c].min() >= window.low and physical[:, c].max() <= window.high
    assert physical[:, 1].max() > 1.0  # CT in HU, not [-1, 1]
    unit = t.sample(2, value_range="unit", generator=torch.Generator().manual_seed(1))
    assert unit.min() >= 0 and unit.max() <= 1
    gen = t.sample(2, value_range="generator", generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(unit * 2 - 1, gen)
    with pytest.raises(ConfigError, match="n must be"):
        t.sample(0)
    with pytest.raises(ConfigError, match="value_range"):
        t.sample(2, value_range="hu")


def test_samples_and_renders_are_contiguous_whatever_layout_the_generator_runs_in(bundle):
    # The generator may run channels_last (its "auto" setting on the CPU); what comes out is plain.
    bundle.generator.channels_last = True
    try:
        t = SG2Sample(bundle, seed=0)
        assert t.sample(3).is_contiguous() and t.sample(3).view(-1).numel() == 3 * 2 * 16 * 16
        assert t.render(t.draw_params(2, torch.Generator().manual_seed(0))).is_contiguous()
        out = SG2Sample(bundle, p=1.0, value_range="generator", seed=0)(real())
        assert out.is_contiguous() and out.view(-1).numel() == real().numel()
    finally:
        bundle.generator.channels_last = "auto"


def test_random_noise_is_drawn_from_the_transform_generator(bundle):
    noisy_gan = copy.deepcopy(bundle)
    with torch.no_grad():
        for layer in noisy_gan.generator.synthesis.noise_layers():
            layer.noise_strength.fill_(0.5)  # a random GAN starts with noise strength 0
    assert [layer.resolution for layer in bundle.generator.synthesis.noise_layers()] == noise_resolutions(
        bundle.config
    )
    noisy = SG2Sample(noisy_gan, noise_mode="random", value_range="generator", seed=2)
    params = noisy.draw_params(3, torch.Generator().manual_seed(0))
    assert params["noise"].shape == (3, sum(r * r for r in noise_resolutions(bundle.config)))
    a = noisy.sample(3)
    assert torch.equal(
        a, SG2Sample(noisy_gan, noise_mode="random", value_range="generator", seed=2).sample(3)
    )
    const = SG2Sample(noisy_gan, value_range="generator", seed=2).sample(3)
    none = SG2Sample(noisy_gan, noise_mode="none", value_range="generator", seed=2).sample(3)
    assert not torch.allclose(a, const) and not torch.allclose(none, const) and not torch.allclose(a, none)
    with pytest.raises(ConfigError, match="noise_mode"):
        SG2Sample(bundle, noise_mode="fresh")


def test_conditional_bundle_draws_or_takes_labels():
    cond = GanBundle.random(dataclasses.replace(tiny_gan_config(), c_dim=3), seed=1)
    t = SG2Sample(cond, value_range="generator", seed=0)
    params = t.draw_params(5, torch.Generator().manual_seed(0))
    assert params["labels"].shape == (5,) and int(params["labels"].max()) < 3
    assert t.sample(5).shape == (5, 2, 16, 16)
    fixed = SG2Sample(cond, c=2, value_range="generator", seed=0)
    vector = SG2Sample(cond, c=[0.0, 0.0, 1.0], value_range="generator", seed=0)
    assert "labels" not in fixed.draw_params(2, torch.Generator())
    torch.testing.assert_close(fixed.sample(3), vector.sample(3))
    with pytest.raises(ConfigError, match="class index"):
        SG2Sample(cond, c=3)
    with pytest.raises(ConfigError, match="unconditional"):
        SG2Sample(GanBundle.random(tiny_gan_config()), c=1)


def test_wrong_inputs_are_refused(bundle):
    t = SG2Sample(bundle, p=1.0, seed=0)
    with pytest.raises(ConfigError, match="expects 2 channels"):
        t(torch.zeros(2, 1, 16, 16))
    with pytest.raises(ConfigError, match="16 x 16"):
        t(torch.zeros(2, 2, 8, 8))
    with pytest.raises(ConfigError, match="truncation_psi"):
        SG2Sample(bundle, truncation_psi=float("nan"))
    with pytest.raises(ConfigError, match="p must be"):
        SG2Sample(bundle, p=1.5)


def test_pickles_with_a_source_string_without_the_model(bundle, tmp_path):
    folder = bundle.save_pretrained(tmp_path / "gan", w_stats_samples=64)
    t = SG2Sample(str(folder), p=1.0, value_range="generator", seed=0)
    assert repr(t).startswith(f"SG2Sample(gan={str(folder)!r}, truncation_psi=1.0")
    x = real(2)
    out = t(x)
    torch.testing.assert_close(out, SG2Sample(bundle, p=1.0, value_range="generator", seed=0)(x))
    blob = pickle.dumps(t)
    assert len(blob) < 20_000, len(blob)
    clone = pickle.loads(blob)
    assert not clone._gan.loaded
    assert torch.equal(clone.set_random_state(0)(x), out)


def test_state_dict_is_empty_and_repr_is_one_line(bundle):
    t = SG2Sample(bundle, truncation_psi=0.7, seed=5)
    t(from_working_range(real(1), real(1), "physical", t.windows()))
    assert t.state_dict() == {} and list(t.children()) == []
    assert repr(t) == (
        "SG2Sample(gan=GanBundle(resolution=16, modalities=['mri', 'ct']), truncation_psi=0.7, "
        "truncation_cutoff=None, c=None, noise_mode='const', p=0.3, precision='fp32', "
        "value_range='physical', device=None, seed=5)"
    )


@pytest.mark.cuda
def test_cuda_output_matches_cpu(bundle):
    x = real(3)
    cpu = SG2Sample(bundle, p=1.0, value_range="generator", seed=0)(x)
    gpu = SG2Sample(bundle, p=1.0, value_range="generator", seed=0)(x.cuda())
    assert gpu.device.type == "cuda"
    torch.testing.assert_close(gpu.cpu(), cpu, rtol=1e-3, atol=1e-3)
    assert bundle.device.type == "cpu"
