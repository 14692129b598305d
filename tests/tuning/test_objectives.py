"""Objectives: F1 is the per-modality precision/recall F1, averaged; the real side is computed once."""

from __future__ import annotations

import pytest

from latent_transforms import LatentAugment, SG2Sample
from latent_transforms.errors import ConfigError
from latent_transforms.evaluation.sampling import generate_samples
from latent_transforms.features.registry import feature_network
from latent_transforms.metrics.precision_recall import precision_recall
from latent_transforms.tuning.objectives import DownstreamObjective, F1Objective

PARAMS = {"steps": 3, "lr": 0.05, "alpha_f": 0.1, "alpha_pix": 1.0, "alpha_perc": 1.0, "alpha_lat": 0.01}


def _objective(tiny, **kw):
    kw = {"n_samples": 10, "feature_network": "random", "batch_size": 4, "seed": 0, **kw}
    return F1Objective(tiny.bundle, tiny.cache, tiny.stats, tiny.reference, tiny.sources, **kw)


def test_f1_is_the_mean_over_modalities_of_precision_recall_f1(tiny):
    objective = _objective(tiny)
    value, details = objective.evaluate(PARAMS)
    # The same samples by hand: generate_samples, embed, precision_recall per modality.
    samples = generate_samples(objective.transform(PARAMS), 10, sources=tiny.sources, batch_size=4, seed=0)
    fx = feature_network("random")
    real, fake = fx.embed(tiny.reference), fx.embed(samples)
    per = [precision_recall(real[:, c], fake[:, c], k=3) for c in range(2)]
    assert details["f1"] == pytest.approx({"mri": per[0]["f1"], "ct": per[1]["f1"]})
    assert details["precision"]["ct"] == pytest.approx(per[1]["precision"])
    assert value == pytest.approx((per[0]["f1"] + per[1]["f1"]) / 2)
    assert 0.0 < value < 1.0  # a case where the comparison means something


def test_f1_of_the_generator_against_itself_beats_f1_against_far_images(tiny):
    objective = _objective(tiny, n_samples=12)
    fx = objective.extractor
    same, _ = objective.score_features(fx.embed(tiny.reference))
    far, _ = objective.score_features(fx.embed(tiny.reference) + 100.0)
    assert same == 1.0 and far == 0.0


def test_the_real_features_are_computed_once(tiny, monkeypatch):
    objective = _objective(tiny)
    calls = []
    original = objective.extractor.embed

    def counting(images):
        calls.append(images.shape[0])
        return original(images)

    monkeypatch.setattr(objective.extractor, "embed", counting)
    objective.evaluate(PARAMS)
    first = sum(calls)
    objective.evaluate({**PARAMS, "steps": 6})
    assert first == 12 + 10 and sum(calls) - first == 10  # reference once, then only the samples


def test_the_trials_transform_augments_every_sample_in_the_generator_range(tiny):
    t = _objective(tiny).transform(PARAMS)
    assert isinstance(t, LatentAugment)
    assert (t.p, t.value_range, t.steps, t.alpha_lat) == (1.0, "generator", 3, 0.01)
    config = _objective(tiny).best_config(PARAMS)
    assert (config["p"], config["value_range"], config["steps"]) == (0.2, "physical", 3)


def test_measure_scores_any_policy(tiny):
    value, details = _objective(tiny).measure(SG2Sample(tiny.bundle))
    assert 0.0 <= value <= 1.0 and set(details["recall"]) == {"mri", "ct"}


def test_f1_objective_checks_its_inputs(tiny):
    with pytest.raises(ConfigError):
        _objective(tiny, n_samples=3)
    with pytest.raises(ConfigError):
        F1Objective(
            tiny.bundle, tiny.cache, tiny.stats, tiny.reference[:3], tiny.sources, feature_network="random"
        )
    with pytest.raises(ConfigError):
        F1Objective(
            tiny.bundle, tiny.cache, tiny.stats, tiny.reference[:, :1], tiny.sources, feature_network="random"
        )


def test_downstream_objective_hands_the_transform_with_the_trials_setting_to_fn(tiny):
    seen = []

    def fn(transform):
        seen.append(transform)
        return transform.p * 2

    objective = DownstreamObjective(
        fn, "maximize", gan=tiny.bundle, cache=tiny.cache, stats=tiny.stats, value_range="unit"
    )
    value, _ = objective.evaluate({**PARAMS, "p": 0.3})
    assert value == pytest.approx(0.6)
    assert (seen[0].p, seen[0].steps, seen[0].value_range) == (0.3, 3, "unit")
    assert objective.uses_p and objective.direction == "maximize"
    assert objective.best_config({**PARAMS, "p": 0.3})["p"] == 0.3
    with pytest.raises(ConfigError):
        DownstreamObjective(fn, "up", gan=tiny.bundle)


def test_reference_points_score_the_sources_and_their_reconstructions(tiny):
    objective = _objective(tiny, n_samples=8)
    points = objective.reference_points()
    assert set(points) == {"sources", "reconstructions"}
    # The tiny real set is G(w) itself, so G(w*) reproduces the sources exactly: the same F1 as the sources
    # drawn in the seeded order (8 of 8, a permutation).
    assert points["reconstructions"]["f1"] == pytest.approx(points["sources"]["f1"])
    assert 0.0 < points["sources"]["f1"] <= 1.0


# -- over a class-conditional GAN ------------------------------------------------------------------------
def test_a_trial_over_a_conditional_gan_tells_each_source_its_class(tmp_path, monkeypatch):
    import torch
    import torch.nn.functional as F

    from latent_transforms import DatasetStats, GanBundle, GanConfig, LatentCache, image_key
    from latent_transforms.features.perceptual import perceptual_network

    cgan = GanBundle.random(
        GanConfig(resolution=16, channel_base=256, channel_max=32, z_dim=16, w_dim=16, c_dim=2), seed=0
    )
    g = torch.Generator().manual_seed(1)
    classes = torch.arange(10) % 2
    with torch.no_grad():
        w = cgan.generator.mapping(cgan.generator.sample_z(10, generator=g), F.one_hot(classes, 2).float())
        images = cgan.generator.synthesis(w).clamp(-1, 1)
    sources, reference, source_labels = images[:6], images[6:], classes[:6]
    cache = LatentCache(tmp_path / "cache", fingerprint=cgan.fingerprint, settings={"space": "w"})
    cache.put_batch([image_key(x) for x in sources], w[:6, 0])
    cache.flush()
    stats = DatasetStats.compute(
        [(sources, w[:6, 0])], perceptual=perceptual_network("random"), patch_size=8, progress=False
    )
    settings = dict(n_samples=6, feature_network="random", batch_size=3, seed=0)
    labels = torch.tensor([1, 1, 1, 1, 1, 0])
    objective = F1Objective(
        cgan, cache, stats, reference, sources, source_labels=source_labels, labels=labels, **settings
    )
    value, details = objective.evaluate(PARAMS)
    assert 0.0 <= value <= 1.0 and details["f1"]
    # the trial's samples are the walks of each source with its own class (what generate_samples gives)
    scored: list[torch.Tensor] = []
    monkeypatch.setattr(objective, "score_features", lambda fake: scored.append(fake) or (0.0, {}))
    trial = objective.transform(PARAMS)
    objective.measure(trial)
    expected = generate_samples(trial, 6, sources=sources, source_labels=source_labels, batch_size=3, seed=0)
    assert torch.equal(scored[-1], objective._embed(expected.split(3)))
    # a policy that draws its samples draws the classes asked for
    drawn = SG2Sample(cgan, p=1.0)
    objective.measure(drawn)
    asked = generate_samples(drawn, 6, labels=labels, batch_size=3, seed=0)
    assert torch.equal(scored[-1], objective._embed(asked.split(3)))
    uniform = generate_samples(drawn, 6, batch_size=3, seed=0)
    assert not torch.equal(scored[-1], objective._embed(uniform.split(3)))
    # without the sources' classes the fidelity term cannot run: a clear error, not a crash deep inside
    unlabelled = F1Objective(cgan, cache, stats, reference, sources, **settings)
    with pytest.raises(ConfigError, match="conditional"):
        unlabelled.evaluate(PARAMS)
    with pytest.raises(ConfigError, match="source_labels"):
        F1Objective(cgan, cache, stats, reference, sources, source_labels=classes, **settings)
