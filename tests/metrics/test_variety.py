"""Variety as the compressed size of the mean image (Xing et al. 2023): hand cases, direction, streaming."""

from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn.functional as F
from torchvision.io import encode_jpeg, encode_png

from latent_transforms.errors import ConfigError
from latent_transforms.metrics.variety import (
    BYTES_PER_KB,
    PNG_COMPRESSION_LEVEL,
    MeanImageSize,
    encoded_size,
    mean_image_size,
    mean_to_uint8,
)

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torchvision's codecs, used here too


def textures(n: int, spread: int, seed: int, size: int = 48, c: int = 1) -> torch.Tensor:
    """A smooth random texture per channel, rolled by a random shift of up to ``+-spread`` px per image."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(1, c, size // 4, size // 4, generator=g) * 2 - 1
    base = F.interpolate(coarse, size=(size, size), mode="bilinear", align_corners=False)[0]
    shifts = torch.randint(-spread, spread + 1, (n, 2), generator=g)
    return torch.stack([torch.roll(base, (int(dy), int(dx)), dims=(1, 2)) for dy, dx in shifts])


def discs(n: int, spread: float, seed: int, size: int = 48) -> torch.Tensor:
    """Flat bright discs of radius 6 on a dark ground, centres jittered uniformly by ``+-spread`` pixels."""
    g = torch.Generator().manual_seed(seed)
    centres = size / 2 + (torch.rand(n, 1, 2, generator=g) * 2 - 1) * spread
    yy, xx = torch.meshgrid(torch.arange(size).float(), torch.arange(size).float(), indexing="ij")
    d2 = (yy - centres[..., 0, None, None]) ** 2 + (xx - centres[..., 1, None, None]) ** 2
    return torch.where(d2 <= 36.0, 0.8, -0.8)


def png_kb(channel: torch.Tensor) -> float:
    return len(encode_png(channel[None], compression_level=PNG_COMPRESSION_LEVEL)) / BYTES_PER_KB


def test_identical_images_give_the_size_of_that_image():
    g = torch.Generator().manual_seed(0)
    image = torch.rand(2, 24, 24, generator=g) * 2 - 1
    images = image.expand(5, -1, -1, -1)
    metric = MeanImageSize()
    metric.update(images)
    assert torch.equal(metric.mean_image(), image.double())  # the mean of copies is the image itself
    expected = [png_kb(mean_to_uint8(image[c])) for c in range(2)]
    assert mean_image_size(images) == {
        "channel0": expected[0],
        "channel1": expected[1],
        "mean": (expected[0] + expected[1]) / 2,
    }


def test_the_mean_is_mapped_to_uint8_by_rounding_and_clamping():
    assert mean_to_uint8(torch.tensor([-2.0, -1.0, -0.5, 0.0, 0.999, 1.0, 5.0])).tolist() == [
        0,
        0,
        64,  # round(63.75)
        128,  # round(127.5) in float64 rounds half to even: 128
        255,  # round(254.8725)
        255,
        255,
    ]


def test_more_varied_sets_have_smaller_mean_images():
    # Xing et al. 2023: a varied set averages to a blur (small file), a collapsed one keeps its detail (large)
    sizes = [mean_image_size(textures(64, spread, seed=1))["channel0"] for spread in (0, 2, 4, 8, 16)]
    assert all(a > b for a, b in itertools.pairwise(sizes)), sizes


def test_flat_shapes_are_the_documented_exception():
    # PNG codes a sharp two-level image cheaply and a smooth blur of many grey levels dearly, so for
    # textureless shapes more variety gives a LARGER file (see the module docstring)
    assert (
        mean_image_size(discs(64, 0.0, seed=1))["channel0"]
        < mean_image_size(discs(64, 12.0, seed=1))["channel0"]
    )


def test_results_are_per_modality_and_averaged():
    images = torch.cat([textures(32, 0, seed=0), textures(32, 12, seed=1)], dim=1)  # ct varied, mri not
    result = mean_image_size(images, modalities=["mri", "ct"])
    assert set(result) == {"mri", "ct", "mean"}
    assert result["ct"] < result["mri"]
    assert result["mean"] == pytest.approx((result["mri"] + result["ct"]) / 2)
    with pytest.raises(ConfigError, match="2 modality names"):
        mean_image_size(images, modalities=["mri"])
    with pytest.raises(ConfigError, match="1 modality names"):
        mean_image_size(images[:, :1], modalities=["mri", "ct"])  # image channels are never joint


def test_streaming_equals_the_function_on_the_whole_set():
    noise = torch.rand(30, 2, 48, 48, generator=torch.Generator().manual_seed(3)) * 0.1
    images = textures(30, 6, seed=2, c=2) + noise
    metric = MeanImageSize(modalities=["mri", "ct"])
    for chunk in images.split(7):
        metric.update(chunk)
    assert metric.n == 30
    assert metric.compute() == mean_image_size(images, modalities=["mri", "ct"])
    metric.reset()
    assert metric.n == 0
    with pytest.raises(ConfigError, match="update"):
        metric.compute()


def test_jpeg_is_quality_100_and_differs_from_png():
    images = textures(16, 8, seed=0)
    mean = mean_to_uint8(images.double().mean(dim=0))
    result = mean_image_size(images, format="jpeg")
    assert result["channel0"] == len(encode_jpeg(mean, quality=100)) / BYTES_PER_KB
    assert result["channel0"] != mean_image_size(images)["channel0"]
    assert encoded_size(mean[0], "jpeg") == len(encode_jpeg(mean, quality=100))


def test_bad_inputs_are_explained():
    with pytest.raises(ConfigError, match="'png'"):
        MeanImageSize(format="webp")
    metric = MeanImageSize()
    with pytest.raises(ConfigError, match=r"\[B, C, H, W\]"):
        metric.update(torch.zeros(1, 8, 8))
    with pytest.raises(ConfigError, match=r"\[B, C, H, W\]"):
        metric.update(torch.zeros(1, 1, 8, 8, dtype=torch.uint8))
    with pytest.raises(ConfigError, match="finite"):
        metric.update(torch.full((1, 1, 8, 8), float("nan")))
    metric.update(torch.zeros(2, 1, 8, 8))
    with pytest.raises(ConfigError, match="like before"):
        metric.update(torch.zeros(2, 1, 16, 16))
    with pytest.raises(ConfigError, match="uint8 grey image"):
        encoded_size(torch.zeros(2, 8, 8, dtype=torch.uint8))
    assert repr(metric) == "MeanImageSize(modalities=None, format='png', n=2)"


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_images_give_the_cpu_result():
    images = textures(8, 4, seed=0, c=2)
    assert mean_image_size(images.cuda()) == mean_image_size(images)
