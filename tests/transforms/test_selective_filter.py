"""SelectiveFilter (Xue et al. 2021, Algorithm 1): hand-made pools whose selection is known, seeding, pool
sizes, the transform protocol, errors, and a property test of the selection's invariants."""

from __future__ import annotations

import pickle

import pytest
import torch
from hypothesis import given, strategies as st
from torch import nn
from torchvision import tv_tensors
from torchvision.transforms import v2

from latent_transforms.errors import ConfigError
from latent_transforms.features.extractor import FrozenNetwork
from latent_transforms.transforms.base import RandomTransform
from latent_transforms.transforms.selective_filter import (
    SelectionResult,
    SelectiveFilter,
    TinyDropoutNet,
    mc_dropout,
)


class ControlNet(nn.Module):
    """A feature network whose scores are known by construction.

    Logits ``scale * [m + jitter, -m]`` with ``m`` the image mean: the confidence grows with ``|m|``.
    Features: the image itself, so the eq. 3 distance is the channel-cosine distance between images
    (scaling an image by ``t > 0`` changes its confidence but not its distance). ``jitter`` is the
    dropout branch: ``dropout(1) * noise * std(image)``, zero for ``noise=0`` or a constant image, so
    those samples have exactly zero MC variance. Without a classifier it returns
    ``[image, channel means + jitter]``.
    """

    def __init__(self, scale: float = 2.0, noise: float = 0.0, classifier: bool = True) -> None:
        super().__init__()
        self.scale, self.noise, self.classifier = scale, noise, classifier
        self.drop = nn.Dropout(0.5)

    def forward(self, x: torch.Tensor):
        m = x.mean(dim=(1, 2, 3))
        jitter = self.drop(torch.ones_like(m)) * self.noise * x.std(dim=(1, 2, 3))
        if not self.classifier:
            return [x, x.mean(dim=(2, 3)) + jitter[:, None]]
        return self.scale * torch.stack([m + jitter, -m], dim=1), [x]


def entropy_of_mean(m: torch.Tensor, scale: float = 2.0) -> torch.Tensor:
    logp = torch.log_softmax(scale * torch.stack([m, -m], dim=1).double(), dim=1)
    return -(logp.exp() * logp).sum(dim=1)


def channel_cosine_distance(x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """Eq. 3 for one layer (the image) and one pass: mean over positions of ||x_hat - c_hat||²."""
    xh = x.double() / x.double().norm(dim=-3, keepdim=True)
    ch = c.double() / c.double().norm(dim=-3, keepdim=True)
    return (xh - ch).pow(2).sum(dim=-3).flatten(-2).mean(dim=-1)


def rand_image(g: torch.Generator) -> torch.Tensor:
    return torch.rand(3, 4, 4, generator=g) + 0.1  # positive, so a scale t > 0 keeps the direction


@pytest.fixture
def known_pool():
    """Two classes of different sizes whose stage-1 and stage-2 answers are known.

    Class 0 (8 samples): 4 confident (5-7 x an image), of which 2 are multiples of the centroid image A0;
    class 1 (12 samples): 6 confident, of which 3 are multiples of A1. The rest are 0.01-0.02 x an
    image: mean near 0, entropy near ln 2. The pool is shuffled by a fixed permutation.
    """
    g = torch.Generator().manual_seed(0)
    a0, a1 = rand_image(g), rand_image(g)
    rows = []  # (image, label, confident, central)
    for t in (5.0, 7.0):
        rows.append((t * a0, 0, True, True))
    for t in (6.0, 5.0):
        rows.append((t * rand_image(g), 0, True, False))
    for t in (0.01, 0.02):
        rows.append((t * a0, 0, False, True))
    for t in (0.01, 0.015):
        rows.append((t * rand_image(g), 0, False, False))
    for t in (4.0, 5.0, 6.0):
        rows.append((t * a1, 1, True, True))
    for t in (5.0, 6.0, 7.0):
        rows.append((t * rand_image(g), 1, True, False))
    for t in (0.01, 0.02, 0.03):
        rows.append((t * a1, 1, False, True))
    for t in (0.01, 0.02, 0.03):
        rows.append((t * rand_image(g), 1, False, False))
    perm = torch.randperm(len(rows), generator=g).tolist()
    rows = [rows[i] for i in perm]
    images = torch.stack([r[0] for r in rows])
    labels = torch.tensor([r[1] for r in rows])
    confident = torch.tensor([r[2] for r in rows])
    central = torch.tensor([r[3] for r in rows])
    real = torch.stack([a0, 2 * a0, a1, a1, 3 * a1])
    real_labels = torch.tensor([0, 0, 1, 1, 1])
    return images, labels, confident, central, real, real_labels, (a0, a1)


# -- the known answers ---------------------------------------------------------------------------------
def test_stage1_keeps_the_confident_half_of_each_class(known_pool) -> None:
    images, labels, confident, _, real, real_labels, _ = known_pool
    sf = SelectiveFilter(ControlNet(), mc_samples=5, seed=0).fit(real, real_labels)
    res = sf.select(images, labels)
    assert res.uncertainty_kind == "entropy"
    assert torch.equal(res.stage1, confident)
    assert [int((res.stage1 & (labels == c)).sum()) for c in (0, 1)] == [4, 6]  # halves of 8 and 12
    expected = entropy_of_mean(images.mean(dim=(1, 2, 3)))
    torch.testing.assert_close(res.uncertainty.double(), expected, atol=1e-6, rtol=1e-4)


def test_stage2_keeps_the_samples_at_their_class_centroid(known_pool) -> None:
    images, labels, confident, central, real, real_labels, (a0, a1) = known_pool
    sf = SelectiveFilter(ControlNet(), mc_samples=5, seed=0).fit(real, real_labels)
    res = sf.select(images, labels)
    assert torch.equal(res.kept, confident & central)
    assert sorted(res.labels.tolist()) == [0, 0, 1, 1, 1]
    assert len(res) == 5 == 8 // 2 // 2 + 12 // 2 // 2
    assert torch.equal(res.indices, res.kept.nonzero().flatten())
    assert torch.equal(res.images, images[res.indices])
    assert torch.equal(res.labels, labels[res.indices])
    # eq. 3 with the image as the one feature layer; computed for every pool sample
    centroid = torch.stack([a0, a1])[labels]
    torch.testing.assert_close(
        res.distance.double(), channel_cosine_distance(images, centroid), atol=1e-6, rtol=1e-4
    )
    assert float(res.distance[res.kept].max()) < 1e-6


def test_centroids_are_the_mean_raw_features_per_class(known_pool) -> None:
    _, _, _, _, real, real_labels, (a0, a1) = known_pool
    sf = SelectiveFilter(ControlNet(), seed=0).fit(real, real_labels, batch_size=2)
    torch.testing.assert_close(sf.centroids[0][0], 1.5 * a0)
    torch.testing.assert_close(sf.centroids[1][0], 5 / 3 * a1)
    torch.testing.assert_close(sf.centroids[None][0], real.mean(dim=0))
    assert sf.class_counts == {None: 5, 0: 2, 1: 3}


def constant_pool() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """4 textured images (positive MC variance under ControlNet(noise > 0)), 2 positive and 2 negative
    constant images (variance exactly 0), interleaved."""
    g = torch.Generator().manual_seed(1)
    textured = [rand_image(g) for _ in range(4)]
    constants = [torch.full((3, 4, 4), v) for v in (0.5, -0.5, 0.7, -0.3)]
    t, c = textured, constants
    images = torch.stack([t[0], c[0], c[1], t[1], t[2], c[2], c[3], t[3]])
    zero_variance = torch.tensor([False, True, True, False, False, True, True, False])
    positive = torch.tensor([False, True, False, False, False, True, False, False])
    return images, zero_variance, positive


@pytest.mark.parametrize("fit_with_labels", [False, True])
def test_unlabelled_pool_uses_variance_and_one_centroid(fit_with_labels: bool) -> None:
    images, zero_variance, positive = constant_pool()
    real = torch.stack([torch.full((3, 4, 4), 0.2), torch.full((3, 4, 4), 0.9)])
    sf = SelectiveFilter(ControlNet(noise=3.0), mc_samples=16, seed=0)
    sf.fit(real, [0, 1] if fit_with_labels else None)
    res = sf.select(images)
    assert res.uncertainty_kind == "variance" and res.labels is None
    assert torch.equal(res.uncertainty == 0, zero_variance)
    assert torch.equal(res.stage1, zero_variance)
    assert torch.equal(res.kept, positive)
    # a negative constant points the opposite way to the (positive) centroid at every position: distance 4
    torch.testing.assert_close(res.distance[zero_variance & ~positive], torch.full((2,), 4.0))


def test_network_without_classifier_scores_the_variance_of_its_pooled_last_features() -> None:
    images, zero_variance, positive = constant_pool()
    labels = torch.tensor([0, 0, 0, 0, 1, 1, 1, 1])
    real = torch.stack([torch.full((3, 4, 4), 0.2), torch.full((3, 4, 4), 0.9)])
    sf = SelectiveFilter(ControlNet(noise=3.0, classifier=False), mc_samples=16, seed=0).fit(real, [0, 1])
    res = sf.select(images, labels)
    assert res.uncertainty_kind == "variance"
    assert torch.equal(res.stage1, zero_variance)  # two per class
    assert torch.equal(res.kept, positive)  # one per class
    with pytest.raises(ConfigError, match="needs class logits"):
        SelectiveFilter(ControlNet(classifier=False), uncertainty="entropy", seed=0).fit(real).select(images)


def test_uncertainty_can_be_forced() -> None:
    g = torch.Generator().manual_seed(3)
    pool = torch.rand(8, 3, 4, 4, generator=g)
    sf = SelectiveFilter(ControlNet(), mc_samples=2, uncertainty="entropy", seed=0).fit(pool[:2])
    assert sf.select(pool).uncertainty_kind == "entropy"
    sf = SelectiveFilter(ControlNet(), mc_samples=2, uncertainty="variance", seed=0).fit(pool[:2], [0, 1])
    res = sf.select(pool, [0, 1] * 4)
    assert res.uncertainty_kind == "variance" and float(res.uncertainty.abs().max()) == 0.0  # noise=0


# -- sizes -------------------------------------------------------------------------------------------
def test_pool_size_is_four_r_n_per_class() -> None:
    sf = SelectiveFilter(ControlNet(), ratio=0.5, seed=0)
    assert sf.pool_size(10) == {None: 20}
    assert sf.pool_size({0: 3, 1: 7}) == {0: 8, 1: 16}  # round half up: 1.5 -> 2, 3.5 -> 4
    assert sf.pool_size(labels=torch.tensor([2, 0, 2, 2])) == {0: 4, 2: 8}
    assert SelectiveFilter(ControlNet(), ratio=0.25, seed=0).pool_size({0: 10, 1: 0}) == {0: 12, 1: 0}
    assert SelectiveFilter(ControlNet(), ratio=0.01, seed=0).pool_size(5) == {None: 4}  # at least one kept
    assert SelectiveFilter(ControlNet(), ratio=2.0, seed=0).pool_size(3) == {None: 24}
    sf.fit(torch.rand(5, 3, 4, 4), [0, 1, 1, 0, 1])
    assert sf.pool_size() == {0: 4, 1: 8}
    sf.fit(torch.rand(5, 3, 4, 4))
    assert sf.pool_size() == {None: 12}
    with pytest.raises(ConfigError, match="call fit"):
        SelectiveFilter(ControlNet(), seed=0).pool_size()


@pytest.mark.parametrize(
    ("n", "stage1", "kept"), [(1, 0, 0), (2, 1, 0), (3, 1, 0), (4, 2, 1), (7, 3, 1), (8, 4, 2)]
)
def test_a_pool_keeps_floor_of_floor_halves(n: int, stage1: int, kept: int) -> None:
    g = torch.Generator().manual_seed(n)
    sf = SelectiveFilter(ControlNet(), mc_samples=2, seed=0).fit(torch.rand(2, 3, 4, 4, generator=g))
    res = sf.select(torch.rand(n, 3, 4, 4, generator=g))
    assert (int(res.stage1.sum()), int(res.kept.sum()), tuple(res.images.shape)) == (
        stage1,
        kept,
        (kept, 3, 4, 4),
    )


def test_generate_and_select_keeps_r_n_per_class() -> None:
    real = torch.rand(7, 3, 4, 4, generator=torch.Generator().manual_seed(0))
    calls = []

    def conditional(n: int, label: int) -> torch.Tensor:
        calls.append((n, label))
        return torch.rand(n, 3, 4, 4) + label

    sf = SelectiveFilter(ControlNet(), ratio=0.5, mc_samples=2, seed=0).fit(real, [0, 0, 0, 1, 1, 1, 1])
    res = sf.generate_and_select(conditional)
    assert calls == [(8, 0), (8, 1)]  # 4 * round(0.5 * 3) and 4 * round(0.5 * 4)
    assert res.labels.tolist() == [0, 0, 1, 1] and res.stage1.sum() == 8

    sf.fit(real)
    res = sf.generate_and_select(lambda n: torch.rand(n, 3, 4, 4))
    assert res.uncertainty.shape == (16,) and len(res) == 4  # round(3.5) = 4
    with pytest.raises(ConfigError, match=r"expected a tensor \[16, C, H, W\]"):
        sf.generate_and_select(lambda n: torch.rand(n - 1, 3, 4, 4))


# -- randomness and ties ------------------------------------------------------------------------------
def seeded_filter(seed: int) -> SelectiveFilter:
    torch.manual_seed(0)
    net = TinyDropoutNet(in_channels=3, n_classes=2, width=4)
    return SelectiveFilter(net, mc_samples=3, batch_size=5, seed=seed)


def test_same_seed_gives_a_bit_identical_selection_and_leaves_the_global_rng_alone() -> None:
    g = torch.Generator().manual_seed(7)
    real, pool = torch.rand(6, 3, 8, 8, generator=g), torch.rand(24, 3, 8, 8, generator=g)
    real_labels, labels = torch.tensor([0, 1] * 3), torch.tensor([0, 1] * 12)
    a = seeded_filter(5).fit(real, real_labels)
    state = torch.get_rng_state()
    first = a.select(pool, labels)
    assert torch.equal(torch.get_rng_state(), state)
    second = seeded_filter(5).fit(real, real_labels).select(pool, labels)
    for name in ("indices", "uncertainty", "distance", "stage1", "kept"):
        assert torch.equal(getattr(first, name), getattr(second, name)), name
    replay = a.set_random_state(5).select(pool, labels)
    assert torch.equal(replay.uncertainty, first.uncertainty)
    other = seeded_filter(6).fit(real, real_labels).select(pool, labels)
    assert not torch.equal(other.uncertainty, first.uncertainty)
    later = a.select(pool, labels)  # the generator moved on: new dropout masks
    assert not torch.equal(later.distance, replay.distance)


def test_deterministic_network_does_not_depend_on_batch_size(known_pool) -> None:
    images, labels, _, _, real, real_labels, _ = known_pool
    a = SelectiveFilter(ControlNet(), mc_samples=2, batch_size=3, seed=0).fit(real, real_labels)
    b = SelectiveFilter(ControlNet(), mc_samples=2, batch_size=64, seed=1).fit(real, real_labels)
    ra, rb = a.select(images, labels), b.select(images, labels)
    assert torch.equal(ra.kept, rb.kept)
    torch.testing.assert_close(ra.uncertainty, rb.uncertainty)


def test_ties_go_to_the_earlier_pool_position() -> None:
    pool = torch.ones(11, 3, 4, 4)  # every score equal
    labels = torch.tensor([0, 1, 1, 0, 1, 0, 1, 0, 0, 1, 1])  # class 0: 0 3 5 7 8; class 1: 1 2 4 6 9 10
    sf = SelectiveFilter(ControlNet(), mc_samples=2, seed=0).fit(pool[:2], [0, 1])
    res = sf.select(pool, labels)
    assert res.stage1.nonzero().flatten().tolist() == [0, 1, 2, 3, 4]  # floor(5/2) of 0, floor(6/2) of 1
    assert res.indices.tolist() == [0, 1]  # floor(2/2) of 0 and floor(3/2) of 1


# -- as a transform -------------------------------------------------------------------------------------
class StandInSampler(RandomTransform):
    """Stands in for SG2Sample: turns each input into a "synthetic" sample."""

    needs_generator_range = False

    def draw_params(self, batch: int, generator: torch.Generator) -> dict:
        return {"shift": torch.rand(batch, generator=generator)}

    def apply_batch(self, x: torch.Tensor, params: dict, kind: str) -> torch.Tensor:
        return x.flip(-1) * (1 + params["shift"].view(-1, 1, 1, 1))


def test_in_a_compose_after_a_sampler_it_returns_the_kept_subset(known_pool) -> None:
    images, labels, _, _, real, real_labels, _ = known_pool
    pipeline = v2.Compose(
        [StandInSampler(seed=3), SelectiveFilter(ControlNet(), mc_samples=2, seed=0).fit(real, real_labels)]
    )
    out = pipeline(images)
    synthetic = StandInSampler(seed=3)(images)
    expected = SelectiveFilter(ControlNet(), mc_samples=2, seed=0).fit(real, real_labels).select(synthetic)
    assert torch.equal(out, expected.images) and out.shape[0] == 5
    assert pipeline.transforms[1].last_result.indices.tolist() == expected.indices.tolist()

    pipeline.transforms[0].set_random_state(3)
    kept, kept_labels = pipeline(images, labels)  # labels ride along through the sampler
    res = pipeline.transforms[1].last_result
    assert torch.equal(kept, synthetic[res.indices]) and torch.equal(kept_labels, labels[res.indices])

    wrapped = SelectiveFilter(ControlNet(), mc_samples=2, seed=0).fit(real)(tv_tensors.Image(images))
    assert isinstance(wrapped, tv_tensors.Image) and wrapped.shape == (5, 3, 4, 4)
    as_list = SelectiveFilter(ControlNet(), mc_samples=2, seed=0).fit(real, real_labels)([images, labels])
    known = SelectiveFilter(ControlNet(), mc_samples=2, seed=0).fit(real, real_labels).select(images, labels)
    assert isinstance(as_list, list) and torch.equal(as_list[0], known.images)
    assert torch.equal(as_list[1], known.labels) and sorted(as_list[1].tolist()) == [0, 0, 1, 1, 1]


def test_the_filter_sits_on_the_batch_filter_base_and_does_not_override_forward(known_pool) -> None:
    from latent_transforms.transforms import BatchFilter

    assert issubclass(SelectiveFilter, BatchFilter) and "forward" not in SelectiveFilter.__dict__
    images, labels, _, _, real, real_labels, _ = known_pool
    sf = SelectiveFilter(ControlNet(), mc_samples=2, seed=0).fit(real, real_labels)
    kept, kept_labels = sf(images, labels)
    params = sf.last_params  # one selection, replayable on another input of the same batch
    assert torch.equal(sf.transform(images, params), kept)
    assert torch.equal(sf.transform(labels, params), kept_labels)
    assert params["result"] is sf.last_result


def test_integer_pools_keep_their_dtype_and_preprocess_is_applied() -> None:
    g = torch.Generator().manual_seed(2)
    pool = torch.randint(1, 256, (8, 3, 4, 4), generator=g, dtype=torch.uint8)
    seen = []

    def to_unit(x: torch.Tensor) -> torch.Tensor:
        seen.append((x.dtype, float(x.max())))
        return x / 255.0

    sf = SelectiveFilter(ControlNet(), mc_samples=2, preprocess=to_unit, seed=0).fit(pool[:3])
    res = sf.select(pool)
    assert res.images.dtype == torch.uint8 and torch.equal(res.images, pool[res.indices])
    assert all(dtype == torch.float32 and top > 1 for dtype, top in seen)
    assert "preprocess=to_unit" in repr(sf)


def test_a_pickled_copy_selects_the_same(known_pool) -> None:
    images, labels, _, _, real, real_labels, _ = known_pool
    sf = SelectiveFilter(ControlNet(noise=1.0), mc_samples=3, seed=4).fit(real, real_labels)
    copy = pickle.loads(pickle.dumps(sf))
    assert torch.equal(copy.select(images, labels).uncertainty, sf.select(images, labels).uncertainty)


def test_repr_shows_every_parameter() -> None:
    sf = SelectiveFilter(TinyDropoutNet(), ratio=0.25, mc_samples=4, batch_size=8, seed=3, device="cpu")
    assert repr(sf) == (
        "SelectiveFilter(feature_net=TinyDropoutNet, ratio=0.25, mc_samples=4, uncertainty='auto', "
        "batch_size=8, preprocess=None, seed=3, device='cpu')"
    )
    assert sf.p == 1.0


# -- mc_dropout ---------------------------------------------------------------------------------------------
def test_mc_dropout_sets_and_restores_every_module_mode() -> None:
    net = nn.Sequential(nn.Conv2d(1, 2, 1), nn.BatchNorm2d(2), nn.Dropout2d(0.5), nn.Sequential(nn.Dropout()))
    net.train()
    net[1].eval()
    before = [m.training for m in net.modules()]
    with mc_dropout(net):
        assert [m.training for m in net.modules()] == [False, False, False, True, False, True]
    assert [m.training for m in net.modules()] == before
    with pytest.raises(RuntimeError, match="boom"), mc_dropout(net, active=False):
        assert not any(m.training for m in net.modules())
        raise RuntimeError("boom")
    assert [m.training for m in net.modules()] == before


def test_mc_dropout_reaches_inside_a_frozen_network() -> None:
    frozen = FrozenNetwork(nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.5)), name="f", input_size=None)
    with mc_dropout(frozen):
        assert frozen.backbone[1].training
        out = frozen.backbone(torch.ones(1, 64, 4))
        assert bool((out == 0).any())
    assert not frozen.backbone[1].training


# -- errors -------------------------------------------------------------------------------------------------
def test_errors_say_what_is_wrong() -> None:
    real = torch.rand(4, 3, 4, 4)
    sf = SelectiveFilter(ControlNet(), mc_samples=2, seed=0)
    with pytest.raises(ConfigError, match=r"call fit\(real_images, labels\)"):
        sf.select(real)
    sf.fit(real, [0, 0, 1, 1])
    with pytest.raises(ConfigError, match="empty"):
        sf.select(torch.zeros(0, 3, 4, 4))
    with pytest.raises(ConfigError, match="3 labels for 4 pool samples"):
        sf.select(real, [0, 1, 0])
    with pytest.raises(ConfigError, match=r"class\(es\) \[2\] are in the pool but had no real images"):
        sf.select(real, [0, 1, 2, 2])
    bad = real.clone()
    bad[2, 0, 1, 1] = float("nan")
    with pytest.raises(ConfigError, match=r"NaN or Inf values \(in sample\(s\) \[2\]\)"):
        sf.select(bad, [0, 0, 1, 1])
    with pytest.raises(ConfigError, match="NaN or Inf"):
        SelectiveFilter(ControlNet(), seed=0).fit(bad)
    with pytest.raises(ConfigError, match="argmax"):
        sf.select(real, torch.eye(4))
    with pytest.raises(ConfigError, match="single image"):
        sf.select(real[0])
    with pytest.raises(ConfigError, match="same size"):
        sf.select(torch.rand(4, 3, 6, 6), [0, 0, 1, 1])
    with pytest.raises(ConfigError, match="no per-sample transform"):
        sf.transform(real, sf.params_for(real))
    with pytest.raises(ConfigError, match="fit was called without labels"):
        SelectiveFilter(ControlNet(), seed=0).fit(real).select(real, [0, 0, 1, 1])
    with pytest.raises(ConfigError, match=r"2 labels for 4 real images"):
        SelectiveFilter(ControlNet(), seed=0).fit(real, [0, 1])


def test_network_without_dropout_is_refused_unless_one_pass() -> None:
    plain = nn.Conv2d(3, 4, 1)
    with pytest.raises(ConfigError, match=r"MC dropout needs a dropout layer.*nn.Dropout\(0.5\)"):
        SelectiveFilter(plain, mc_samples=5)
    sf = SelectiveFilter(plain, mc_samples=1, seed=0).fit(torch.rand(2, 3, 4, 4))
    res = sf.select(torch.rand(4, 3, 4, 4))  # a single map: features only
    assert res.uncertainty_kind == "variance" and len(res) == 1


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"ratio": 0}, "ratio"),
        ({"ratio": float("nan")}, "ratio"),
        ({"mc_samples": 0}, "mc_samples"),
        ({"uncertainty": "margin"}, "uncertainty"),
        ({"batch_size": 0}, "batch_size"),
        ({"preprocess": 3}, "preprocess"),
    ],
)
def test_bad_parameters_are_refused(kwargs: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        SelectiveFilter(ControlNet(), **kwargs)


def test_bad_network_output_is_refused() -> None:
    class Wrong(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.drop = nn.Dropout()

        def forward(self, x: torch.Tensor):
            return {"logits": x}

    with pytest.raises(ConfigError, match="Fix: wrap the network"):
        SelectiveFilter(Wrong(), seed=0).fit(torch.rand(2, 3, 4, 4))
    with pytest.raises(ConfigError, match=r"torch\.nn\.Module"):
        SelectiveFilter(lambda x: x)  # type: ignore[arg-type]


@pytest.mark.cuda
def test_runs_on_the_pool_device_cuda() -> None:
    torch.manual_seed(0)
    sf = SelectiveFilter(TinyDropoutNet(in_channels=3), mc_samples=3, seed=0)
    real, pool = torch.rand(4, 3, 8, 8, device="cuda"), torch.rand(16, 3, 8, 8, device="cuda")
    res = sf.fit(real, [0, 1, 0, 1]).select(pool, torch.tensor([0, 1] * 8, device="cuda"))
    assert res.images.is_cuda and res.indices.is_cuda and len(res) == 4
    again = SelectiveFilter(sf.feature_net, mc_samples=3, seed=0).fit(real, [0, 1, 0, 1])
    assert torch.equal(again.select(pool, torch.tensor([0, 1] * 8)).kept.cpu(), res.kept.cpu())


# -- invariants ---------------------------------------------------------------------------------------------
_PALETTE = torch.rand(6, 3, 2, 2, generator=torch.Generator().manual_seed(11)) * 2 - 0.5  # both signs
_FITTED = SelectiveFilter(ControlNet(), mc_samples=2, seed=0).fit(_PALETTE[:3], [0, 1, 2])


@given(
    rows=st.lists(
        st.tuples(st.integers(0, 5), st.integers(0, 2), st.sampled_from([0.5, 1.0, 3.0])),
        min_size=1,
        max_size=20,
    ),
    labelled=st.booleans(),
)
def test_selection_invariants(rows: list[tuple[int, int, float]], labelled: bool) -> None:
    pool = torch.stack([_PALETTE[i] * t for i, _, t in rows])  # repeats make ties
    labels = torch.tensor([c for _, c, _ in rows]) if labelled else None
    res: SelectionResult = _FITTED.select(pool, labels)
    assert not bool((res.kept & ~res.stage1).any())  # kept ⊆ stage1 ⊆ pool
    assert res.stage1.shape == res.kept.shape == res.uncertainty.shape == res.distance.shape == (len(rows),)
    groups = labels if labels is not None else torch.zeros(len(rows), dtype=torch.long)
    for c in torch.unique(groups).tolist():
        members = groups == c
        n = int(members.sum())
        s1, k = res.stage1 & members, res.kept & members
        assert int(s1.sum()) == n // 2 and int(k.sum()) == n // 2 // 2
        if s1.any() and (members & ~s1).any():  # the lower half: no rejected score below a kept one
            assert float(res.uncertainty[s1].max()) <= float(res.uncertainty[members & ~s1].min())
        if k.any() and (s1 & ~k).any():
            assert float(res.distance[k].max()) <= float(res.distance[s1 & ~k].min())
    assert torch.equal(res.indices, torch.unique(res.indices))  # sorted and unique
    assert res.indices.dtype == torch.long
    assert torch.equal(res.images, pool[res.indices])
    if labels is None:
        assert res.labels is None
    else:
        assert torch.equal(res.labels, labels[res.indices])
    assert bool(torch.isfinite(res.distance).all()) and float(res.distance.min()) >= 0
    assert float(res.distance.max()) <= 4.0 + 1e-5  # one feature layer: a squared chord of the unit sphere
