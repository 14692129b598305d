"""Improved precision and recall: k-NN manifolds, the behaviour on known cases, chunking invariance."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from latent_transforms.errors import ConfigError
from latent_transforms.metrics import knn_radii, manifold_coverage, precision_recall


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
