"""LPIPS offline: torchvision backbone weights from the torch hub cache land in the lpips backbone, the
distance behaves like a distance, and a missing file or package says what to do."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

from latent_transforms.errors import (
    ConfigError,
    FeatureNetworkUnavailableError,
    MissingDependencyError,
    WeightMismatchError,
)
from latent_transforms.metrics.lpips import (
    LPIPS_BACKBONES,
    clear_lpips_cache,
    lpips_checkpoint,
    lpips_distance,
    lpips_network,
)

lpips = pytest.importorskip("lpips")
torchvision = pytest.importorskip("torchvision")


def write_fake_checkpoint(hub: Path, net: str, seed: int) -> dict[str, torch.Tensor]:
    """A randomly initialised torchvision classifier saved where torchvision caches ImageNet weights."""
    spec = LPIPS_BACKBONES[net]
    torch.manual_seed(seed)
    state = getattr(torchvision.models, spec.constructor)().state_dict()
    (hub / "checkpoints").mkdir(parents=True, exist_ok=True)
    torch.save(state, hub / "checkpoints" / spec.filename)
    return state


@pytest.fixture(scope="module")
def fake_hub(tmp_path_factory):
    """A torch hub folder with fake AlexNet and SqueezeNet-1.1 checkpoints; torch.hub.get_dir points to it."""
    hub = tmp_path_factory.mktemp("torch_home") / "hub"
    states = {net: write_fake_checkpoint(hub, net, seed) for seed, net in enumerate(("alex", "squeeze"))}
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(torch.hub, "get_dir", lambda: str(hub))
        clear_lpips_cache()
        yield hub, states
    clear_lpips_cache()


@pytest.fixture(scope="module")
def alex(fake_hub):
    return lpips_network("alex")


def images(b: int = 2, c: int = 1, size: int = 32, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(b, c, size, size, generator=g) * 2 - 1


@pytest.mark.parametrize("net", ["alex", "squeeze"])
def test_the_checkpoint_weights_land_in_the_lpips_backbone(fake_hub, net):
    _, states = fake_hub
    model = lpips_network(net)
    backbone = model.net.state_dict()
    assert backbone  # every backbone tensor has a source in the file, and equals it
    for key, value in backbone.items():
        _, index, rest = key.split(".", 2)
        assert torch.equal(value, states[net][f"features.{index}.{rest}"]), key


def test_the_linear_heads_are_the_calibrated_ones_from_the_lpips_wheel(alex):
    heads = torch.load(Path(lpips.__file__).parent / "weights" / "v0.1" / "alex.pth", map_location="cpu")
    assert heads
    for key, value in heads.items():
        assert torch.equal(alex.state_dict()[key], value), key


def test_the_network_is_cached_per_name_and_device_and_is_frozen(alex):
    assert lpips_network("alex") is alex and lpips_network("alexnet", device="cpu") is alex
    assert not alex.training and not any(p.requires_grad for p in alex.parameters())


def test_distance_is_zero_for_identical_images_positive_otherwise_and_symmetric(alex):
    a, b = images(seed=0), images(seed=1)
    assert lpips_distance(a, a, net="alex").tolist() == [0.0, 0.0]
    ab, ba = lpips_distance(a, b, net="alex"), lpips_distance(b, a, net=alex)
    assert (ab > 0).all() and ab.dtype == torch.float64 and ab.shape == (2,)
    assert torch.allclose(ab, ba, rtol=1e-6)


def test_grey_images_are_repeated_to_three_channels(alex):
    a, b = images(seed=2), images(seed=3)
    direct = alex(a.expand(-1, 3, -1, -1), b.expand(-1, 3, -1, -1)).flatten().double()
    assert torch.allclose(lpips_distance(a, b, net=alex), direct, rtol=1e-6)
    assert torch.allclose(lpips_distance(a[:, 0], b[:, 0], net=alex), direct, rtol=1e-6)  # [B, H, W]


def test_multi_channel_images_average_their_per_channel_distances(alex):
    a, b = images(c=2, seed=4), images(c=2, seed=5)
    per_channel = [lpips_distance(a[:, c], b[:, c], net=alex) for c in range(2)]
    assert torch.allclose(lpips_distance(a, b, net=alex), (per_channel[0] + per_channel[1]) / 2, rtol=1e-6)


def test_a_window_maps_physical_units_to_the_lpips_range(alex):
    hu_a, hu_b = images(seed=6) * 1500 + 500, images(seed=7) * 1500 + 500  # [-1000, 2000] HU
    expected = lpips_distance((hu_a - 500) / 1500, (hu_b - 500) / 1500, net=alex)
    assert torch.allclose(lpips_distance(hu_a, hu_b, net=alex, window=(-1000, 2000)), expected, rtol=1e-5)


def test_values_outside_the_lpips_range_without_a_window_are_refused(alex):
    with pytest.raises(ConfigError, match="window="):
        lpips_distance(images() * 1000, images(), net=alex)
    with pytest.raises(ConfigError, match="same shape"):
        lpips_distance(images(b=2), images(b=3), net=alex)


def test_a_missing_weights_file_says_which_file_to_place_where(monkeypatch, tmp_path):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    with pytest.raises(FeatureNetworkUnavailableError) as info:
        lpips_network("alex")
    message = str(info.value)
    assert "alexnet-owt-7be5be79.pth" in message
    assert str(tmp_path / "hub" / "checkpoints") in message
    assert "torchvision.models.alexnet(weights=" in message and "TORCH_HOME" in message
    with pytest.raises(FeatureNetworkUnavailableError, match=r"vgg16-397923af\.pth"):
        lpips_checkpoint("vgg")


def test_a_file_that_does_not_fit_the_backbone_is_a_weight_mismatch(monkeypatch, tmp_path):
    hub = tmp_path / "hub"
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(hub))
    squeeze = write_fake_checkpoint(hub, "squeeze", seed=0)
    torch.save(squeeze, hub / "checkpoints" / LPIPS_BACKBONES["alex"].filename)  # the wrong network
    with pytest.raises(WeightMismatchError, match="alexnet"):
        lpips_network("alex")


def test_the_file_names_are_torchvisions_imagenet_weights():
    from torchvision.models import AlexNet_Weights, SqueezeNet1_1_Weights, VGG16_Weights

    enums = {"alex": AlexNet_Weights, "vgg": VGG16_Weights, "squeeze": SqueezeNet1_1_Weights}
    for net, weights in enums.items():
        assert weights.IMAGENET1K_V1.url.rsplit("/", 1)[1] == LPIPS_BACKBONES[net].filename
        assert weights.IMAGENET1K_V1.url == LPIPS_BACKBONES[net].url()


def test_an_unknown_backbone_name_is_refused():
    with pytest.raises(ConfigError, match="alex"):
        lpips_network("resnet")


def test_a_missing_lpips_package_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "lpips", None)
    with pytest.raises(MissingDependencyError, match=r"latent-transforms\[lpips\]"):
        lpips_checkpoint("alex")


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_gives_the_cpu_distances(fake_hub, alex):
    a, b = images(seed=8), images(seed=9)
    on_gpu = lpips_distance(a.cuda(), b.cuda(), net="alex")
    assert on_gpu.device.type == "cuda"
    assert torch.allclose(on_gpu.cpu(), lpips_distance(a, b, net=alex), atol=1e-4)
