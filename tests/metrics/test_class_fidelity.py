"""Per-class fidelity of a conditional generator: each class against its own real images, and overall."""

from __future__ import annotations

import pytest
import torch

from latent_transforms.errors import ConfigError
from latent_transforms.metrics import class_fidelity


class Identity:
    """Features = the flattened image itself (``[B, 1, D]``), so distances are pixel distances."""

    def embed(self, images: torch.Tensor) -> torch.Tensor:
        return images.flatten(1)[:, None, :].double()


def two_classes(n0: int = 12, n1: int = 30, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Class 0 near -0.5, class 1 near +0.5 (4 pixels each), well apart."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.cat([torch.zeros(n0), torch.ones(n1)]).long()
    centre = torch.where(labels == 0, -0.5, 0.5)
    images = centre[:, None, None, None] + 0.1 * torch.randn(len(labels), 1, 2, 2, generator=g)
    return images, labels


def test_a_generator_that_copies_each_class_is_perfect_per_class():
    real, labels = two_classes()
    calls = []

    def copy(n: int, label: int, seed: int) -> torch.Tensor:
        calls.append((n, label, seed))
        return real[labels == label][:n]

    out = class_fidelity(copy, real, labels, Identity(), k=3, seed=7)
    assert calls == [(12, 0, 7), (30, 1, 8)]  # as many as the real images of the class, seed + label
    for label, n in (("0", 12), ("1", 30)):
        scores = out["per_class"][label]
        assert scores["n"] == n and scores["precision"] == 1.0 and scores["recall"] == 1.0
        assert scores["fid"] == pytest.approx(0.0, abs=1e-6)
    assert out["precision"] == 1.0 and out["recall"] == 1.0 and out["seconds_per_1000"] >= 0


def test_a_generator_that_swaps_the_classes_fails_per_class_but_not_overall():
    real, labels = two_classes(n0=20, n1=20)

    def swapped(n: int, label: int, seed: int) -> torch.Tensor:
        return real[labels == 1 - label][:n]

    out = class_fidelity(swapped, real, labels, Identity(), k=3)
    # each class's samples lie in the other class's cluster: nothing of the class is covered
    for label in ("0", "1"):
        assert out["per_class"][label]["precision"] == 0.0 and out["per_class"][label]["recall"] == 0.0
        assert out["per_class"][label]["fid"] > 0.5
    # pooled over classes the sets are the same images: only per-class numbers see the swap
    assert out["precision"] == 1.0 and out["recall"] == 1.0


def test_a_collapsed_minority_class_shows_as_low_recall_of_that_class_only():
    real, labels = two_classes(n0=16, n1=40)
    g = torch.Generator().manual_seed(1)

    def collapsed(n: int, label: int, seed: int) -> torch.Tensor:
        own = real[labels == label]
        if label == 0:  # every sample is (nearly) the same class-0 image
            return own[:1].expand(n, -1, -1, -1) + 1e-3 * torch.randn(n, 1, 2, 2, generator=g)
        return own[:n]

    out = class_fidelity(collapsed, real, labels, Identity(), k=3)
    assert out["per_class"]["0"]["recall"] < 0.3 < out["per_class"]["1"]["recall"] == 1.0


def test_wrong_shapes_and_too_small_classes_are_refused():
    real, labels = two_classes()
    with pytest.raises(ConfigError, match="N labels"):
        class_fidelity(lambda n, c, s: real[:n], real, labels[:-1], Identity())
    with pytest.raises(ConfigError, match="expected"):
        class_fidelity(lambda n, c, s: torch.zeros(n, 1, 4, 4), real, labels, Identity())
    few = torch.tensor([0, 0, 1] + [1] * 10)
    with pytest.raises(ConfigError, match="class 0 has 2 real images"):
        class_fidelity(lambda n, c, s: real[:n], real[:13], few, Identity())


def test_draws_average_independent_draws_with_their_own_seeds():
    real, labels = two_classes()

    def noisy(n: int, label: int, seed: int) -> torch.Tensor:
        g = torch.Generator().manual_seed(seed)
        centre = -0.5 if label == 0 else 0.5
        return centre + 0.15 * torch.randn(n, 1, 2, 2, generator=g)

    calls = []

    def logged(n: int, label: int, seed: int) -> torch.Tensor:
        calls.append((label, seed))
        return noisy(n, label, seed)

    out = class_fidelity(logged, real, labels, Identity(), k=3, seed=5, draws=3)
    assert calls == [(0, 5), (1, 6), (0, 15), (1, 16), (0, 25), (1, 26)]  # seed + 10 * draw + class
    singles = [class_fidelity(noisy, real, labels, Identity(), k=3, seed=5 + 10 * d) for d in range(3)]
    assert out["draws"] == 3 and singles[0]["draws"] == 1
    for key in ("fid", "precision", "recall", "f1"):
        assert out[key] == pytest.approx(sum(s[key] for s in singles) / 3)
        assert out["per_class"]["1"][key] == pytest.approx(sum(s["per_class"]["1"][key] for s in singles) / 3)
    assert len({s["recall"] for s in singles}) > 1  # the draws differ, so the mean is not one of them
    with pytest.raises(ConfigError, match="draws"):
        class_fidelity(noisy, real, labels, Identity(), draws=0)
