"""PSNR and SSIM of images in [-1, 1]: pinned to the closed form and to scikit-image."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from latent_transforms.errors import ConfigError
from latent_transforms.inversion.quality import mse_for_psnr, psnr, ssim

skimage_metrics = pytest.importorskip("skimage.metrics")


def _images(shape: tuple[int, ...], seed: int) -> torch.Tensor:
    return torch.rand(shape, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def _skimage_ssim(a: torch.Tensor, b: torch.Tensor) -> np.ndarray:
    """scikit-image's SSIM per sample and channel, with the convention the projector reports."""
    out = np.zeros(a.shape[:2])
    for i in range(a.shape[0]):
        for c in range(a.shape[1]):
            out[i, c] = skimage_metrics.structural_similarity(
                a[i, c].double().numpy(),
                b[i, c].double().numpy(),
                data_range=2.0,
                gaussian_weights=True,
                sigma=1.5,
                use_sample_covariance=False,
            )
    return out


@pytest.mark.parametrize("size", [32, 11, 16])
def test_ssim_matches_skimage_per_channel(size: int) -> None:
    # 11 px: exactly one valid 11x11 window, the smallest image skimage's Gaussian SSIM accepts here
    a = _images((2, 2, size, size), seed=0)
    noisy = (a + 0.3 * _images((2, 2, size, size), seed=1)).clamp(-1, 1)
    unrelated = _images((2, 2, size, size), seed=2)
    for b in (noisy, unrelated):
        got = ssim(a, b)
        assert got.shape == (2, 2)
        np.testing.assert_allclose(got.numpy(), _skimage_ssim(a, b), atol=1e-4)


def test_ssim_matches_skimage_on_smooth_structured_images() -> None:
    x = torch.linspace(-1, 1, 32)
    a = (torch.sin(3 * x)[:, None] * torch.cos(2 * x)[None, :]).expand(1, 2, 32, 32).contiguous()
    b = (a * 0.8 + 0.05).clone()
    b[:, 1] = a[:, 1].flip(-1)
    np.testing.assert_allclose(ssim(a, b).numpy(), _skimage_ssim(a, b), atol=1e-4)


def test_skimage_rejects_images_smaller_than_its_window() -> None:
    """skimage's Gaussian SSIM needs >= 7 px (and an 11 px window by default): it cannot check 8x8."""
    a = _images((8, 8), seed=0).double().numpy()
    with pytest.raises(ValueError):
        skimage_metrics.structural_similarity(
            a, a, data_range=2.0, gaussian_weights=True, sigma=1.5, use_sample_covariance=False
        )


def test_ssim_on_images_smaller_than_the_window_shrinks_it() -> None:
    a = _images((2, 2, 8, 8), seed=0)
    assert torch.allclose(ssim(a, a), torch.ones(2, 2), atol=1e-6)
    slightly = ssim(a, (a + 0.05 * _images((2, 2, 8, 8), seed=1)).clamp(-1, 1))
    very = ssim(a, _images((2, 2, 8, 8), seed=2))
    assert torch.isfinite(slightly).all() and torch.isfinite(very).all()
    assert (slightly <= 1 + 1e-6).all() and (very >= -1 - 1e-6).all()
    assert (slightly > very).all()
    # a 4 px image still works (the window becomes 4x4, one value)
    tiny = _images((1, 1, 4, 4), seed=3)
    assert torch.allclose(ssim(tiny, tiny), torch.ones(1, 1), atol=1e-6)


def test_ssim_of_identical_images_is_one() -> None:
    a = _images((3, 2, 32, 32), seed=5)
    assert torch.allclose(ssim(a, a), torch.ones(3, 2), atol=1e-6)
    constant = torch.zeros(1, 2, 16, 16)
    assert torch.allclose(ssim(constant, constant), torch.ones(1, 2), atol=1e-6)


def test_ssim_is_symmetric_and_per_channel() -> None:
    a = _images((2, 2, 16, 16), seed=0)
    b = a.clone()
    b[:, 1] = _images((2, 16, 16), seed=1)
    s = ssim(a, b)
    assert torch.allclose(s, ssim(b, a), atol=1e-6)
    assert torch.allclose(s[:, 0], torch.ones(2), atol=1e-6)
    assert (s[:, 1] < 0.5).all()


def test_psnr_equals_closed_form_per_channel() -> None:
    a = _images((2, 3, 16, 16), seed=0)
    b = _images((2, 3, 16, 16), seed=1)
    mse = (a.double() - b.double()).square().mean(dim=(2, 3))
    expected = 10 * torch.log10(4.0 / mse)
    got = psnr(a, b)
    assert got.shape == (2, 3)
    assert torch.allclose(got.double(), expected, atol=1e-4)


def test_psnr_of_a_known_offset() -> None:
    x = torch.zeros(1, 2, 8, 8)
    y = x.clone()
    y[:, 0] += 0.02  # MSE 4e-4 -> 40 dB
    y[:, 1] += 0.2  # MSE 4e-2 -> 20 dB
    assert torch.allclose(psnr(x, y), torch.tensor([[40.0, 20.0]]), atol=1e-4)
    # another data range: 10 log10(1 / 4e-4)
    assert math.isclose(float(psnr(x, y, data_range=1.0)[0, 0]), 10 * math.log10(1 / 4e-4), abs_tol=1e-4)
    assert mse_for_psnr(40.0) == pytest.approx(4e-4)


def test_psnr_is_inf_for_identical_images() -> None:
    a = _images((2, 2, 8, 8), seed=0)
    b = a.clone()
    b[1, 1, 0, 0] += 0.1
    p = psnr(a, b)
    assert torch.isinf(p[0]).all() and (p[0] > 0).all()
    assert torch.isinf(p[1, 0]) and torch.isfinite(p[1, 1])


@pytest.mark.parametrize("metric", [psnr, ssim])
@pytest.mark.parametrize(
    ("x_shape", "y_shape"),
    [((2, 8, 8), (2, 8, 8)), ((1, 2, 8, 8), (1, 2, 8, 9)), ((1, 2, 8, 8), (2, 2, 8, 8))],
)
def test_shape_errors_raise_config_error(metric, x_shape, y_shape) -> None:
    with pytest.raises(ConfigError, match=r"\[B, C, H, W\]"):
        metric(torch.zeros(x_shape), torch.zeros(y_shape))
