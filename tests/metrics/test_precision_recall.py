"""Improved precision and recall: k-NN manifolds, the behaviour on known cases, chunking invariance, and the
streaming ``PrecisionRecall`` metric (per modality, with density and coverage)."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, strategies as st

from latent_transforms.errors import ConfigError
from latent_transforms.features import feature_network
from latent_transforms.metrics import knn_radii, manifold_coverage, precision_recall
from latent_transforms.metrics.precision_recall import MANIFOLD_METRICS, PrecisionRecall, manifold_metrics


def gaussian(n: int, d: int, seed: int, shift: float | torch.Tensor = 0.0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g) + shift


def modes(n_per_mode: int, centres: list[float], d: int, seed: int) -> torch.Tensor:
    """Tight clusters around far-apart points ``c * e_0`` (one per centre)."""
    parts = []
    for i, c in enumerate(centres):
        shift = torch.zeros(d)
        shift[0] = c
        parts.append(gaussian(n_per_mode, d, seed + i) * 0.1 + shift)
    return torch.cat(parts)


def brute_force(real: torch.Tensor, fake: torch.Tensor, k: int) -> tuple[float, float]:
    d_rr = torch.cdist(real.double(), real.double())
    d_ff = torch.cdist(fake.double(), fake.double())
    d_fr = torch.cdist(fake.double(), real.double())
    r_real = d_rr.sort(dim=1).values[:, k]
    r_fake = d_ff.sort(dim=1).values[:, k]
    precision = (d_fr <= r_real[None, :] + 1e-9).any(dim=1).double().mean().item()
    recall = (r_fake[None, :] + 1e-9 >= d_fr.T).any(dim=1).double().mean().item()
    return precision, recall


def test_identical_sets_have_perfect_precision_and_recall():
    x = gaussian(300, 16, 0)
    assert precision_recall(x, x.clone()) == {"precision": 1.0, "recall": 1.0, "f1": 1.0}


def test_far_apart_sets_have_zero_precision_and_recall():
    result = precision_recall(gaussian(200, 8, 0), gaussian(200, 8, 1, shift=50.0))
    assert result == {"precision": 0.0, "recall": 0.0, "f1": 0.0}


def test_fake_covering_half_the_real_modes_is_precise_but_recalls_half():
    # (finite samples: even a fake set from the real distribution scores a little below 1, more so in
    # higher dimensions; 2-d clusters keep that effect small)
    real = modes(200, [0.0, 20.0, 40.0, 60.0], d=2, seed=0)
    fake = modes(400, [0.0, 20.0], d=2, seed=10)
    result = precision_recall(real, fake)
    assert result["precision"] > 0.9
    assert result["recall"] == pytest.approx(0.5, abs=0.05)
    p, r = result["precision"], result["recall"]
    assert result["f1"] == pytest.approx(2 * p * r / (p + r))


def test_fake_outside_the_real_support_is_imprecise_but_can_recall():
    real = modes(200, [0.0], d=2, seed=0)
    fake = torch.cat([modes(200, [0.0], d=2, seed=5), modes(200, [30.0], d=2, seed=6)])
    result = precision_recall(real, fake)
    assert result["precision"] == pytest.approx(0.5, abs=0.05)
    assert result["recall"] > 0.9


def test_knn_radii_match_a_sorted_distance_matrix():
    x = gaussian(57, 5, 0)
    expected = torch.cdist(x.double(), x.double()).sort(dim=1).values[:, 3]
    for chunk in (1, 8, 57, 1000):
        assert torch.allclose(knn_radii(x, 3, chunk_size=chunk), expected, atol=1e-9)


def test_duplicates_count_as_neighbours_at_distance_zero():
    x = torch.tensor([[0.0, 0.0]] * 4 + [[1.0, 1.0], [5.0, 5.0]])
    radii = knn_radii(x, k=3, chunk_size=2)
    assert radii[:4].tolist() == [0.0] * 4


def test_results_match_a_brute_force_computation():
    real, fake = gaussian(80, 6, 0), gaussian(90, 6, 1, shift=0.5)
    expected = brute_force(real, fake, k=3)
    result = precision_recall(real, fake, chunk_size=16)
    assert (result["precision"], result["recall"]) == pytest.approx(expected)


@given(
    n=st.integers(4, 40),
    m=st.integers(4, 40),
    d=st.integers(1, 5),
    k=st.integers(1, 3),
    seed=st.integers(0, 10_000),
    chunk=st.integers(1, 45),
)
def test_chunked_equals_unchunked(n, m, d, k, seed, chunk):
    # small integers: every distance is exact in float64, so ties on ball boundaries are common and exact
    g = torch.Generator().manual_seed(seed)
    real = torch.randint(-3, 4, (n, d), generator=g).float()
    fake = torch.randint(-3, 4, (m, d), generator=g).float()
    whole = precision_recall(real, fake, k, chunk_size=10_000)
    assert precision_recall(real, fake, k, chunk_size=chunk) == whole


def test_coverage_is_inclusive_at_the_ball_boundary():
    ref = torch.tensor([[0.0, 0.0]])
    inside = manifold_coverage(torch.tensor([[3.0, 4.0], [3.0, 4.1]]), ref, torch.tensor([5.0]))
    assert inside.tolist() == [True, False]


def test_too_few_samples_or_mismatched_dimensions_are_explained():
    with pytest.raises(ConfigError, match="more than k=3"):
        precision_recall(gaussian(3, 4, 0), gaussian(10, 4, 1))
    with pytest.raises(ConfigError, match="same dimension"):
        precision_recall(gaussian(10, 4, 0), gaussian(10, 5, 1))
    with pytest.raises(ConfigError, match=r"\[N, D\]"):
        precision_recall(gaussian(10, 4, 0)[None], gaussian(10, 4, 1))


# -- streaming PrecisionRecall --------------------------------------------------------------------


def noise_images(n: int, seed: int, c: int = 2, lo: float = -1.0, hi: float = 1.0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, c, 32, 32, generator=g) * (hi - lo) + lo


@pytest.fixture(scope="module")
def extractor():
    return feature_network("random", batch_size=16)


def test_streaming_equals_the_function_on_all_features(extractor):
    real, fake = noise_images(20, 0), noise_images(18, 1, lo=-0.5, hi=1.0)
    metric = PrecisionRecall(extractor, modalities=["mri", "ct"], chunk_size=7)
    for chunk in real.split(6):
        metric.update(chunk, real=True)
    for chunk in fake.split(5):
        metric.update(chunk, real=False)
    fr = torch.cat([extractor.embed(chunk) for chunk in real.split(6)])
    ff = torch.cat([extractor.embed(chunk) for chunk in fake.split(5)])
    result = metric.compute()
    assert set(result) == {"mri", "ct", "mean"}
    assert result["mri"] == manifold_metrics(fr[:, 0], ff[:, 0], chunk_size=7)
    assert result["ct"] == manifold_metrics(fr[:, 1], ff[:, 1], chunk_size=7)
    for key in MANIFOLD_METRICS:
        assert result["mean"][key] == pytest.approx((result["mri"][key] + result["ct"][key]) / 2)
    assert result["mri"]["coverage"] < 1.0  # the two sets differ, so the test can tell them apart


def test_update_features_and_modality_differences(extractor):
    metric = PrecisionRecall(extractor, modalities=["mri", "ct"], k=2)
    real = gaussian(40, 6, 0).reshape(20, 2, 6)
    fake = real.clone()
    fake[:, 1] += 50.0  # only the second modality is far away
    metric.update_features(real[:12], real=True)
    metric.update_features(real[12:], real=True)
    metric.update_features(fake, real=False)
    result = metric.compute()
    assert result["mri"] == manifold_metrics(real[:, 0], real[:, 0], k=2)
    assert (result["mri"]["precision"], result["mri"]["recall"], result["mri"]["coverage"]) == (1.0, 1.0, 1.0)
    assert result["ct"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "density": 0.0, "coverage": 0.0}
    assert result["mean"]["precision"] == 0.5


def test_joint_extractor_reports_one_value_named_after_all_modalities(extractor):
    metric = PrecisionRecall(extractor, modalities=["mri", "ct"])
    metric.update_features(gaussian(10, 4, 0)[:, None], real=True)
    metric.update_features(gaussian(10, 4, 1)[:, None], real=False)
    assert set(metric.compute()) == {"mri+ct", "mean"}


def test_state_round_trips_and_is_refused_for_another_network(extractor):
    metric = PrecisionRecall(extractor)
    metric.update(noise_images(8, 0), real=True)
    state = metric.state_dict()
    assert state["fake"] is None
    assert state["real"].dtype == torch.float32 and state["real"].device.type == "cpu"
    assert tuple(state["real"].shape) == (8, 2, 64)
    again = PrecisionRecall(feature_network("random"))
    again.load_state_dict(state)
    assert torch.equal(again.features(True), metric.features(True)) and again.features(False) is None
    metric.update(noise_images(8, 1), real=False)
    again.update(noise_images(8, 1), real=False)
    assert again.compute() == metric.compute()
    other = PrecisionRecall(feature_network(torch.nn.Conv2d(3, 4, 3), input_size=32))
    with pytest.raises(ConfigError, match="recompute"):
        other.load_state_dict(state)


def test_reset_repr_and_misuse_are_explained(extractor):
    metric = PrecisionRecall(extractor, k=3)
    metric.update(noise_images(3, 0), real=True)
    metric.update(noise_images(6, 1), real=False)
    with pytest.raises(ConfigError, match="more than k=3"):
        metric.compute()
    with pytest.raises(ConfigError, match=r"\[B, 2, 64\]"):
        metric.update_features(torch.zeros(4, 3, 64), real=True)
    with pytest.raises(ConfigError, match=r"\[B, C', D\]"):
        metric.update_features(torch.zeros(4, 64), real=True)
    assert repr(metric) == (
        "PrecisionRecall(extractor='random', modalities=None, k=3, chunk_size=1024, device=None, "
        "real=3, fake=6)"
    )
    metric.reset(real=False)
    assert (metric.n_real, metric.n_fake) == (3, 0)
    metric.reset()
    assert (metric.n_real, metric.n_fake) == (0, 0)
    with pytest.raises(ConfigError, match="k >= 1"):
        PrecisionRecall(extractor, k=0)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_streaming_metric_computes_on_cuda(extractor):
    g = torch.Generator().manual_seed(0)
    real = torch.randint(-3, 4, (30, 2, 5), generator=g).float()
    fake = torch.randint(-3, 4, (25, 2, 5), generator=g).float()
    on_cpu, on_gpu = PrecisionRecall(extractor), PrecisionRecall(extractor, device="cuda")
    for metric in (on_cpu, on_gpu):
        metric.update_features(real.cuda(), real=True)
        metric.update_features(fake, real=False)
    assert on_gpu.features(True).device.type == "cpu"
    assert on_gpu.compute() == on_cpu.compute()
