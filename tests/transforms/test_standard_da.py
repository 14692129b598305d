"""StandardDA: shapes and ranges, p, paired channels and masks, seeding, each component against a reference
(torch.flip, torchvision's rotate / affine, ramp images), the elastic magnitude and its scaling,
torchvision v2 composition with masks and the parameter checks (pickling and DataLoader workers: the
contract every transform passes, test_contract.py)."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings as hsettings, strategies as st
from torchvision import tv_tensors
from torchvision.transforms import InterpolationMode, v2
from torchvision.transforms.v2 import functional as tvf

from latent_transforms.errors import ConfigError
from latent_transforms.transforms.base import RandomTransform
from latent_transforms.transforms.standard_da import StandardDA

ONLY_FLIP = dict(flip=True, rotate=0, translate=0, elastic=None)
ONLY_ROTATE = dict(flip=False, rotate=20.0, translate=0, elastic=None)
ONLY_TRANSLATE = dict(flip=False, rotate=0, translate=0.2, elastic=None)
ONLY_ELASTIC = dict(flip=False, rotate=0, translate=0)
DTYPES = [torch.float32, torch.float64, torch.uint8, torch.int16]


def _image(shape: tuple[int, ...], dtype: torch.dtype, seed: int) -> torch.Tensor:
    """Random values in a dtype-typical range: 0-255 for uint8, HU-like for int16, signed floats."""
    g = torch.Generator().manual_seed(seed)
    if dtype == torch.uint8:
        return torch.randint(0, 256, shape, generator=g, dtype=torch.uint8)
    if dtype == torch.int16:
        return torch.randint(-1000, 2000, shape, generator=g, dtype=torch.int16)
    return (torch.randn(shape, generator=g, dtype=torch.float64) * 300.0 + 50.0).to(dtype)


def _ramps(batch: int, height: int, width: int) -> torch.Tensor:
    """Channel 0: the column index; channel 1: the row index. Bilinear resampling of a ramp returns the
    sampling position itself, so ``out - in`` is the displacement in pixels wherever it reads inside."""
    ys, xs = torch.meshgrid(
        torch.arange(height, dtype=torch.float32), torch.arange(width, dtype=torch.float32), indexing="ij"
    )
    return torch.stack([xs, ys])[None].repeat(batch, 1, 1, 1)


# ----------------------------------------------------------------------------- shapes, dtypes, ranges


@hsettings(max_examples=40)
@given(
    dtype=st.sampled_from(DTYPES),
    batched=st.booleans(),
    batch=st.integers(1, 3),
    channels=st.integers(1, 3),
    height=st.integers(4, 24),
    width=st.integers(4, 24),
    seed=st.integers(0, 2**31 - 1),
)
def test_shape_dtype_device_and_per_channel_range_are_kept(
    dtype, batched, batch, channels, height, width, seed
):
    shape = (batch, channels, height, width) if batched else (channels, height, width)
    x = _image(shape, dtype, seed)
    y = StandardDA(p=1.0, rotate=30.0, translate=0.3, seed=seed)(x)
    assert y.shape == x.shape and y.dtype == x.dtype and y.device == x.device
    xb, yb = (x, y) if batched else (x[None], y[None])
    lo = xb.amin(dim=(2, 3)).double()
    hi = xb.amax(dim=(2, 3)).double()
    tol = 0.0 if not dtype.is_floating_point else 1e-6 * (hi.abs().max().item() + 1.0)
    assert (yb.amin(dim=(2, 3)).double() >= lo - tol).all()
    assert (yb.amax(dim=(2, 3)).double() <= hi + tol).all()


def test_background_fill_is_each_samples_per_channel_minimum_or_the_given_number():
    x = torch.full((2, 2, 16, 16), 100.0)
    x[:, 0, 0, 0] = 0.0  # MRI background
    x[:, 1, 0, 0] = -1000.0  # CT air
    x[1, 1, 0, 0] = -500.0  # another sample's own minimum
    t = StandardDA(p=1.0, **{**ONLY_TRANSLATE, "translate": 0.45}, seed=0)
    y = t(x)
    shift = t.last_params["shift"]
    assert (shift.abs() > 0.1).all(), "this seed must draw visible shifts on both axes"
    # A corner pixel on the side the content moved away from reads from outside the image.
    row = 0 if shift[0, 1] > 0 else 15
    col = 0 if shift[0, 0] > 0 else 15
    assert y[0, :, row, col].tolist() == [0.0, -1000.0]
    row = 0 if shift[1, 1] > 0 else 15
    col = 0 if shift[1, 0] > 0 else 15
    assert y[1, :, row, col].tolist() == [0.0, -500.0]
    fixed = StandardDA(p=1.0, **{**ONLY_TRANSLATE, "translate": 0.45}, fill=7.0, seed=0)(x)
    assert fixed[0, :, 0 if shift[0, 1] > 0 else 15, 0 if shift[0, 0] > 0 else 15].tolist() == [7.0, 7.0]


# ----------------------------------------------------------------------------- p


def test_p_zero_returns_the_input_itself():
    x = torch.rand(3, 2, 8, 8)
    t = StandardDA(p=0.0, seed=0)
    assert t(x) is x
    single = x[0]
    assert t(single) is single
    image, mask = tv_tensors.Image(x), tv_tensors.Mask(torch.ones(3, 1, 8, 8, dtype=torch.int64))
    out = t({"image": image, "mask": mask})
    assert out["image"] is image and out["mask"] is mask


def test_p_one_changes_every_sample_and_p_picks_about_that_fraction():
    x = torch.rand(8, 2, 16, 16, generator=torch.Generator().manual_seed(0))
    y = StandardDA(p=1.0, seed=1)(x)
    assert all(not torch.equal(y[i], x[i]) for i in range(8))
    t = StandardDA(p=0.3, seed=2)
    chosen = sum(int(t.params_for(torch.zeros(100, 1, 4, 4))["apply"].sum()) for _ in range(10))
    assert 230 <= chosen <= 370  # 1000 Bernoulli(0.3) draws: mean 300, sd 14.5
    y = t(x)
    changed = torch.tensor([not torch.equal(y[i], x[i]) for i in range(8)])
    assert torch.equal(changed, t.last_params["apply"])


def test_default_p_is_one_minus_the_papers_p_aug():
    assert StandardDA().p == pytest.approx(1 - 0.9)


# ----------------------------------------------------------------------------- paired channels and masks


@hsettings(max_examples=25)
@given(
    dtype=st.sampled_from(DTYPES),
    channels=st.integers(2, 3),
    size=st.integers(5, 20),
    seed=st.integers(0, 2**31 - 1),
)
def test_equal_channels_get_identical_geometry(dtype, channels, size, seed):
    one = _image((2, 1, size, size), dtype, seed)
    y = StandardDA(p=1.0, rotate=15.0, translate=0.2, seed=seed)(one.repeat(1, channels, 1, 1))
    for c in range(1, channels):
        assert torch.equal(y[:, c], y[:, 0])


def _phantom_with_mask(batch: int, size: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """An (MRI, CT) batch with air background and a few bright ellipses, and their label mask (0, 3, 7)."""
    g = torch.Generator().manual_seed(seed)
    ys, xs = torch.meshgrid(torch.arange(size) - size / 2, torch.arange(size) - size / 2, indexing="ij")
    image = torch.empty(batch, 2, size, size)
    image[:, 0], image[:, 1] = 0.0, -1000.0
    mask = torch.zeros(batch, 1, size, size, dtype=torch.int64)
    for b in range(batch):
        for label in (3, 7):
            cx, cy = (torch.rand(2, generator=g) - 0.5) * size * 0.5
            rx, ry = (torch.rand(2, generator=g) * 0.15 + 0.1) * size
            inside = ((xs - cx) / rx) ** 2 + ((ys - cy) / ry) ** 2 <= 1
            mask[b, 0][inside] = label
            image[b, 0][inside] = 100.0 * label
            image[b, 1][inside] = 40.0 * label
    return image, mask


@pytest.mark.parametrize("call", ["dict", "tuple"])
def test_mask_follows_the_image_geometry_and_keeps_its_labels(call):
    image, mask = _phantom_with_mask(4, 32, seed=3)
    t = StandardDA(p=1.0, rotate=20.0, translate=0.15, elastic_alpha=6.0, seed=4)
    if call == "dict":
        out = t({"image": tv_tensors.Image(image), "mask": tv_tensors.Mask(mask)})
        y, m = out["image"], out["mask"]
    else:
        y, m = t(tv_tensors.Image(image), tv_tensors.Mask(mask))
    assert isinstance(y, tv_tensors.Image) and isinstance(m, tv_tensors.Mask)
    assert m.dtype == torch.int64 and m.shape == mask.shape
    assert set(torch.unique(m).tolist()) <= {0, 3, 7}
    assert not torch.equal(m, mask)
    background = torch.tensor([0.0, -1000.0]).view(1, 2, 1, 1)
    foreground = (y - background).abs().amin(dim=1, keepdim=True) > 1.0
    # Nearest reads the neighbour with the largest bilinear weight (>= 1/4): a labelled mask pixel always
    # has foreground under it in the image.
    assert foreground[m != 0].all()
    agree = ((m != 0) == foreground).float().mean().item()
    assert agree > 0.95
    # And the labels land where the image has that label's intensities.
    for label in (3, 7):
        at = (m == label).expand_as(y) & (torch.arange(2).view(1, 2, 1, 1) == 0)
        assert (y[at] - 100.0 * label).abs().median() < 1.0


def test_mask_with_flip_alone_is_exactly_mirrored():
    image, mask = _phantom_with_mask(6, 16, seed=1)
    t = StandardDA(p=1.0, **ONLY_FLIP, seed=0)
    _, m = t(tv_tensors.Image(image), tv_tensors.Mask(mask))
    flip = t.last_params["flip"]
    assert flip.any() and not flip.all()
    expected = torch.where(flip.view(-1, 1, 1, 1), mask.flip(-1), mask)
    assert torch.equal(m.as_subclass(torch.Tensor), expected)


def test_single_image_with_a_channel_less_mask():
    image, mask = _phantom_with_mask(1, 16, seed=2)
    seed = next(s for s in range(20) if StandardDA(**ONLY_FLIP, seed=s).params_for(image[0])["flip"][0])
    t = StandardDA(p=1.0, **ONLY_FLIP, seed=seed)
    y, m = t(tv_tensors.Image(image[0]), tv_tensors.Mask(mask[0, 0]))
    assert bool(t.last_params["flip"][0])
    assert m.shape == (16, 16) and m.dtype == torch.int64
    assert torch.equal(m.as_subclass(torch.Tensor), mask[0, 0].flip(-1))
    assert torch.equal(y.as_subclass(torch.Tensor), image[0].flip(-1))


# ----------------------------------------------------------------------------- seeding


def test_seeded_runs_are_bit_identical_on_cpu():
    x = torch.rand(5, 2, 24, 24, generator=torch.Generator().manual_seed(0))
    a = StandardDA(p=0.7, seed=11)(x)
    b = StandardDA(p=0.7, seed=11)(x)
    assert torch.equal(a, b)
    t = StandardDA(p=0.7, seed=11)
    first, second = t(x), t(x)
    assert torch.equal(first, a) and not torch.equal(first, second)
    assert torch.equal(t.set_random_state(11)(x), a)
    assert not torch.equal(StandardDA(p=0.7, seed=12)(x), a)
    torch.manual_seed(5)
    c = StandardDA(p=0.7)(x)
    torch.manual_seed(5)
    assert torch.equal(StandardDA(p=0.7)(x), c)


def test_params_come_only_from_the_generator_and_apply_batch_draws_nothing():
    t = StandardDA(seed=0)
    p1 = t.draw_params(4, torch.Generator().manual_seed(9))
    torch.manual_seed(123)  # the global RNG must not matter
    p2 = t.draw_params(4, torch.Generator().manual_seed(9))
    assert p1.keys() == p2.keys() == {"flip", "angle", "shift", "noise"}
    assert all(torch.equal(p1[k], p2[k]) for k in p1)
    x = torch.rand(4, 2, 16, 16)
    own = t.generator.get_state()
    glob = torch.get_rng_state()
    a = t.apply_batch(x, p1, "image")
    b = t.apply_batch(x, p1, "image")
    assert torch.equal(a, b)
    assert torch.equal(t.generator.get_state(), own) and torch.equal(torch.get_rng_state(), glob)


def test_single_image_path_is_the_batch_path_with_one_sample():
    x = torch.rand(2, 20, 20, generator=torch.Generator().manual_seed(1))
    single = StandardDA(p=1.0, seed=3)(x)
    batched = StandardDA(p=1.0, seed=3)(x[None])
    assert single.shape == x.shape and torch.equal(single, batched[0])


def test_samples_of_a_batch_get_their_own_draws():
    t = StandardDA(p=1.0, seed=0)
    y = t(torch.rand(1, 1, 16, 16).repeat(6, 1, 1, 1))
    params = t.last_params
    assert len(set(params["angle"].tolist())) == 6 and len(set(params["shift"][:, 0].tolist())) == 6
    assert all(not torch.equal(y[0], y[i]) for i in range(1, 6))


# ----------------------------------------------------------------------------- each component


@pytest.mark.parametrize("size", [(16, 16), (8, 32), (10, 14)])
def test_flip_alone_equals_torch_flip_on_the_flipped_samples(size):
    x = torch.rand(8, 2, *size, generator=torch.Generator().manual_seed(0))
    t = StandardDA(p=1.0, **ONLY_FLIP, seed=1)
    y = t(x)
    flip = t.last_params["flip"]
    assert flip.any() and not flip.all()
    expected = torch.where(flip.view(-1, 1, 1, 1), x.flip(-1), x)
    if all(s & (s - 1) == 0 for s in size):  # power-of-two sizes: exactly
        assert torch.equal(y, expected)
    else:
        torch.testing.assert_close(y, expected, atol=1e-5, rtol=0)


@pytest.mark.parametrize("size", [(32, 32), (20, 36)])
def test_pure_translation_moves_content_by_the_drawn_shift(size):
    height, width = size
    x = _ramps(6, height, width)
    t = StandardDA(p=1.0, **ONLY_TRANSLATE, seed=2)
    y = t(x)
    shift = t.last_params["shift"]  # (x, y) fractions of (width, height)
    dx = (shift[:, 0] * width).view(-1, 1, 1)
    dy = (shift[:, 1] * height).view(-1, 1, 1)
    src_x, src_y = x[:, 0] - dx, x[:, 1] - dy
    inside = (src_x >= 0) & (src_x <= width - 1) & (src_y >= 0) & (src_y <= height - 1)
    assert inside.float().mean() > 0.5
    torch.testing.assert_close(y[:, 0][inside], src_x[inside], atol=1e-4, rtol=0)
    torch.testing.assert_close(y[:, 1][inside], src_y[inside], atol=1e-4, rtol=0)


def test_rotation_matches_torchvision_rotate_and_keeps_the_centre():
    x = torch.rand(4, 2, 33, 33, generator=torch.Generator().manual_seed(0))
    x[:, :, 0, 0] = 0.0  # min 0, so the background fill equals torchvision's zero fill
    t = StandardDA(p=1.0, **ONLY_ROTATE, seed=3)
    y = t(x)
    angles = t.last_params["angle"]
    assert (angles.abs() > 1.0).all() and (angles.abs() <= 20.0).all()
    for b in range(4):
        ref = tvf.rotate(x[b], float(angles[b]), interpolation=InterpolationMode.BILINEAR)
        torch.testing.assert_close(y[b], ref, atol=1e-4, rtol=0)
    # The centre pixel of an odd-sized image maps to itself; its neighbours move.
    torch.testing.assert_close(y[:, :, 16, 16], x[:, :, 16, 16], atol=1e-5, rtol=0)
    assert not torch.allclose(y[:, :, 16, 8], x[:, :, 16, 8], atol=1e-3)


def test_rotation_leaves_a_radially_symmetric_image_almost_unchanged():
    size = 32
    c = (size - 1) / 2
    ys, xs = torch.meshgrid(torch.arange(size) - c, torch.arange(size) - c, indexing="ij")
    disc = torch.exp(-(xs**2 + ys**2) / (2 * 6.0**2))[None, None].repeat(3, 1, 1, 1)
    y = StandardDA(p=1.0, **{**ONLY_ROTATE, "rotate": 90.0}, seed=0)(disc)
    inscribed = (xs**2 + ys**2 <= (c - 1) ** 2).expand_as(disc)  # corners may read from outside
    torch.testing.assert_close(y[inscribed], disc[inscribed], atol=1e-2, rtol=0)  # bilinear error only
    ramp = (xs / size)[None, None].repeat(3, 1, 1, 1)
    assert (StandardDA(p=1.0, **{**ONLY_ROTATE, "rotate": 90.0}, seed=0)(ramp) - ramp).abs().max() > 0.1


@pytest.mark.parametrize("size", [(32, 32), (24, 40)])
def test_flip_rotate_translate_compose_like_torchvision_in_the_papers_order(size):
    height, width = size
    x = torch.rand(6, 2, height, width, generator=torch.Generator().manual_seed(1))
    x[:, :, 0, 0] = 0.0
    t = StandardDA(p=1.0, flip=True, rotate=25.0, translate=0.2, elastic=None, seed=5)
    y = t(x)
    params = t.last_params
    for b in range(6):
        flipped = x[b].flip(-1) if params["flip"][b] else x[b]
        ref = tvf.affine(  # torchvision's affine angle is clockwise, rotate's (and ours) counter-clockwise
            flipped,
            angle=-float(params["angle"][b]),
            translate=[float(params["shift"][b, 0]) * width, float(params["shift"][b, 1]) * height],
            scale=1.0,
            shear=[0.0, 0.0],
            interpolation=InterpolationMode.BILINEAR,
        )
        torch.testing.assert_close(y[b], ref, atol=1e-4, rtol=0)


def _displacement_px(t: StandardDA, params: dict, batch: int, height: int, width: int) -> torch.Tensor:
    """The elastic displacement of ``params`` in pixels, ``[batch, H, W, 2]`` (x, y)."""
    grid = t.sampling_grid(params, batch, height, width)
    identity = t.sampling_grid({}, batch, height, width)
    return (grid - identity) * torch.tensor([width / 2, height / 2])


def test_elastic_displacement_is_what_the_image_shows_and_scales_with_alpha():
    x = _ramps(4, 48, 48)
    t1 = StandardDA(p=1.0, **ONLY_ELASTIC, elastic_alpha=2.0, seed=7)
    t3 = StandardDA(p=1.0, **ONLY_ELASTIC, elastic_alpha=6.0, seed=7)
    y1, y3 = t1(x), t3(x)
    params = t1.last_params
    assert torch.equal(params["noise"], t3.last_params["noise"])
    d1 = _displacement_px(t1, params, 4, 48, 48)
    d3 = _displacement_px(t3, params, 4, 48, 48)
    torch.testing.assert_close(d3, 3.0 * d1, atol=1e-4, rtol=1e-4)
    assert d1.abs().max() > 0.1
    for y, d in ((y1, d1), (y3, d3)):
        src = x.permute(0, 2, 3, 1) + d  # the (x, y) pixel each output pixel reads
        inside = ((src >= 0) & (src <= 47)).all(-1)
        torch.testing.assert_close(y.permute(0, 2, 3, 1)[inside], src[inside], atol=1e-3, rtol=0)
    assert ((y3 - x).abs().mean() > 2.5 * (y1 - x).abs().mean()).item()


def test_elastic_alpha_is_the_displacement_standard_deviation_in_pixels_at_256():
    t = StandardDA(p=1.0, **ONLY_ELASTIC, elastic_alpha=2.0, seed=0)
    params = t.draw_params(16, torch.Generator().manual_seed(1))
    d = _displacement_px(t, params, 16, 256, 256)
    assert 1.8 < d.std().item() < 2.2
    assert 1.7 < d[:, :24].std().item() < 2.3  # the borders move as much as the middle
    assert abs(d.mean().item()) < 0.3
    # Smooth: neighbouring pixels move alike (blurred white noise of std 2 px would jump by several px).
    assert (d[:, :, 1:] - d[:, :, :-1]).abs().max() < 0.8
    assert (d[:, 1:] - d[:, :-1]).abs().max() < 0.8


def test_elastic_deformation_is_the_same_at_every_resolution():
    t = StandardDA(p=1.0, **ONLY_ELASTIC, elastic_alpha=4.0, seed=0)
    params = t.draw_params(3, torch.Generator().manual_seed(2))
    d64 = _displacement_px(t, params, 3, 64, 64)
    d256 = _displacement_px(t, params, 3, 256, 256)
    # The displacement in pixels scales with the side; as a fraction of the image it is the same field.
    pooled = torch.nn.functional.avg_pool2d(d256.permute(0, 3, 1, 2), 4).permute(0, 2, 3, 1)
    torch.testing.assert_close(pooled, 4.0 * d64, atol=1e-3, rtol=0)
    assert 0.7 < d64.std().item() / (4.0 * 64 / 256) < 1.3


def test_each_component_can_be_switched_off():
    x = torch.rand(3, 2, 16, 16)
    for off in (False, None, 0):
        t = StandardDA(p=1.0, flip=off, rotate=off, translate=off, elastic=off, seed=0)
        assert t.draw_params(3, torch.Generator().manual_seed(0)) == {}
        assert torch.equal(t(x), x)
    g = torch.Generator
    assert "flip" not in StandardDA(flip=False, seed=0).draw_params(2, g().manual_seed(0))
    assert "angle" not in StandardDA(rotate=0, seed=0).draw_params(2, g().manual_seed(0))
    assert "shift" not in StandardDA(translate=None, seed=0).draw_params(2, g().manual_seed(0))
    assert "noise" not in StandardDA(elastic=False, seed=0).draw_params(2, g().manual_seed(0))
    assert "noise" not in StandardDA(elastic_alpha=0.0, seed=0).draw_params(2, g().manual_seed(0))


# ----------------------------------------------------------------------------- torchvision


def test_works_inside_v2_compose_and_random_apply():
    image, mask = _phantom_with_mask(2, 16, seed=0)
    sample = {"image": tv_tensors.Image(image), "mask": tv_tensors.Mask(mask)}
    direct = StandardDA(p=1.0, seed=3)(sample)
    composed = v2.Compose([StandardDA(p=1.0, seed=3), v2.ToDtype(torch.float32)])(sample)
    assert isinstance(composed["image"], tv_tensors.Image) and isinstance(composed["mask"], tv_tensors.Mask)
    assert torch.equal(composed["image"], direct["image"]) and torch.equal(composed["mask"], direct["mask"])
    applied = v2.RandomApply([StandardDA(p=1.0, seed=3)], p=1.0)(sample)
    assert torch.equal(applied["image"], direct["image"]) and torch.equal(applied["mask"], direct["mask"])
    skipped = v2.RandomApply([StandardDA(p=1.0, seed=3)], p=0.0)(sample)
    assert torch.equal(skipped["image"], image)
    assert isinstance(StandardDA(), RandomTransform) and isinstance(StandardDA(), v2.Transform)


@pytest.mark.cuda
def test_cuda_batch_matches_cpu_and_never_waits_for_the_device():
    t = StandardDA(p=1.0, seed=0)
    x = torch.rand(16, 2, 64, 64, generator=torch.Generator().manual_seed(0))
    params = t.draw_params(16, torch.Generator().manual_seed(1))
    cpu = t.apply_batch(x, params, "image")
    xc = x.cuda()
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        gpu = t.apply_batch(xc, params, "image")
        mask = t.apply_batch((xc > 0.5).float(), params, "mask")
    finally:
        torch.cuda.set_sync_debug_mode("default")
    torch.testing.assert_close(gpu.cpu(), cpu, atol=1e-4, rtol=0)
    assert mask.device.type == "cuda"
    out = StandardDA(p=1.0, seed=0)(xc)
    assert out.device.type == "cuda" and out.shape == x.shape


# ----------------------------------------------------------------------------- parameters


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"rotate": -1.0}, "rotate"),
        ({"rotate": 200.0}, "rotate"),
        ({"rotate": True}, "rotate"),
        ({"translate": 0.5}, "translate"),
        ({"translate": -0.05}, "translate"),
        ({"elastic": (64, 32.0)}, "odd"),
        ({"elastic": (1, 1.0)}, "odd"),
        ({"elastic": (63, 0.0)}, "sigma"),
        ({"elastic": (63,)}, "kernel_size, sigma"),
        ({"elastic": "deform"}, "kernel_size, sigma"),
        ({"elastic_alpha": -1.0}, "elastic_alpha"),
        ({"elastic_alpha": math.inf}, "elastic_alpha"),
        ({"fill": "max"}, "fill"),
        ({"fill": math.nan}, "fill"),
        ({"flip": 0.5}, "flip"),
        ({"p": 1.5}, "probability"),
        ({"p": -0.1}, "probability"),
    ],
)
def test_invalid_parameters_raise_a_clear_config_error(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        StandardDA(**kwargs)


def test_invalid_inputs_are_refused():
    t = StandardDA(p=1.0, seed=0)
    with pytest.raises(ConfigError, match="NaN"):
        t(torch.full((1, 2, 8, 8), math.nan))
    with pytest.raises(ConfigError, match="5-D"):
        t(torch.zeros(1, 1, 2, 8, 8))
    with pytest.raises(ConfigError, match="empty"):
        t(torch.zeros(0, 2, 8, 8))


def test_repr_shows_every_constructor_parameter():
    assert repr(StandardDA(seed=0)) == (
        "StandardDA(p=0.1, flip=True, rotate=3.0, translate=0.05, elastic=(63, 32.0), elastic_alpha=2.0, "
        "fill='min', seed=0, device=None)"
    )
    t = StandardDA(flip=None, rotate=0, translate=0.1, elastic=[31, 8], fill=-1000, p=1, seed=3, device="cpu")
    assert repr(t) == (
        "StandardDA(p=1.0, flip=False, rotate=0.0, translate=0.1, elastic=(31, 8.0), elastic_alpha=2.0, "
        "fill=-1000.0, seed=3, device='cpu')"
    )


# ----------------------------------------------------------------------------- boxes and key points


def _read_at(image: torch.Tensor, points_xy: torch.Tensor) -> torch.Tensor:
    """``image`` ``[C, H, W]`` sampled bilinearly at (x, y) pixel-index positions: ``[N, C]``."""
    height, width = image.shape[-2:]
    x, y = points_xy[:, 0], points_xy[:, 1]
    grid = torch.stack([(2 * x + 1) / width - 1, (2 * y + 1) / height - 1], dim=-1)[None, None]
    return torch.nn.functional.grid_sample(image[None], grid, align_corners=False)[0, :, 0].T


@pytest.mark.parametrize("seed", range(4))
def test_key_points_land_where_the_image_moved_them_elastic_included(seed):
    size = 64
    ramps = tv_tensors.Image(_ramps(1, size, size)[0])  # channel 0: the column, 1: the row it came from
    start = torch.tensor([[37.0, 24.0], [20.5, 40.25], [31.5, 31.5]])
    points = tv_tensors.KeyPoints(start, canvas_size=(size, size))
    t = StandardDA(p=1.0, rotate=20.0, translate=0.1, elastic_alpha=8.0, seed=seed)
    out, moved = t(ramps, points)
    assert isinstance(moved, tv_tensors.KeyPoints) and moved.shape == points.shape
    # The output at a moved point read the input where the point was: the ramps say where.
    came_from = _read_at(out.as_subclass(torch.Tensor), moved.as_subclass(torch.Tensor))
    torch.testing.assert_close(came_from, start, atol=0.05, rtol=0)
    assert float((moved - start).abs().sum(dim=1).max()) > 1.0  # they did move (the centre may stay)


@pytest.mark.parametrize("fmt", ["XYXY", "XYWH", "CXCYWH"])
def test_flip_alone_moves_boxes_and_points_as_torchvision_does(fmt):
    seed = next(
        s for s in range(20) if StandardDA(**ONLY_FLIP, seed=s).params_for(torch.zeros(1, 8, 8))["flip"][0]
    )
    xyxy = torch.tensor([[1.0, 2.0, 5.0, 7.0], [0.0, 0.0, 3.0, 3.0]])
    boxes = tv_tensors.BoundingBoxes(
        tvf.convert_bounding_box_format(xyxy, old_format="XYXY", new_format=fmt),
        format=fmt,
        canvas_size=(8, 12),
    )
    points = tv_tensors.KeyPoints(torch.tensor([[1.0, 2.0], [11.0, 7.0]]), canvas_size=(8, 12))
    image = tv_tensors.Image(torch.rand(2, 8, 12))
    out, moved_boxes, moved_points = StandardDA(p=1.0, **ONLY_FLIP, seed=seed)(image, boxes, points)
    torch.testing.assert_close(out, tvf.horizontal_flip(image), atol=1e-5, rtol=0)
    torch.testing.assert_close(moved_boxes, tvf.horizontal_flip(boxes), atol=1e-4, rtol=0)
    torch.testing.assert_close(moved_points, tvf.horizontal_flip(points), atol=1e-4, rtol=0)
    assert moved_boxes.format == boxes.format and moved_boxes.canvas_size == boxes.canvas_size


@pytest.mark.parametrize("seed", range(3))
def test_a_box_becomes_the_enclosing_box_of_the_moved_object(seed):
    size = 48
    mask = torch.zeros(1, size, size)
    mask[:, 14:26, 18:34] = 1.0  # rows 14-25, cols 18-33: the box XYXY [18, 14, 34, 26] in edge space
    boxes = tv_tensors.BoundingBoxes([[18.0, 14.0, 34.0, 26.0]], format="XYXY", canvas_size=(size, size))
    t = StandardDA(p=1.0, rotate=30.0, translate=0.1, elastic=None, seed=seed)
    _, moved_mask, moved_boxes = t(tv_tensors.Image(mask.clone()), tv_tensors.Mask(mask), boxes)
    rows, cols = moved_mask[0].nonzero(as_tuple=True)
    extent = torch.tensor([cols.min(), rows.min(), cols.max() + 1, rows.max() + 1], dtype=torch.float32)
    torch.testing.assert_close(moved_boxes[0], extent, atol=1.5, rtol=0)  # a pixel of nearest-neighbour slack
    assert not torch.allclose(moved_boxes, boxes.as_subclass(torch.Tensor))


def test_annotations_pass_through_when_not_drawn_and_are_refused_with_a_fix_otherwise():
    boxes = tv_tensors.BoundingBoxes([[1.0, 1.0, 4.0, 4.0]], format="XYXY", canvas_size=(8, 8))
    points = tv_tensors.KeyPoints([[2.0, 3.0]], canvas_size=(8, 8))
    image = tv_tensors.Image(torch.rand(1, 8, 8))
    _, same_boxes, same_points = StandardDA(p=0.0, seed=0)(image, boxes, points)
    assert same_boxes is boxes and same_points is points
    with pytest.raises(ConfigError, match="no sample index"):
        StandardDA(p=1.0, seed=0)(tv_tensors.Image(torch.rand(2, 1, 8, 8)), boxes)
    with pytest.raises(ConfigError, match="canvas_size"):
        StandardDA(p=1.0, seed=0)(tv_tensors.Image(torch.rand(1, 16, 16)), points)
    out = v2.Compose([StandardDA(p=1.0, seed=0)])({"image": image, "boxes": boxes, "points": points})
    assert isinstance(out["boxes"], tv_tensors.BoundingBoxes) and isinstance(
        out["points"], tv_tensors.KeyPoints
    )


def test_transforms_that_make_new_images_refuse_annotations_with_a_clear_message():
    class MakesNewImages(RandomTransform):
        needs_generator_range = False

        def apply_batch(self, x, params, kind):
            return torch.zeros_like(x)

    boxes = tv_tensors.BoundingBoxes([[1.0, 1.0, 4.0, 4.0]], format="XYXY", canvas_size=(8, 8))
    with pytest.raises(ConfigError, match="BoundingBoxes cannot follow"):
        MakesNewImages(p=1.0, seed=0)(tv_tensors.Image(torch.rand(1, 8, 8)), boxes)
