"""StyleGAN2 generator: shapes, conditioning, truncation, noise modes, precision and memory formats."""

from __future__ import annotations

import pytest
import torch

from latent_transforms import GanConfig, Generator
from latent_transforms.errors import ConfigError
from latent_transforms.networks.synthesis import resolve_channels_last
from tests.conftest import tiny_config


def _make(config: GanConfig, seed: int = 0) -> Generator:
    torch.manual_seed(seed)
    g = Generator(config).eval()
    with torch.no_grad():  # non-trivial noise strengths and w_avg, as in a trained network
        for layer in g.synthesis.noise_layers():
            layer.noise_strength.fill_(0.3)
        g.mapping.w_avg.normal_()
    return g


@pytest.mark.parametrize("c_dim", [0, 3])
def test_two_channel_32px_generator_runs_on_cpu(c_dim, seeded):
    cfg = tiny_config(32, c_dim=c_dim)
    g = _make(cfg)
    z = torch.randn(4, cfg.z_dim, generator=seeded)
    c = torch.eye(3)[[0, 1, 2, 0]] if c_dim else None
    img = g(z, c)
    assert img.shape == (4, 2, 32, 32) and img.dtype == torch.float32
    assert torch.isfinite(img).all()
    ws = g.mapping(z, c)
    assert ws.shape == (4, cfg.num_ws, cfg.w_dim) == (4, g.num_ws, 32)
    torch.testing.assert_close(g.synthesis(ws), img)


def test_conditioning_changes_the_output(seeded):
    cfg = tiny_config(16, c_dim=2)
    g = _make(cfg)
    z = torch.randn(2, cfg.z_dim, generator=seeded).repeat(2, 1)
    c = torch.eye(2)[[0, 0, 1, 1]]
    img = g(z, c)
    assert (img[0] - img[2]).abs().max() > 1e-3
    with pytest.raises(ValueError, match="conditional"):
        g(z)


@pytest.mark.parametrize("resolution", [16, 64, 1024])
def test_any_power_of_two_resolution_from_16_to_1024(resolution):
    cfg = GanConfig(
        resolution=resolution,
        z_dim=8,
        w_dim=8,
        channel_base=2 * resolution,
        channel_max=16,
        modalities=tiny_config().modalities,
    )
    g = Generator(cfg).eval()
    assert g.num_ws == cfg.num_ws == 2 * (len(cfg.block_resolutions) - 1) + 2
    img = g(torch.randn(1, 8))
    assert img.shape == (1, 2, resolution, resolution)


@pytest.mark.parametrize("bad", [8, 48, 2048])
def test_bad_resolutions_are_refused_with_a_fix(bad):
    with pytest.raises(ConfigError, match="power of two between 16 and 1024"):
        tiny_config(bad)


@pytest.mark.parametrize("channels", [1, 3])
def test_any_number_of_image_channels(channels):
    from latent_transforms import Modality

    mods = tuple(Modality(f"m{i}") for i in range(channels))
    g = Generator(tiny_config(16, modalities=mods)).eval()
    assert g(torch.randn(2, 32)).shape == (2, channels, 16, 16)


def test_truncation_psi_and_cutoff(seeded):
    g = _make(tiny_config(16))
    z = torch.randn(3, 32, generator=seeded)
    w = g.mapping(z)
    w_avg = g.mapping.w_avg
    torch.testing.assert_close(g.mapping(z, truncation_psi=0.0), w_avg.expand_as(w))
    half = g.mapping(z, truncation_psi=0.5)
    torch.testing.assert_close(half, w_avg + 0.5 * (w - w_avg))
    cut = g.mapping(z, truncation_psi=0.5, truncation_cutoff=2)
    torch.testing.assert_close(cut[:, :2], half[:, :2])
    torch.testing.assert_close(cut[:, 2:], w[:, 2:])


def test_w_avg_tracks_the_mean_of_w_only_when_asked(seeded):
    g = _make(tiny_config(16))
    before = g.mapping.w_avg.clone()
    z = torch.randn(8, 32, generator=seeded)
    g.mapping(z)
    torch.testing.assert_close(g.mapping.w_avg, before)
    g.mapping(z, update_w_avg=True)
    w_mean = g.mapping(z)[:, 0].mean(0)
    torch.testing.assert_close(g.mapping.w_avg, w_mean.lerp(before, 0.995))


def test_noise_modes(seeded):
    g = _make(tiny_config(16))
    ws = g.mapping(torch.randn(2, 32, generator=seeded))
    const_a, const_b = g.synthesis(ws, noise_mode="const"), g.synthesis(ws, noise_mode="const")
    torch.testing.assert_close(const_a, const_b)
    none = g.synthesis(ws, noise_mode="none")
    assert (none - const_a).abs().max() > 1e-4
    r1 = g.synthesis(ws, noise_mode="random", generator=torch.Generator().manual_seed(5))
    r2 = g.synthesis(ws, noise_mode="random", generator=torch.Generator().manual_seed(5))
    r3 = g.synthesis(ws, noise_mode="random", generator=torch.Generator().manual_seed(6))
    torch.testing.assert_close(r1, r2)
    assert (r1 - r3).abs().max() > 1e-4
    # explicit maps equal to the stored constants reproduce noise_mode="const"
    consts = [layer.noise_const.view(1, 1, *layer.noise_const.shape) for layer in g.synthesis.noise_layers()]
    torch.testing.assert_close(g.synthesis(ws, noise=consts), const_a)
    maps = g.synthesis.make_noise(2, generator=torch.Generator().manual_seed(5))
    assert [m.shape[-1] for m in maps] == [4, 8, 8, 16, 16]
    with pytest.raises(ValueError, match="noise_mode"):
        g.synthesis(ws, noise_mode="fresh")


def test_modulation_paths_give_the_same_generator_output(seeded):
    g = _make(tiny_config(32, c_dim=3))
    z = torch.randn(3, 32, generator=seeded)
    c = torch.eye(3)
    g.modulation = "grouped"
    a = g(z, c)
    g.modulation = "nonfused"
    b = g(z, c)
    assert g.modulation == "nonfused"
    assert (a - b).abs().max() < 1e-5


def test_channels_last_gives_the_same_output(seeded):
    g = _make(tiny_config(32))
    z = torch.randn(3, 32, generator=seeded)
    g.channels_last = False
    ref = g(z)
    for setting in (True, "auto"):
        g.channels_last = setting
        for path in ("grouped", "nonfused"):
            g.modulation = path
            assert (g(z) - ref).abs().max() < 1e-5


def test_channels_last_auto_is_on_for_cpu_off_for_cuda_and_other_values_are_refused():
    g = _make(tiny_config(32))
    assert g.channels_last == "auto"
    assert resolve_channels_last("auto", torch.device("cpu")) is True
    assert resolve_channels_last("auto", torch.device("cuda")) is False
    assert resolve_channels_last(False, torch.device("cpu")) is False
    with pytest.raises(ValueError, match="channels_last"):
        g.channels_last = "yes"
    with pytest.raises(ValueError, match="channels_last"):
        g.channels_last = 1


def test_bf16_autocast_stays_close_to_fp32(seeded):
    g = _make(tiny_config(32))
    z = torch.randn(4, 32, generator=seeded)
    ref = g(z)
    for path in ("grouped", "nonfused"):
        g.modulation = path
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = g(z)
        assert out.dtype == torch.float32 and torch.isfinite(out).all()
        rel = (out - ref).norm() / ref.norm()
        assert rel < 0.05, f"{path}: relative error {rel:.4f} under bf16"


def test_gradients_flow_to_w_only_when_networks_are_frozen(seeded):
    g = _make(tiny_config(16)).requires_grad_(False)
    w = g.mapping(torch.randn(2, 32, generator=seeded)).detach().requires_grad_(True)
    g.synthesis(w).square().mean().backward()
    assert w.grad is not None and w.grad.abs().sum() > 0
    assert all(p.grad is None for p in g.parameters())
