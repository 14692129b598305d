"""Per-slice MAE / body MAE / PSNR / SSIM against hand-computed cases and torchmetrics / scikit-image, and
the streaming PairedImageMetrics against the functions."""

from __future__ import annotations

import math
import sys

import numpy as np
import pytest
import torch

from latent_transforms.data.items import BODY_THRESHOLD_HU
from latent_transforms.data.windows import IntensityWindow
from latent_transforms.errors import ConfigError, FeatureNetworkUnavailableError
from latent_transforms.metrics.lpips import lpips_distance
from latent_transforms.metrics.paired import PairedImageMetrics, body_mae, mae, psnr, ssim

CT = IntensityWindow(-1000.0, 2000.0, "HU")


def ct_pair(b: int = 3, size: int = 24, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """A CT-like reference (air around a smooth body) and a noisy prediction, in HU."""
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, size), torch.linspace(-1, 1, size), indexing="ij")
    body = (xx**2 + yy**2 < 0.6).float()
    tissue = 40.0 + 300.0 * torch.rand(b, size, size, generator=g)
    target = torch.where(body.bool(), tissue, torch.full_like(tissue, -1000.0))
    pred = target + 60.0 * torch.randn(b, size, size, generator=g)
    return pred, target


# -- MAE and body MAE -----------------------------------------------------------------------------


def test_mae_is_the_mean_absolute_difference_per_slice():
    pred = torch.tensor([[[1.0, -2.0], [3.0, 4.0]], [[0.0, 0.0], [0.0, 8.0]]])
    target = torch.zeros(2, 2, 2)
    assert mae(pred, target).tolist() == [2.5, 2.0]
    assert mae(pred[:, None], target[:, None]).tolist() == [2.5, 2.0]  # [B, 1, H, W] too
    assert mae(pred, target).dtype == torch.float64


def test_mae_with_a_mask_averages_only_the_masked_pixels_and_gives_nan_for_an_empty_mask():
    pred = torch.tensor([[[1.0, -2.0], [3.0, 4.0]], [[5.0, 5.0], [5.0, 5.0]]])
    mask = torch.tensor([[[1, 1], [0, 0]], [[0, 0], [0, 0]]])
    result = mae(pred, torch.zeros(2, 2, 2), mask=mask)
    assert result[0].item() == (1.0 + 2.0) / 2
    assert math.isnan(result[1].item())
    assert mae(pred, torch.zeros(2, 2, 2), mask=mask.bool()[:, None])[0].item() == 1.5


def test_body_mae_uses_the_reference_mask_above_the_threshold():
    target = torch.tensor([[[-1000.0, -500.0], [-499.0, 200.0]]])
    pred = torch.tensor([[[0.0, 0.0], [-489.0, 180.0]]])  # errors outside the body must not count
    assert body_mae(pred, target).tolist() == [(10.0 + 20.0) / 2]  # -500 itself is not > -500
    assert BODY_THRESHOLD_HU == -500.0
    assert body_mae(pred, target, threshold=0.0).tolist() == [20.0]
    expected = mae(pred, target, mask=target > -500.0)
    assert torch.equal(body_mae(pred, target), expected)


def test_body_mae_of_a_slice_without_body_is_nan():
    target = torch.full((2, 4, 4), -1000.0)
    target[0, 1, 1] = 100.0
    pred = target + 5.0
    result = body_mae(pred, target)
    assert result[0].item() == 5.0 and math.isnan(result[1].item())


# -- PSNR and SSIM against references -------------------------------------------------------------


def test_psnr_matches_torchmetrics_per_slice():
    tm = pytest.importorskip("torchmetrics.functional.image")
    pred, target = ct_pair()
    ours = psnr(pred, target, data_range=3000.0)
    ref = tm.peak_signal_noise_ratio(pred, target, data_range=3000.0, reduction="none", dim=(1, 2))
    assert torch.allclose(ours, ref.double(), rtol=1e-5)
    assert ours.dtype == torch.float64 and ours.shape == (3,)


def test_psnr_with_a_window_clips_first_and_uses_its_width():
    tm = pytest.importorskip("torchmetrics.functional.image")
    pred, target = ct_pair()
    pred[:, 0, 0] = 2600.0  # outside the window: clipped to 2000 HU
    ours = psnr(pred, target, CT)
    clipped = pred.clamp(-1000, 2000), target.clamp(-1000, 2000)
    ref = tm.peak_signal_noise_ratio(*clipped, data_range=3000.0, reduction="none", dim=(1, 2))
    assert torch.allclose(ours, ref.double(), rtol=1e-5)
    assert torch.equal(psnr(pred, target, (-1000, 2000)), ours)


def test_psnr_of_identical_slices_is_infinite():
    _, target = ct_pair(b=1)
    assert psnr(target, target, CT).item() == math.inf


def torchmetrics_valid_ssim(pred: torch.Tensor, target: torch.Tensor, data_range: float, sigma: float):
    """torchmetrics' SSIM map averaged where the Gaussian window fits inside the image.

    torchmetrics averages its map over the reflect-padded border too; MONAI and scikit-image average only
    the pixels whose window lies inside the image, so the reference crops torchmetrics' full map.
    """
    tm = pytest.importorskip("torchmetrics.functional.image")
    _, full = tm.structural_similarity_index_measure(
        pred[:, None],
        target[:, None],
        data_range=data_range,
        sigma=sigma,
        reduction="none",
        return_full_image=True,
    )
    pad = int(3.5 * sigma + 0.5)  # torchmetrics' Gaussian kernel is 2 * pad + 1 pixels wide
    return full[:, 0, pad:-pad, pad:-pad].flatten(1).mean(1).double()


def test_ssim_matches_torchmetrics_per_slice():
    pred, target = ct_pair()
    pred, target = pred + 1000.0, target + 1000.0  # [0, width]: the usual SSIM convention
    ours = ssim(pred, target, data_range=3000.0)
    assert torch.allclose(ours, torchmetrics_valid_ssim(pred, target, 3000.0, 1.5), atol=1e-5)
    assert ours.dtype == torch.float64 and ours.shape == (3,)


def test_ssim_with_a_window_clips_and_shifts_to_zero_like_torchmetrics_on_the_same_values():
    pred, target = ct_pair(seed=1)
    pred[:, :2] = -1800.0  # below the window
    ours = ssim(pred, target, CT)
    shifted = [x.clamp(-1000, 2000) + 1000.0 for x in (pred, target)]
    assert torch.allclose(ours, torchmetrics_valid_ssim(*shifted, 3000.0, 1.5), atol=1e-5)
    assert not torch.allclose(ours, ssim(pred, target, 3000.0), atol=1e-3)  # HU as given: another value


def test_ssim_matches_scikit_image_on_one_slice():
    metrics = pytest.importorskip("skimage.metrics")
    pred, target = ct_pair(b=1, size=32, seed=2)
    ours = ssim(pred, target, CT).item()
    ref = metrics.structural_similarity(
        (pred[0].clamp(-1000, 2000) + 1000).double().numpy(),
        (target[0].clamp(-1000, 2000) + 1000).double().numpy(),
        data_range=3000.0,
        gaussian_weights=True,
        sigma=1.5,
        use_sample_covariance=False,
    )
    assert ours == pytest.approx(ref, abs=1e-5)


def test_ssim_with_another_kernel_matches_torchmetrics():
    pred, target = ct_pair(b=2, size=16)
    ours = ssim(pred + 1000, target + 1000, 3000.0, kernel_size=9, sigma=1.0)
    assert torch.allclose(ours, torchmetrics_valid_ssim(pred + 1000, target + 1000, 3000.0, 1.0), atol=1e-5)


def test_ssim_is_monais_compute_ssim_and_cs_exactly():
    regression = pytest.importorskip("monai.metrics.regression")
    pred, target = ct_pair(b=3, size=24, seed=3)
    for kernel_size, sigma in ((11, 1.5), (7, 1.0)):
        value, _ = regression.compute_ssim_and_cs(
            (pred.clamp(-1000, 2000) + 1000)[:, None],
            (target.clamp(-1000, 2000) + 1000)[:, None],
            spatial_dims=2,
            kernel_size=[kernel_size, kernel_size],
            kernel_sigma=[sigma, sigma],
            data_range=3000.0,
            kernel_type="gaussian",
            k1=0.01,
            k2=0.03,
        )
        expected = value.flatten(1).mean(dim=1).to(torch.float64)
        assert torch.equal(ssim(pred, target, CT, kernel_size=kernel_size, sigma=sigma), expected)


def test_ssim_needs_no_monai(monkeypatch):
    pred, target = ct_pair(b=1)
    with_monai = ssim(pred, target, CT)
    monkeypatch.setitem(sys.modules, "monai.metrics.regression", None)
    assert torch.equal(ssim(pred, target, CT), with_monai)


@pytest.mark.parametrize(
    "call",
    [
        lambda p, t: mae(p, t[:2]),  # batch sizes differ
        lambda p, t: mae(torch.stack([p, p], 1), torch.stack([t, t], 1)),  # two channels
        lambda p, t: psnr(p, t, data_range=0.0),
        lambda p, t: psnr(p, t, data_range=(2000, -1000)),
        lambda p, t: psnr(p, t, data_range="ct"),
        lambda p, t: ssim(p[:, :8, :8], t[:, :8, :8], 3000.0),  # smaller than the 11-pixel window
        lambda p, t: ssim(p, t, 3000.0, kernel_size=4),
        lambda p, t: mae(p, t, mask=torch.ones(3, 5, 5)),
        lambda p, t: mae(p[:0], t[:0]),
        lambda p, t: mae(p * float("nan"), t),
    ],
)
def test_invalid_inputs_raise_config_errors(call):
    pred, target = ct_pair()
    with pytest.raises(ConfigError, match="got"):
        call(pred, target)


# -- streaming ------------------------------------------------------------------------------------


class L1Stub(torch.nn.Module):
    """A stand-in with LPIPS' call signature (the real network is tested in test_lpips.py)."""

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return (a - b).abs().mean(dim=(1, 2, 3), keepdim=True)


def test_streaming_metrics_equal_the_functions_on_the_clipped_images():
    batches = [ct_pair(b=3, seed=0), ct_pair(b=2, seed=1)]
    batches[0][0][:, 0, :] = 3000.0  # above the window: clipped before scoring
    stub = L1Stub()
    metric = PairedImageMetrics(CT, lpips_net=stub)
    for pred, target in batches:
        metric.update(pred[:, None], target[:, None])
    pred = torch.cat([p for p, _ in batches]).clamp(-1000, 2000)
    target = torch.cat([t for _, t in batches]).clamp(-1000, 2000)
    expected = {
        "mae": body_mae(pred, target),
        "ssim": ssim(pred, target, CT),
        "psnr": psnr(pred, target, CT),
        "lpips": lpips_distance(pred, target, net=stub, window=CT),
    }
    per_slice = metric.per_slice()
    assert list(per_slice) == ["mae", "ssim", "psnr", "lpips"] and metric.n_slices == 5
    result = metric.compute()
    for name, values in expected.items():
        assert per_slice[name] == pytest.approx(values.tolist(), rel=1e-12), name
        assert result[name] == pytest.approx(values.mean().item(), rel=1e-12), name


def test_streaming_mae_without_threshold_is_the_whole_image_mae():
    pred, target = ct_pair()
    metric = PairedImageMetrics((-1000, 2000), metrics=("mae",), body_threshold=None)
    metric.update(pred, target)
    pred, target = pred.clamp(-1000, 2000), target.clamp(-1000, 2000)
    assert metric.per_slice()["mae"] == pytest.approx(mae(pred, target).tolist())
    assert metric.per_slice()["mae"] != pytest.approx(body_mae(pred, target).tolist())


def test_compute_leaves_out_slices_without_body_but_per_slice_keeps_them_aligned():
    pred, target = ct_pair(b=2)
    target[1] = -1000.0
    metric = PairedImageMetrics(CT, metrics=("mae", "psnr"))
    metric.update(pred, target)
    values = metric.per_slice()["mae"]
    assert math.isnan(values[1]) and len(values) == 2
    assert metric.compute()["mae"] == values[0]


def test_reset_forgets_values_and_compute_needs_some():
    pred, target = ct_pair()
    metric = PairedImageMetrics(CT, metrics=("psnr",))
    metric.update(pred, target)
    metric.reset()
    assert metric.n_slices == 0
    with pytest.raises(ConfigError, match="update"):
        metric.compute()


def test_an_8_bit_window_needs_a_threshold_in_its_own_units():
    with pytest.raises(ConfigError, match=r"42\.5"):
        PairedImageMetrics((0, 255), metrics=("mae",))
    metric = PairedImageMetrics(IntensityWindow(0, 255), metrics=("mae", "psnr"), body_threshold=42.5)
    target = torch.tensor([[[0.0, 40.0], [50.0, 255.0]]])
    metric.update(target + torch.tensor([[[9.0, 9.0], [4.0, 2.0]]]), target)
    assert metric.per_slice()["mae"] == [2.0]  # pixels 50 and 255 only; the prediction 257 is clipped to 255
    assert metric.per_slice()["psnr"][0] == pytest.approx(10 * math.log10(255**2 / ((81 + 81 + 16 + 0) / 4)))


@pytest.mark.parametrize("metrics", [(), ("mae", "mae"), ("fid",)])
def test_unknown_or_repeated_metric_names_are_refused(metrics):
    with pytest.raises(ConfigError, match="metric names"):
        PairedImageMetrics(CT, metrics=metrics)


def test_lpips_without_weights_fails_at_construction(monkeypatch, tmp_path):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    with pytest.raises(FeatureNetworkUnavailableError, match=r"alexnet-owt-7be5be79\.pth"):
        PairedImageMetrics(CT)
    PairedImageMetrics(CT, metrics=("mae", "ssim", "psnr"))  # without LPIPS nothing is needed


def test_repr_shows_the_settings():
    text = repr(PairedImageMetrics(CT, metrics=("mae", "psnr"), body_threshold=-400.0))
    for part in ("[-1000.0, 2000.0] HU", "('mae', 'psnr')", "body_threshold=-400.0", "slices=0"):
        assert part in text


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_inputs_give_the_cpu_values():
    pred, target = ct_pair()
    for fn in (lambda p, t: body_mae(p, t), lambda p, t: psnr(p, t, CT), lambda p, t: ssim(p, t, CT)):
        on_gpu = fn(pred.cuda(), target.cuda())
        assert on_gpu.device.type == "cuda"
        assert np.allclose(on_gpu.cpu().numpy(), fn(pred, target).numpy(), atol=1e-5)
    metric = PairedImageMetrics(CT, metrics=("mae", "ssim", "psnr"), device="cuda")
    metric.update(pred, target)
    assert metric.per_slice()["mae"] == pytest.approx(body_mae(pred, target).tolist())
