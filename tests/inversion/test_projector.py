"""The batched projector: recovery of G(w) samples, batch/one-by-one agreement, per-sample stopping,
latent spaces and starts, optimised noise, schedule, input checks, determinism, settings, invert().

Recovery tests use the shipped trained bundle (64 px, 2 channels): inverting its own samples is well
conditioned there, whereas tiny random generators are not (~15-22 dB), so those only serve shape/API tests.
"""

from __future__ import annotations

import json
import math

import pytest
import torch

import latent_transforms
from latent_transforms import GanBundle
from latent_transforms.errors import ConfigError
from latent_transforms.inversion.projector import (
    ProjectionResult,
    Projector,
    concatenate,
    invert,
    learning_rate,
    noise_regularizer,
)
from tests.conftest import tiny_config

# Measured on one CPU thread, 2 samples of the shipped bundle (seed 11), from w_avg, W space:
# pixel loss only, 100 steps: 37.1-40.3 dB per channel; random perceptual + pixel, 60 steps: 33.9-37.4 dB.
# The thresholds leave ~5 dB of margin. (Batched vs one-by-one on the tiny bundle, 40 steps, no latent
# noise: max |dw| ~1e-6, PSNR within 4e-6 dB.)
RECOVERY_STEPS, RECOVERY_MIN_DB = 100, 31.0
PERCEPTUAL_STEPS, PERCEPTUAL_MIN_DB = 60, 29.0


@pytest.fixture(scope="module")
def phantom() -> GanBundle:
    return latent_transforms.load_gan("builtin:pelvis-phantom-64")


@pytest.fixture(scope="module")
def tiny() -> GanBundle:
    bundle = GanBundle.random(tiny_config(16), seed=0, discriminator=False)
    bundle.compute_w_stats(500)
    return bundle


def _targets(bundle: GanBundle, n: int, seed: int) -> torch.Tensor:
    # random 16 px generators overshoot [-1, 1] by a lot; clamping keeps them valid projector input
    return bundle.sample(n, seed=seed).clamp(-1, 1)


def _projector(bundle: GanBundle, **options) -> Projector:
    options.setdefault("perceptual", None)
    options.setdefault("progress", False)
    return Projector(bundle, **options)


# -- recovery (shipped bundle) -------------------------------------------------------------------------
def test_inverting_generated_images_recovers_them_pixel_loss(phantom: GanBundle) -> None:
    target = phantom.sample(2, seed=11)
    result = _projector(phantom, steps=RECOVERY_STEPS, patience=None).project(target)
    assert result.psnr.shape == (2, 2) and result.ssim.shape == (2, 2)
    assert (result.psnr > RECOVERY_MIN_DB).all(), result.psnr
    assert (result.ssim > 0.9).all(), result.ssim
    # the reported PSNR is that of the returned reconstruction
    recomputed = 10 * torch.log10(4.0 / (result.images - target).square().mean(dim=(2, 3)))
    assert torch.allclose(result.psnr, recomputed, atol=1e-3)
    # and much better than the starting point G(w_avg)
    start = _projector(phantom, steps=1).project(target)
    assert (result.psnr.mean(dim=1) > start.psnr.mean(dim=1) + 10).all()


def test_inverting_generated_images_recovers_them_random_perceptual(phantom: GanBundle) -> None:
    target = phantom.sample(2, seed=11)
    projector = _projector(phantom, steps=PERCEPTUAL_STEPS, perceptual="random", patience=None)
    assert projector.perceptual is not None and projector.perceptual.name
    result = projector.project(target)
    assert (result.psnr > PERCEPTUAL_MIN_DB).all(), result.psnr


def test_sample_that_reaches_target_at_once_leaves_batch_without_disturbing_others(
    phantom: GanBundle,
) -> None:
    """G(w_avg) is recovered at step 0 (PSNR > 100 dB) and stops there; the other sample's optimisation
    (Adam state sliced) continues exactly as it would alone."""
    projector = _projector(phantom, steps=40, noise_scale=0.0, patience=None, psnr_target=60.0)
    w_avg = projector.w_avg
    with torch.no_grad():
        exact = projector._render(w_avg[None], None)
    other = phantom.sample(1, seed=12)
    both = projector.project(torch.cat([exact, other]))
    alone = projector.project(other)
    assert int(both.stopped[0]) == 0 and int(both.steps[0]) == 0
    assert (both.psnr[0] > 100).all()  # not inf: batch 1 vs 2 renders differ in float rounding
    assert torch.allclose(both.w[0], w_avg)
    assert int(both.stopped[1]) == int(alone.stopped[0])
    assert (both.w[1] - alone.w[0]).abs().max() < 1e-4
    assert (both.psnr[1] - alone.psnr[0]).abs().max() < 0.1


def test_per_sample_early_stop_on_psnr_target(phantom: GanBundle) -> None:
    target = phantom.sample(3, seed=21)
    steps, goal = 150, 32.0  # G(w_avg) scores 24-28 dB on these, 150 full steps ~40 dB
    start = _projector(phantom, steps=1).project(target)
    assert (start.psnr.mean(dim=1) < goal).all(), "the target must not be reached at the start"
    result = _projector(phantom, steps=steps, psnr_target=goal, patience=None).project(target)
    assert (result.stopped < steps).all(), result.stopped
    assert (result.stopped > 0).all()
    # the kept step is the best one reached before stopping
    assert (result.steps <= result.stopped).all()
    # the stopping step was judged on a noisy latent; the kept latent renders within a small slack
    assert (result.psnr.mean(dim=1) >= goal - 1.0).all(), result.psnr


# -- batching, stopping (tiny bundle) ------------------------------------------------------------------
def test_batched_and_one_by_one_projection_agree(tiny: GanBundle) -> None:
    """Adam is per-element, so with no latent noise the batch only changes float reduction order.

    Those last-bit differences grow over 40 Adam steps (3e-4 seen with another BLAS thread count); a
    batching bug (mixed-up samples, wrong slicing) moves w by order 1."""
    target = _targets(tiny, 3, seed=1)
    projector = _projector(tiny, steps=40, noise_scale=0.0, patience=None)
    batched = projector.project(target)
    for i in range(3):
        alone = projector.project(target[i : i + 1])
        assert (batched.w[i] - alone.w[0]).abs().max() < 2e-3
        assert (batched.psnr[i] - alone.psnr[0]).abs().max() < 0.1


def test_patience_stops_a_sample_whose_loss_stops_improving(tiny: GanBundle) -> None:
    target = _targets(tiny, 2, seed=2)
    # lr = 0 and no latent noise: the loss is constant, its only "improvement" is at step 0
    result = _projector(tiny, steps=100, lr=0.0, lr_rampup=0.0, noise_scale=0.0, patience=10).project(target)
    assert result.stopped.tolist() == [10, 10]
    assert result.steps.tolist() == [0, 0]
    # patience is only checked once the ramp-up (20 steps here) is over
    ramped = _projector(tiny, steps=100, lr=0.0, lr_rampup=0.2, noise_scale=0.0, patience=10).project(target)
    assert (ramped.stopped >= 20).all() and (ramped.stopped < 100).all()
    # without patience it runs all steps
    full = _projector(tiny, steps=30, lr=0.0, noise_scale=0.0, patience=None).project(target)
    assert full.stopped.tolist() == [30, 30]


def test_patience_below_one_is_rejected(tiny: GanBundle) -> None:
    with pytest.raises(ConfigError, match="patience"):
        _projector(tiny, patience=0)


# -- latent spaces and starts ------------------------------------------------------------------------
def test_w_and_w_plus_shapes(tiny: GanBundle) -> None:
    G = tiny.generator
    target = _targets(tiny, 2, seed=3)
    w = _projector(tiny, steps=3, space="w").project(target)
    wp = _projector(tiny, steps=3, space="w+").project(target)
    assert w.w.shape == (2, G.w_dim)
    assert wp.w.shape == (2, G.num_ws, G.w_dim)
    assert w.ws(G.num_ws).shape == wp.ws(G.num_ws).shape == (2, G.num_ws, G.w_dim)
    for r in (w, wp):
        assert r.images.shape == target.shape
        assert r.steps.dtype == r.stopped.dtype == torch.int64
        assert r.noise is None and len(r) == 2 and r.seconds > 0


def test_space_and_precision_are_validated(tiny: GanBundle) -> None:
    with pytest.raises(ConfigError, match="space"):
        _projector(tiny, space="z")
    with pytest.raises(ConfigError, match="precision"):
        _projector(tiny, precision="fp16")
    with pytest.raises(ConfigError, match="steps"):
        _projector(tiny, steps=0)


@pytest.mark.parametrize("space", ["w", "w+"])
def test_init_w_is_the_starting_point(tiny: GanBundle, space: str) -> None:
    G = tiny.generator
    target = _targets(tiny, 2, seed=4)
    init = torch.randn(2, G.w_dim, generator=torch.Generator().manual_seed(0))
    result = _projector(tiny, steps=1, lr=1e-8, space=space).project(target, init_w=init)
    expected = init if space == "w" else init[:, None].expand(-1, G.num_ws, -1)
    assert torch.allclose(result.w, expected, atol=1e-6)
    # a single [w_dim] vector is broadcast to the batch
    single = _projector(tiny, steps=1, lr=1e-8, space=space).project(target, init_w=init[0])
    assert torch.allclose(single.ws(G.num_ws), init[0].expand(2, G.num_ws, -1), atol=1e-6)


def test_w_plus_init_for_a_w_projection_is_averaged_over_layers(tiny: GanBundle) -> None:
    G = tiny.generator
    target = _targets(tiny, 2, seed=4)
    init = torch.randn(2, G.num_ws, G.w_dim, generator=torch.Generator().manual_seed(1))
    result = _projector(tiny, steps=1, lr=1e-8, space="w").project(target, init_w=init)
    assert result.w.shape == (2, G.w_dim)
    assert torch.allclose(result.w, init.mean(dim=1), atol=1e-6)
    # and a W+ start for a W+ projection is kept per layer
    plus = _projector(tiny, steps=1, lr=1e-8, space="w+").project(target, init_w=init)
    assert torch.allclose(plus.w, init, atol=1e-6)


def test_wrongly_shaped_init_w_is_rejected(tiny: GanBundle) -> None:
    target = _targets(tiny, 2, seed=4)
    with pytest.raises(ConfigError, match="init_w"):
        _projector(tiny, steps=1).project(target, init_w=torch.zeros(3, tiny.generator.w_dim))
    with pytest.raises(ConfigError, match="init_w"):
        _projector(tiny, steps=1).project(target, init_w=torch.zeros(2, tiny.generator.w_dim + 1))


def test_default_start_is_the_mean_of_w(tiny: GanBundle) -> None:
    target = _targets(tiny, 2, seed=4)
    projector = _projector(tiny, steps=1)
    assert torch.allclose(projector.w_avg, tiny.w_stats["w_mean"].float())
    result = projector.project(target)
    assert torch.allclose(result.w, projector.w_avg.expand(2, -1), atol=1e-6)


def test_encoder_guess_is_the_start_and_init_w_overrides_it(tiny: GanBundle) -> None:
    G = tiny.generator
    target = _targets(tiny, 3, seed=5)
    guess = torch.randn(3, G.w_dim, generator=torch.Generator().manual_seed(2))
    calls: list[tuple[int, ...]] = []

    def encoder(images: torch.Tensor) -> torch.Tensor:
        calls.append(tuple(images.shape))
        return guess

    projector = _projector(tiny, steps=1, lr=1e-8, encoder=encoder)
    result = projector.project(target)
    assert calls == [tuple(target.shape)]
    assert torch.allclose(result.w, guess, atol=1e-6)
    given = torch.zeros(3, G.w_dim)
    overridden = projector.project(target, init_w=given)
    assert torch.allclose(overridden.w, given, atol=1e-6)
    assert projector.settings()["encoder"] is True


# -- noise maps ----------------------------------------------------------------------------------------
def test_optimize_noise_returns_noise_maps_of_the_right_shapes(tiny: GanBundle) -> None:
    target = _targets(tiny, 2, seed=6)
    result = _projector(tiny, steps=10, optimize_noise=True).project(target)
    expected = tiny.generator.synthesis.make_noise(2, device="cpu")
    assert result.noise is not None and len(result.noise) == len(expected)
    for got, ref in zip(result.noise, expected, strict=True):
        assert got.shape == ref.shape and got.shape[:2] == (2, 1)
        assert torch.isfinite(got).all()
    assert torch.isfinite(result.images).all() and torch.isfinite(result.psnr).all()
    assert _projector(tiny, optimize_noise=True).settings()["noise_regularize"] == 1e5


def test_noise_regularizer_is_zero_for_white_noise_and_positive_for_smooth_maps() -> None:
    white = torch.randn(2, 1, 256, 256, generator=torch.Generator().manual_seed(0))
    assert noise_regularizer([white]).shape == (2,)
    assert (noise_regularizer([white]) < 1e-4).all()
    x = torch.linspace(0, 2 * math.pi, 64)
    smooth = (torch.sin(x)[:, None] * torch.sin(x)[None, :]).expand(2, 1, 64, 64)
    smooth = (smooth - smooth.mean()) / smooth.std()
    assert (noise_regularizer([smooth]) > 1.0).all()
    assert torch.allclose(noise_regularizer([torch.ones(2, 1, 16, 16)]), torch.tensor([4.0, 4.0]))
    # several maps add up
    both = noise_regularizer([white, smooth])
    assert torch.allclose(both, noise_regularizer([white]) + noise_regularizer([smooth]))


# -- schedule ----------------------------------------------------------------------------------------
def test_learning_rate_schedule() -> None:
    lr, up, down = 0.1, 0.05, 0.25
    assert learning_rate(0.0, lr, up, down) == 0.0
    assert learning_rate(up / 2, lr, up, down) == pytest.approx(lr / 2)
    assert learning_rate(up, lr, up, down) == pytest.approx(lr)
    assert learning_rate(0.5, lr, up, down) == pytest.approx(lr)
    assert learning_rate(1 - down, lr, up, down) == pytest.approx(lr)
    assert learning_rate(1 - down / 2, lr, up, down) == pytest.approx(lr / 2)
    assert learning_rate(1.0, lr, up, down) == pytest.approx(0.0, abs=1e-12)
    # no ramps: constant
    assert [learning_rate(t, lr, 0.0, 0.0) for t in (0.0, 0.5, 1.0)] == [lr, lr, lr]
    values = [learning_rate(i / 100, lr, up, down) for i in range(101)]
    assert max(values) == pytest.approx(lr) and min(values) >= 0


# -- input checks --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: torch.zeros(1, 3, 16, 16), r"channels and resolution"),
        (lambda: torch.zeros(1, 2, 32, 32), r"resize to 16 px"),
        (lambda: torch.zeros(1, 1, 2, 16, 16), r"\[B, 2, 16, 16\]"),
        (lambda: torch.zeros(0, 2, 16, 16), r"empty batch"),
        (lambda: torch.full((1, 2, 16, 16), float("nan")), r"NaN"),
        (lambda: torch.full((1, 2, 16, 16), float("inf")), r"NaN or Inf"),
        (lambda: torch.rand(1, 2, 16, 16) * 255, r"in \[-1, 1\].*normalize"),
        (lambda: torch.zeros(1, 2, 16, 16, dtype=torch.uint8), r"float images"),
    ],
)
def test_bad_images_raise_config_error_with_a_helpful_message(tiny: GanBundle, make, message) -> None:
    with pytest.raises(ConfigError, match=message):
        _projector(tiny, steps=1).project(make())


def test_a_single_chw_image_is_accepted_as_batch_one(tiny: GanBundle) -> None:
    target = _targets(tiny, 1, seed=7)
    result = _projector(tiny, steps=2).project(target[0])
    assert len(result) == 1 and result.images.shape == target.shape
    # a GAN's slight overshoot is tolerated
    _projector(tiny, steps=1).project(target * 1.5)


# -- determinism, settings, repr -----------------------------------------------------------------------
def test_same_seed_gives_identical_results(tiny: GanBundle) -> None:
    target = _targets(tiny, 2, seed=8)
    options = dict(steps=15, optimize_noise=True, noise_scale=0.05, seed=3)
    a = _projector(tiny, **options).project(target)
    b = _projector(tiny, **options).project(target)
    assert torch.equal(a.w, b.w) and torch.equal(a.images, b.images)
    assert torch.equal(a.psnr, b.psnr) and torch.equal(a.steps, b.steps)
    assert all(torch.equal(x, y) for x, y in zip(a.noise, b.noise, strict=True))  # type: ignore[arg-type]
    c = _projector(tiny, **{**options, "seed": 4}).project(target)
    assert not torch.equal(a.w, c.w)


def test_settings_are_json_serialisable_and_track_options(tiny: GanBundle) -> None:
    base = _projector(tiny).settings()
    assert json.loads(json.dumps(base)) == base
    assert base["perceptual"] is None and base["perceptual_weight"] is None
    assert base["noise_regularize"] is None  # only meaningful when noise maps are optimised
    for option, value in [
        ("steps", 7),
        ("space", "w+"),
        ("lr", 0.05),
        ("psnr_target", 35.0),
        ("patience", None),
        ("seed", 1),
        ("optimize_noise", True),
        ("pixel_weight", 0.5),
    ]:
        changed = _projector(tiny, **{option: value}).settings()
        assert changed != base and changed[option] == value, option
    # batch size and progress do not change the latents, so they are not settings
    assert _projector(tiny, batch_size=3, progress=True).settings() == base
    with_net = _projector(tiny, perceptual="random").settings()
    assert json.loads(json.dumps(with_net)) == with_net
    assert with_net["perceptual"] and with_net["perceptual_fingerprint"]


def test_repr_shows_parameters(tiny: GanBundle) -> None:
    text = repr(_projector(tiny, steps=12, space="w+", psnr_target=33.0, batch_size=5))
    for part in (
        "Projector(",
        "space='w+'",
        "steps=12",
        "psnr_target=33.0",
        "batch_size=5",
        "perceptual=None",
    ):
        assert part in text, (part, text)


# -- many images ---------------------------------------------------------------------------------------
def test_invert_returns_results_in_order_over_batches(tiny: GanBundle) -> None:
    target = _targets(tiny, 5, seed=9)
    options = dict(steps=12, perceptual=None, progress=False, noise_scale=0.0, patience=None, batch_size=2)
    result = invert(tiny, target, **options)
    assert isinstance(result, ProjectionResult) and len(result) == 5
    projector = Projector(tiny, **options)
    chunks = [projector.project(target[s : s + 2]) for s in (0, 2, 4)]
    expected = concatenate(chunks)
    assert torch.allclose(result.w, expected.w, atol=1e-6)
    assert torch.allclose(result.images, expected.images, atol=1e-6)
    assert torch.allclose(result.images, target, atol=2.0)  # in order: compare per-sample PSNR too
    assert torch.allclose(result.psnr, expected.psnr, atol=1e-4)
    assert result.steps.tolist() == expected.steps.tolist()
    assert result.seconds > 0
    # init_w is split along with the images
    init = torch.randn(5, tiny.generator.w_dim, generator=torch.Generator().manual_seed(0))
    started = invert(tiny, target, init_w=init, **{**options, "steps": 1})
    assert torch.allclose(started.w, init, atol=1e-6)


def test_concatenate_joins_noise_and_rejects_empty(tiny: GanBundle) -> None:
    target = _targets(tiny, 3, seed=10)
    projector = _projector(tiny, steps=3, optimize_noise=True, batch_size=2)
    joined = projector.project_all(target)
    assert len(joined) == 3 and joined.noise is not None
    assert all(n.shape[0] == 3 for n in joined.noise)
    with pytest.raises(ConfigError):
        concatenate([])
