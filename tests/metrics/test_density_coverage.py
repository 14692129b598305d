"""Density and coverage (Naeem et al. 2020): hand cases, the theory for identical distributions, chunking."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from hypothesis import given, settings, strategies as st

from latent_transforms.errors import ConfigError
from latent_transforms.metrics.precision_recall import (
    MANIFOLD_METRICS,
    density_coverage,
    knn_radii,
    manifold_metrics,
    precision_recall,
)


def gaussian(n: int, d: int, seed: int, scale: float = 1.0, shift: float = 0.0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g) * scale + shift


def brute_force(real: torch.Tensor, fake: torch.Tensor, k: int) -> tuple[float, float]:
    radii = torch.cdist(real.double(), real.double()).sort(dim=1).values[:, k]
    inside = torch.cdist(fake.double(), real.double()) <= radii[None, :] + 1e-9  # [M, N]
    return inside.sum().item() / (k * fake.shape[0]), inside.any(dim=0).double().mean().item()


def test_one_dimensional_hand_case():
    # k = 2 radii of 0, 1, 3, 7: [3, 2, 3, 6]. Fake 0.5 lies in the balls of 0, 1 and 3 (6.5 > 6 misses 7);
    # -3 lies exactly on the boundary of 0's ball (closed balls count it) and in no other; 100 in none.
    real = torch.tensor([[0.0], [1.0], [3.0], [7.0]])
    fake = torch.tensor([[0.5], [-3.0], [100.0]])
    assert knn_radii(real, k=2).tolist() == [3.0, 2.0, 3.0, 6.0]
    result = density_coverage(real, fake, k=2)
    assert result == {"density": (3 + 1 + 0) / (2 * 3), "coverage": 3 / 4}


def test_density_counts_a_sample_once_per_ball_and_can_exceed_one():
    # k = 1: every radius is 1. Each fake at 1.5 is in the balls of 1 and 2 -> density 2 / 1 = 2.
    real = torch.tensor([[0.0], [1.0], [2.0], [3.0]])
    fake = torch.full((5, 1), 1.5)
    assert density_coverage(real, fake, k=1) == {"density": 2.0, "coverage": 0.5}


def test_matches_a_brute_force_computation():
    real, fake = gaussian(70, 5, 0), gaussian(90, 5, 1, shift=0.3)
    expected = brute_force(real, fake, k=3)
    result = density_coverage(real, fake, k=3, chunk_size=16)
    assert (result["density"], result["coverage"]) == pytest.approx(expected)


def test_identical_distributions_give_density_one_and_the_expected_coverage():
    # For one distribution: E[density] = 1 exactly (a fake sample falls in a given real ball with
    # probability k / N), and P(a real ball holds none of M fakes) = prod_t (N-1-t) / (N-1+M-t), t < k,
    # which tends to 2^-k for M = N (Naeem et al. 2020). Averaged over 8 independent pairs of sets.
    n, k = 400, 3
    results = [density_coverage(gaussian(n, 4, s), gaussian(n, 4, 100 + s), k=k) for s in range(8)]
    density = sum(r["density"] for r in results) / len(results)
    coverage = sum(r["coverage"] for r in results) / len(results)
    expected_coverage = 1.0 - math.prod((n - 1 - t) / (2 * n - 1 - t) for t in range(k))
    assert expected_coverage == pytest.approx(1 - 2**-k, abs=0.002)
    assert density == pytest.approx(1.0, abs=0.05)
    assert coverage == pytest.approx(expected_coverage, abs=0.025)


def test_shifting_the_generated_mean_lowers_every_metric():
    # (large steps: k-NN balls overestimate the manifolds, so for shifts of about 2 standard deviations
    # precision and density can still wobble upwards before they fall)
    real, fake = gaussian(400, 4, 0), gaussian(400, 4, 1)
    direction = torch.zeros(4)
    direction[0] = 1.0
    runs = [manifold_metrics(real, fake + shift * direction) for shift in (0.0, 3.0, 5.0, 7.0, 20.0)]
    for key in MANIFOLD_METRICS:
        values = [run[key] for run in runs]
        assert all(a > b or a == b == 0.0 for a, b in itertools.pairwise(values)), (key, values)
        assert values[-1] == 0.0


def test_a_collapsed_generator_stays_precise_but_loses_recall_and_coverage():
    real = gaussian(400, 4, 0)
    faithful = manifold_metrics(real, gaussian(400, 4, 1))
    collapsed = manifold_metrics(real, gaussian(400, 4, 1, scale=0.2))  # around the real mean
    assert collapsed["precision"] > 0.95
    assert collapsed["density"] > 0.9
    assert collapsed["recall"] < 0.2 < faithful["recall"]
    assert collapsed["coverage"] < 0.25 < faithful["coverage"]


@settings(deadline=None)
@given(
    n=st.integers(4, 30),
    m=st.integers(4, 30),
    d=st.integers(1, 4),
    k=st.integers(1, 3),
    seed=st.integers(0, 10_000),
    chunk=st.integers(1, 35),
)
def test_chunked_equals_unchunked_and_the_separate_functions(n, m, d, k, seed, chunk):
    # small integers: every distance is exact in float64, so boundary ties are common and exact
    g = torch.Generator().manual_seed(seed)
    real = torch.randint(-3, 4, (n, d), generator=g).float()
    fake = torch.randint(-3, 4, (m, d), generator=g).float()
    whole = density_coverage(real, fake, k, chunk_size=10_000)
    assert density_coverage(real, fake, k, chunk_size=chunk) == whole
    combined = manifold_metrics(real, fake, k, chunk_size=chunk)
    assert combined == {**precision_recall(real, fake, k, chunk_size=chunk), **whole}


def test_results_are_python_floats_and_the_device_argument_is_honoured():
    real, fake = gaussian(30, 3, 0), gaussian(30, 3, 1)
    result = manifold_metrics(real, fake, device="cpu")
    assert list(result) == list(MANIFOLD_METRICS)
    assert all(type(v) is float for v in result.values())
    assert manifold_metrics(real.double(), fake.half()) == pytest.approx(
        manifold_metrics(real, fake.half().float())
    )


def test_bad_inputs_are_explained():
    with pytest.raises(ConfigError, match="more than k=3"):
        density_coverage(gaussian(3, 2, 0), gaussian(10, 2, 1))
    with pytest.raises(ConfigError, match="at least 1 generated"):
        density_coverage(gaussian(10, 2, 0), gaussian(0, 2, 1))
    with pytest.raises(ConfigError, match="same dimension"):
        density_coverage(gaussian(10, 2, 0), gaussian(10, 3, 1))
    with pytest.raises(ConfigError, match="k >= 1"):
        manifold_metrics(gaussian(10, 2, 0), gaussian(10, 2, 1), k=0)
    with pytest.raises(ConfigError, match="more than k=3 generated"):
        manifold_metrics(gaussian(10, 2, 0), gaussian(3, 2, 1))  # recall needs generated radii
    one_fake = density_coverage(gaussian(10, 2, 0), gaussian(1, 2, 1))  # M = 1 is enough here
    assert set(one_fake) == {"density", "coverage"}


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_gives_the_cpu_result():
    g = torch.Generator().manual_seed(0)
    real = torch.randint(-3, 4, (50, 3), generator=g).float()
    fake = torch.randint(-3, 4, (40, 3), generator=g).float()
    assert manifold_metrics(real, fake, device="cuda", chunk_size=16) == manifold_metrics(real, fake)
    assert manifold_metrics(real.cuda(), fake) == manifold_metrics(real, fake)
