"""ADA augmentation (AugmentPipe) and its adaptive probability (AdaController)."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
import torch
from hypothesis import given, strategies as st

from latent_transforms.errors import ConfigError
from latent_transforms.training.augment import PRESETS, TRANSFORM_NAMES, AdaController, AugmentPipe

transform_sets = st.sets(st.sampled_from(TRANSFORM_NAMES), min_size=1).map(lambda s: ",".join(sorted(s)))
seeds = st.integers(0, 2**31 - 1)


def _gen(seed: int = 0, device: str = "cpu") -> torch.Generator:
    return torch.Generator(device=device).manual_seed(seed)


def _images(batch: int, channels: int = 2, height: int = 16, width: int = 16, seed: int = 0) -> torch.Tensor:
    return torch.rand(batch, channels, height, width, generator=_gen(seed)) * 2 - 1


def _centred_grid(height: int, width: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Pixel-centre coordinates (x right, y down) with the origin at the image centre, each [H, W]."""
    ys = torch.arange(height, dtype=torch.float64) + 0.5 - height / 2
    xs = torch.arange(width, dtype=torch.float64) + 0.5 - width / 2
    y, x = torch.meshgrid(ys, xs, indexing="ij")
    return x, y


def _blob(height: int, width: int, cx: float, cy: float, sigma: float) -> torch.Tensor:
    """A Gaussian marker in [-1, 1] centred at (cx, cy), [H, W] float64."""
    x, y = _centred_grid(height, width)
    return torch.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * sigma**2)) * 2 - 1


def _centroids(images: torch.Tensor, near: torch.Tensor | None = None, radius: float = 12.0) -> torch.Tensor:
    """Intensity-weighted centre of ``images + 1`` (background -1 weighs nothing), [B, 2] as (x, y).

    With ``near`` [B, 2], only pixels within ``radius`` of it count: reflection padding can bring mirrored
    copies of the marker into the corners of strongly rotated or shrunk images.
    """
    x, y = _centred_grid(*images.shape[-2:])
    weight = images.double() + 1
    if near is not None:
        dist2 = (x - near[:, 0, None, None]) ** 2 + (y - near[:, 1, None, None]) ** 2
        weight = weight * (dist2 <= radius**2)
    total = weight.sum((-2, -1))
    return torch.stack([(weight * x).sum((-2, -1)) / total, (weight * y).sum((-2, -1)) / total], -1)


def _forward_rotation(degrees: torch.Tensor) -> torch.Tensor:
    """[B, 2, 2] counter-clockwise-as-displayed rotation in (x right, y down) coordinates."""
    rad = torch.deg2rad(degrees.double())
    cos, sin = torch.cos(rad), torch.sin(rad)
    return torch.stack([torch.stack([cos, sin], -1), torch.stack([-sin, cos], -1)], -2)


# -- p = 0 and presets ---------------------------------------------------------------------------------


@given(transforms=transform_sets, height=st.integers(1, 12), width=st.integers(1, 12), seed=seeds)
def test_p_zero_returns_the_input_without_drawing_random_numbers(transforms, height, width, seed):
    images = _images(3, 2, height, width, seed)
    pipe = AugmentPipe(transforms, p=0.0)
    gen = _gen(seed)
    state = gen.get_state()
    out, params = pipe(images, gen, return_params=True)
    assert out is images
    assert torch.equal(gen.get_state(), state)
    assert not params["transformed"].any()
    assert torch.equal(params["theta"], torch.eye(2, 3).repeat(3, 1, 1))


def test_presets_and_lists_name_the_same_transforms_in_application_order():
    assert AugmentPipe().transforms == ("scale", "rotate", "aniso", "frac")
    assert AugmentPipe("geom").transforms == PRESETS["geom"]
    assert AugmentPipe("blit").transforms == ("xflip", "int")
    assert AugmentPipe("all").transforms == TRANSFORM_NAMES
    assert AugmentPipe(["frac", "xflip", "frac"]).transforms == ("xflip", "frac")
    assert AugmentPipe(" Rotate , blit ").transforms == ("xflip", "int", "rotate")


@pytest.mark.parametrize("bad", ["xflip,colour", "rotate90", "", " , ", ["scale", "hue"]])
def test_bad_transform_names_raise_config_error_listing_valid_names(bad):
    with pytest.raises(ConfigError) as info:
        AugmentPipe(bad)
    message = str(info.value)
    for name in (*TRANSFORM_NAMES, *PRESETS):
        assert name in message
    assert "Fix" in message


@pytest.mark.parametrize(
    "kwargs",
    [
        {"p": 1.5},
        {"p": -0.1},
        {"p": math.nan},
        {"rotate_max_deg": -1.0},
        {"rotate_max_deg": 270.0},
        {"scale_std": math.inf},
        {"int_max": -0.1},
    ],
)
def test_invalid_probability_or_magnitude_raises_config_error(kwargs):
    with pytest.raises(ConfigError, match="got"):
        AugmentPipe("all", **kwargs)


@pytest.mark.parametrize("bad", [torch.zeros(2, 16, 16), torch.zeros(1, 2, 8, 8, dtype=torch.long), "image"])
def test_input_that_is_not_a_float_batch_raises_config_error(bad):
    with pytest.raises(ConfigError, match=r"\[B, C, H, W\]"):
        AugmentPipe("all", p=1.0)(bad)


def test_p_is_a_buffer_set_in_place_saved_and_restored():
    pipe = AugmentPipe("xflip", p=0.1)
    buffer = pipe.p
    pipe.p = 0.3
    assert pipe.p is buffer and math.isclose(float(pipe.p), 0.3, rel_tol=1e-6)
    pipe.set_p(torch.tensor(0.7))
    assert "p" in dict(pipe.named_buffers())
    state = pipe.state_dict()
    assert set(state) == {"p"}
    twin = AugmentPipe("xflip")
    twin.load_state_dict(state)
    assert float(twin.p) == float(pipe.p)
    with pytest.raises(ConfigError):
        pipe.p = 2.0
    assert float(pipe.p) == float(state["p"])


def test_p_moves_and_casts_with_the_module():
    pipe = AugmentPipe("all", p=0.4).to(torch.device("cpu"))
    assert float(pipe.p) == pytest.approx(0.4)
    pipe.double()
    assert pipe.p.dtype == torch.float64 and "p" in dict(pipe.named_buffers())
    pipe.float()
    out = pipe(_images(2, 2, 8, 8), _gen())
    assert out.shape == (2, 2, 8, 8)


def test_repr_shows_the_parameters():
    text = repr(AugmentPipe("blit", p=0.25, int_max=0.1))
    assert text.startswith("AugmentPipe(transforms='xflip,int', p=0.25")
    assert "int_max=0.1" in text and "rotate_max_deg=3" in text


# -- exact pixel transforms ----------------------------------------------------------------------------


def test_xflip_with_p_one_equals_a_left_right_flip():
    images = _images(5, 3, 8, 11)
    out, params = AugmentPipe("xflip", p=1.0)(images, _gen(), return_params=True)
    assert torch.equal(out, images.flip(3))
    assert params["xflip"].all() and not params["warped"].any()


@given(height=st.integers(2, 20), width=st.integers(2, 20), seed=seeds)
def test_int_with_p_one_is_a_whole_pixel_shift_with_mirrored_edges(height, width, seed):
    images = _images(4, 2, height, width, seed)
    out, params = AugmentPipe("int", p=1.0, int_max=0.5)(images, _gen(seed), return_params=True)
    shifts = params["int"]
    assert shifts.dtype == torch.long
    assert (shifts[:, 0].abs() <= round(0.5 * width)).all() and (
        shifts[:, 1].abs() <= round(0.5 * height)
    ).all()
    padded = np.pad(images.numpy(), ((0, 0), (0, 0), (height, height), (width, width)), mode="symmetric")
    for b, (dx, dy) in enumerate(shifts.tolist()):
        expected = padded[b, :, height - dy : 2 * height - dy, width - dx : 2 * width - dx]
        assert np.array_equal(out[b].numpy(), expected)


def test_int_shifts_cover_the_range_up_to_int_max():
    _, params = AugmentPipe("int", p=1.0, int_max=0.125)(_images(400, 1, 32, 64), _gen(), return_params=True)
    shifts = params["int"]
    assert set(shifts[:, 0].tolist()) == set(range(-8, 9))
    assert set(shifts[:, 1].tolist()) == set(range(-4, 5))


# -- geometric transforms ------------------------------------------------------------------------------


@given(
    transforms=transform_sets,
    channels=st.integers(1, 3),
    height=st.integers(1, 13),
    width=st.integers(1, 13),
    dtype=st.sampled_from([torch.float32, torch.float64, torch.bfloat16]),
    p=st.floats(0.0, 1.0),
    seed=seeds,
)
def test_output_keeps_shape_dtype_device_and_value_range(transforms, channels, height, width, dtype, p, seed):
    images = _images(4, channels, height, width, seed).to(dtype)
    out = AugmentPipe(transforms, p=p, rotate_max_deg=180)(images, _gen(seed))
    assert out.shape == images.shape and out.dtype == dtype and out.device == images.device
    assert torch.isfinite(out).all()
    tol = 1e-2 if dtype == torch.bfloat16 else 1e-6
    assert out.min() >= images.min() - tol and out.max() <= images.max() + tol


@given(transforms=transform_sets.filter(lambda t: t != "xflip"), seed=seeds)  # p=1 flips every sample
def test_same_generator_seed_gives_identical_output_and_another_seed_differs(transforms, seed):
    images = _images(6, 2, 12, 12)
    pipe = AugmentPipe(transforms, p=1.0)
    first = pipe(images, _gen(seed))
    assert torch.equal(first, pipe(images, _gen(seed)))
    assert not torch.equal(first, pipe(images, _gen(seed + 1)))


def test_geometric_transforms_with_p_one_change_every_sample():
    images = _images(8, 2, 16, 16)
    out, params = AugmentPipe("geom", p=1.0)(images, _gen(), return_params=True)
    assert params["warped"].all() and params["transformed"].all()
    assert ((out - images).flatten(1).abs().amax(1) > 0).all()


def test_amount_of_randomness_drawn_does_not_depend_on_p():
    images = _images(5, 2, 8, 8)
    states = []
    for p in (0.1, 0.9):
        gen = _gen(3)
        AugmentPipe("all", p=p)(images, gen)
        states.append(gen.get_state())
    assert torch.equal(*states)


@pytest.mark.parametrize("transforms", ["all", "geom", "rotate,aniso"])
def test_identical_channels_stay_identical(transforms):
    images = _images(6, 1, 16, 12).repeat(1, 3, 1, 1)
    out = AugmentPipe(transforms, p=1.0, rotate_max_deg=180, scale_std=0.3, aniso_std=0.3)(images, _gen())
    assert torch.equal(out[:, 0], out[:, 1]) and torch.equal(out[:, 0], out[:, 2])


@given(seed=seeds, scale=st.floats(-2.0, 2.0), offset=st.floats(-0.5, 0.5))
def test_pointwise_affine_relation_between_channels_is_preserved(seed, scale, offset):
    mri = _images(4, 1, 16, 16, seed)
    images = torch.cat([mri, mri * scale + offset], dim=1)
    out = AugmentPipe("all", p=1.0, rotate_max_deg=45, frac_std=0.1)(images, _gen(seed))
    assert torch.allclose(out[:, 1], out[:, 0] * scale + offset, atol=1e-5)


def test_samples_are_transformed_independently_with_probability_p():
    images = _images(2000, 2, 6, 6)
    out, params = AugmentPipe("xflip", p=0.5)(images, _gen(), return_params=True)
    changed = (out != images).flatten(1).any(1)
    assert torch.equal(changed, params["transformed"])
    assert abs(int(changed.sum()) - 1000) < 5 * math.sqrt(2000 * 0.25)

    out, params = AugmentPipe("geom", p=0.5)(images, _gen(1), return_params=True)
    kept = ~params["transformed"]
    assert torch.equal(out[kept], images[kept])  # untouched samples are bit-identical
    assert ((out[~kept] - images[~kept]).flatten(1).abs().amax(1) > 0).all()
    # Each of the 4 transforms fires with probability 0.5 (rotate: two halves of 1 - sqrt(0.5)).
    assert abs(float(kept.float().mean()) - 0.5**4) < 5 * math.sqrt(0.0625 * 0.9375 / 2000)


def test_rotation_moves_a_marker_by_the_returned_angle():
    height, width, sigma, radius = 41, 48, 3.0, 8.0
    images = _blob(height, width, radius, 0.0, sigma).float()[None, None].repeat(16, 2, 1, 1)
    out, params = AugmentPipe("rotate", p=1.0, rotate_max_deg=90)(images, _gen(5), return_params=True)
    angle = params["rotate"].sum(1)  # before + after aniso; without aniso they add up
    assert angle.abs().max() > 60  # large rotations are exercised
    rad = torch.deg2rad(angle.double())
    expected_centre = radius * torch.stack([torch.cos(rad), -torch.sin(rad)], -1)  # counter-clockwise
    assert torch.allclose(_centroids(out[:, 0]), expected_centre, atol=0.05)
    for b in range(16):  # the whole image is the marker drawn at the rotated place, up to bilinear error
        expected = _blob(height, width, *expected_centre[b].tolist(), sigma)
        assert (out[b, 0].double() - expected).abs().max() < 0.07


@pytest.mark.parametrize("size", [(48, 64), (64, 48)])
def test_composed_geometry_moves_a_marker_as_the_returned_parameters_predict(size):
    height, width = size
    start = torch.tensor([4.0, -3.0], dtype=torch.float64)
    images = _blob(height, width, *start.tolist(), 2.0).float()[None, None].repeat(24, 2, 1, 1)
    pipe = AugmentPipe("geom", p=0.8, rotate_max_deg=180, scale_std=0.2, aniso_std=0.2, frac_std=0.03)
    out, params = pipe(images, _gen(7), return_params=True)
    # Forward map written out independently: p_out = R_after · A · R_before · S · p_in + t.
    k = params["aniso"].double()
    aniso = torch.diag_embed(torch.stack([k, 1 / k], -1))
    forward = _forward_rotation(params["rotate"][:, 1]) @ aniso @ _forward_rotation(params["rotate"][:, 0])
    forward = forward * params["scale"].double()[:, None, None]
    expected = (forward @ start[:, None]).squeeze(-1) + params["frac"].double()
    assert torch.allclose(_centroids(out[:, 0], near=expected), expected, atol=0.1)
    assert params["warped"].float().mean() > 0.8


# -- gradients and precision ---------------------------------------------------------------------------


def test_gradient_flows_to_the_input_with_p_one():
    images = _images(4, 2, 16, 16).requires_grad_(True)
    out = AugmentPipe("all", p=1.0)(images, _gen())
    (out * torch.linspace(-1, 1, out.numel()).view_as(out)).sum().backward()
    assert images.grad is not None
    assert torch.isfinite(images.grad).all() and images.grad.abs().sum() > 0


def test_gradient_matches_finite_differences_and_supports_double_backward():
    pipe = AugmentPipe("all", p=0.7, rotate_max_deg=30)
    images = _images(3, 2, 7, 9).double().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda x: pipe(x, _gen(11)), (images,), fast_mode=True)
    # R1 penalty: gradient of a D(aug(x)) w.r.t. x, then backward through that gradient.
    weight = torch.randn(3, 2, 7, 9, dtype=torch.float64, generator=_gen(1), requires_grad=True)
    (grad,) = torch.autograd.grad((pipe(images, _gen(11)) * weight).sum(), images, create_graph=True)
    grad.square().sum().backward()
    assert weight.grad is not None and torch.isfinite(weight.grad).all() and weight.grad.abs().sum() > 0


def test_bf16_autocast_does_not_change_the_result():
    pipe = AugmentPipe("all", p=1.0, rotate_max_deg=30)
    images = _images(4, 2, 16, 16)
    reference = pipe(images.bfloat16(), _gen(2))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        produced = torch.nn.functional.conv2d(images, torch.eye(2).view(2, 2, 1, 1))  # bf16, as G's output
        assert produced.dtype == torch.bfloat16
        out = pipe(produced, _gen(2))
    assert out.dtype == torch.bfloat16
    assert torch.equal(out, reference)


# -- CUDA ----------------------------------------------------------------------------------------------


@pytest.mark.cuda
def test_cuda_input_with_a_cpu_generator_matches_cpu():
    pipe = AugmentPipe("all", p=0.6).cuda()
    images = _images(16, 2, 32, 32)
    cpu = AugmentPipe("all", p=0.6)(images, _gen(4))
    gpu = pipe(images.cuda(), _gen(4))
    assert gpu.device.type == "cuda"
    assert (gpu.cpu() - cpu).abs().max() < 1e-5


@pytest.mark.cuda
def test_cuda_generator_bf16_autocast_and_gradients():
    pipe = AugmentPipe("all", p=1.0).cuda()
    images = _images(8, 2, 32, 32).cuda().requires_grad_(True)
    with torch.autocast("cuda", dtype=torch.bfloat16):
        out, params = pipe(images.bfloat16(), _gen(0, "cuda"), return_params=True)
    assert out.dtype == torch.bfloat16 and params["theta"].device.type == "cuda"
    again = pipe(images.detach().bfloat16(), _gen(0, "cuda"))
    assert torch.equal(out, again)
    out.float().square().sum().backward()
    assert images.grad is not None and torch.isfinite(images.grad).all() and images.grad.abs().sum() > 0


# -- AdaController -------------------------------------------------------------------------------------


def _controller(p: float = 0.5, **kwargs) -> AdaController:
    options = {"target": 0.6, "interval": 4, "speed_kimg": 100.0, "batch_size": 32, **kwargs}
    return AdaController(AugmentPipe("geom", p=p), **options)


def test_controller_raises_p_when_real_logits_are_all_positive():
    ada = _controller(0.5)
    for i in range(4):
        ada.accumulate(torch.rand(32, 1) + 0.1)
        assert ada.step() == (i == 3)
    assert ada.r_t == 1.0
    assert math.isclose(float(ada.pipe.p), 0.5 + 32 * 4 / 100_000, rel_tol=1e-6)


def test_controller_lowers_p_when_real_logits_are_all_negative():
    ada = _controller(0.5)
    for _ in range(8):
        ada.accumulate(-torch.rand(32) - 0.1)
        ada.step()
    assert ada.r_t == -1.0 and ada.num_updates == 2
    assert math.isclose(float(ada.pipe.p), 0.5 - 2 * ada.adjustment, rel_tol=1e-6)


def test_controller_clamps_p_to_the_unit_interval():
    ada = _controller(0.999, speed_kimg=1.0)
    ada.accumulate(torch.ones(10))
    ada.update()
    assert float(ada.pipe.p) == 1.0
    ada = _controller(0.001, speed_kimg=1.0)
    ada.accumulate(-torch.ones(10))
    ada.update()
    assert float(ada.pipe.p) == 0.0


def test_controller_holds_p_at_target_and_without_data():
    ada = _controller(0.5, target=0.5)
    ada.accumulate(torch.tensor([1.0, 1.0, 1.0, -1.0]))  # r_t = 0.5 = target
    assert ada.update() == 0.5 and float(ada.pipe.p) == 0.5
    assert ada.update() is None and float(ada.pipe.p) == 0.5


def test_controller_accumulators_can_be_reduced_across_ranks():
    ada = _controller(0.5, interval=1)
    ada.accumulate(torch.tensor([[3.0], [-1.0], [2.0], [0.5]]))
    sign_sum, count = ada.accumulators()
    assert (float(sign_sum), float(count)) == (2.0, 4.0)
    seen = []

    def fake_all_reduce(tensor: torch.Tensor) -> None:  # a second rank whose logits were all negative
        seen.append(tensor)
        tensor.add_(-4.0 if tensor is sign_sum else 4.0)

    assert ada.step(reduce=fake_all_reduce)
    assert seen == [sign_sum, count]
    assert ada.r_t == -2.0 / 8.0 and float(ada.pipe.p) < 0.5
    assert [float(t) for t in ada.accumulators()] == [0.0, 0.0]


def test_controller_state_dict_round_trip_resumes_identically():
    logits = torch.randn(30, 16, generator=_gen(9)) + 0.4
    reference = _controller(0.2, interval=3)
    saved = None
    history = []
    for i, batch in enumerate(logits):
        reference.accumulate(batch)
        reference.step()
        history.append((float(reference.pipe.p), reference.r_t))
        if i == 13:  # mid-interval: a pending accumulator must survive the round trip
            buffer = io.BytesIO()
            torch.save({"pipe": reference.pipe.state_dict(), "ada": reference.state_dict()}, buffer)
            saved = buffer.getvalue()
    assert saved is not None
    state = torch.load(io.BytesIO(saved), weights_only=True)
    resumed = _controller(0.9, interval=3)
    resumed.pipe.load_state_dict(state["pipe"])
    resumed.load_state_dict(state["ada"])
    assert float(resumed.accumulators()[1]) == 16.0 * (14 % 3)
    for i, batch in enumerate(logits[14:], start=14):
        resumed.accumulate(batch)
        resumed.step()
        assert (float(resumed.pipe.p), resumed.r_t) == history[i]
    assert resumed.num_updates == reference.num_updates == 10
    assert len({p for p, _ in history[14:]}) > 3  # p kept moving after the resume point


def test_controller_rejects_invalid_settings():
    pipe = AugmentPipe()
    for kwargs in ({"target": 1.5}, {"interval": 0}, {"speed_kimg": 0.0}, {"batch_size": 0}):
        with pytest.raises(ConfigError):
            AdaController(pipe, **{"batch_size": 8, **kwargs})
    with pytest.raises(ConfigError, match="AugmentPipe"):
        AdaController(torch.nn.Identity(), batch_size=8)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="missing"):
        AdaController(pipe, batch_size=8).load_state_dict({"p": 0.1})


def test_controller_repr_shows_parameters():
    text = repr(_controller(0.25))
    assert text == "AdaController(target=0.6, interval=4, speed_kimg=100, batch_size=32, p=0.25, r_t=None)"


# -- colour transforms and the ADA paper's magnitudes -------------------------------------------------


def test_colour_transforms_follow_their_returned_parameters():
    images = _images(64, 2, 8, 8)
    out, params = AugmentPipe("color", p=0.5)(images, _gen(9), return_params=True)
    x = images + params["brightness"][:, None, None, None]
    x = x * params["contrast"][:, None, None, None]
    flip = params["lumaflip"][:, None, None, None]
    expected = torch.where(flip, x - 2 * x.mean(dim=1, keepdim=True), x)
    assert torch.allclose(out, expected, atol=1e-6)
    kept = ~params["transformed"]
    assert kept.any() and torch.equal(out[kept], images[kept])
    assert torch.equal(params["transformed"], params["colored"])


def test_one_channel_luma_flip_negates_and_bgc_draws_the_same_amount_whatever_p():
    image = _images(1, 1, 6, 6)
    assert torch.equal(AugmentPipe("lumaflip", p=1.0)(image, _gen()), -image)
    states = []
    for p in (0.05, 0.95):
        gen = _gen(2)
        AugmentPipe("bgc", p=p)(_images(5, 1, 8, 8), gen)
        states.append(gen.get_state())
    assert torch.equal(*states)


def test_ada_magnitudes_are_the_papers_and_reach_the_trainer():
    from latent_transforms.training import TrainingOptions
    from latent_transforms.training.augment import MAGNITUDES

    assert MAGNITUDES["ada"] == {
        "rotate_max_deg": 180.0,
        "scale_std": 0.2,
        "aniso_std": 0.2,
        "frac_std": 0.125,
    }
    assert MAGNITUDES["latentaugment"]["rotate_max_deg"] == 3.0
    pipe = AugmentPipe("geom", p=1.0, **MAGNITUDES["ada"])
    _, params = pipe(_images(400, 1, 8, 8), _gen(), return_params=True)
    assert params["rotate"].abs().max() > 150  # any angle, not ±3°
    assert abs(float(params["scale"].log2().std()) - 0.2) < 0.03
    with pytest.raises(ConfigError, match="augment_strength"):
        TrainingOptions(augment_strength="strong")
