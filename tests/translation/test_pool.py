"""The image pool of Shrivastava et al. 2017 as CycleGAN uses it: 50 images, a 50 % swap, seeded."""

from __future__ import annotations

import torch

from latent_transforms.translation import POOL_SIZE, ImagePool


def _images(start: int, n: int) -> torch.Tensor:
    return torch.arange(start, start + n, dtype=torch.float32).view(n, 1, 1, 1)


def test_the_pool_holds_50_images_by_default():
    assert POOL_SIZE == 50 and ImagePool().size == 50


def test_while_the_pool_fills_each_image_is_shown_and_kept():
    pool = ImagePool(size=4, seed=0)
    shown = pool.query(_images(0, 3))
    assert shown.flatten().tolist() == [0.0, 1.0, 2.0] and len(pool) == 3
    shown = pool.query(_images(3, 1))
    assert shown.flatten().tolist() == [3.0] and len(pool) == 4


def test_once_full_half_the_images_are_swapped_for_stored_ones():
    pool = ImagePool(size=10, seed=1)
    pool.query(_images(0, 10))
    stored_before = {float(x) for x in torch.stack(pool.images).flatten()}
    new = _images(1000, 2000)
    shown = pool.query(new).flatten()
    swapped = shown != new.flatten()
    assert 0.45 < float(swapped.float().mean()) < 0.55  # the 50 % rule
    # a swapped-in image was stored before (an old one, or a new one stored by an earlier swap)
    seen = stored_before | {float(v) for v in new.flatten()}
    assert all(float(v) in seen for v in shown[swapped])
    assert len(pool) == 10 and any(float(x) >= 1000 for x in torch.stack(pool.images).flatten())


def test_shown_images_are_detached_and_keep_the_batch_shape():
    pool = ImagePool(size=2, seed=0)
    x = torch.rand(5, 3, 4, 4, requires_grad=True)
    out = pool.query(x * 2)
    assert out.shape == x.shape and not out.requires_grad


def test_size_zero_shows_every_image_as_it_is():
    x = torch.rand(4, 1, 2, 2)
    assert torch.equal(ImagePool(size=0).query(x), x)


def test_same_seed_same_draws_and_the_state_round_trip_continues_them():
    a, b = ImagePool(size=3, seed=5), ImagePool(size=3, seed=5)
    for start in range(0, 30, 6):
        assert torch.equal(a.query(_images(start, 6)), b.query(_images(start, 6)))
    c = ImagePool(size=3, seed=99)
    c.load_state_dict(a.state_dict())
    for start in range(30, 60, 6):
        assert torch.equal(a.query(_images(start, 6)), c.query(_images(start, 6)))
    assert repr(c) == "ImagePool(size=3, stored=3)"
