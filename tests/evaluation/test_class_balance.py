"""``evaluate`` over a class-conditional GAN and labelled data: the drawn samples follow the training
split's class balance, LatentAugment keeps each source's class, and unlabelled or unconditional runs stay
as they were."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from latent_transforms import GanBundle, GanConfig, IntensityWindow, Modality, SG2Sample
from latent_transforms.evaluation.run import evaluate_policies
from latent_transforms.evaluation.sampling import generate_samples

pytest.importorskip("scipy")

XRAY = (Modality("image", IntensityWindow(0, 255)),)
N = 64
SETTINGS = dict(n_samples=N, feature_network="random", efficiency_images=0, batch_size=16, progress=False)


@pytest.fixture(scope="module")
def cgan() -> GanBundle:
    return GanBundle.random(
        GanConfig(resolution=16, channel_base=256, channel_max=32, c_dim=2, modalities=XRAY), seed=0
    )


def _imbalanced(folder: Path) -> Path:
    """A MedMNIST-layout file whose train split is 1 : 7 (4 of class 0, 28 of class 1), val / test 1 : 1."""
    rng = np.random.default_rng(0)
    arrays = {}
    for split, labels in (
        ("train", np.array([0] * 4 + [1] * 28)),
        ("val", np.arange(8) % 2),
        ("test", np.arange(8) % 2),
    ):
        images = (labels[:, None, None] * 160 + rng.integers(0, 60, size=(len(labels), 16, 16))).astype(
            np.uint8
        )
        arrays[f"{split}_images"], arrays[f"{split}_labels"] = images, labels.reshape(-1, 1)
    path = folder / "imbalanced.npz"
    np.savez(path, **arrays)
    return path


def _scored_samples(report_args: dict, policies: list[str]) -> tuple[object, dict[str, torch.Tensor]]:
    """The report and the samples every policy was scored with (what a utility function receives)."""
    seen: dict[str, torch.Tensor] = {}

    def train_and_score(policy, seed):  # type: ignore[no-untyped-def]
        if policy is not None:
            seen[policy.kind] = policy.samples
        return 0.5

    report = evaluate_policies(policies, utility=train_and_score, **report_args)
    return report, seen


def test_the_drawn_samples_follow_the_training_class_balance(cgan, tmp_path):
    data = f"medmnist:{_imbalanced(tmp_path)}"
    report, seen = _scored_samples(
        {"gan": cgan, "data": data, "reference_split": "test", **SETTINGS}, ["sg2sample"]
    )
    samples = seen["sg2sample"]
    # the oracle: the same seeded draws rendered all as class 0 and all as class 1; each scored sample is
    # one of the two, which tells its class
    policy = SG2Sample(cgan, p=1.0, value_range="generator", seed=0)
    as0 = generate_samples(policy, N, labels=0, batch_size=16, seed=0)
    as1 = generate_samples(policy, N, labels=1, batch_size=16, seed=0)
    is0 = (samples - as0).flatten(1).abs().amax(1) < 1e-5
    is1 = (samples - as1).flatten(1).abs().amax(1) < 1e-5
    assert bool((is0 ^ is1).all()), "every scored sample is its class's image of the seeded draws"
    class0 = int(is0.sum())
    # train is 1 : 7 (12.5 % class 0, 8 of 64 expected); uniform classes would give about 32 of 64
    assert 1 <= class0 <= 16
    balance = report.settings["class_balance"]
    assert balance["from"] == "train split" and balance["train_counts"] == [4, 28]
    assert balance["sample_counts"] == [class0, N - class0]
    assert "classes of the drawn samples" in report.to_markdown()
    # the same seed draws the same classes again
    _, again = _scored_samples(
        {"gan": cgan, "data": data, "reference_split": "test", **SETTINGS}, ["sg2sample"]
    )
    assert torch.equal(again["sg2sample"], samples)


def test_latent_augment_over_a_conditional_gan_runs_on_labelled_data(cgan, tmp_path):
    report = evaluate_policies(
        ["latentaugment:preset=f1,steps=2", "sg2sample:c=1", "standardda:elastic=none"],
        gan=cgan,
        data=f"medmnist:{_imbalanced(tmp_path)}",
        out=tmp_path / "out",
        reference_split="test",
        n_sources=12,
        inversion_steps=2,
        perceptual="random",
        **{**SETTINGS, "n_samples": 8, "efficiency_images": 4, "batch_size": 4},
    )
    rows = {r.kind: r for r in report.rows}
    la = rows["latentaugment"]
    assert la.n_samples == 8 and la.seconds_per_1000 > 0  # sampled and timed, the sources' classes given
    for row in report.rows:
        for metric in (row.fid, row.precision, row.recall):
            assert all(np.isfinite(v) for v in metric.values())
    assert report.settings["class_balance"] is None  # no row drew classes (sg2sample is fixed to c=1)


def test_unconditional_and_unlabelled_runs_record_no_class_balance(tmp_path):
    plain = GanBundle.random(GanConfig(resolution=16, channel_base=256, channel_max=32, modalities=XRAY))
    report = evaluate_policies(
        ["sg2sample"], gan=plain, data=f"medmnist:{_imbalanced(tmp_path)}", reference_split="test", **SETTINGS
    )
    assert report.settings["class_balance"] is None
    assert "classes of the drawn samples" not in report.to_markdown()


# -- the built-in classifier utility with LatentAugment ----------------------------------------------------
def _small_gan(c_dim: int) -> GanBundle:
    config = GanConfig(
        resolution=16, channel_base=256, channel_max=32, z_dim=16, w_dim=16, c_dim=c_dim, modalities=XRAY
    )
    return GanBundle.random(config, seed=0)


UTILITY_RUN = dict(
    reference_split="test",
    n_sources=4,
    inversion_steps=2,
    perceptual="random",
    n_samples=8,
    feature_network="random",
    efficiency_images=0,
    batch_size=4,
    progress=False,
    utility="classifier",
)


def test_the_classifier_utility_augments_every_training_image_with_its_class(tmp_path, monkeypatch):
    from latent_transforms import LatentAugment
    from latent_transforms.evaluation.real_data import open_real_data
    from latent_transforms.inversion.cache import image_key
    from latent_transforms.tasks.training import as_image_labels

    path, gan = _imbalanced(tmp_path), _small_gan(2)
    x, y = as_image_labels(open_real_data(gan, f"medmnist:{path}", reference_split="test").splits["train"])
    label_of = {image_key(image): int(label) for image, label in zip(x, y, strict=True)}
    seen: list[tuple[str, int | None]] = []  # (image, the class its discriminator was told)
    original = LatentAugment.apply_batch

    def spy(self, images, params, kind):  # type: ignore[no-untyped-def]
        c = params.get("c")
        for i, image in enumerate(images.cpu()):
            seen.append((image_key(image), None if c is None else int(c[i].argmax())))
        return original(self, images, params, kind)

    monkeypatch.setattr(LatentAugment, "apply_batch", spy)
    report = evaluate_policies(
        ["latentaugment:preset=f1,steps=2"],
        gan=gan,
        data=f"medmnist:{path}",
        out=tmp_path / "out",
        **UTILITY_RUN,
    )
    utility = report.rows[0].utility
    assert utility is not None and utility.n == 1
    assert np.isfinite(utility.policy_mean) and np.isfinite(utility.baseline_mean)
    assert report.settings["inversion"]["training_split"]["images"] == len(x) == 32
    # the online augmentation walked training images beyond the 4 sources, each told its own class
    walked = {key for key, _ in seen}
    assert len(walked) > 4 and walked <= set(label_of)
    assert all(c == label_of[key] for key, c in seen)
    assert {c for _, c in seen} == {0, 1}


def test_the_classifier_utility_with_latent_augment_over_an_unconditional_gan(tmp_path):
    report = evaluate_policies(
        ["latentaugment:preset=f1,steps=2"],
        gan=_small_gan(0),
        data=f"medmnist:{_imbalanced(tmp_path)}",
        out=tmp_path / "out",
        **UTILITY_RUN,
    )
    utility = report.rows[0].utility
    assert utility is not None and np.isfinite(utility.policy_mean) and np.isfinite(utility.baseline_mean)
    assert report.settings["inversion"]["training_split"]["inverted"] == 32 - 4  # the sources were there


def test_feature_extraction_utility_refuses_transforms_of_real_images_before_any_work(tmp_path):
    from latent_transforms.errors import ConfigError

    with pytest.raises(ConfigError, match="pretrains on synthetic images only"):
        evaluate_policies(
            ["latentaugment:preset=f1,steps=2"],
            gan=_small_gan(2),
            data=f"medmnist:{_imbalanced(tmp_path)}",
            out=tmp_path / "out",
            **{**UTILITY_RUN, "utility": "classifier:feature-extraction"},
        )
    assert not (tmp_path / "out" / "cache").exists()  # nothing was inverted
