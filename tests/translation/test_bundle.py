"""The translator bundle: save / load round trip (folder, Hub cache offline), strict weights, the model card,
the failure messages, and the sampling face every image maker shows."""

from __future__ import annotations

import json
from pathlib import Path
from unittest import mock

import pytest
import torch
from huggingface_hub import constants as hf_constants
from safetensors.torch import load_file, save_file

from latent_transforms.errors import BundleNotFoundError, ConfigError, WeightMismatchError
from latent_transforms.translation import TranslatorBundle, TranslatorConfig, load_translator
from latent_transforms.translation.bundle import FORWARD_NAME, INVERSE_NAME, PREDICTOR_NAME
from latent_transforms.translation.source import TranslatorSource


def tiny(task: str | None = "regression") -> TranslatorConfig:
    return TranslatorConfig(
        resolution=16,
        width=4,
        blocks=1,
        task=task,
        predictor_depth=10,
        predictor_width=4,
        label_mean=40.0,
        label_std=12.5,
        training={"name": "tiny mri to ct", "steps": 3},
    )


def trained_like(config: TranslatorConfig) -> TranslatorBundle:
    """A random bundle whose weights are not the freshly initialised ones (so a load must read them)."""
    bundle = TranslatorBundle.random(config, seed=1)
    g = torch.Generator().manual_seed(2)  # seeded: the tests must not depend on the order they run in
    with torch.no_grad():
        for p in bundle.parameters():
            p.add_(0.01 * torch.randn(p.shape, generator=g))
    return bundle


def test_save_and_load_round_trip_every_network_and_the_config(tmp_path):
    bundle = trained_like(tiny())
    folder = bundle.save_pretrained(tmp_path / "b")
    assert sorted(p.name for p in folder.iterdir()) == [
        "README.md",
        "config.json",
        PREDICTOR_NAME,
        FORWARD_NAME,
        INVERSE_NAME,
    ]
    loaded = load_translator(folder)
    assert loaded.config == bundle.config and loaded.config.training == bundle.config.training
    assert loaded.fingerprint == bundle.fingerprint and loaded.source == str(folder)
    for name in ("source_to_target", "target_to_source", "predictor"):
        a, b = getattr(bundle, name).state_dict(), getattr(loaded, name).state_dict()
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), name
    x = torch.rand(3, 1, 16, 16) * 2 - 1
    assert torch.equal(loaded.translate(x), bundle.translate(x))
    assert torch.equal(loaded.translate_back(x), bundle.translate_back(x))
    assert torch.equal(loaded.predict(x), bundle.predict(x))
    assert json.loads((folder / "config.json").read_text())["kind"] == "translator"


def test_a_cyclegan_bundle_has_no_predictor_file_and_refuses_to_predict(tmp_path):
    bundle = trained_like(tiny(None))
    folder = bundle.save_pretrained(tmp_path / "b")
    assert not (folder / PREDICTOR_NAME).exists()
    loaded = load_translator(folder)
    assert loaded.predictor is None
    with pytest.raises(ConfigError, match="without a predictor"):
        loaded.predict(torch.zeros(1, 1, 16, 16))


def test_the_model_card_names_the_method_the_modalities_and_the_windows(tmp_path):
    folder = trained_like(tiny()).save_pretrained(tmp_path / "b")
    card = (folder / "README.md").read_text()
    assert "# tiny mri to ct" in card and "DUIIT (Yang & Xie)" in card
    assert "| source | 0 | mri |" in card and "| target | 0 | ct |" in card
    assert "library_name: latent-transforms" in card and "pipeline_tag: image-to-image" in card


def test_weights_that_do_not_match_the_config_are_refused(tmp_path):
    folder = trained_like(tiny()).save_pretrained(tmp_path / "b")
    weights = load_file(folder / FORWARD_NAME)
    weights.pop(next(iter(weights)))
    save_file(weights, folder / FORWARD_NAME)
    with pytest.raises(WeightMismatchError):
        load_translator(folder)


def test_a_missing_predictor_file_is_named(tmp_path):
    folder = trained_like(tiny()).save_pretrained(tmp_path / "b")
    (folder / PREDICTOR_NAME).unlink()
    with pytest.raises(BundleNotFoundError, match=PREDICTOR_NAME):
        load_translator(folder)


def test_a_folder_without_config_and_unknown_builtins_are_not_translator_bundles(tmp_path):
    with pytest.raises(BundleNotFoundError, match="not a translator bundle"):
        load_translator(tmp_path)
    with pytest.raises(BundleNotFoundError):
        load_translator("builtin:no-such-translator")


def test_a_gan_config_is_refused_with_the_loader_to_use(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"format_version": 1, "kind": "gan"}))
    with pytest.raises(ConfigError, match="not a translator"):
        load_translator(tmp_path)


def _fake_hub_cache(cache: Path, repo_id: str, bundle_dir: Path, commit: str = "c" * 40) -> None:
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    snap = repo / "snapshots" / commit
    snap.mkdir(parents=True)
    for f in bundle_dir.iterdir():
        (snap / f.name).write_bytes(f.read_bytes())


def test_hub_ids_load_offline_from_the_cache_and_fail_with_the_fix_when_missing(tmp_path):
    bundle = trained_like(tiny())
    bundle.save_pretrained(tmp_path / "b")
    _fake_hub_cache(tmp_path / "cache", "latent-transforms/tiny-mri2ct", tmp_path / "b")
    with mock.patch.object(hf_constants, "HF_HUB_OFFLINE", True):
        loaded = load_translator("latent-transforms/tiny-mri2ct", cache_dir=tmp_path / "cache")
        assert loaded.fingerprint == bundle.fingerprint
        with pytest.raises(BundleNotFoundError) as err:
            load_translator("someone/pet2ct", cache_dir=tmp_path / "cache", revision="v2")
    msg = str(err.value)
    assert "cannot load translator bundle 'someone/pet2ct' (revision 'v2')" in msg
    assert "hf download someone/pet2ct" in msg and "load_translator('path/to/folder')" in msg


def test_inputs_outside_the_generator_range_or_of_the_wrong_shape_are_refused():
    bundle = trained_like(tiny())
    with pytest.raises(ConfigError):
        bundle.translate(torch.full((1, 1, 16, 16), 900.0))  # HU where [-1, 1] is expected
    with pytest.raises(ConfigError):
        bundle.translate(torch.zeros(1, 2, 16, 16))
    with pytest.raises(ConfigError):
        bundle.translate(torch.zeros(1, 1, 32, 32))


def test_sample_draws_source_images_of_the_asked_classes_and_is_seeded():
    bundle = trained_like(tiny(None))
    pool = torch.linspace(-0.9, 0.9, 6).view(6, 1, 1, 1).expand(6, 1, 16, 16).contiguous()
    classes = torch.tensor([0, 0, 0, 1, 1, 1])
    a = bundle.sample(4, labels=1, source=pool, source_labels=classes, seed=2)
    b = bundle.sample(4, labels=1, source=pool, source_labels=classes, seed=2)
    assert a.shape == (4, 1, 16, 16) and torch.equal(a, b)
    of_class_one = bundle.translate(pool[3:])  # another batch size: equal up to the last float bits
    assert all(any(torch.allclose(img, ref, atol=1e-5) for ref in of_class_one) for img in a)
    of_class_zero = bundle.translate(pool[:3])
    assert not any(torch.allclose(img, ref, atol=1e-5) for ref in of_class_zero for img in a)
    with pytest.raises(ConfigError, match="no source image has class 2"):
        bundle.sample(1, labels=2, source=pool, source_labels=classes)


def test_a_source_string_loads_lazily_and_pickles_as_the_string(tmp_path):
    import pickle

    folder = trained_like(tiny()).save_pretrained(tmp_path / "b")
    source = TranslatorSource(str(folder))
    assert source.config.resolution == 16 and not source.loaded
    assert source.bundle("cpu").fingerprint == load_translator(folder).fingerprint
    clone = pickle.loads(pickle.dumps(source))
    assert not clone.loaded and clone.describe() == repr(str(folder))
