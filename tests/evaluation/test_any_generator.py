"""``evaluate`` for any generator: diffusion policies beside a GAN, a diffusion bundle as the generator,
labelled real data, the built-in task-classifier utility and the peak RSS on a CPU."""

from __future__ import annotations

import numpy as np
import pytest

from latent_transforms import DiffusionSample, GanBundle, GanConfig, IntensityWindow, Modality, load_diffusion
from latent_transforms.errors import ConfigError
from latent_transforms.evaluation.policies import parse_policy
from latent_transforms.evaluation.run import evaluate_policies
from tests.transforms.conftest import tiny_diffusion

pytest.importorskip("matplotlib")
pytest.importorskip("scipy")

SETTINGS = dict(
    data="phantom:patients=10,slices=4",
    n_samples=6,
    n_sources=3,
    feature_network="random",
    efficiency_images=4,
    batch_size=4,
    progress=False,
)


@pytest.fixture(scope="module")
def gan() -> GanBundle:
    return GanBundle.random(GanConfig(resolution=16, channel_base=256, channel_max=32))


@pytest.fixture(scope="module")
def diffusion_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ddpm") / "bundle"
    tiny_diffusion().save_pretrained(folder)
    return folder


def test_diffusion_specs_parse_with_their_options_and_name(diffusion_folder):
    spec = parse_policy(f"diffusion:bundle={diffusion_folder},steps=10,guidance=2,c=1")
    assert spec.kind == "diffusion" and spec.family == "Diffusion" and not spec.needs_sources
    assert spec.options == {"bundle": str(diffusion_folder), "steps": 10, "guidance": 2, "c": 1}
    assert spec.name == "Diffusion (bundle, DDIM 10, guidance=2, c=1)"
    assert parse_policy("diffusion:sampler=DDPM").name == "Diffusion (the evaluation's bundle, DDPM)"
    with pytest.raises(ConfigError, match="unknown option"):
        parse_policy("diffusion:psi=0.7")
    with pytest.raises(ConfigError, match="cannot be set"):
        parse_policy("diffusion:p=0.5")


def test_a_diffusion_spec_builds_a_diffusion_sample_for_the_evaluation(gan, diffusion_folder):
    t = parse_policy(f"diffusion:bundle={diffusion_folder},steps=3").build(gan, seed=4)
    assert isinstance(t, DiffusionSample) and t.p == 1.0 and t.value_range == "generator"
    assert t.steps == 3 and t.seed == 4
    other = GanBundle.random(GanConfig(resolution=32, channel_base=256, channel_max=32))
    with pytest.raises(ConfigError, match="same channels and resolution"):
        parse_policy(f"diffusion:bundle={diffusion_folder}").build(other)
    with pytest.raises(ConfigError, match="names no diffusion bundle"):
        parse_policy("diffusion:steps=3").build(gan)


def test_a_diffusion_row_sits_beside_the_gan_rows(gan, diffusion_folder):
    report = evaluate_policies(
        ["sg2sample:psi=1", f"diffusion:bundle={diffusion_folder},steps=2", "real"], gan=gan, **SETTINGS
    )
    rows = {r.kind: r for r in report.rows}
    assert set(rows) == {"sg2sample", "diffusion", "real"}
    row = rows["diffusion"]
    assert row.n_samples == 6 and row.family == "Diffusion" and row.fid["mean"] >= 0
    assert row.seconds_per_1000 > 0 and row.peak_memory_gb is None  # no GPU here
    assert row.efficiency["peak_rss_gb"] > 0 and row.efficiency["peak_rss_source"]
    assert "Diffusion (bundle, DDIM 2)" in report.summary_markdown()


def test_a_diffusion_bundle_can_be_the_evaluations_generator(diffusion_folder):
    report = evaluate_policies(
        ["diffusion:steps=2", "standardda", "real"], gan=str(diffusion_folder), **SETTINGS
    )
    assert [r.kind for r in report.rows] == ["diffusion", "standardda", "real"]
    assert report.settings["gan_fingerprint"] == load_diffusion(diffusion_folder).fingerprint
    with pytest.raises(ConfigError, match="need a GAN bundle"):
        evaluate_policies(["sg2sample"], gan=str(diffusion_folder), **SETTINGS)


def _medmnist(tmp_path, n: int = 12):
    rng = np.random.default_rng(0)
    arrays = {}
    for split in ("train", "val", "test"):
        labels = np.arange(n) % 2
        images = (labels[:, None, None] * 160 + rng.integers(0, 60, size=(n, 16, 16))).astype(np.uint8)
        arrays[f"{split}_images"], arrays[f"{split}_labels"] = images, labels.reshape(-1, 1)
    path = tmp_path / "toy.npz"
    np.savez(path, **arrays)
    return path


@pytest.mark.slow
def test_labelled_data_and_the_built_in_classifier_utility(tmp_path):
    xray = (Modality("image", IntensityWindow(0, 255)),)
    cgan = GanBundle.random(
        GanConfig(resolution=16, channel_base=256, channel_max=32, c_dim=2, modalities=xray)
    )
    ddpm = tiny_diffusion(c_dim=2).config.replace(modalities=xray)
    from latent_transforms import DiffusionBundle

    DiffusionBundle.random(ddpm).save_pretrained(tmp_path / "ddpm")
    settings = {**SETTINGS, "data": f"medmnist:{_medmnist(tmp_path)}", "reference_split": "test"}
    report = evaluate_policies(
        ["sg2sample", f"diffusion:bundle={tmp_path / 'ddpm'},steps=2", "standardda:elastic=none"],
        gan=cgan,
        utility="classifier",
        utility_seeds=[0, 1],
        **settings,
    )
    for row in report.rows:
        assert row.utility is not None and row.utility.n == 2 and row.utility.paired_by == "seed"
        assert 0 <= row.utility.policy_mean <= 1 and 0 <= row.utility.baseline_mean <= 1
    assert report.settings["utility"]["function"] == "classifier"
    with pytest.raises(ConfigError, match="labelled real data"):
        evaluate_policies(
            ["standardda"],
            gan=GanBundle.random(GanConfig(resolution=16, channel_base=256, channel_max=32)),
            utility="classifier",
            **SETTINGS,
        )
    with pytest.raises(ConfigError, match="the protocol must be one of"):
        evaluate_policies(["standardda"], gan=cgan, utility="classifier:linear", **settings)
