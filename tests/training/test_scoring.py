"""Scoring generators: FID per modality against fixed real images, and the held-out evaluation."""

from __future__ import annotations

import pytest
import torch

from latent_transforms.errors import ConfigError
from latent_transforms.features import feature_network
from latent_transforms.metrics import fid, precision_recall
from latent_transforms.networks.generator import Generator
from latent_transforms.training.data import TensorImages
from latent_transforms.training.scoring import FidScorer, embed_generator, evaluate_generator
from tests.conftest import tiny_config


def reference(n: int = 24) -> TensorImages:
    g = torch.Generator().manual_seed(0)
    return TensorImages(torch.rand(n, 2, 16, 16, generator=g) * 2 - 1, torch.zeros(n, dtype=torch.long))


def generator(seed: int = 0) -> Generator:
    torch.manual_seed(seed)
    return Generator(tiny_config(16, channel_base=128, channel_max=16, z_dim=8, w_dim=8)).eval()


def test_scores_are_the_fid_of_the_generators_seeded_samples_per_modality():
    scorer = FidScorer(reference(), "random", ["mri", "ct"], n_samples=20)
    G = generator()
    scores = scorer(G)
    extractor = feature_network("random")
    real = extractor.embed(reference().images)
    fake = embed_generator(G, extractor, 20, seed=0, batch_size=64)
    assert scores["mri"] == pytest.approx(fid(real[:, 0], fake[:, 0]), rel=1e-6)
    assert scores["ct"] == pytest.approx(fid(real[:, 1], fake[:, 1]), rel=1e-6)
    assert scores["fid"] == pytest.approx((scores["mri"] + scores["ct"]) / 2)
    assert scorer(G) == scores  # same latents every call: checkpoints are compared on equal terms
    assert scorer(generator(1))["fid"] != scores["fid"]


def test_evaluation_reports_fid_precision_recall_and_f1_per_modality():
    scorer = FidScorer(reference(), "random", ["mri", "ct"], n_samples=20)
    result = evaluate_generator(generator(), scorer, k=3)
    real = scorer.real_features()
    fake = scorer.fake_features(generator())
    assert result["ct"]["precision"] == precision_recall(real[:, 1], fake[:, 1], k=3)["precision"]
    assert result["mean"]["recall"] == pytest.approx((result["mri"]["recall"] + result["ct"]["recall"]) / 2)
    assert (result["n_real"], result["n_generated"], result["feature_network"]) == (24, 20, "random")


def test_reference_is_subsampled_evenly_when_limited():
    scorer = FidScorer(reference(24), "random", ["mri", "ct"], n_samples=8, max_reference=6)
    assert scorer.real_features().shape == (6, 2, 64)


def test_the_training_discriminator_cannot_score_checkpoints():
    with pytest.raises(ConfigError, match="changes during training"):
        FidScorer(reference(), "discriminator")
