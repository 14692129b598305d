"""CrossModalAugment (Yang & Xie's cross-modal augmentation as a transform): what replaces a sample, the
label that follows it, the dictionary variant's label swap and the offline mixed training set."""

from __future__ import annotations

import pickle

import pytest
import torch

from latent_transforms import ConfigError
from latent_transforms.transforms import CrossModalAugment, cross_modal_training_set
from latent_transforms.transforms.dictionary import monai_available
from latent_transforms.translation import TranslatorBundle, TranslatorConfig, UnpairedImages

CONFIG = TranslatorConfig(resolution=16, width=4, blocks=1)
TRANSLATOR = TranslatorBundle.random(CONFIG, seed=0)
POOL = torch.rand(5, 1, 16, 16, generator=torch.Generator().manual_seed(0)) * 1900.0  # MRI units
LABELS = torch.tensor([10.0, 20.0, 30.0, 40.0, 50.0])


def _ct(n: int = 4) -> torch.Tensor:
    return torch.rand(n, 1, 16, 16, generator=torch.Generator().manual_seed(1)) * 3000.0 - 1000.0


def test_a_replaced_sample_is_the_translation_of_its_drawn_source_image_in_the_callers_units():
    t = CrossModalAugment(TRANSLATOR, POOL, LABELS, p=1.0, seed=0)
    out = t(_ct())
    index = t.last_params["index"]
    working = TRANSLATOR.normalize(POOL, "source")
    expected = TRANSLATOR.denormalize(TRANSLATOR.translate(working[index]).clamp(-1, 1), "target")
    torch.testing.assert_close(out, expected)


def test_the_labels_of_replaced_samples_become_their_source_images_labels():
    t = CrossModalAugment(TRANSLATOR, POOL, LABELS, p=0.5, seed=3)
    own = torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0])
    images, labels = t.with_labels(_ct(8), own)
    replaced, index = t.last_params["apply"], t.last_params["index"]
    assert 0 < int(replaced.sum()) < 8
    assert torch.equal(labels[replaced], LABELS[index[replaced]])
    assert torch.equal(labels[~replaced], own[~replaced])
    assert torch.equal(images[~replaced], _ct(8)[~replaced])


def test_labels_are_refused_when_the_pool_has_none_or_some_samples_were_kept_without_theirs():
    t = CrossModalAugment(TRANSLATOR, POOL, p=1.0, seed=0)
    t(_ct())
    with pytest.raises(ConfigError, match="without source_labels"):
        t.labels_for(t.last_params)
    t = CrossModalAugment(TRANSLATOR, POOL, LABELS, p=0.5, seed=3)
    t(_ct(8))
    with pytest.raises(ConfigError, match="pass their labels"):
        t.labels_for(t.last_params)


def test_the_pool_may_come_as_unpaired_images_in_the_generator_range():
    from latent_transforms import Modality

    pool = UnpairedImages(TRANSLATOR.normalize(POOL, "source"), (Modality("mri"),), labels=LABELS)
    a = CrossModalAugment(TRANSLATOR, pool, p=1.0, seed=0)
    b = CrossModalAugment(TRANSLATOR, POOL, LABELS, p=1.0, seed=0)
    assert a.source_range == "generator"
    torch.testing.assert_close(a(_ct()), b(_ct()))


def test_a_pool_that_does_not_fit_the_translator_is_refused_on_first_use():
    t = CrossModalAugment(TRANSLATOR, torch.zeros(3, 2, 16, 16), p=1.0, seed=0)
    with pytest.raises(ConfigError, match="source images"):
        t(_ct())
    with pytest.raises(ConfigError, match="3 source images but 2 source labels"):
        CrossModalAugment(TRANSLATOR, torch.zeros(3, 1, 16, 16), torch.zeros(2))


def test_a_translator_folder_loads_lazily_and_the_transform_pickles_with_its_path(tmp_path):
    folder = TRANSLATOR.save_pretrained(tmp_path / "translator")
    t = CrossModalAugment(str(folder), POOL, LABELS, p=1.0, seed=0)
    assert repr(t).startswith(f"CrossModalAugment(translator={str(folder)!r}, source=5 images, p=1.0")
    clone = pickle.loads(pickle.dumps(t))
    torch.testing.assert_close(clone(_ct()), CrossModalAugment(TRANSLATOR, POOL, p=1.0, seed=0)(_ct()))


@pytest.mark.skipif(not monai_available(), reason="MONAI is not installed")
def test_the_dictionary_variant_swaps_the_label_of_an_item_and_of_a_batch():
    from latent_transforms.transforms import CrossModalAugmentd

    t = CrossModalAugmentd(["ct"], TRANSLATOR, POOL, LABELS, prob=1.0, seed=0)
    out = t({"ct": _ct(1)[0], "label": 3.0, "key": "p7/0003"})
    assert isinstance(out["label"], float) and out["label"] == float(
        LABELS[t.transform.last_params["index"][0]]
    )
    batch = {"ct": _ct(4), "label": torch.tensor([1.0, 2.0, 3.0, 4.0]), "key": [f"p{i}/0" for i in range(4)]}
    t = CrossModalAugmentd(["ct"], TRANSLATOR, POOL, LABELS, prob=0.5, seed=5)
    out = t(batch)
    replaced, index = t.transform.last_params["apply"], t.transform.last_params["index"]
    assert torch.equal(out["label"][replaced], LABELS[index[replaced]])
    assert torch.equal(out["label"][~replaced], batch["label"][~replaced])
    kept = CrossModalAugmentd(["ct"], TRANSLATOR, POOL, LABELS, prob=0.0, seed=5)(batch)
    assert kept["label"] is batch["label"]


def test_the_mixed_training_set_is_the_targets_then_the_translated_sources_with_their_labels():
    target = TRANSLATOR.normalize(_ct(3), "target").clamp(-1, 1)
    source = TRANSLATOR.normalize(POOL, "source")
    mixed = cross_modal_training_set(
        TRANSLATOR, target, source, target_labels=torch.tensor([1.0, 2.0, 3.0]), source_labels=LABELS
    )
    assert len(mixed) == 8 and mixed.translated.tolist() == [False] * 3 + [True] * 5
    assert torch.equal(mixed.images[:3], target)
    torch.testing.assert_close(mixed.images[3:], TRANSLATOR.translate(source).clamp(-1, 1))
    assert mixed.labels.tolist() == [1.0, 2.0, 3.0, 10.0, 20.0, 30.0, 40.0, 50.0]
    item = mixed[4]
    assert item["translated"] and item["label"] == 20.0 and item["key"] == "translated/00001"
    some = cross_modal_training_set(
        TRANSLATOR,
        target,
        source,
        target_labels=[1.0, 2.0, 3.0],
        source_labels=LABELS,
        n_translated=2,
        seed=1,
    )
    assert len(some) == 5 and set(some.labels[3:].tolist()) <= set(LABELS.tolist())
    with pytest.raises(ConfigError, match="both"):
        cross_modal_training_set(TRANSLATOR, target, source, target_labels=[1.0, 2.0, 3.0])
