"""StyleGAN2 discriminator: logits, features, minibatch std, projection conditioning."""

from __future__ import annotations

import pytest
import torch

from latent_transforms import Discriminator
from latent_transforms.networks.discriminator import MinibatchStdLayer
from tests.conftest import tiny_config


@pytest.mark.parametrize("c_dim", [0, 3])
def test_logits_and_features_shapes(c_dim, seeded):
    cfg = tiny_config(32, c_dim=c_dim)
    d = Discriminator(cfg).eval()
    img = torch.randn(4, 2, 32, 32, generator=seeded)
    c = torch.eye(3)[[0, 1, 2, 1]] if c_dim else None
    assert d(img, c).shape == (4, 1)
    feats = d.features(img, c)
    assert [tuple(f.shape) for f in feats] == [(4, 32, 16, 16), (4, 64, 8, 8), (4, 64, 4, 4), (4, 64, 4, 4)]


def test_conditional_discriminator_depends_on_the_label(seeded):
    d = Discriminator(tiny_config(16, c_dim=2)).eval()
    img = torch.randn(4, 2, 16, 16, generator=seeded)
    a = d(img, torch.eye(2)[[0, 0, 0, 0]])
    b = d(img, torch.eye(2)[[1, 1, 1, 1]])
    assert (a - b).abs().max() > 1e-4
    with pytest.raises(ValueError, match="conditional"):
        d(img)


def test_wrong_image_shape_is_refused():
    d = Discriminator(tiny_config(16)).eval()
    with pytest.raises(ValueError, match=r"\[B, 2, 16, 16\]"):
        d(torch.zeros(2, 3, 16, 16))


def test_minibatch_std_groups_samples_by_index_modulo_n(seeded):
    x = torch.randn(8, 4, 2, 2, generator=seeded)
    y = MinibatchStdLayer(group_size=4)(x)
    assert y.shape == (8, 5, 2, 2)
    # group of sample 0 is {0, 2, 4, 6} (n = 8 / 4 = 2 groups, interleaved)
    group = x[[0, 2, 4, 6]]
    expected = (group.var(dim=0, unbiased=False) + 1e-8).sqrt().mean()
    torch.testing.assert_close(y[0, 4, 0, 0], expected)
    torch.testing.assert_close(y[6, 4], y[0, 4])


def test_minibatch_std_handles_batches_not_divisible_by_the_group(seeded):
    x = torch.randn(6, 4, 2, 2, generator=seeded)
    assert MinibatchStdLayer(group_size=4)(x).shape == (6, 5, 2, 2)  # falls back to groups of 3
    assert MinibatchStdLayer(group_size=4)(x[:1]).shape == (1, 5, 2, 2)


def test_discriminator_under_bf16_autocast(seeded):
    d = Discriminator(tiny_config(32)).eval()
    img = torch.randn(4, 2, 32, 32, generator=seeded)
    ref = d(img)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = d(img)
    assert torch.isfinite(out).all()
    assert (out.float() - ref).abs().max() < 0.05 * (ref.abs().max() + 1)
