"""The utility protocols of Xing et al. 2023 on the task classifier, and the efficiency of a generator."""

from __future__ import annotations

import pytest
import torch

from latent_transforms import GanBundle, GanConfig, SG2Sample, StandardDA
from latent_transforms.errors import ConfigError
from latent_transforms.tasks import (
    ClassifierOptions,
    UtilityComparison,
    augmentation_utility,
    classifier_utility,
    extraction_utility,
    finetune_last_layer,
    sampling_efficiency,
    stratified_fraction,
    synthetic_set,
    utility as utility_module,
)
from latent_transforms.tasks.classifier import ResNetClassifier

QUICK = ClassifierOptions(epochs=4, batch_size=16, depth=10, width=4, lr=5e-3, select="last")


class Separable:
    """A perfect class-conditional "generator": class 0 dark, class 1 bright, a little noise."""

    class config:
        c_dim = 2

    def __init__(self) -> None:
        self.calls: list[list[int]] = []

    def sample(self, n, labels=None, *, seed=0):
        self.calls.append(torch.as_tensor(labels).tolist())
        g = torch.Generator().manual_seed(seed)
        level = torch.as_tensor(labels).float().view(-1, 1, 1, 1) * 1.2 - 0.6
        return (level + 0.1 * torch.randn(n, 1, 16, 16, generator=g)).clamp(-1, 1)


def _noise_labelled(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Real training images that say nothing about their labels."""
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 1, 16, 16, generator=g) * 2 - 1, torch.arange(n) % 2


def _separable_test(n: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    labels = torch.arange(n) % 2
    return Separable().sample(n, labels, seed=99), labels


def test_synthetic_sets_have_the_asked_classes_and_are_seeded():
    bundle = GanBundle.random(GanConfig(resolution=16, channel_base=256, channel_max=32, c_dim=3))
    labels = torch.tensor([0, 2, 1, 1, 0])
    x, y = synthetic_set(bundle, labels, seed=1, batch_size=2)
    assert x.shape == (5, 2, 16, 16) and y.tolist() == labels.tolist() and x.abs().max() <= 1
    assert torch.equal(x, synthetic_set(bundle, labels, seed=1, batch_size=2)[0])
    # one image of class 2 is the one bundle.sample makes for class 2 with the same seed
    assert torch.equal(x[2:4], bundle.sample(2, labels[2:4], seed=1 * 1_000_003 + 1).clamp(-1, 1))
    t = SG2Sample(bundle, seed=0)  # a transform: sampled in [-1, 1], whatever its value_range
    tx, _ = synthetic_set(t, labels, seed=1)
    assert tx.abs().max() <= 1 and not torch.equal(tx, x)
    with pytest.raises(ConfigError, match="unconditional"):
        synthetic_set(GanBundle.random(GanConfig(resolution=16, channel_base=256, channel_max=32)), labels)


def test_augmentation_with_a_perfect_generator_beats_uninformative_real_images():
    generator = Separable()
    result = augmentation_utility(
        generator, _noise_labelled(16, 0), _separable_test(), seeds=[0, 1], options=QUICK, n_synthetic=64
    )
    assert result.protocol == "augmentation" and result.seeds == [0, 1]
    assert all(s > 0.9 for s in result.scores) and result.gain > 0.3
    # the synthetic classes follow the real class balance, drawn per seed
    assert [len(c) for c in generator.calls] == [64, 64] and set(generator.calls[0]) == {0, 1}
    assert generator.calls[0] != generator.calls[1]


def test_the_wilcoxon_test_pairs_the_runs_by_seed():
    r = UtilityComparison(
        "augmentation", "auc", [0.9, 0.8, 0.85, 0.95, 0.7], [0.8, 0.75, 0.8, 0.9, 0.72], [0, 1, 2, 3, 4]
    )
    from scipy.stats import wilcoxon

    expected = wilcoxon([0.9, 0.8, 0.85, 0.95, 0.7], [0.8, 0.75, 0.8, 0.9, 0.72])
    assert r.pvalue == pytest.approx(expected.pvalue) and r.gain == pytest.approx(0.046)
    assert UtilityComparison("augmentation", "auc", [0.8, 0.8], [0.8, 0.8], [0, 1]).pvalue is None
    with pytest.raises(ConfigError, match="pair them by seed"):
        UtilityComparison("augmentation", "auc", [0.8], [0.8, 0.7], [0])


def test_a_shared_baseline_is_not_trained_again(monkeypatch):
    calls = []
    original = utility_module.train_classifier

    def counting(*args, **kwargs):
        calls.append(kwargs.get("extra") is not None)
        return original(*args, **kwargs)

    monkeypatch.setattr(utility_module, "train_classifier", counting)
    result = augmentation_utility(
        Separable(),
        _noise_labelled(8, 0),
        _separable_test(8),
        seeds=[0, 1],
        options=QUICK,
        baseline=[0.5, 0.4],
    )
    assert calls == [True, True] and result.baseline == [0.5, 0.4]
    with pytest.raises(ConfigError, match="one per seed"):
        augmentation_utility(
            Separable(), _noise_labelled(8, 0), _separable_test(8), seeds=[0], baseline=[1, 2]
        )


def test_fine_tuning_moves_only_the_last_layer():
    torch.manual_seed(0)
    net = ResNetClassifier(1, 2, depth=10, width=4)
    x, y = _separable_test(16)
    tuned = finetune_last_layer(net, (x, y), epochs=3, lr=1e-2)
    before, after = net.state_dict(), tuned.state_dict()
    moved = sorted(k for k in before if not torch.equal(before[k], after[k]))
    assert moved == ["fc.bias", "fc.weight"]  # batch-norm statistics stay too


def test_stratified_fractions_keep_every_class():
    labels = torch.tensor([0] * 10 + [1] * 4 + [2])
    keep = stratified_fraction(labels, 0.5, seed=0)
    assert labels[keep].tolist().count(0) == 5 and labels[keep].tolist().count(1) == 2
    assert labels[keep].tolist().count(2) == 1 and torch.equal(keep, keep.sort().values)
    assert not torch.equal(keep, stratified_fraction(labels, 0.5, seed=1))


def test_feature_extraction_pretrains_on_synthetic_images_and_fine_tunes_on_half_the_real_ones(monkeypatch):
    seen = []
    original = utility_module.finetune_last_layer

    def recording(model, train, **kwargs):
        seen.append((len(train[0]), kwargs["epochs"]))
        return original(model, train, **kwargs)

    monkeypatch.setattr(utility_module, "finetune_last_layer", recording)
    real = _separable_test(16)
    generator = Separable()
    result = extraction_utility(
        generator, real, _separable_test(), seeds=[0, 1], options=QUICK, n_synthetic=32
    )
    assert result.protocol == "feature-extraction" and len(result.scores) == len(result.baseline) == 2
    assert seen == [(8, 20)] * 4  # half the real images, 20 epochs; the synthetic run and the real reference
    assert [len(c) for c in generator.calls] == [32, 32]
    assert all(s > 0.9 for s in result.scores)
    alone = extraction_utility(None, real, _separable_test(), seeds=[0], options=QUICK, finetune_epochs=2)
    assert alone.scores == alone.baseline


def test_sampling_efficiency_reports_time_and_peak_memory_on_a_cpu():
    from tests.transforms.conftest import tiny_diffusion

    bundle = tiny_diffusion()
    steps = []
    original = bundle.unet.forward
    bundle.unet.forward = lambda *a, **k: steps.append(1) or original(*a, **k)  # type: ignore[method-assign]
    e = sampling_efficiency(bundle, n_images=4, batch_size=2, device="cpu", steps=3)
    assert e.images == 4 and e.seconds_per_1000 > 0 and e.peak_memory_gb is None
    assert e.peak_rss_gb is not None and e.peak_rss_gb > 0 and e.peak_rss_source is not None
    assert len(steps) == 3 * 3  # a warm-up batch and two timed ones, three DDIM steps each


def test_the_built_in_utility_for_evaluate(monkeypatch):
    real, test = _noise_labelled(16, 0), _separable_test()
    score = classifier_utility(real, test, options=QUICK, n_synthetic=32)
    baseline = score(None, 0)
    assert 0 <= baseline <= 1 and score(None, 0) == baseline  # seeded

    class Policy:  # what evaluate passes: an object with the policy's transform
        def __init__(self, transform):
            self.transform = transform

    bundle = GanBundle.random(
        GanConfig(
            resolution=16, channel_base=256, channel_max=32, c_dim=2, modalities=GanConfig().modalities[:1]
        )
    )
    assert 0 <= score(Policy(SG2Sample(bundle, p=1.0, value_range="generator")), 0) <= 1
    calls = []
    flips = StandardDA(p=1.0, rotate=0, translate=0, elastic=None, seed=0)
    original = flips.forward
    flips.forward = lambda *a: calls.append(1) or original(*a)  # type: ignore[method-assign]
    assert 0 <= score(Policy(flips), 0) <= 1 and calls  # online augmentation of the real batches
    calls.clear()
    assert score(flips, 0) == score(Policy(flips), 0) and calls  # a transform given as it is, too
    with pytest.raises(ConfigError, match="no classes"):
        score(Policy(None), 0)
    extraction = classifier_utility(
        real, test, protocol="feature-extraction", options=QUICK, finetune_epochs=1
    )
    with pytest.raises(ConfigError, match="protocol='augmentation'"):
        extraction(Policy(flips), 0)
    assert 0 <= extraction(None, 0) <= 1


def test_the_online_augmentation_hands_apply_each_chosen_images_class():
    real, test = _noise_labelled(16, 0), _separable_test()
    label_of = {tuple(image.flatten()[:4].tolist()): int(label) for image, label in zip(*real, strict=True)}
    calls: list[tuple[list[int], list[int]]] = []

    def apply(transform, images, labels):  # what evaluate passes: the transform's call with the classes
        truth = [label_of[tuple(image.flatten()[:4].tolist())] for image in images]
        calls.append((truth, labels.tolist()))
        return transform(images)

    flips = StandardDA(p=1.0, rotate=0, translate=0, elastic=None, seed=0)
    score = classifier_utility(real, test, options=QUICK, augment_p=0.5, apply=apply)
    first = score(flips, 0)
    assert 0 <= first <= 1 and calls
    assert all(truth == labels for truth, labels in calls)  # each image with its own class
    assert 0 < sum(len(labels) for _, labels in calls) < QUICK.epochs * 16  # about half of them chosen
    drawn = list(calls)
    calls.clear()
    assert score(flips, 0) == first and calls == drawn  # seeded: the same images, the same score
    with pytest.raises(ConfigError, match="apply must be a callable"):
        classifier_utility(real, test, apply="labels")  # type: ignore[arg-type]
