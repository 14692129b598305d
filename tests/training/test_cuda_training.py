"""CUDA training steps (run with ``pytest -m cuda`` on a GPU machine; skipped elsewhere)."""

from __future__ import annotations

import json
import math

import pytest
import torch

from latent_transforms.training.trainer import Trainer
from tests.training.test_trainer import blobs, options, tiny

pytestmark = pytest.mark.cuda


def test_cuda_training_with_full_geometric_augmentation_runs_r1_and_stays_finite(tmp_path):
    # p = 1 from the first step: R1's double backward meets the rotated/scaled reals at once.
    opts = options(total_kimg=0.016, augment="all", augment_p=1.0, ada_target=None, r1_interval=1)
    trainer = Trainer(tiny(), blobs(), tmp_path, opts, device="cuda", progress=False)
    trainer.run()
    log = json.loads((tmp_path / "log.jsonl").read_text().splitlines()[-1])
    assert all(math.isfinite(log[k]) for k in ("loss_G", "loss_D", "r1_penalty"))
    assert torch.cuda.is_available()
