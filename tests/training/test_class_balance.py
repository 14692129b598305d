"""Class-balanced training order: minority images repeat so every class is seen about equally often."""

from __future__ import annotations

from itertools import islice

import pytest
import torch

from latent_transforms.errors import ConfigError
from latent_transforms.training.checkpoint import load_training_state
from latent_transforms.training.data import (
    BatchStream,
    SeededOrder,
    TensorImages,
    class_balance_repeats,
)
from latent_transforms.training.diffusion_options import DiffusionOptions
from latent_transforms.training.trainer import Trainer
from tests.training.test_trainer import blobs, options, tiny


def imbalanced(n_minority: int = 10, n_majority: int = 40) -> TensorImages:
    labels = torch.cat([torch.zeros(n_minority), torch.ones(n_majority)]).long()
    images = torch.arange(len(labels)).float().view(-1, 1, 1, 1).expand(-1, 1, 4, 4).clone()
    return TensorImages(images, labels)


def test_repeats_are_the_ratio_to_the_largest_class_rounded():
    labels = torch.tensor([0] * 3 + [1] * 10 + [2] * 4)
    repeats = class_balance_repeats(labels)
    assert repeats[labels == 0].unique().tolist() == [3]  # 10 / 3 = 3.3
    assert repeats[labels == 1].unique().tolist() == [1]
    assert repeats[labels == 2].unique().tolist() == [2]  # 10 / 4 = 2.5 rounds to even
    # a class label with no images does not break it
    assert class_balance_repeats(torch.tensor([2, 2, 0])).tolist() == [1, 1, 2]


def test_a_balanced_epoch_shows_each_class_equally_and_every_image():
    data = imbalanced(10, 40)
    repeats = class_balance_repeats(data.labels)
    order = SeededOrder(len(data), seed=1, repeats=repeats)
    epoch = list(islice(order, 80))
    counts = torch.bincount(data.labels[epoch])
    assert counts.tolist() == [40, 40]
    assert sorted(set(epoch)) == list(range(50))
    # each minority image four times, each majority image once
    per_image = torch.bincount(torch.tensor(epoch), minlength=50)
    assert per_image[:10].tolist() == [4] * 10 and per_image[10:].tolist() == [1] * 40


def test_balanced_order_resumes_at_any_position_and_shards_across_ranks():
    repeats = class_balance_repeats(imbalanced().labels)
    whole = list(islice(SeededOrder(50, seed=2, repeats=repeats), 200))
    assert list(islice(SeededOrder(50, seed=2, repeats=repeats, start=117), 20)) == whole[117:137]
    ranks = [list(islice(SeededOrder(50, seed=2, repeats=repeats, rank=r, world_size=2), 50)) for r in (0, 1)]
    interleaved = [i for pair in zip(*ranks, strict=True) for i in pair]
    assert interleaved == whole[:100]


def test_without_repeats_the_order_is_a_fresh_permutation_per_epoch():
    order = list(islice(SeededOrder(7, seed=5), 21))
    for epoch in range(3):
        expected = torch.randperm(7, generator=torch.Generator().manual_seed(5 + epoch)).tolist()
        assert order[7 * epoch : 7 * (epoch + 1)] == expected


def test_repeats_of_the_wrong_length_or_below_one_are_refused():
    with pytest.raises(ConfigError, match="repeats"):
        SeededOrder(5, repeats=torch.ones(4, dtype=torch.long))
    with pytest.raises(ConfigError, match="repeats"):
        SeededOrder(3, repeats=torch.tensor([1, 0, 1]))


def test_batch_stream_with_repeats_balances_the_labels_it_yields():
    data = imbalanced(10, 40)
    stream = BatchStream(data, 8, seed=0, repeats=class_balance_repeats(data.labels))
    labels = torch.cat([next(stream)[1] for _ in range(10)])
    assert torch.bincount(labels).tolist() == [40, 40]
    plain = BatchStream(data, 8, seed=0)
    labels = torch.cat([next(plain)[1] for _ in range(50)])  # 8 epochs of 50
    assert torch.bincount(labels).tolist() == [80, 320]


def test_trainer_refuses_class_balance_without_classes(tmp_path):
    with pytest.raises(ConfigError, match="class-conditional"):
        Trainer(tiny(), blobs(), tmp_path, options(class_balance=True), progress=False).run()


def test_class_balance_may_be_switched_on_when_a_run_is_resumed(tmp_path):
    cfg = tiny(c_dim=2)
    Trainer(cfg, blobs(), tmp_path, options(total_kimg=0.016), progress=False).run()
    trainer = Trainer(cfg, blobs(), tmp_path, options(total_kimg=0.032, class_balance=True), progress=False)
    trainer.run()
    state = load_training_state(tmp_path)
    assert state["cur_nimg"] == 32
    assert '"class_balance": true' in state["options"]


def test_diffusion_options_carry_class_balance():
    opts = DiffusionOptions(class_balance=True)
    assert DiffusionOptions.from_dict(opts.to_dict()).class_balance is True
