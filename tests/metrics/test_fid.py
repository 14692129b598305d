"""FID: streaming float64 statistics, the Fréchet distance (against SciPy and closed forms), per modality."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import torch
from hypothesis import given, strategies as st

from latent_transforms.errors import ConfigError
from latent_transforms.features import feature_network
from latent_transforms.metrics import FID, FeatureStatistics, fid, frechet_distance

HAS_SCIPY = importlib.util.find_spec("scipy") is not None


def gaussian(n: int, d: int, seed: int, scale: float = 1.0, shift: float = 0.0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g, dtype=torch.float64) * scale + shift


def random_cov(d: int, seed: int, rank: int | None = None) -> torch.Tensor:
    a = gaussian(d, rank or d, seed)
    return a @ a.T / d


# -- FeatureStatistics ----------------------------------------------------------------------------


@given(sizes=st.lists(st.integers(0, 7), min_size=1, max_size=6), seed=st.integers(0, 10_000))
def test_streamed_statistics_equal_the_whole_batch(sizes, seed):
    x = gaussian(sum(sizes) + 2, 3, seed, scale=2.0, shift=5.0)
    stats = FeatureStatistics(3)
    start = 0
    for size in [*sizes, 2]:
        stats.update(x[start : start + size])
        start += size
    assert stats.n == x.shape[0]
    assert torch.allclose(stats.mean, x.mean(0), atol=1e-12)
    assert torch.allclose(stats.cov, torch.cov(x.T), atol=1e-12)


def test_merge_equals_updating_with_everything():
    a, b = gaussian(30, 4, 0), gaussian(50, 4, 1, shift=3.0)
    merged = FeatureStatistics.from_features(a).merge(FeatureStatistics.from_features(b))
    whole = FeatureStatistics.from_features(torch.cat([a, b]))
    assert merged.n == 80
    assert torch.allclose(merged.mean, whole.mean) and torch.allclose(merged.cov, whole.cov)


def test_statistics_stay_accurate_when_the_mean_dwarfs_the_spread():
    x = gaussian(1000, 2, 0, scale=1e-3, shift=1e6).float()
    stats = FeatureStatistics(2)
    for chunk in x.split(7):
        stats.update(chunk)
    expected = torch.cov(x.double().T)
    assert torch.allclose(stats.cov, expected, rtol=1e-6)


def test_state_dict_round_trips():
    stats = FeatureStatistics.from_features(gaussian(20, 3, 0))
    restored = FeatureStatistics(3)
    restored.load_state_dict(stats.state_dict())
    assert restored.n == 20
    assert torch.equal(restored.mean, stats.mean) and torch.equal(restored.cov, stats.cov)
    assert repr(restored) == "FeatureStatistics(dim=3, n=20)"


def test_statistics_refuse_wrong_shapes_and_too_few_samples():
    stats = FeatureStatistics(3)
    with pytest.raises(ConfigError, match=r"\[N, 3\]"):
        stats.update(torch.zeros(4, 2))
    stats.update(torch.zeros(1, 3))
    with pytest.raises(ConfigError, match="at least 2"):
        _ = stats.cov


# -- Fréchet distance -----------------------------------------------------------------------------


def test_identical_statistics_are_at_distance_zero():
    cov = random_cov(16, 0)
    mu = gaussian(1, 16, 1)[0]
    assert frechet_distance(mu, cov, mu, cov) == pytest.approx(0.0, abs=1e-9)


def test_shifted_means_give_the_squared_distance():
    cov = random_cov(8, 0)
    mu = gaussian(1, 8, 1)[0]
    shift = gaussian(1, 8, 2)[0]
    assert frechet_distance(mu, cov, mu + shift, cov) == pytest.approx(shift.square().sum().item(), rel=1e-9)


def test_diagonal_covariances_have_the_closed_form():
    s1 = torch.tensor([1.0, 4.0, 0.25, 9.0], dtype=torch.float64)
    s2 = torch.tensor([2.0, 1.0, 0.25, 0.0], dtype=torch.float64)
    expected = (s1.sqrt() - s2.sqrt()).square().sum().item()
    assert frechet_distance(torch.zeros(4), torch.diag(s1), torch.zeros(4), torch.diag(s2)) == pytest.approx(
        expected, rel=1e-12
    )


@pytest.mark.skipif(not HAS_SCIPY, reason="scipy not installed (pip install '.[stats]')")
@pytest.mark.parametrize(("d", "rank"), [(5, None), (32, None), (32, 10), (64, 63)])
def test_agrees_with_scipy_sqrtm(d, rank):
    from scipy import linalg

    c1, c2 = random_cov(d, 0, rank), random_cov(d, 1, rank)
    m1, m2 = gaussian(1, d, 2)[0], gaussian(1, d, 3)[0]
    covmean = linalg.sqrtm(c1.numpy() @ c2.numpy())
    covmean = covmean.real if np.iscomplexobj(covmean) else covmean
    expected = float(((m1 - m2) ** 2).sum() + c1.trace() + c2.trace() - 2 * np.trace(covmean))
    assert frechet_distance(m1, c1, m2, c2) == pytest.approx(expected, rel=1e-6, abs=1e-8)


def test_fid_of_samples_from_two_gaussians_approaches_the_population_value():
    real = gaussian(20_000, 2, 0)
    fake = gaussian(20_000, 2, 1, scale=2.0, shift=1.0)
    expected = 2 * 1.0 + 2 * (2.0 - 1.0) ** 2  # |mu|^2 + sum (sqrt(s1) - sqrt(s2))^2
    assert fid(real, fake) == pytest.approx(expected, rel=0.05)


def test_mismatched_shapes_are_refused():
    with pytest.raises(ConfigError):
        frechet_distance(torch.zeros(3), torch.eye(3), torch.zeros(2), torch.eye(2))


# -- streaming FID from images --------------------------------------------------------------------


def noise_images(n: int, seed: int, c: int = 2, lo: float = -1.0, hi: float = 1.0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, c, 32, 32, generator=g) * (hi - lo) + lo


@pytest.fixture(scope="module")
def extractor():
    return feature_network("random", batch_size=16)


def test_fid_is_reported_per_modality_and_averaged(extractor):
    metric = FID(extractor, modalities=["mri", "ct"])
    real = noise_images(24, 0)
    metric.update(real[:10], real=True)
    metric.update(real[10:], real=True)
    fake = real.clone()
    fake[:, 1] = noise_images(24, 1, c=1, lo=0.0, hi=1.0)[:, 0]  # only the CT channel differs
    metric.update(fake, real=False)
    result = metric.compute()
    assert set(result) == {"mri", "ct", "mean"}
    assert result["mri"] == pytest.approx(0.0, abs=1e-6)
    assert result["ct"] > 0.0
    assert result["mean"] == pytest.approx((result["mri"] + result["ct"]) / 2)


def test_streaming_fid_equals_fid_of_all_features(extractor):
    real, fake = noise_images(20, 0), noise_images(20, 1, lo=0.0, hi=1.0)
    metric = FID(extractor)
    for chunk in real.split(6):
        metric.update(chunk, real=True)
    for chunk in fake.split(7):
        metric.update(chunk, real=False)
    fr, ff = extractor.embed(real), extractor.embed(fake)
    result = metric.compute()
    assert result["channel0"] > 0.0
    assert result["channel0"] == pytest.approx(fid(fr[:, 0], ff[:, 0]), rel=1e-6, abs=1e-9)
    assert result["channel1"] == pytest.approx(fid(fr[:, 1], ff[:, 1]), rel=1e-6, abs=1e-9)


def test_joint_extractor_reports_one_value_named_after_all_modalities():
    from latent_transforms import GanBundle
    from tests.conftest import tiny_config

    bundle = GanBundle.random(tiny_config(resolution=16), seed=0)
    metric = FID(feature_network("discriminator", bundle=bundle), modalities=["mri", "ct"])
    metric.update(bundle.sample(8, seed=0), real=True)
    metric.update(bundle.sample(8, seed=1), real=False)
    assert set(metric.compute()) == {"mri+ct", "mean"}


def test_real_statistics_can_be_cached_and_are_refused_for_another_network(extractor):
    metric = FID(extractor)
    metric.update(noise_images(8, 0), real=True)
    state = metric.state_dict()
    again = FID(feature_network("random"))
    again.load_state_dict(state)
    again.update(noise_images(8, 1), real=False)
    assert set(again.compute()) == {"channel0", "channel1", "mean"}
    other = FID(feature_network(torch.nn.Conv2d(3, 4, 3), input_size=32))
    with pytest.raises(ConfigError, match="recompute"):
        other.load_state_dict(state)


def test_compute_before_both_sides_are_fed_is_explained(extractor):
    metric = FID(extractor)
    metric.update(noise_images(4, 0), real=True)
    with pytest.raises(ConfigError, match="real=False"):
        metric.compute()
    metric.reset()
    assert metric.real == [] and metric.fake == []
    assert repr(metric) == "FID(extractor='random', modalities=None, real=0, fake=0)"
