"""The diffusion bundle: config, save/load round trip, strict and finite weights, sources, card, sampling."""

from __future__ import annotations

import json
from pathlib import Path
from unittest import mock

import pytest
import torch
from huggingface_hub import constants as hf_constants
from safetensors.torch import load_file, save_file

from latent_transforms import (
    DiffusionBundle,
    DiffusionConfig,
    GanBundle,
    IntensityWindow,
    Modality,
    load_diffusion,
    load_gan,
)
from latent_transforms.errors import BundleNotFoundError, ConfigError, WeightMismatchError
from latent_transforms.generative.bundle import UNET_NAME
from latent_transforms.generative.sampling import denoise
from tests.conftest import tiny_config

XRAY = (Modality("xray", IntensityWindow(0.0, 255.0)),)


def tiny(c_dim: int = 0, **kw) -> DiffusionConfig:
    """A 16 px, 1-channel model of a few thousand parameters with 20 timesteps: milliseconds per step."""
    base = dict(
        resolution=16,
        modalities=XRAY,
        c_dim=c_dim,
        channels=(8, 16),
        attention_levels=(False, True),
        num_head_channels=8,
        norm_num_groups=8,
        timesteps=20,
    )
    base.update(kw)
    return DiffusionConfig(**base)


def trained_like(config: DiffusionConfig, seed: int = 0) -> DiffusionBundle:
    """A random bundle whose output layer is not zero (MONAI zero-initialises it), so samples depend on
    the weights and the classes."""
    bundle = DiffusionBundle.random(config, seed=seed)
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for p in bundle.unet.parameters():
            p.add_(torch.randn(p.shape, generator=g) * 0.05)
    return bundle


# -- config ------------------------------------------------------------------------------------------


def test_config_round_trips_through_json_with_its_architecture(tmp_path):
    cfg = tiny(c_dim=2, training={"kimg": 3})
    text = cfg.to_json(tmp_path / "config.json")
    data = json.loads(text)
    assert data["architecture"] == "ddpm-unet" and data["channels"] == [8, 16]
    again = DiffusionConfig.from_json(tmp_path / "config.json")
    assert again == cfg and again.training == {"kimg": 3} and again.modalities == XRAY
    assert cfg.num_class_embeds == 3 and cfg.null_label == 2
    assert tiny(c_dim=2, null_class=False).num_class_embeds == 2


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"resolution": 18, "channels": (8, 16, 16), "attention_levels": (False, False, False)}, "halved"),
        ({"channels": (8, 12)}, "multiple of norm_num_groups"),
        ({"attention_levels": (False,)}, "one True/False per level"),
        ({"num_head_channels": 16, "channels": (8, 8)}, "num_head_channels"),
        ({"schedule": "quadratic"}, "schedule must be one of"),
        ({"prediction_type": "noise"}, "prediction_type must be one of"),
        ({"modalities": ()}, "at least one modality"),
    ],
)
def test_config_refuses_what_monai_cannot_build_with_the_fix(changes, match):
    with pytest.raises(ConfigError, match=match):
        tiny(**changes)


def test_a_gan_config_and_a_diffusion_config_refuse_each_other():
    with pytest.raises(ConfigError, match="load_gan"):
        DiffusionConfig.from_dict(tiny_config(16).to_dict())
    with pytest.raises(ConfigError, match="ddpm-unet"):
        type(tiny_config(16)).from_dict(tiny().to_dict())


# -- save and load -----------------------------------------------------------------------------------


def test_save_and_load_round_trip_is_bit_identical(tmp_path):
    bundle = trained_like(tiny(c_dim=2, training={"name": "tiny", "kimg": 1.5}))
    folder = bundle.save_pretrained(tmp_path / "b")
    assert sorted(p.name for p in folder.iterdir()) == ["README.md", "config.json", UNET_NAME]
    loaded = load_diffusion(folder)
    assert loaded.config == bundle.config and loaded.source == str(folder)
    assert loaded.fingerprint == bundle.fingerprint
    assert not loaded.unet.training and not any(p.requires_grad for p in loaded.unet.parameters())
    a = bundle.sample(3, labels=[0, 1, 1], seed=4, steps=5)
    b = loaded.sample(3, labels=[0, 1, 1], seed=4, steps=5)
    assert torch.equal(a, b)
    assert DiffusionBundle.from_pretrained(folder).fingerprint == bundle.fingerprint


def test_the_model_card_holds_licence_architecture_windows_and_training(tmp_path):
    bundle = DiffusionBundle.random(tiny(c_dim=2, training={"kimg": 12, "fid": 3.25}))
    bundle.save_pretrained(tmp_path)
    card = (tmp_path / "README.md").read_text()
    assert card.startswith("---\n") and "license: apache-2.0" in card
    assert "library_name: latent-transforms" in card and "diffusion" in card
    assert "| 0 | xray | [0, 255]  |" in card and "**kimg**: 12" in card and "**fid**: 3.25" in card
    assert "16 x 16" in card and bundle.fingerprint[:16] in card and "load_diffusion" in card
    hub_card = bundle.generate_model_card(repo_id="me/ddpm", license="mit")
    assert hub_card.data.license == "mit" and 'load_diffusion("me/ddpm")' in hub_card.text


def test_weights_that_do_not_match_the_config_name_the_first_tensor(tmp_path):
    DiffusionBundle.random(tiny()).save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    config["channels"] = [16, 16]
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(WeightMismatchError, match=r"tensor '.*' has shape"):
        load_diffusion(tmp_path)


def test_extra_tensors_are_refused(tmp_path):
    DiffusionBundle.random(tiny()).save_pretrained(tmp_path)
    tensors = load_file(str(tmp_path / UNET_NAME))
    tensors["surprise"] = torch.zeros(2)
    save_file(tensors, str(tmp_path / UNET_NAME))
    with pytest.raises(WeightMismatchError, match="surprise"):
        load_diffusion(tmp_path)


def test_non_finite_weights_are_refused_on_load_and_on_save(tmp_path):
    bundle = DiffusionBundle.random(tiny())
    bundle.save_pretrained(tmp_path)
    tensors = load_file(str(tmp_path / UNET_NAME))
    name = next(iter(tensors))
    tensors[name] = torch.full_like(tensors[name], float("nan"))
    save_file(tensors, str(tmp_path / UNET_NAME))
    with pytest.raises(WeightMismatchError, match="NaN or Inf"):
        load_diffusion(tmp_path)
    with torch.no_grad():
        next(bundle.unet.parameters()).fill_(float("inf"))
    with pytest.raises(WeightMismatchError, match="diverged"):
        bundle.save_pretrained(tmp_path / "again")
    assert not (tmp_path / "again" / "config.json").exists()


def test_a_gan_bundle_folder_is_refused_with_the_right_loader(tmp_path):
    GanBundle.random(tiny_config(16)).save_pretrained(tmp_path, w_stats_samples=64)
    with pytest.raises(ConfigError, match="load_gan"):
        load_diffusion(tmp_path)
    DiffusionBundle.random(tiny()).save_pretrained(tmp_path / "d")
    with pytest.raises(ConfigError, match="ddpm-unet"):
        load_gan(tmp_path / "d")


def test_builtin_names_resolve_through_the_shared_code(tmp_path, monkeypatch):
    import latent_transforms.networks.builtin as builtin

    DiffusionBundle.random(tiny()).save_pretrained(tmp_path / "tiny-ddpm")
    monkeypatch.setattr(builtin, "BUILTIN_ROOT", tmp_path)
    assert load_diffusion("builtin:tiny-ddpm").config == tiny()
    with pytest.raises(BundleNotFoundError, match="no built-in diffusion bundle named 'nope'"):
        load_diffusion("builtin:nope")


def _fake_hub_cache(cache: Path, repo_id: str, bundle_dir: Path, commit: str = "b" * 40) -> None:
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
    _fake_hub_cache(tmp_path / "cache", "latent-transforms/tiny-ddpm", tmp_path / "b")
    with mock.patch.object(hf_constants, "HF_HUB_OFFLINE", True):
        loaded = load_diffusion("latent-transforms/tiny-ddpm", cache_dir=tmp_path / "cache")
        assert loaded.fingerprint == bundle.fingerprint
        with pytest.raises(BundleNotFoundError) as err:
            load_diffusion("someone/xray-ddpm", cache_dir=tmp_path / "cache", revision="v2")
    msg = str(err.value)
    assert "cannot load diffusion bundle 'someone/xray-ddpm' (revision 'v2')" in msg
    assert "hf download someone/xray-ddpm" in msg and "load_diffusion('path/to/folder')" in msg


def test_a_folder_without_config_is_not_a_bundle(tmp_path):
    with pytest.raises(BundleNotFoundError, match="not a diffusion bundle"):
        load_diffusion(tmp_path)


def test_from_pretrained_refuses_unknown_arguments(tmp_path):
    DiffusionBundle.random(tiny()).save_pretrained(tmp_path)
    with pytest.raises(TypeError, match="unexpected arguments"):
        DiffusionBundle.from_pretrained(tmp_path, load_discriminator=False)


# -- sampling ----------------------------------------------------------------------------------------


def test_samples_are_seeded_in_range_and_of_the_asked_classes():
    bundle = trained_like(tiny(c_dim=2))
    a = bundle.sample(4, labels=[0, 0, 1, 1], seed=3, steps=5)
    assert a.shape == (4, 1, 16, 16) and a.dtype == torch.float32
    assert a.min() >= -1 and a.max() <= 1
    assert torch.equal(a, bundle.sample(4, labels=[0, 0, 1, 1], seed=3, steps=5))
    assert not torch.equal(a, bundle.sample(4, labels=[0, 0, 1, 1], seed=4, steps=5))
    # the same starting noise with the other classes gives other images
    assert not torch.equal(a, bundle.sample(4, labels=[1, 1, 0, 0], seed=3, steps=5))
    # one int is every image's class; a generator continues a stream
    assert torch.equal(
        bundle.sample(2, labels=1, seed=0, steps=3), bundle.sample(2, labels=[1, 1], seed=0, steps=3)
    )
    g = torch.Generator().manual_seed(0)
    first, second = bundle.sample(2, generator=g, steps=3), bundle.sample(2, generator=g, steps=3)
    assert not torch.equal(first, second)


def test_batches_give_the_images_of_one_call():
    bundle = trained_like(tiny(c_dim=2))
    whole = bundle.sample(5, seed=1, steps=4)
    torch.testing.assert_close(bundle.sample(5, seed=1, steps=4, batch_size=2), whole, atol=1e-5, rtol=0)


def test_ddpm_runs_every_timestep_and_ddim_is_deterministic_only_with_eta_zero():
    bundle = trained_like(tiny())
    calls = []
    original = bundle.unet.forward

    def counting(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    bundle.unet.forward = counting  # type: ignore[method-assign]
    bundle.sample(1, seed=0, sampler="ddpm")
    assert len(calls) == 20
    calls.clear()
    bundle.sample(1, seed=0, steps=7)
    assert len(calls) == 7
    with pytest.raises(ConfigError, match="sampler='ddim'"):
        bundle.sample(1, sampler="ddpm", steps=5)
    noisy = [bundle.sample(1, seed=0, steps=5, eta=1.0) for _ in range(2)]
    assert torch.equal(noisy[0], noisy[1])  # seeded, also with noise in the steps


def test_guidance_mixes_the_class_and_no_class_predictions():
    cfg = tiny(c_dim=2)
    bundle = trained_like(cfg)
    noise = torch.randn(2, 1, 16, 16, generator=torch.Generator().manual_seed(0))
    labels = torch.tensor([0, 1])
    plain = denoise(bundle.unet, cfg, noise, labels=labels, steps=3)
    unconditional = denoise(bundle.unet, cfg, noise, labels=torch.full((2,), cfg.null_label), steps=3)
    torch.testing.assert_close(
        denoise(bundle.unet, cfg, noise, labels=labels, steps=3, guidance=0.0), unconditional
    )
    assert not torch.equal(denoise(bundle.unet, cfg, noise, labels=labels, steps=3, guidance=3.0), plain)
    with pytest.raises(ConfigError, match="null_class"):
        denoise(bundle.unet, tiny(c_dim=2, null_class=False), noise, labels=labels, steps=3, guidance=2.0)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"labels": 2}, r"class indices in \[0, 2\)"),
        ({"labels": [0, 1, 1]}, "3 entries for 2 images"),
        ({"labels": torch.eye(2)}, "argmax"),
        ({"steps": 21}, "steps must be an integer in"),
    ],
)
def test_bad_sampling_arguments_say_what_to_do(kwargs, match):
    bundle = DiffusionBundle.random(tiny(c_dim=2))
    with pytest.raises(ConfigError, match=match):
        bundle.sample(2, **kwargs)


def test_an_unconditional_model_takes_no_labels():
    with pytest.raises(ConfigError, match="unconditional"):
        DiffusionBundle.random(tiny()).sample(2, labels=1)


def test_normalize_and_denormalize_use_the_windows():
    bundle = DiffusionBundle.random(tiny())
    x = torch.tensor([[[[0.0, 127.5, 255.0]]]])
    torch.testing.assert_close(bundle.normalize(x), torch.tensor([[[[-1.0, 0.0, 1.0]]]]))
    torch.testing.assert_close(bundle.denormalize(bundle.normalize(x)), x)


def test_load_generator_reads_what_a_bundle_is_from_its_config(tmp_path):
    from latent_transforms.generative import bundle_architecture, load_generator

    DiffusionBundle.random(tiny()).save_pretrained(tmp_path / "ddpm")
    GanBundle.random(tiny_config(16)).save_pretrained(tmp_path / "gan", w_stats_samples=64)
    assert bundle_architecture(tmp_path / "ddpm") == "ddpm-unet"
    assert bundle_architecture(tmp_path / "gan") == "stylegan2"
    assert isinstance(load_generator(tmp_path / "ddpm"), DiffusionBundle)
    assert isinstance(load_generator(str(tmp_path / "gan")), GanBundle)
    given = DiffusionBundle.random(tiny())
    assert load_generator(given) is given
