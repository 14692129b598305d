"""LatentAugment: the loss is Tronchin et al. 2023's exactly, a zero weight costs nothing, the output is the
optimised image, batches do not couple samples, and the transform contract (ranges, seeding, lookup,
errors) holds."""

from __future__ import annotations

import json
import pickle
import re
import warnings

import pytest
import torch
import torch.nn.functional as F
from hypothesis import HealthCheck, given, settings, strategies as st
from torch.utils.data import DataLoader, Dataset

from latent_transforms import CacheMismatchError, ConfigError, GanBundle, LatentCache, image_key
from latent_transforms.features.perceptual import PerceptualNetwork
from latent_transforms.objectives import walk as walk_module
from latent_transforms.transforms.base import from_working_range, to_working_range
from latent_transforms.transforms.dictionary import LatentAugmentd
from latent_transforms.transforms.latent_augment import PRESETS, LatentAugment, MissingLatentError

from .conftest import TinySetup, assert_shape_dtype_device_and_range, make_tiny_setup, tiny_gan_config

FAST = {"steps": 3}  # short walks where the number of steps does not matter
GAN_EXAMPLES = settings(
    max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def make(tiny: TinySetup, **kwargs) -> LatentAugment:
    options = {"p": 1.0, "value_range": "generator", "seed": 0}
    options.update(kwargs)
    return LatentAugment(tiny.bundle, tiny.cache, tiny.stats, **options)


def count_calls(module: torch.nn.Module) -> list[int]:
    calls = [0]

    def hook(*_: object) -> None:
        calls[0] += 1

    module.register_forward_hook(hook)
    return calls


# -- the loss, exactly -----------------------------------------------------------------------------------


def brute_terms(tiny: TinySetup, w: torch.Tensor, images: torch.Tensor, pos: torch.Tensor) -> dict:
    """Each term as the mean over the real set, pair by pair (no statistics)."""
    D, net, stats = tiny.bundle.discriminator, tiny.perceptual, tiny.stats
    fidelity = torch.cat([F.softplus(-D(x[None])).reshape(1) for x in images])
    pixel = torch.stack([((images - xj) ** 2).mean(dim=(1, 2, 3)) for xj in tiny.images]).mean(0)
    latent = torch.stack([((w - wj) ** 2).mean(dim=1) for wj in tiny.w]).mean(0)
    feats = net(stats.patch(images, pos))
    real = [
        PerceptualNetwork.distance(feats, net(stats.patch(xj[None].expand_as(images), pos))).mean(1)
        for xj in tiny.images
    ]
    return {"fidelity": fidelity, "pixel": pixel, "latent": latent, "perceptual": torch.stack(real).mean(0)}


def test_loss_terms_and_gradient_equal_the_brute_force_means(tiny):
    t = make(tiny)
    g = torch.Generator().manual_seed(3)
    w0 = tiny.w[:4] + 0.3 * torch.randn(4, 16, generator=g)
    pos = torch.tensor([0, 4, 8, 2])

    w = w0.clone().requires_grad_(True)
    terms = t.loss_terms(w, t.render(w), pos)
    assert set(terms) == {"fidelity", "pixel", "perceptual", "latent", "total"}
    (grad,) = torch.autograd.grad(terms["total"].sum(), w)

    wb = w0.clone().requires_grad_(True)
    brute = brute_terms(tiny, wb, t.render(wb), pos)
    for name, value in brute.items():
        torch.testing.assert_close(terms[name], value, rtol=1e-5, atol=1e-6, msg=name)
    total = (
        t.alpha_f * brute["fidelity"]
        - t.alpha_pix * brute["pixel"]
        - t.alpha_perc * brute["perceptual"]
        - t.alpha_lat * brute["latent"]
    )
    torch.testing.assert_close(terms["total"], total, rtol=1e-5, atol=1e-6)
    (grad_brute,) = torch.autograd.grad(total.sum(), wb)
    torch.testing.assert_close(grad, grad_brute, rtol=1e-4, atol=1e-6)
    assert grad.abs().sum() > 0


def test_w_plus_latents_follow_the_statistics(tiny):
    t = make(tiny, alpha_f=0, alpha_perc=0)
    w = tiny.w[:2, None].expand(-1, tiny.bundle.generator.num_ws, -1).clone()
    terms = t.loss_terms(w, t.render(w))
    brute = torch.stack([((w[:, 0] - wj) ** 2).mean(dim=1) for wj in tiny.w]).mean(0)
    torch.testing.assert_close(terms["latent"], brute, rtol=1e-5, atol=1e-6)
    out, w_tilde = t.augment(tiny.images[:2], w_star=w, return_latents=True)
    assert w_tilde.shape == w.shape and out.shape == (2, 2, 16, 16)


def test_walk_is_k_adam_steps_on_the_summed_loss(tiny):
    t = make(tiny, steps=4)
    gen = torch.Generator().manual_seed(7)
    _, w_tilde = t.augment(tiny.images[:3], generator=gen, return_latents=True)
    positions = torch.randint(tiny.stats.num_positions, (3, 4), generator=torch.Generator().manual_seed(7))
    w = tiny.w[:3].clone().requires_grad_(True)
    opt = torch.optim.Adam([w], lr=t.lr, betas=(0.9, 0.999))
    for k in range(4):
        total = t.loss_terms(w, t.render(w), positions[:, k])["total"]
        opt.zero_grad()
        total.sum().backward()
        opt.step()
    torch.testing.assert_close(w_tilde, w.detach(), rtol=1e-5, atol=1e-6)


# -- the authors' patch protocol (an option) ---------------------------------------------------------------


@pytest.fixture
def tiny32(tmp_path) -> TinySetup:
    """32 px images with 8 px patches every 4 px: 7 x 7 positions, 3 x 3 inside the centre square."""
    return make_tiny_setup(tmp_path / "32", resolution=32)


def centre_square(resolution: int) -> tuple[float, float]:
    side = resolution / 2**0.5  # R/√2: 181 px of 256, 22.6 px of 32
    return (resolution - side) / 2, (resolution + side) / 2


def test_the_authors_protocol_keeps_one_centre_position_for_the_k_steps(tiny32):
    stats = tiny32.stats
    low, high = centre_square(32)
    corners = stats.patch_positions
    inside = ((corners >= low) & (corners + stats.patch_size <= high)).all(dim=1).nonzero().flatten()
    assert corners[inside].unique().tolist() == [8, 12, 16]  # 9 positions
    authors = make(tiny32, patch_protocol="authors", steps=4)
    positions = authors.draw_params(300, torch.Generator().manual_seed(0))["positions"]
    assert positions.shape == (300, 4)
    assert bool((positions == positions[:, :1]).all())  # drawn once per walk, kept for every step
    assert set(positions[:, 0].tolist()) == set(inside.tolist())  # every centre position, no other
    ours = make(tiny32, steps=4).draw_params(300, torch.Generator().manual_seed(0))["positions"]
    assert bool((ours != ours[:, :1]).any(dim=1).all())  # the default: a new position each step
    assert len(set(ours.flatten().tolist())) == stats.num_positions  # anywhere on the grid


def brute_pool_perceptual(tiny: TinySetup, images: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
    """The authors' real side, pair by pair: the synthetic patch at ``pos`` against every real image's
    patch at every grid position inside the centre square (the pool their random bank samples)."""
    net, stats = tiny.perceptual, tiny.stats
    low, high = centre_square(stats.resolution)
    corners = stats.patch_positions
    pool = ((corners >= low) & (corners + stats.patch_size <= high)).all(dim=1).nonzero().flatten()
    feats = net(stats.patch(images, pos))
    pairs = [
        PerceptualNetwork.distance(feats, net(stats.patch(xj[None].expand_as(images), q.expand(len(images)))))
        for xj in tiny.images
        for q in pool
    ]
    return torch.stack(pairs).mean(0).mean(1)


def test_the_authors_protocol_compares_with_the_centre_pool_and_changes_nothing_else(tiny32):
    g = torch.Generator().manual_seed(3)
    w0 = tiny32.w[:3] + 0.3 * torch.randn(3, 16, generator=g)
    pos = tiny32.stats.centre_positions()[torch.tensor([0, 4, 8])]
    authors, ours = make(tiny32, patch_protocol="authors"), make(tiny32)
    w = w0.clone().requires_grad_(True)
    terms = authors.loss_terms(w, authors.render(w), pos)
    (grad,) = torch.autograd.grad(terms["total"].sum(), w)

    wb = w0.clone().requires_grad_(True)
    images = authors.render(wb)
    brute = brute_terms(tiny32, wb, images, pos)
    brute["perceptual"] = brute_pool_perceptual(tiny32, images, pos)  # only this term changes
    for name, value in brute.items():
        torch.testing.assert_close(terms[name], value, rtol=1e-5, atol=1e-6, msg=name)
    same_position = ours.loss_terms(w0, ours.render(w0), pos)
    for name in ("fidelity", "pixel", "latent"):  # bit for bit what the default gives
        assert torch.equal(terms[name].detach(), same_position[name]), name
    assert not torch.allclose(terms["perceptual"].detach(), same_position["perceptual"])
    total = (
        authors.alpha_f * brute["fidelity"]
        - authors.alpha_pix * brute["pixel"]
        - authors.alpha_perc * brute["perceptual"]
        - authors.alpha_lat * brute["latent"]
    )
    (grad_brute,) = torch.autograd.grad(total.sum(), wb)
    torch.testing.assert_close(grad, grad_brute, rtol=1e-4, atol=1e-6)


def test_the_authors_protocol_walk_is_k_adam_steps_at_one_position(tiny32):
    t = make(tiny32, patch_protocol="authors", steps=3)
    _, w_tilde = t.augment(tiny32.images[:2], generator=torch.Generator().manual_seed(7), return_latents=True)
    positions = t.draw_params(2, torch.Generator().manual_seed(7))["positions"]
    w = tiny32.w[:2].clone().requires_grad_(True)
    opt = torch.optim.Adam([w], lr=t.lr, betas=(0.9, 0.999))
    for k in range(3):
        total = t.loss_terms(w, t.render(w), positions[:, k])["total"]
        opt.zero_grad()
        total.sum().backward()
        opt.step()
    torch.testing.assert_close(w_tilde, w.detach(), rtol=1e-5, atol=1e-6)
    assert "patch_protocol='authors'" in repr(t) and t.config()["patch_protocol"] == "authors"


# -- a zero weight costs nothing -------------------------------------------------------------------------


def test_each_active_term_runs_once_per_step_for_the_whole_batch(tiny):
    t = make(tiny, steps=5, perceptual=tiny.perceptual)
    d_calls = count_calls(tiny.bundle.discriminator)
    p_calls = count_calls(tiny.perceptual)
    g_calls = count_calls(tiny.bundle.generator.synthesis)
    t(tiny.images[:4])
    assert (d_calls[0], p_calls[0], g_calls[0]) == (5, 5, 6)  # 5 steps, then render G(w̃) once


def test_zero_weights_skip_their_networks(tiny, monkeypatch):
    def no_network(*args: object, **kwargs: object) -> None:
        raise AssertionError("the perceptual network must not be built when alpha_perc = 0")

    monkeypatch.setattr(walk_module, "perceptual_network", no_network)
    d_calls = count_calls(tiny.bundle.discriminator)
    t = make(tiny, alpha_f=0, alpha_perc=0)
    out = t(tiny.images[:3])
    assert d_calls[0] == 0
    assert not torch.equal(out, tiny.images[:3])
    assert "positions" not in t.last_params

    p_calls = count_calls(tiny.perceptual)
    make(tiny, alpha_perc=0, perceptual=tiny.perceptual)(tiny.images[:2])
    assert p_calls[0] == 0 and d_calls[0] == t.steps


def test_all_weights_zero_takes_no_step_and_returns_g_of_w_star(tiny):
    t = make(tiny, alpha_f=0, alpha_pix=0, alpha_perc=0, alpha_lat=0)
    g_calls = count_calls(tiny.bundle.generator.synthesis)
    d_calls = count_calls(tiny.bundle.discriminator)
    out, w = t.augment(tiny.images[:3], return_latents=True)
    assert g_calls[0] == 1 and d_calls[0] == 0
    assert torch.equal(w, tiny.w[:3])
    assert torch.equal(out, t.render(tiny.w[:3]))


# -- the output is the optimised image -------------------------------------------------------------------


def test_output_is_the_image_of_the_final_latent(tiny):
    t = make(tiny)
    out, w_tilde = t.augment(tiny.images[:4], return_latents=True)
    with torch.no_grad():
        again = tiny.bundle.generator.synthesis(w_tilde[:, None].expand(-1, 6, -1), noise_mode="const")
    assert torch.equal(out, again)
    assert not torch.allclose(out, t.render(tiny.w[:4]))
    # through the transform: the same image, clamped to the windows, in the caller's range
    t2 = make(tiny)
    y = t2(tiny.images[:4])
    assert torch.equal(y, t2.render(t2.last_latents).clamp(-1, 1))
    assert torch.equal(make(tiny).augment(tiny.images[:4]), out)  # seeded: bit-identical


def test_augment_and_render_keep_a_plain_layout_whatever_the_generator_runs_in(tiny):
    tiny.bundle.generator.channels_last = True  # what "auto" picks on some devices
    try:
        t = make(tiny)
        x = tiny.images[:3].contiguous()
        assert t.augment(x).is_contiguous() and t.render(tiny.w[:2]).is_contiguous()
        last = x.contiguous(memory_format=torch.channels_last)
        assert t.augment(last).is_contiguous(memory_format=torch.channels_last)
        assert make(tiny)(x).view(-1).numel() == x.numel()
    finally:
        tiny.bundle.generator.channels_last = "auto"


def test_batch_result_equals_per_sample_results(tiny):
    t = make(tiny)
    x = tiny.images  # 8 samples: the discriminator's minibatch-std groups of 4 would couple them
    params = t.params_for(x)
    batch = t.transform(x, params)
    for i in range(len(x)):
        one = {
            "apply": torch.tensor([True]),
            "batched": True,
            "batch": 1,
            "positions": params["positions"][i : i + 1],
        }
        alone = t.transform(x[i : i + 1], one)
        torch.testing.assert_close(alone[0], batch[i], rtol=1e-4, atol=1e-4)


# -- the transform contract ------------------------------------------------------------------------------


@pytest.fixture
def tiny_u8(tiny) -> TinySetup:
    """The tiny setup whose cache also holds the latents of the images as 8-bit round trips."""
    u8 = from_working_range(tiny.images, torch.zeros(1, dtype=torch.uint8), "physical", None)
    back = to_working_range(u8, "physical", None)
    tiny.cache.put_batch([image_key(x) for x in back], tiny.w)
    tiny.cache.flush()
    return tiny


@GAN_EXAMPLES
@given(
    value_range=st.sampled_from(["physical", "unit", "generator", "uint8"]),
    batch=st.integers(1, 3),
    batched=st.booleans(),
    p=st.sampled_from([0.0, 0.5, 1.0]),
)
def test_shape_dtype_device_and_range_are_kept(tiny_u8, value_range, batch, batched, p):
    tiny = tiny_u8
    vr = "physical" if value_range == "uint8" else value_range
    t = LatentAugment(tiny.bundle, tiny.cache, tiny.stats, p=p, value_range=vr, seed=1, **FAST)
    real = tiny.images[:batch]
    if value_range == "uint8":
        x = from_working_range(real, torch.zeros(1, dtype=torch.uint8), vr, None)
    else:
        x = from_working_range(real, real, vr, t.windows())
    x = x if batched else x[0]
    out = t(x)
    assert_shape_dtype_device_and_range(t, x, out, value_range, p)
    changed = (out != x).flatten(1).any(1) if batched else (out != x).any()[None]
    if p == 1:
        assert bool(changed.all())


@GAN_EXAMPLES
@given(seed=st.integers(0, 2**31), batch=st.integers(1, 4))
def test_seeded_runs_are_bit_identical(tiny, seed, batch):
    a = make(tiny, seed=seed, p=0.5, **FAST)(tiny.images[:batch])
    b = make(tiny, seed=seed, p=0.5, **FAST)(tiny.images[:batch])
    assert torch.equal(a, b)


@pytest.mark.cuda
def test_cuda_output_matches_cpu(tiny):
    x = tiny.images[:3]
    cpu = make(tiny)(x)
    gpu = make(tiny)(x.cuda())
    assert gpu.device.type == "cuda"
    torch.testing.assert_close(gpu.cpu(), cpu, rtol=1e-3, atol=1e-3)
    assert tiny.bundle.device.type == "cpu"  # the caller's bundle stays where it was
    half = make(tiny, precision="bf16")(x.cuda())
    assert half.dtype == torch.float32 and bool(torch.isfinite(half).all())


# -- hyper-parameters ------------------------------------------------------------------------------------


def test_presets_and_overrides(tiny):
    f1 = make(tiny, p=None)
    assert (f1.steps, f1.lr, f1.alpha_pix, f1.alpha_perc, f1.alpha_lat, f1.alpha_f, f1.p) == (
        9,
        0.01,
        0.1,
        10.0,
        0.001,
        0.01,
        0.2,
    )
    mae = LatentAugment.preset("mae", tiny.bundle, tiny.cache, tiny.stats, alpha_lat=0.5)
    assert (mae.alpha_pix, mae.alpha_perc, mae.alpha_lat, mae.alpha_f, mae.p, mae.steps, mae.lr) == (
        3.0,
        1.0,
        0.5,
        0.01,
        0.3,
        9,
        0.01,
    )
    assert (
        LatentAugment(tiny.bundle, tiny.cache, tiny.stats, preset="mae").alpha_lat
        == PRESETS["mae"]["alpha_lat"]
    )
    with pytest.raises(ConfigError, match="preset"):
        make(tiny, preset="fid")
    with pytest.raises(ConfigError, match="alpha_pix"):
        make(tiny, alpha_pix=-1)


def test_config_round_trip_through_json(tiny, tmp_path):
    t = make(tiny, preset="mae", steps=4, alpha_perc=0.5, projector={"steps": 20}, on_missing="raise")
    config = t.config()
    path = tmp_path / "best.json"
    path.write_text(json.dumps(config))
    again = LatentAugment.from_config(path, tiny.bundle, tiny.cache, tiny.stats)
    assert again.config() == config
    assert (again.steps, again.alpha_perc, again.alpha_pix, again.on_missing) == (4, 0.5, 3.0, "raise")
    assert LatentAugment.from_config(config, tiny.bundle, tiny.cache, tiny.stats, steps=2).steps == 2
    with pytest.raises(ConfigError, match="unknown"):
        LatentAugment.from_config({**config, "alpha_x": 1}, tiny.bundle, tiny.cache, tiny.stats)


def test_differentiable_output_reaches_the_final_latent(tiny):
    t = make(tiny, differentiable=True, **FAST)
    out = t(tiny.images[:3])
    assert out.grad_fn is not None
    out.square().mean().backward()
    w_tilde = t.last_latents
    assert w_tilde is not None and w_tilde.grad is not None and w_tilde.grad.abs().sum() > 0
    images, w = make(tiny, differentiable=True, **FAST).augment(tiny.images[:2], return_latents=True)
    assert w.requires_grad and images.requires_grad
    plain, w_plain = make(tiny, **FAST).augment(tiny.images[:2], return_latents=True)
    assert not plain.requires_grad and not w_plain.requires_grad
    torch.testing.assert_close(plain, images.detach())


def test_task_loss_steers_the_walk(tiny):
    def brighter(x: torch.Tensor) -> torch.Tensor:
        return -x.mean(dim=(1, 2, 3))

    plain = make(tiny).augment(tiny.images)
    steered = make(tiny, task_loss=brighter, alpha_task=10.0).augment(tiny.images)
    assert steered.mean() > plain.mean() + 0.05
    t = make(tiny, alpha_f=0, alpha_pix=0, alpha_perc=0, alpha_lat=0, task_loss=lambda x: -x.mean(), **FAST)
    assert t.augment(tiny.images[:2]).mean() > t.render(tiny.w[:2]).mean()  # a scalar task loss works too
    assert "task_loss=" in repr(t)


# -- latent lookup ---------------------------------------------------------------------------------------


def test_dataset_keys_find_the_latents(tiny, tmp_path):
    cache = LatentCache(tmp_path / "by-key", fingerprint=tiny.bundle.fingerprint)
    keys = [f"patient-{i}/slice-0" for i in range(len(tiny.w))]
    cache.put_batch(keys, tiny.w)
    cache.flush()
    t = LatentAugment(
        tiny.bundle, cache, tiny.stats, p=1.0, value_range="generator", seed=0, on_missing="raise"
    )
    x = torch.zeros(2, 2, 16, 16)  # content that no key matches: only the dataset keys can find w*
    params = t.params_for(x)
    params["keys"] = keys[:2]
    out = t.transform(x, params)
    reference = make(tiny).transform(tiny.images[:2], {**params, "keys": None})
    torch.testing.assert_close(out, reference)
    with pytest.raises(MissingLatentError, match="dataset key"):
        t.transform(x, {**params, "keys": ["nope", keys[0]]})


def test_missing_latents_are_inverted_once_with_a_warning(tiny, tmp_path):
    other = make_tiny_setup(tmp_path / "other", n=3, seed=5)  # images of another latent set
    x = other.images[:2]  # rendered by another generator: not in tiny's cache
    projector = {"steps": 3, "perceptual": None}
    t = make(tiny, projector=projector, **FAST)
    before = len(tiny.cache)
    with pytest.warns(RuntimeWarning, match="inverting them on the fly"):
        out = t(x)
    assert out.shape == x.shape
    assert len(tiny.cache) == before + 2 and all(image_key(xi) in tiny.cache for xi in x)  # stored
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        t(x)  # found now: no inversion, no warning

    read_only = LatentAugment(
        tiny.bundle, str(tiny.folder), p=1.0, value_range="generator", projector=projector
    )
    y = other.images[2:3]
    with pytest.warns(RuntimeWarning, match="on the fly"):
        read_only(y)
    assert image_key(y[0]) not in LatentCache.open(tiny.folder)  # read-only: kept in memory
    calls = count_calls(read_only.bundle.generator.synthesis)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        read_only(y)
    assert calls[0] == read_only.steps + 1  # the walk only: the latent came from memory


# The same pixel values in every dtype the transform takes: physical integers that int8, bfloat16 (exact
# integers up to 256) and float16 all hold exactly (MRI 0..127 in its 0-1900 window, CT -128..127 HU).
_DTYPES = [
    torch.float32,
    torch.float64,
    torch.float16,
    torch.bfloat16,
    torch.int8,
    torch.int16,
    torch.int32,
    torch.int64,
]


@pytest.mark.parametrize("dtype", _DTYPES, ids=lambda d: str(d).removeprefix("torch."))
def test_a_cached_image_is_found_by_content_whatever_its_dtype(tiny, tmp_path, dtype):
    g = torch.Generator().manual_seed(3)
    physical = torch.cat(
        [
            torch.randint(0, 128, (2, 1, 16, 16), generator=g),
            torch.randint(-128, 128, (2, 1, 16, 16), generator=g),
        ],
        dim=1,
    ).float()
    windows = tiny.bundle.config.modalities
    normalised = torch.cat([m.window.normalize(physical[:, i : i + 1]) for i, m in enumerate(windows)], dim=1)
    cache = LatentCache(tmp_path / "cache", fingerprint=tiny.bundle.fingerprint)
    cache.put_batch([image_key(x) for x in normalised], tiny.w[:2])  # keyed as `invert` keys
    cache.flush()
    t = LatentAugment(tiny.bundle, cache, tiny.stats, p=1.0, steps=0, seed=0, on_missing="raise")
    image = physical.to(dtype)
    assert torch.equal(image.double(), physical.double())  # the same pixel values
    out = t(image)  # no MissingLatentError: found, not inverted
    assert out.dtype == dtype and torch.equal(t.last_latents, tiny.w[:2])


def test_a_cached_uint8_image_is_found_by_its_8_bit_windowed_values(tiny, tmp_path):
    # uint8 is 8-bit windowed: 0 -> -1, 255 -> 1. The same image as floats in physical units, in [0, 1] or
    # in [-1, 1] (float64: holds v / 127.5 - 1 exactly enough) has the same normalised values: the same key.
    u8 = torch.randint(0, 256, (2, 2, 16, 16), generator=torch.Generator().manual_seed(4), dtype=torch.uint8)
    normalised = u8.float() / 127.5 - 1.0
    cache = LatentCache(tmp_path / "cache", fingerprint=tiny.bundle.fingerprint)
    cache.put_batch([image_key(x) for x in normalised], tiny.w[:2])
    cache.flush()
    for value_range, image in [
        ("physical", u8),
        ("physical", tiny.bundle.denormalize(normalised)),
        ("unit", u8.float() / 255.0),
        ("generator", normalised.double()),
    ]:
        t = LatentAugment(
            tiny.bundle,
            cache,
            tiny.stats,
            p=1.0,
            steps=0,
            seed=0,
            on_missing="raise",
            value_range=value_range,
        )
        t(image)
        assert torch.equal(t.last_latents, tiny.w[:2]), (value_range, image.dtype)


def test_a_cache_folder_without_a_cache_fails_at_construction(tiny, tmp_path):
    from latent_transforms.errors import CacheNotFoundError

    missing = tmp_path / "missing" / "folder"
    with pytest.raises(CacheNotFoundError, match=r"does not exist.*latent-transforms invert") as info:
        LatentAugment("builtin:pelvis-phantom-64", str(missing))  # a lazy GAN: nothing else is loaded
    assert str(missing) in str(info.value) and "cache=None" in str(info.value)
    (tmp_path / "empty").mkdir()
    with pytest.raises(CacheNotFoundError, match="holds no latent cache"):
        LatentAugment(tiny.bundle, tmp_path / "empty", tiny.stats)
    with pytest.raises(CacheNotFoundError, match="does not exist"):
        LatentAugmentd(["mri", "ct"], tiny.bundle, str(missing), tiny.stats)


def test_a_cache_folder_that_exists_is_opened_lazily(tiny, tmp_path, monkeypatch):
    tiny.bundle.save_pretrained(tmp_path / "gan", w_stats_samples=64)
    opened: list[str] = []
    real_open = LatentCache.open.__func__

    def counting_open(cls, folder):
        opened.append(str(folder))
        return real_open(cls, folder)

    monkeypatch.setattr(LatentCache, "open", classmethod(counting_open))
    t = LatentAugment(str(tmp_path / "gan"), str(tiny.folder), p=1.0, value_range="generator", seed=0, **FAST)
    assert opened == []  # checked to hold a cache, not opened
    t(tiny.images[:2])
    assert len(opened) == 1


def test_on_missing_raise_says_how_many_and_the_fix(tiny, tmp_path):
    other = make_tiny_setup(tmp_path / "other", n=2, seed=5)
    t = make(tiny, on_missing="raise")
    x = torch.cat([tiny.images[:1], other.images])
    with pytest.raises(MissingLatentError, match=r"2 of 3 images") as info:
        t(x)
    assert "latent-transforms invert --gan" in str(info.value) and "--cache" in str(info.value)
    assert isinstance(info.value, KeyError) and isinstance(info.value, ConfigError)


# -- errors ----------------------------------------------------------------------------------------------


def test_cache_of_another_generator_is_refused(tiny, tmp_path):
    other = GanBundle.random(tiny_gan_config(), seed=9)
    with pytest.raises(CacheMismatchError, match="fingerprint"):
        LatentAugment(other, tiny.cache, tiny.stats)
    other.save_pretrained(tmp_path / "other-gan", w_stats_samples=64)
    lazy = LatentAugment(str(tmp_path / "other-gan"), str(tiny.folder), p=1.0, value_range="generator")
    with pytest.raises(CacheMismatchError, match="latent-transforms invert"):
        lazy(tiny.images[:1])


def test_missing_statistics_say_what_to_run(tiny, tmp_path):
    with pytest.raises(ConfigError, match="latent-transforms invert") as info:
        LatentAugment(tiny.bundle, None, None)
    assert "stats.safetensors" in str(info.value) and "DatasetStats.compute" in str(info.value)
    bare = LatentCache(tmp_path / "bare", fingerprint=tiny.bundle.fingerprint)
    with pytest.raises(ConfigError, match=re.escape(str(tmp_path / "bare"))):
        LatentAugment(tiny.bundle, bare)
    # without diversity terms no statistics are needed; with the cache folder they are found there
    LatentAugment(tiny.bundle, bare, alpha_pix=0, alpha_perc=0, alpha_lat=0)
    found = LatentAugment(tiny.bundle, str(tiny.folder), p=1.0, value_range="generator", seed=0)
    assert found.stats is not None and found.stats.n_images == len(tiny.images)
    assert torch.equal(found(tiny.images[:2]), make(tiny)(tiny.images[:2]))


def test_wrong_channels_resolution_and_latents_are_refused(tiny):
    t = make(tiny)
    with pytest.raises(ConfigError, match="expects 2 channels"):
        t(torch.zeros(1, 3, 16, 16))
    with pytest.raises(ConfigError, match="16 x 16"):
        t(torch.zeros(1, 2, 32, 32))
    with pytest.raises(ConfigError, match="latents"):
        t.augment(tiny.images[:2], w_star=torch.zeros(2, 7))
    with pytest.raises(ConfigError, match="float images"):
        t.augment(tiny.images[0])
    with pytest.raises(ConfigError, match=r"\[B, 2, 16, 16\]"):
        t.augment(torch.zeros(1, 2, 8, 8))
    # augment takes [-1, 1] whatever value_range the transform call converts from
    make(tiny, value_range="unit", **FAST).augment(tiny.images[:1])
    with pytest.raises(ConfigError, match="on_missing"):
        make(tiny, on_missing="skip")


def test_perceptual_network_must_match_the_statistics(tiny):
    with pytest.raises(ConfigError, match="perceptual network"):
        make(tiny, perceptual="discriminator")(tiny.images[:1])
    with pytest.raises(ConfigError, match="perceptual network"):  # the same weights, other preprocessing
        make(tiny, perceptual=tiny.perceptual.backbone)(tiny.images[:1])
    by_name = make(tiny, **FAST)(tiny.images[:2])  # perceptual=None: rebuilt from stats.perceptual_name
    assert torch.equal(make(tiny, perceptual=tiny.perceptual, **FAST)(tiny.images[:2]), by_name)
    assert torch.equal(make(tiny, perceptual="random", **FAST)(tiny.images[:2]), by_name)


# -- objects, pickling, display ---------------------------------------------------------------------------


def test_pickles_with_a_source_string_without_the_model(tiny, tmp_path):
    folder = tiny.bundle.save_pretrained(tmp_path / "gan")
    t = LatentAugment(str(folder), str(tiny.folder), p=1.0, value_range="generator", seed=0, **FAST)
    reference = make(tiny, **FAST)(tiny.images[:2])
    assert torch.equal(t(tiny.images[:2]), reference)  # loads lazily on first use
    blob = pickle.dumps(t)
    assert len(blob) < 20_000, len(blob)  # the source string, not the weights
    clone = pickle.loads(blob)
    assert not clone._gan.loaded
    clone.set_random_state(0)
    assert torch.equal(clone(tiny.images[:2]), reference)


class Augmented(Dataset):
    """Items ``transform(images[i])``: per-sample augmentation inside DataLoader workers."""

    def __init__(self, images: torch.Tensor, transform: LatentAugment) -> None:
        self.images = images
        self.transform = transform

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.transform(self.images[i])


@pytest.mark.slow
def test_a_spawn_worker_loads_gan_cache_and_statistics_from_their_paths(tiny, tmp_path):
    folder = tiny.bundle.save_pretrained(tmp_path / "gan")
    by_path = LatentAugment(str(folder), str(tiny.folder), p=0.5, seed=0, **FAST)
    by_object = LatentAugment(tiny.bundle, tiny.cache, tiny.stats, p=0.5, seed=0, **FAST)
    x = tiny.physical()[:4]

    def epoch(transform: LatentAugment, context: str) -> torch.Tensor:
        loader = DataLoader(
            Augmented(x, transform),
            batch_size=2,
            num_workers=1,
            multiprocessing_context=context,
            generator=torch.Generator().manual_seed(1),
        )
        return torch.cat(list(loader))

    spawned = epoch(by_path, "spawn")
    torch.testing.assert_close(spawned, epoch(by_object, "fork"))
    assert not torch.equal(spawned, x)
    assert not by_path._gan.loaded  # the main process never loaded the model


def test_state_dict_is_empty_and_repr_shows_every_parameter(tiny, tmp_path):
    folder = tiny.bundle.save_pretrained(tmp_path / "gan")
    t = LatentAugment(str(folder), str(tiny.folder), perceptual=tiny.perceptual, seed=3)
    assert t.state_dict() == {} and list(t.children()) == []
    text = repr(t)
    assert text.startswith(f"LatentAugment(gan={str(folder)!r}, cache={str(tiny.folder)!r}, stats=None")
    for name in (
        "steps=9",
        "lr=0.01",
        "alpha_f=0.01",
        "alpha_perc=10.0",
        "p=0.2",
        "perceptual=PerceptualNetwork",
        "on_missing='invert'",
        "precision='fp32'",
        "value_range='physical'",
        "seed=3",
    ):
        assert name in text
    assert "\n" not in text
    t(tiny.physical()[:1])
    assert t.state_dict() == {} and "Conv" not in repr(t)
    summary = repr(make(tiny))
    assert "GanBundle(resolution=16, modalities=['mri', 'ct'])" in summary


# -- no host synchronisation inside the walk ----------------------------------------------------------


def test_the_walk_checks_patch_positions_once_not_at_every_step(tiny, monkeypatch):
    t = make(tiny, **FAST)
    checks: list[bool] = []
    real_positions = type(tiny.stats)._positions

    def spy(self, positions, batch, device, check_range=True):
        checks.append(check_range)
        return real_positions(self, positions, batch, device, check_range)

    monkeypatch.setattr(type(tiny.stats), "_positions", spy)
    t(tiny.images[:3])
    assert len(checks) == 2 * FAST["steps"]  # patch + perceptual loss at each step
    assert not any(checks)  # no host read of the indices inside the loop


def test_out_of_range_patch_positions_are_refused_before_the_walk(tiny):
    t = make(tiny, **FAST)
    x = tiny.images[:2]
    params = t.params_for(x)
    params["positions"] = torch.full_like(params["positions"], tiny.stats.num_positions)
    with pytest.raises(ConfigError, match="patch position indices"):
        t.transform(x, params)


def _traced_in_one_graph(monkeypatch) -> list[str | None]:
    """Make ``torch.compile`` trace with Dynamo into one graph (``fullgraph``: any host read, ``.item()``
    or ``bool(tensor)``, fails) and run it through AOTAutograd without code generation; returns the modes
    it was asked for."""
    modes: list[str | None] = []
    real = torch.compile

    def one_graph(fn, mode=None, **_):
        modes.append(mode)
        return real(fn, backend="aot_eager", fullgraph=True)

    monkeypatch.setattr(torch, "compile", one_graph)
    return modes


@pytest.mark.slow
def test_a_step_of_the_walk_is_one_graph_with_no_host_read(tiny, monkeypatch):
    torch._dynamo.reset()
    modes = _traced_in_one_graph(monkeypatch)
    x = tiny.images[:3]
    eager = make(tiny, steps=4)
    compiled = make(tiny, steps=4, compile_mode="default")
    assert min(eager.alpha_f, eager.alpha_pix, eager.alpha_perc, eager.alpha_lat) > 0  # every term on
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = compiled(x)
        again = compiled(x)
    assert not [w for w in caught if "lru_cache" in str(w.message)]  # the resampling taps trace cleanly
    torch.testing.assert_close(out, eager(x), rtol=0, atol=1e-5)
    torch.testing.assert_close(again, eager(x), rtol=0, atol=1e-5)
    assert modes == [None]  # compiled once per device, "default" is torch.compile's default mode
    torch._dynamo.reset()


def test_compile_mode_is_checked_shown_and_not_part_of_the_config(tiny):
    with pytest.raises(ConfigError, match="compile_mode"):
        make(tiny, compile_mode="fastest")
    t = make(tiny, compile_mode="reduce-overhead")
    assert "compile_mode='reduce-overhead'" in repr(t)
    assert "compile_mode" not in t.config()
    assert pickle.loads(pickle.dumps(t)).compile_mode == "reduce-overhead"


def test_a_walk_that_diverges_raises_instead_of_returning_nan(tiny):
    def nan_loss(images: torch.Tensor) -> torch.Tensor:
        return images.sum(dim=(1, 2, 3)) * float("nan")

    with pytest.raises(ConfigError, match="NaN/Inf"):
        make(tiny, task_loss=nan_loss, **FAST)(tiny.images[:2])


@pytest.mark.slow
@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("mode", ["default", "reduce-overhead"])
def test_the_compiled_walk_matches_eager_on_cuda(tiny, mode):
    x = tiny.images[:4].cuda()
    eager, compiled = make(tiny, **FAST), make(tiny, compile_mode=mode, **FAST)
    for _ in range(2):  # the same draws call by call; the second replays (CUDA graphs: the recording)
        torch.testing.assert_close(compiled(x), eager(x), rtol=0, atol=1e-4)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_the_walk_never_synchronises_with_the_host_on_cuda(tiny):
    t = make(tiny, **FAST)
    x = tiny.images[:3].cuda()
    keys = [image_key(v) for v in tiny.images[:3]]
    t(x)  # warm-up: loads the networks and statistics onto the GPU
    w_star = torch.stack([tiny.cache.get(k) for k in keys]).cuda()
    positions = t.draw_params(3, torch.Generator().manual_seed(0))["positions"]
    walk = t.walk(x.device)
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        walk.optimize(w_star, positions, None)
    finally:
        torch.cuda.set_sync_debug_mode("default")
