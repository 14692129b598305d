"""The Pix2Pix model of the MRI -> CT example: architecture, receptive field, schedule, training, saving."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from torch import nn

from examples.pix2pix_mri2ct.model import (
    PatchDiscriminator,
    Pix2Pix,
    Pix2PixOptions,
    UNetGenerator,
    init_weights,
    receptive_field,
)
from latent_transforms.errors import ConfigError


def _images(batch: int, resolution: int, seed: int = 0) -> torch.Tensor:
    """Smooth random images in [-1, 1] (a box blur of uniform noise, rescaled)."""
    g = torch.Generator().manual_seed(seed)
    noise = torch.rand(batch, 1, resolution + 8, resolution + 8, generator=g) * 2 - 1
    smooth = nn.functional.avg_pool2d(noise, 9, stride=1)
    return smooth / smooth.abs().amax()


def _tiny(resolution: int = 32, seed: int = 0, **options: object) -> Pix2Pix:
    opts = dict(ngf=4, ndf=4, d_layers=3 if resolution >= 32 else 2)
    opts.update(options)
    return Pix2Pix(resolution, Pix2PixOptions(**opts), seed=seed)


# ------------------------------------------------------------------------------------------- generator
@pytest.mark.parametrize(("resolution", "depth"), [(16, None), (32, None), (64, None), (64, 4), (32, 2)])
def test_generator_maps_images_to_images_in_range(resolution: int, depth: int | None) -> None:
    g = UNetGenerator(resolution=resolution, ngf=4, depth=depth)
    expected_depth = int(math.log2(resolution)) if depth is None else depth
    assert g.depth == expected_depth
    seen: list[torch.Size] = []
    g.down[-1].register_forward_hook(lambda _m, _i, out: seen.append(out.shape))
    x = torch.rand(3, 1, resolution, resolution, generator=torch.Generator().manual_seed(1)) * 2 - 1
    y = g.train()(x)
    assert y.shape == (3, 1, resolution, resolution)
    assert y.abs().max() <= 1.0
    assert y.std() > 0  # not a constant image
    bottleneck = resolution // 2**expected_depth
    assert seen[0][-2:] == (bottleneck, bottleneck)  # the matching depth reaches 1x1


def test_default_generator_is_unet_256_with_8_downsamplings() -> None:
    g = UNetGenerator(ngf=2)  # paper layout at a tiny width
    downs = [m for m in g.modules() if isinstance(m, nn.Conv2d)]
    ups = [m for m in g.modules() if isinstance(m, nn.ConvTranspose2d)]
    assert g.resolution == 256 and g.depth == 8
    assert len(downs) == 8 and all(m.stride == (2, 2) and m.kernel_size == (4, 4) for m in downs)
    assert len(ups) == 8 and all(m.stride == (2, 2) and m.kernel_size == (4, 4) for m in ups)
    assert [m.out_channels for m in downs] == [2, 4, 8, 16, 16, 16, 16, 16]  # ngf .. 8 ngf, capped
    assert isinstance(g.up[-1][-1], nn.Tanh)


def test_generator_layer_layout_follows_the_paper() -> None:
    g = UNetGenerator(resolution=64, ngf=4)
    kinds = [[type(m).__name__ for m in block] for block in g.down]
    assert kinds[0] == ["Conv2d"]  # no activation, no norm on the outermost
    assert kinds[-1] == ["LeakyReLU", "Conv2d"]  # innermost: no norm
    assert all(k == ["LeakyReLU", "Conv2d", "BatchNorm2d"] for k in kinds[1:-1])
    for block in list(g.down) + list(g.up):
        convs = [m for m in block if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
        has_norm = any(isinstance(m, nn.BatchNorm2d) for m in block)
        assert (convs[0].bias is None) == has_norm
    assert all(isinstance(block[0], nn.ReLU) for block in g.up)
    assert all(m.negative_slope == 0.2 for m in g.modules() if isinstance(m, nn.LeakyReLU))


@pytest.mark.parametrize(("resolution", "expected"), [(256, 3), (128, 3), (64, 2), (32, 1), (16, 0)])
def test_dropout_sits_in_the_innermost_8ngf_decoder_blocks(resolution: int, expected: int) -> None:
    # By hand: decoder block i (innermost first) outputs ngf * min(2**(depth - 2 - i), 8) channels.
    g = UNetGenerator(resolution=resolution, ngf=2)
    with_dropout = [i for i, block in enumerate(g.up) if any(isinstance(m, nn.Dropout) for m in block)]
    assert with_dropout == list(range(expected))
    assert g.dropout_blocks == expected
    assert all(m.p == 0.5 for m in g.modules() if isinstance(m, nn.Dropout))
    for i in with_dropout:
        assert g.up[i][2].num_features == 8 * 2  # 8 ngf
    assert not any(isinstance(m, nn.Dropout) for m in g.up[-1])
    off = UNetGenerator(resolution=resolution, ngf=2, dropout=False)
    assert off.dropout_blocks == 0 and not any(isinstance(m, nn.Dropout) for m in off.modules())


def test_dropout_is_random_in_training_and_off_in_eval() -> None:
    g = init_weights(UNetGenerator(resolution=64, ngf=4), generator=torch.Generator().manual_seed(0))
    x = _images(2, 64)
    torch.manual_seed(0)
    assert not torch.equal(g.train()(x), g(x))
    assert torch.equal(g.eval()(x), g(x))


def test_generator_rejects_images_of_another_size() -> None:
    with pytest.raises(ValueError, match=r"\[B, 1, 32, 32\]"):
        UNetGenerator(resolution=32, ngf=2)(torch.zeros(1, 1, 64, 64))


@pytest.mark.parametrize("resolution", [0, 8, 48, 100, 255])
def test_bad_resolution_is_a_config_error(resolution: int) -> None:
    with pytest.raises(ConfigError, match="power of two"):
        UNetGenerator(resolution=resolution, ngf=2)
    with pytest.raises(ConfigError, match="power of two"):
        Pix2Pix(resolution, Pix2PixOptions(ngf=2, ndf=2))


@pytest.mark.parametrize("depth", [1, 6, 0])
def test_bad_depth_is_a_config_error(depth: int) -> None:
    with pytest.raises(ConfigError, match="depth"):
        UNetGenerator(resolution=32, ngf=2, depth=depth)


def test_discriminator_too_deep_for_the_images_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="32 px"):
        Pix2Pix(16, Pix2PixOptions(ngf=2, ndf=2, d_layers=3))


# --------------------------------------------------------------------------------------- discriminator
def test_patch_discriminator_layout_is_c64_c128_c256_c512() -> None:
    d = PatchDiscriminator(ndf=64)
    convs = [m for m in d.modules() if isinstance(m, nn.Conv2d)]
    assert [m.out_channels for m in convs] == [64, 128, 256, 512, 1]
    assert [m.stride[0] for m in convs] == [2, 2, 2, 1, 1]
    assert all(m.kernel_size == (4, 4) and m.padding == (1, 1) for m in convs)
    assert sum(isinstance(m, nn.BatchNorm2d) for m in d.modules()) == 3  # not after C64, not at the end
    assert convs[0].in_channels == 2 and convs[0].bias is not None
    assert not isinstance(d.model[-1], (nn.Sigmoid, nn.LeakyReLU))  # raw logits out


def test_receptive_field_matches_the_arithmetic() -> None:
    # rf = 1 + sum over layers of (kernel - 1) * (product of the strides before it).
    for n_layers in (1, 2, 3, 4):
        strides = [2] * n_layers + [1, 1]
        jumps = [math.prod(strides[:i]) for i in range(len(strides))]
        assert receptive_field(n_layers) == 1 + sum(3 * j for j in jumps)
    assert receptive_field(3) == 70 == PatchDiscriminator(ndf=2).receptive_field


@pytest.mark.parametrize("n_layers", [1, 2, 3])
def test_receptive_field_matches_the_gradient_support_of_one_logit(n_layers: int) -> None:
    d = PatchDiscriminator(ndf=4, n_layers=n_layers).double().eval()  # eval: no batch-statistics coupling
    init_weights(d, generator=torch.Generator().manual_seed(3))
    x = torch.randn(1, 2, 128, 128, dtype=torch.float64, requires_grad=True)
    out = d(x)
    h, w = out.shape[-2:]
    out[0, 0, h // 2, w // 2].backward()
    support = x.grad.abs().sum(dim=(0, 1)) > 0
    rows = support.any(dim=1).nonzero().flatten()
    cols = support.any(dim=0).nonzero().flatten()
    assert rows.min() > 0 and rows.max() < 127  # the patch lies inside the image: not clipped
    assert rows.max() - rows.min() + 1 == receptive_field(n_layers)
    assert cols.max() - cols.min() + 1 == receptive_field(n_layers)
    assert bool(support[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1].all())


# -------------------------------------------------------------------------------------- initialisation
def test_init_weights_draws_the_paper_distributions_from_the_generator() -> None:
    net = nn.Sequential(nn.Conv2d(8, 64, 4), nn.BatchNorm2d(4096), nn.ConvTranspose2d(64, 8, 4))
    init_weights(net, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        conv = torch.cat([net[0].weight.flatten(), net[2].weight.flatten()])
        assert abs(conv.mean().item()) < 0.002 and abs(conv.std().item() - 0.02) < 0.001
        assert abs(net[1].weight.mean().item() - 1) < 0.002 and abs(net[1].weight.std().item() - 0.02) < 0.002
        assert net[0].bias.abs().max() == 0 and net[1].bias.abs().max() == 0 and net[2].bias.abs().max() == 0
    again = init_weights(
        nn.Sequential(nn.Conv2d(8, 64, 4), nn.BatchNorm2d(4096), nn.ConvTranspose2d(64, 8, 4)),
        generator=torch.Generator().manual_seed(0),
    )
    pairs = zip(net.state_dict().values(), again.state_dict().values(), strict=True)
    assert all(torch.equal(a, b) for a, b in pairs)


def test_same_seed_gives_identical_weights_and_first_losses() -> None:
    a, b, c = _tiny(seed=5), _tiny(seed=5), _tiny(seed=6)
    for (name, pa), pb in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.equal(pa, pb), name
    assert not torch.equal(a.generator.down[0][0].weight, c.generator.down[0][0].weight)
    mri, ct = _images(2, 32, 1), _images(2, 32, 2)
    torch.manual_seed(0)  # dropout draws from the global generator in training mode
    la = a.train_step(mri, ct)
    torch.manual_seed(0)
    lb = b.train_step(mri, ct)
    assert {k: float(v) for k, v in la.items()} == {k: float(v) for k, v in lb.items()}


# ----------------------------------------------------------------------------------------- options
def test_options_round_trip_and_validation() -> None:
    opts = Pix2PixOptions(epochs=10, epochs_decay=3, lambda_l1=50.0, dropout=False)
    assert Pix2PixOptions.from_dict(opts.to_dict()) == opts
    with pytest.raises(ConfigError, match="unknown"):
        Pix2PixOptions.from_dict({"epochz": 3})
    bad = [
        dict(epochs=0),
        dict(epochs=10, epochs_decay=11),
        dict(epochs_decay=-1),
        dict(lr=0.0),
        dict(beta1=1.0),
        dict(lambda_l1=-1.0),
        dict(ngf=0),
        dict(d_layers=0),
        dict(batch_size=0),
    ]
    for kwargs in bad:
        with pytest.raises(ConfigError):
            Pix2PixOptions(**kwargs)


def test_learning_rate_is_constant_then_decays_linearly() -> None:
    model = _tiny(16, ngf=2, ndf=2)  # defaults: 40 epochs, the last 20 decaying, lr 2e-4
    lrs = []
    for _ in range(40):
        lrs.append(model.current_lr)
        model.end_epoch()
    assert lrs[:20] == [2e-4] * 20
    decay = lrs[20:]
    steps = [a - b for a, b in itertools.pairwise(decay)]
    assert all(s > 0 for s in steps)  # strictly decreasing
    assert max(steps) - min(steps) < 1e-12  # linear
    assert lrs[19] - lrs[20] == pytest.approx(steps[0])  # decay starts right after the constant part
    assert 0 < decay[-1] < 2e-4 / 10  # ends near 0 but still trains
    assert model.current_lr == pytest.approx(0.0, abs=1e-12)  # after the last epoch
    assert model.optimizer_d.param_groups[0]["lr"] == model.current_lr


# ------------------------------------------------------------------------------------------ training
def test_train_step_reduces_the_l1_loss_on_a_fixed_batch() -> None:
    model = Pix2Pix(32, Pix2PixOptions(ngf=8, ndf=8), seed=0)
    mri = _images(4, 32)
    ct = -mri  # an easy, learnable mapping
    torch.manual_seed(0)
    l1 = [float(model.train_step(mri, ct)["g_l1"]) for _ in range(30)]
    assert sum(l1[-3:]) < 0.8 * sum(l1[:3]), l1


def test_train_step_updates_both_networks_and_returns_detached_scalars() -> None:
    model = _tiny()
    g0 = [p.detach().clone() for p in model.generator.parameters()]
    d0 = [p.detach().clone() for p in model.discriminator.parameters()]
    losses = model.train_step(_images(2, 32, 1), _images(2, 32, 2))
    assert set(losses) == {"d_loss", "g_gan", "g_l1"}
    for v in losses.values():
        assert v.ndim == 0 and not v.requires_grad and math.isfinite(float(v))
    assert any(not torch.equal(a, b) for a, b in zip(g0, model.generator.parameters(), strict=True))
    assert any(not torch.equal(a, b) for a, b in zip(d0, model.discriminator.parameters(), strict=True))
    assert all(p.requires_grad for p in model.discriminator.parameters())


def test_translate_is_deterministic_and_keeps_the_training_mode() -> None:
    model = _tiny()
    mri = _images(2, 32)
    model.train_step(mri, -mri)
    assert model.generator.training
    a, b = model.translate(mri), model.translate(mri)
    assert torch.equal(a, b) and not a.requires_grad and a.abs().max() <= 1
    assert model.generator.training


def test_channels_last_input_gives_the_same_translation() -> None:
    model = _tiny()
    mri = _images(2, 32)
    model.train_step(mri.to(memory_format=torch.channels_last), (-mri).to(memory_format=torch.channels_last))
    out = model.translate(mri.to(memory_format=torch.channels_last))
    torch.testing.assert_close(out, model.translate(mri.contiguous()), rtol=1e-5, atol=1e-6)


def test_train_step_rejects_unpaired_or_missized_batches() -> None:
    model = _tiny()
    with pytest.raises(ValueError, match="same number"):
        model.train_step(_images(2, 32), _images(3, 32))
    with pytest.raises(ValueError, match="32, 32"):
        model.train_step(_images(2, 16), _images(2, 16))


# ------------------------------------------------------------------------------------------ saving
def test_save_load_round_trip_gives_identical_translations(tmp_path) -> None:
    model = _tiny(epochs=4, epochs_decay=2)
    mri = _images(2, 32)
    for _ in range(2):
        model.train_step(mri, -mri)  # moves the BatchNorm running statistics off their defaults
    model.end_epoch()
    model.end_epoch()
    folder = model.save(tmp_path / "pix2pix")
    assert {p.name for p in folder.iterdir()} == {"weights.safetensors", "config.json"}
    as_file = Pix2Pix.load(model.save(tmp_path / "run" / "model.safetensors"))
    assert {p.name for p in (tmp_path / "run").iterdir()} == {"model.safetensors", "model.json"}
    assert torch.equal(model.translate(mri), as_file.translate(mri))
    again = Pix2Pix.load(folder)
    assert torch.equal(model.translate(mri), again.translate(mri))
    assert again.options == model.options and again.resolution == 32 and again.epoch == 2
    assert again.current_lr == pytest.approx(model.current_lr)
    again.end_epoch()
    model.end_epoch()
    assert again.current_lr == pytest.approx(model.current_lr)
    with pytest.raises(FileNotFoundError):
        Pix2Pix.load(tmp_path / "missing")
    with pytest.raises(FileNotFoundError):
        Pix2Pix.load(tmp_path / "missing.safetensors")


def test_repr_shows_resolution_options_and_parameter_counts() -> None:
    model = _tiny()
    text = repr(model)
    n_g = sum(p.numel() for p in model.generator.parameters())
    n_d = sum(p.numel() for p in model.discriminator.parameters())
    assert "resolution=32" in text and "lambda_l1=100.0" in text
    assert f"{n_g:,}" in text and f"{n_d:,}" in text
    assert "ngf=4" in repr(model.generator) and "receptive_field=70" in repr(model.discriminator)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_model_trains_and_translates_on_cuda() -> None:
    cpu = _tiny()
    model = _tiny().to("cuda")
    for a, b in zip(cpu.state_dict().values(), model.state_dict().values(), strict=True):
        assert torch.equal(a, b.cpu())  # same seed, same weights on every device
    mri = _images(2, 32).cuda()
    losses = model.train_step(mri, -mri)
    assert all(v.device.type == "cuda" for v in losses.values())
    assert model.translate(mri).device.type == "cuda"
