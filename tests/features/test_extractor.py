"""FeatureExtractor: per-modality and joint embedding, preprocessing, chunking, freezing, identity."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from latent_transforms.errors import ConfigError
from latent_transforms.features import FeatureExtractor, RandomFeatureNet, pool_features


class Recorder(nn.Module):
    """Returns the per-channel means of its input, and remembers every input batch."""

    def __init__(self) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(3))
        self.inputs: list[torch.Tensor] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.inputs.append(x.detach().clone())
        return x.mean(dim=(2, 3)) + self.bias


def images(b: int = 3, c: int = 2, size: int = 40, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(b, c, size, size, generator=g) * 2 - 1


def test_each_modality_is_embedded_separately():
    fx = FeatureExtractor(RandomFeatureNet(), name="random", input_size=32, dim=64)
    x = images(3, 2)
    out = fx.embed(x)
    assert out.shape == (3, 2, 64)
    swapped = fx.embed(x.flip(1))
    assert torch.allclose(out[:, 0], swapped[:, 1]) and torch.allclose(out[:, 1], swapped[:, 0])
    alone = fx.embed(x[:, 1:2])
    assert torch.allclose(out[:, 1:2], alone, atol=1e-6)


def test_grey_channel_is_resized_repeated_and_normalised():
    rec = Recorder()
    fx = FeatureExtractor(rec, name="rec", input_size=16, mean=(0.1, 0.2, 0.3), std=(0.5, 0.25, 2.0), dim=3)
    x = images(2, 2, size=32)
    fx.embed(x)
    seen = rec.inputs[-1]
    assert seen.shape == (4, 3, 16, 16)
    grey = F.interpolate(x.reshape(4, 1, 32, 32), size=(16, 16), mode="bilinear", antialias=True)
    unit = (grey + 1) / 2
    for ch, (m, s) in enumerate([(0.1, 0.5), (0.2, 0.25), (0.3, 2.0)]):
        assert torch.allclose(seen[:, ch : ch + 1], (unit - m) / s, atol=1e-6)


def test_default_normalisation_passes_minus_one_to_one_through_unchanged():
    rec = Recorder()
    fx = FeatureExtractor(rec, name="rec", input_size=None, dim=3)
    x = images(1, 1, size=8)
    fx.embed(x)
    assert torch.allclose(rec.inputs[-1], x.expand(-1, 3, -1, -1), atol=1e-7)


def test_joint_mode_embeds_all_channels_together():
    backbone = nn.Conv2d(2, 5, 3)
    fx = FeatureExtractor(
        backbone, name="joint", input_size=None, mean=(0.5,), std=(0.5,), joint=True, in_channels=2
    )
    out = fx.embed(images(3, 2))
    assert out.shape == (3, 1, 5)
    assert fx.output_channels(2) == 1 and fx.mode == "joint"


@pytest.mark.parametrize("batch_size", [1, 2, 3, 5, 64])
def test_chunked_embed_equals_one_differentiable_pass(batch_size):
    fx = FeatureExtractor(RandomFeatureNet(), name="random", input_size=32, dim=64, batch_size=batch_size)
    x = images(5, 2)
    assert torch.allclose(fx.embed(x), fx(x), atol=1e-6)


def test_batches_are_bounded_by_batch_size():
    rec = Recorder()
    fx = FeatureExtractor(rec, name="rec", input_size=8, dim=3, batch_size=4)
    rec.inputs.clear()
    fx.embed(images(5, 2, size=8))
    assert [t.shape[0] for t in rec.inputs] == [4, 4, 2]  # 2 images x 2 modalities per chunk


def test_network_is_frozen_and_stays_in_eval_mode():
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Dropout(0.5))
    fx = FeatureExtractor(net, name="bn", input_size=None, dim=4)
    nn.Sequential(fx).train()  # a parent's train() must not reach the frozen network
    assert not fx.training and not net.training
    assert not any(p.requires_grad for p in fx.parameters())
    x = images(4, 1)
    assert torch.equal(fx.embed(x), fx.embed(x))


def test_gradients_flow_to_the_images_but_not_the_network():
    fx = FeatureExtractor(RandomFeatureNet(), name="random", input_size=32, dim=64)
    x = images(2, 2).requires_grad_(True)
    fx(x).square().sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert all(p.grad is None for p in fx.parameters())
    assert not fx.embed(x).requires_grad


def test_dimension_is_measured_when_not_given():
    fx = FeatureExtractor(nn.Conv2d(3, 7, 3), name="conv", input_size=16)
    assert fx.dim == 7


def test_fingerprint_identifies_weights_and_preprocessing():
    a = FeatureExtractor(RandomFeatureNet(seed=0), name="random", input_size=32, dim=64)
    b = FeatureExtractor(RandomFeatureNet(seed=0), name="random", input_size=32, dim=64)
    other_seed = FeatureExtractor(RandomFeatureNet(seed=1), name="random", input_size=32, dim=64)
    other_size = FeatureExtractor(RandomFeatureNet(seed=0), name="random", input_size=48, dim=64)
    assert a.fingerprint == b.fingerprint
    assert len({a.fingerprint, other_seed.fingerprint, other_size.fingerprint}) == 3
    assert len(a.fingerprint) == 64


def test_repr_shows_parameters_not_the_whole_network():
    fx = FeatureExtractor(RandomFeatureNet(), name="random", input_size=32, dim=64, batch_size=8)
    text = repr(fx)
    assert text.startswith("FeatureExtractor(name='random', dim=64, input_size=32, mode='per-modality'")
    assert "batch_size=8" in text and fx.fingerprint[:12] in text and "Conv2d" not in text


def test_list_of_maps_is_pooled_and_concatenated():
    out = pool_features([torch.ones(2, 3, 4, 4), 2 * torch.ones(2, 5, 1, 1), torch.zeros(2, 1)])
    assert out.shape == (2, 9)
    assert out[0].tolist() == [1.0] * 3 + [2.0] * 5 + [0.0]


def test_unusable_outputs_and_inputs_raise_with_a_fix():
    with pytest.raises(ConfigError, match="Fix"):
        pool_features(torch.zeros(2, 3, 4))
    fx = FeatureExtractor(RandomFeatureNet(), name="random", input_size=32, dim=64)
    with pytest.raises(ConfigError, match=r"\[B, C, H, W\]"):
        fx.embed(torch.zeros(2, 32, 32))
    with pytest.raises(ConfigError, match="batch_size"):
        FeatureExtractor(RandomFeatureNet(), name="random", input_size=32, dim=64, batch_size=0)


def test_empty_batch_gives_empty_embeddings():
    fx = FeatureExtractor(RandomFeatureNet(), name="random", input_size=32, dim=64)
    assert fx.embed(torch.zeros(0, 2, 32, 32)).shape == (0, 2, 64)


@pytest.mark.cuda
def test_embeddings_on_cuda_match_the_cpu():
    cpu = FeatureExtractor(RandomFeatureNet(), name="random", input_size=32, dim=64)
    gpu = FeatureExtractor(RandomFeatureNet(), name="random", input_size=32, dim=64).to("cuda")
    x = images(4, 2)
    out = gpu.embed(x)  # images on the CPU are moved to the network's device
    assert out.device.type == "cuda"
    assert torch.allclose(out.cpu(), cpu.embed(x), atol=1e-4)
