"""Real data: the reference set comes from held-out patients, the sources from training patients."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from latent_transforms import GanBundle, GanConfig
from latent_transforms.errors import CacheMismatchError, ConfigError
from latent_transforms.evaluation.real_data import evenly_spread, open_real_data, prepare_latents
from latent_transforms.features.perceptual import perceptual_network
from latent_transforms.inversion.cache import LatentCache, image_key

DATA = "phantom:patients=10,slices=4"


@pytest.fixture(scope="module")
def bundle() -> GanBundle:
    b = GanBundle.random(GanConfig(resolution=16, channel_base=256, channel_max=32))
    b.compute_w_stats(500)
    return b


def _patients(keys: list[str]) -> set[str]:
    return {k.split("/")[0] for k in keys}


def test_reference_and_source_patients_never_overlap(bundle: GanBundle) -> None:
    real = open_real_data(bundle, DATA, n_sources=5)
    assert real.reference.shape == (8, 2, 16, 16) and real.sources.shape == (5, 2, 16, 16)
    assert _patients(real.reference_keys).isdisjoint(_patients(real.source_keys))
    assert _patients(real.reference_keys) == set(real.splits["val"].patients)
    assert real.reference.min() >= -1 and real.reference.max() <= 1
    test = open_real_data(bundle, DATA, reference_split="test", n_sources=5)
    assert _patients(test.reference_keys) == set(test.splits["test"].patients)
    assert _patients(test.reference_keys).isdisjoint(_patients(real.reference_keys))


def test_slices_are_spread_evenly_over_the_split(bundle: GanBundle) -> None:
    real = open_real_data(bundle, DATA, n_real=3, n_sources=100)
    val = real.splits["val"]
    assert real.reference_keys == [val[i]["key"] for i in evenly_spread(len(val), 3)]
    assert len(real.sources) == len(real.splits["train"])  # more asked than there are: all of them
    images, keys = real.training_images(bundle, 4)
    assert images.shape[0] == 4 and set(keys) <= {real.splits["train"][i]["key"] for i in range(28)}


def test_bad_split_names_and_sizes_are_refused(bundle: GanBundle) -> None:
    with pytest.raises(ConfigError, match="reference_split"):
        open_real_data(bundle, DATA, reference_split="holdout")
    with pytest.raises(ConfigError, match="number of images"):
        open_real_data(bundle, DATA, n_sources=0)
    with pytest.raises(ConfigError, match="no 'test' slices"):
        open_real_data(bundle, DATA, reference_split="test", fractions=(0.8, 0.2))


def test_sources_are_inverted_once_under_their_content_keys(bundle: GanBundle, tmp_path: Path) -> None:
    real = open_real_data(bundle, DATA, n_real=2, n_sources=3)
    net = perceptual_network("random")
    first = prepare_latents(bundle, real, tmp_path / "cache", steps=2, perceptual=net)
    cache = LatentCache.open(tmp_path / "cache")
    assert first["inverted"] == 3 and all(image_key(x) in cache for x in real.sources)
    assert prepare_latents(bundle, real, tmp_path / "cache", steps=2, perceptual=net)["reused"] is True
    more = open_real_data(bundle, DATA, n_real=2, n_sources=5)  # two new sources: only those are inverted
    assert prepare_latents(bundle, more, tmp_path / "cache", steps=2, perceptual=net)["inverted"] == 2
    other = GanBundle.random(GanConfig(resolution=16, channel_base=256, channel_max=32), seed=1)
    assert torch.equal(real.sources, open_real_data(other, DATA, n_real=2, n_sources=3).sources)
    with pytest.raises(CacheMismatchError):  # another generator's cache is refused, not reused
        prepare_latents(other, real, tmp_path / "cache", steps=2, perceptual=net)


def test_the_demo_tune_and_evaluate_pick_the_same_held_out_slices(bundle: GanBundle) -> None:
    from latent_transforms.demo import held_out_slices

    for n in (1, 3, 5, 8):
        images, keys = held_out_slices(bundle, n, data=DATA)
        real = open_real_data(bundle, DATA, n_real=n, n_sources=1)
        assert real.reference_keys == keys and torch.equal(real.reference, images)


def test_the_reference_items_are_the_reference_slices(bundle: GanBundle) -> None:
    from latent_transforms.inversion.job import item_image

    real = open_real_data(bundle, DATA, n_real=3, n_sources=2)
    items = [real.reference_items[i] for i in range(len(real.reference_items))]
    assert [item["key"] for item in items] == real.reference_keys
    assert torch.equal(torch.stack([item_image(item, bundle) for item in items]), real.reference)


def test_without_a_reference_split_only_the_sources_are_taken(bundle: GanBundle) -> None:
    real = open_real_data(bundle, DATA, reference_split=None, n_sources=None, fractions=(1.0,))
    assert real.reference.shape == (0, 2, 16, 16) and real.reference_keys == []
    assert len(real.reference_items) == 0 and real.info["n_real"] == 0
    assert len(real.sources) == len(real.splits["train"]) == len(real.dataset)  # n_sources=None: all


def test_a_projector_of_yours_inverts_and_without_reuse_the_cache_is_checked(
    bundle: GanBundle, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from latent_transforms.inversion.projector import Projector

    real = open_real_data(bundle, DATA, n_real=2, n_sources=2)
    net = perceptual_network("random")
    mine = Projector(bundle, steps=3, perceptual=net, batch_size=2, progress=False, seed=1)
    first = prepare_latents(bundle, real, tmp_path / "cache", perceptual=net, projector=mine, reuse=False)
    assert first["inverted"] == 2 and first["steps"] == 3 and first["reused"] is False
    assert LatentCache.open(tmp_path / "cache").settings == mine.settings()
    projected: list[int] = []
    original = Projector.project
    monkeypatch.setattr(
        Projector, "project", lambda self, x, *a, **k: projected.append(len(x)) or original(self, x, *a, **k)
    )
    again = prepare_latents(bundle, real, tmp_path / "cache", perceptual=net, projector=mine, reuse=False)
    assert again["reused"] is False and again["inverted"] == 0 and projected == []
    with pytest.raises(CacheMismatchError):  # without reuse, another projector's cache is refused
        prepare_latents(bundle, real, tmp_path / "cache", steps=2, perceptual=net, reuse=False)
    assert prepare_latents(bundle, real, tmp_path / "cache", steps=2, perceptual=net)["reused"] is True
