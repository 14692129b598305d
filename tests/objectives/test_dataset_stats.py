"""DatasetStats: the closed-form diversity terms equal the brute-force means over the dataset, exactly."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, strategies as st

from latent_transforms.errors import ConfigError
from latent_transforms.features.perceptual import PerceptualNetwork, perceptual_network
from latent_transforms.objectives import DatasetStats, centre_positions, patch_grid

R, C, P = 16, 2, 8
N = 7


def data(n: int = N, seed: int = 0, w_shape: tuple[int, ...] = (6,)) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, C, R, R, generator=g, dtype=torch.float64) * 2 - 1
    w = torch.randn(n, *w_shape, generator=g, dtype=torch.float64)
    return x, w


@pytest.fixture(scope="module")
def net() -> PerceptualNetwork:
    return perceptual_network("random")


@pytest.fixture(scope="module")
def dataset() -> tuple[torch.Tensor, torch.Tensor]:
    return data()


@pytest.fixture(scope="module")
def stats(net, dataset) -> DatasetStats:
    x, w = dataset
    # uneven batches, images and latents in separate calls for part of the data
    acc = DatasetStats.accumulator(resolution=R, channels=C, perceptual=net, patch_size=P)
    acc.update(x[:1].float(), w[:1].float())
    acc.update(x[1:5].float())
    acc.update(w=w[1:3].float())
    acc.update(x[5:].float(), w[3:].float())
    return acc.finalize()


def brute_pixel(q: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return torch.stack([((q - xj) ** 2).mean(dim=(1, 2, 3)) for xj in x]).mean(dim=0)


def brute_latent(q: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    return torch.stack([((q - wj) ** 2).flatten(1).mean(dim=1) for wj in w]).mean(dim=0)


def brute_perceptual(
    net: PerceptualNetwork, stats: DatasetStats, q: torch.Tensor, x: torch.Tensor, positions: torch.Tensor
) -> torch.Tensor:
    """mean_j sum_l mean((phi_l(P(q_b)) - phi_l(P(x_j)))^2), averaged over modalities, real patch at the
    synthetic one's position."""
    feats_q = net(stats.patch(q, positions))
    out = []
    for b in range(q.shape[0]):
        same = positions[b].repeat(x.shape[0])
        feats_x = net(stats.patch(x.float(), same))
        mine = [f[b : b + 1] for f in feats_q]
        out.append(net.distance(mine, feats_x).mean(dim=0).mean())  # mean over j, then over C'
    return torch.stack(out)


def close(a: torch.Tensor, b: torch.Tensor, rtol: float = 1e-5) -> bool:
    return torch.allclose(a.double(), b.double(), rtol=rtol, atol=1e-7)


# -- values -------------------------------------------------------------------------------------------


def test_counts_and_shapes(stats):
    assert (stats.n_images, stats.n_latents) == (N, N)
    assert stats.image_mean.shape == (C, R, R) and stats.image_mean.dtype == torch.float32
    assert stats.w_mean.shape == (6,)
    assert stats.num_positions == 9 and stats.patch_positions.shape == (9, 2)
    assert [tuple(m.shape) for m in stats.patch_means] == [
        (9, C, 8, 4, 4),
        (9, C, 16, 2, 2),
        (9, C, 32, 1, 1),
    ]
    assert stats.patch_constants.shape == (9, C)
    assert (stats.patch_size, stats.patch_stride) == (P, P // 2)


def test_pixel_loss_equals_the_brute_force_mean(stats, dataset):
    x, _ = dataset
    q = torch.rand(4, C, R, R, dtype=torch.float64) * 2 - 1
    assert close(stats.pixel_loss(q), brute_pixel(q, x))
    assert close(stats.pixel_loss(x[:3]), brute_pixel(x[:3], x))  # dataset members too


def test_pixel_loss_without_the_constant_is_the_distance_to_the_mean(stats, dataset):
    x, _ = dataset
    q = torch.zeros(2, C, R, R)
    assert close(stats.pixel_loss(q, add_constants=False), (x.mean(0) ** 2).mean().repeat(2))
    assert stats.image_var == pytest.approx(float(((x - x.mean(0)) ** 2).mean()), rel=1e-9)


def test_latent_loss_equals_the_brute_force_mean(stats, dataset):
    _, w = dataset
    q = torch.randn(5, 6, dtype=torch.float64)
    assert close(stats.latent_loss(q), brute_latent(q, w))
    assert close(stats.latent_loss(q, add_constants=False) + stats.w_var, stats.latent_loss(q))


def test_latent_loss_of_w_plus_against_w_statistics_and_back():
    x, w = data(w_shape=(4, 6))  # W+ statistics, 4 layers
    acc = DatasetStats.accumulator(resolution=R, channels=C)
    acc.update(x.float(), w.float())
    plus = acc.finalize()
    q = torch.randn(3, 6, dtype=torch.float64)  # W query, broadcast over the layers
    assert close(plus.latent_loss(q), brute_latent(q[:, None], w))
    assert close(plus.latent_loss(q[:, None].expand(-1, 4, -1)), plus.latent_loss(q))
    _, w1 = data(w_shape=(6,))
    acc = DatasetStats.accumulator(resolution=R, channels=C)
    acc.update(w=w1.float())
    single = acc.finalize()
    q_plus = torch.randn(3, 4, 6, dtype=torch.float64)
    assert close(single.latent_loss(q_plus), brute_latent(q_plus, w1[:, None]))
    with pytest.raises(ConfigError, match="num_ws"):
        plus.latent_loss(torch.randn(3, 5, 6))


def test_perceptual_loss_equals_the_brute_force_mean(net, stats, dataset):
    x, _ = dataset
    q = torch.rand(4, C, R, R) * 2 - 1
    positions = torch.tensor([0, 4, 8, 5])
    ours = stats.perceptual_loss(net(stats.patch(q, positions)), positions)
    assert ours.shape == (4,)
    assert close(ours, brute_perceptual(net, stats, q, x, positions))
    assert close(stats.image_perceptual_loss(net, q, positions), ours)


def test_centre_positions_lie_inside_the_centre_square_of_side_r_over_root_2():
    grid = patch_grid(256, 64, 32)
    inside = grid[centre_positions(grid, 256, 64)]
    assert inside.tolist() == [[r, c] for r in (64, 96, 128) for c in (64, 96, 128)]  # inside 37.5 ... 218.5
    assert centre_positions(patch_grid(32, 8, 4), 32, 8).numel() == 9
    assert centre_positions(patch_grid(64, 64, 32), 64, 64).tolist() == [0]  # the whole image: no choice
    centred = patch_grid(16, 12, 2)  # 12 px patches do not fit in 11.3 px: the centred one
    assert centred[centre_positions(centred, 16, 12)].tolist() == [[2, 2]]


def test_pool_perceptual_loss_equals_the_brute_force_mean_over_the_pool(net, dataset):
    x, _ = dataset
    stats = DatasetStats.compute([x[:3].float(), x[3:].float()], perceptual=net, patch_size=4, progress=False)
    pool = stats.patch_pool(torch.tensor([0, 5, 6, 9]))
    q = torch.rand(3, C, R, R, generator=torch.Generator().manual_seed(2)) * 2 - 1
    positions = torch.tensor([5, 5, 10])
    feats = net(stats.patch(q, positions))
    ours = stats.pool_perceptual_loss(feats, pool)
    pairs = [
        net.distance(
            feats, net(stats.patch(xj[None].float().expand(3, -1, -1, -1), torch.full((3,), int(i))))
        )
        for xj in x
        for i in pool.indices
    ]
    brute = torch.stack(pairs).mean(0).mean(1)  # mean over (image, pooled position), then over C'
    assert close(ours, brute)
    without = stats.pool_perceptual_loss(feats, pool, add_constants=False)
    assert close(ours - without, pool.constants.mean(1).expand(3))
    default = stats.patch_pool()  # the centre-square positions
    assert torch.equal(default.indices, stats.centre_positions())
    one = stats.patch_pool(torch.tensor([5]))  # a pool of one position is that position's statistics
    assert close(stats.pool_perceptual_loss(feats, one), stats.perceptual_loss(feats, torch.full((3,), 5)))
    with pytest.raises(ConfigError, match="patch position"):
        stats.patch_pool(torch.tensor([99]))


def test_gradients_equal_the_brute_force_gradients(net, stats, dataset):
    x, w = dataset
    q0 = torch.rand(3, C, R, R) * 2 - 1
    positions = torch.tensor([1, 7, 3])
    weights = torch.tensor([1.0, 2.0, 3.0])

    def grad(fn, start):
        q = start.clone().requires_grad_(True)
        (fn(q) * weights.to(q.dtype)).sum().backward()
        return q.grad

    g_ours = grad(lambda q: stats.pixel_loss(q), q0.double())
    g_brute = grad(lambda q: brute_pixel(q, x), q0.double())
    assert close(g_ours, g_brute)

    wq = torch.randn(3, 6, dtype=torch.float64)
    assert close(grad(lambda q: stats.latent_loss(q), wq), grad(lambda q: brute_latent(q, w), wq))

    g_ours = grad(lambda q: stats.image_perceptual_loss(net, q, positions, add_constants=False), q0)
    g_brute = grad(lambda q: brute_perceptual(net, stats, q, x, positions), q0)
    assert torch.allclose(g_ours, g_brute, rtol=1e-4, atol=1e-7)


def test_missing_parts_are_explained():
    acc = DatasetStats.accumulator(resolution=R, channels=C)
    acc.update(data()[0].float())
    stats = acc.finalize()
    with pytest.raises(ConfigError, match="latent statistics"):
        stats.latent_loss(torch.zeros(1, 6))
    with pytest.raises(ConfigError, match="without a perceptual network"):
        stats.perceptual_loss([torch.zeros(1, C, 8, 4, 4)], torch.zeros(1, dtype=torch.long))
    with pytest.raises(ConfigError, match=r"\[B, 2, 16, 16\]"):
        stats.pixel_loss(torch.zeros(1, 3, 16, 16))


def test_bad_positions_and_features_are_explained(net, stats):
    feats = net(torch.zeros(2, C, P, P))
    with pytest.raises(ConfigError, match="LongTensor"):
        stats.perceptual_loss(feats, torch.zeros(2))
    with pytest.raises(ConfigError, match=r"\[0, 9\)"):
        stats.perceptual_loss(feats, torch.tensor([0, 9]))
    with pytest.raises(ConfigError, match="3 feature maps"):
        stats.perceptual_loss(feats[:2], torch.tensor([0, 1]))
    with pytest.raises(ConfigError, match="layer 0"):
        stats.perceptual_loss(net(torch.zeros(2, C, 16, 16)), torch.tensor([0, 1]))


def test_images_outside_the_generator_range_are_refused():
    acc = DatasetStats.accumulator(resolution=R, channels=C)
    with pytest.raises(ConfigError, match=r"\[-1, 1\]"):
        acc.update(torch.full((1, C, R, R), 255.0))
    with pytest.raises(ConfigError, match="NaN"):
        acc.update(torch.full((1, C, R, R), float("nan")))
    with pytest.raises(ConfigError, match="W or W\\+"):
        acc.update(w=torch.zeros(1, 6))
        acc.update(w=torch.zeros(1, 2, 6))


# -- patches ---------------------------------------------------------------------------------------


def test_patch_grid_positions():
    grid = patch_grid(16, 8, 4)
    assert grid.tolist() == [[r, c] for r in (0, 4, 8) for c in (0, 4, 8)]
    assert patch_grid(16, 8, 5)[:, 1].unique().tolist() == [0, 5, 8]  # the last position is added
    assert patch_grid(16, 16, 8).tolist() == [[0, 0]]
    assert patch_grid(8, 64, 32).tolist() == [[0, 0]]


def test_small_images_use_one_whole_image_patch(net):
    stats = DatasetStats.compute([torch.zeros(2, 1, 16, 16)], perceptual=net, progress=False)
    assert (stats.patch_size, stats.num_positions) == (16, 1)
    x = torch.rand(2, 1, 16, 16)
    assert torch.equal(stats.patch(x, torch.zeros(2, dtype=torch.long)), x)


def test_patch_cuts_each_sample_at_its_position(stats):
    x = torch.rand(3, C, R, R, requires_grad=True)
    positions = torch.tensor([0, 4, 8])
    patches = stats.patch(x, positions)
    corners = stats.patch_positions[positions].tolist()
    for b, (r, c) in enumerate(corners):
        assert torch.equal(patches[b], x[b, :, r : r + P, c : c + P])
    patches.sum().backward()
    assert x.grad.sum() == 3 * C * P * P


def test_random_positions_are_reproducible(stats):
    a = stats.random_positions(6, torch.Generator().manual_seed(3))
    b = stats.random_positions(6, torch.Generator().manual_seed(3))
    assert torch.equal(a, b) and a.dtype == torch.long and ((a >= 0) & (a < 9)).all()


# -- streaming --------------------------------------------------------------------------------------


def _split_stats(net: PerceptualNetwork, x: torch.Tensor, w: torch.Tensor, sizes: list[int]) -> DatasetStats:
    acc = DatasetStats.accumulator(resolution=R, channels=C, perceptual=net, patch_size=P, patch_stride=6)
    start = 0
    for size in sizes:
        acc.update(x[start : start + size].float(), w[start : start + size].float())
        start += size
    return acc.finalize()


@pytest.mark.slow
@given(st.lists(st.integers(min_value=0, max_value=3), min_size=1, max_size=6))
def test_batch_splits_give_the_same_statistics(sizes):
    net = perceptual_network("random")
    n = sum(sizes)
    if n == 0:
        return
    x, w = data(n, seed=n)
    one = _split_stats(net, x, w, [n])
    split = _split_stats(net, x, w, sizes)
    assert (split.n_images, split.n_latents) == (n, n)
    assert torch.allclose(one.image_mean, split.image_mean, atol=1e-7)
    assert one.image_var == pytest.approx(split.image_var, rel=1e-9, abs=1e-12)
    assert torch.allclose(one.w_mean, split.w_mean, atol=1e-7)
    assert one.w_var == pytest.approx(split.w_var, rel=1e-9, abs=1e-12)
    for a, b in zip(one.patch_means, split.patch_means, strict=True):
        assert torch.allclose(a, b, atol=1e-6)
    assert torch.allclose(one.patch_constants, split.patch_constants, atol=1e-6)


def test_compute_takes_tensors_or_pairs(net, dataset):
    x, w = dataset
    pairs = DatasetStats.compute(
        [(x[:3].float(), w[:3].float()), (x[3:].float(), w[3:].float())],
        perceptual=net,
        patch_size=P,
        progress=False,
    )
    only_images = DatasetStats.compute([x[:2].float(), x[2:].float()], patch_size=P, progress=False)
    assert (pairs.n_images, pairs.n_latents, pairs.resolution, pairs.channels) == (N, N, R, C)
    assert only_images.n_latents == 0 and only_images.w_mean is None
    assert torch.allclose(pairs.image_mean, only_images.image_mean)
    with pytest.raises(ConfigError, match="at least one batch"):
        DatasetStats.compute([], progress=False)
    with pytest.raises(ConfigError, match="pairs"):
        DatasetStats.compute([(x, w, w)], progress=False)


# -- files and fingerprints ---------------------------------------------------------------------------


def test_save_load_round_trip(stats, net, tmp_path):
    stats.info["generator"] = "abc"
    path = tmp_path / "stats.safetensors"
    stats.save(path)
    assert [p.name for p in tmp_path.iterdir()] == ["stats.safetensors"]  # no temp file left
    loaded = DatasetStats.load(path, perceptual=net, device="cpu")
    assert repr(loaded) == repr(stats)
    assert loaded.info == {"generator": "abc"}
    for name in ("n_images", "n_latents", "image_var", "w_var", "patch_size", "patch_stride"):
        assert getattr(loaded, name) == getattr(stats, name)
    assert (loaded.perceptual_name, loaded.perceptual_fingerprint) == ("random", net.fingerprint)
    assert torch.equal(loaded.image_mean, stats.image_mean) and torch.equal(loaded.w_mean, stats.w_mean)
    assert torch.equal(loaded.patch_positions, stats.patch_positions)
    for a, b in zip(loaded.patch_means, stats.patch_means, strict=True):
        assert torch.equal(a, b)
    assert torch.equal(loaded.patch_constants, stats.patch_constants)


def test_save_load_without_latents_or_perceptual(tmp_path):
    stats = DatasetStats.compute([data()[0].float()], progress=False)
    stats.save(tmp_path / "s.safetensors")
    loaded = DatasetStats.load(tmp_path / "s.safetensors")
    assert loaded.w_mean is None and loaded.patch_means is None and loaded.n_images == N


def test_load_refuses_another_perceptual_network(stats, tmp_path):
    path = tmp_path / "stats.safetensors"
    stats.save(path)
    other = perceptual_network("random", seed=1)
    with pytest.raises(ConfigError, match="fingerprint"):
        DatasetStats.load(path, perceptual=other)
    with pytest.raises(ConfigError, match="fingerprint"):
        stats.check_perceptual(perceptual_network("random", normalize=False))
    with pytest.raises(ConfigError, match="fingerprint"):
        stats.image_perceptual_loss(other, torch.zeros(1, C, R, R), torch.zeros(1, dtype=torch.long))


def test_load_explains_missing_and_foreign_files(tmp_path):
    with pytest.raises(ConfigError, match="no such file"):
        DatasetStats.load(tmp_path / "nope.safetensors")
    (tmp_path / "junk.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(ConfigError, match="cannot be read"):
        DatasetStats.load(tmp_path / "junk.safetensors")


def test_repr(stats):
    assert repr(stats) == (
        "DatasetStats(n_images=7, n_latents=7, resolution=16, channels=2, perceptual='random', "
        "patch_size=8, patch_stride=4, positions=9)"
    )


def test_joint_perceptual_network_gives_one_modality_entry():
    from latent_transforms import GanBundle
    from tests.conftest import tiny_config

    bundle = GanBundle.random(tiny_config(16), seed=0)
    net = perceptual_network("discriminator", bundle=bundle)
    x, _ = data(4)
    stats = DatasetStats.compute([x.float()], perceptual=net, patch_size=P, progress=False)
    assert stats.patch_constants.shape == (9, 1)
    q = torch.rand(2, C, R, R) * 2 - 1
    positions = torch.tensor([2, 6])
    assert close(
        stats.image_perceptual_loss(net, q, positions), brute_perceptual(net, stats, q, x, positions)
    )
