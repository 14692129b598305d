"""The base every weight bundle shares (``HubBundle``): the same Hub signatures, loading errors, re-saving
and uploading for the GAN, diffusion and translator bundles."""

from __future__ import annotations

import inspect
from pathlib import Path
from unittest import mock

import pytest
from huggingface_hub import ModelHubMixin

from latent_transforms import DiffusionBundle, DiffusionConfig, GanBundle
from latent_transforms.errors import BundleNotFoundError, ConfigError
from latent_transforms.networks import HubBundle
from latent_transforms.translation import TranslatorBundle, TranslatorConfig
from tests.conftest import tiny_config


def _gan(**kw) -> GanBundle:
    bundle = GanBundle.random(tiny_config(16), **kw)
    bundle.compute_w_stats(64)
    return bundle


def _diffusion() -> DiffusionBundle:
    cfg = DiffusionConfig(
        resolution=8, channels=(8, 8), attention_levels=(False, False), num_head_channels=8, norm_num_groups=8
    )
    return DiffusionBundle.random(cfg)


def _translator() -> TranslatorBundle:
    return TranslatorBundle.random(TranslatorConfig(resolution=16, width=4, blocks=1))


MAKERS = {"GanBundle": _gan, "DiffusionBundle": _diffusion, "TranslatorBundle": _translator}


@pytest.mark.parametrize("cls", [GanBundle, DiffusionBundle, TranslatorBundle])
def test_every_bundle_is_a_hub_bundle_with_the_mixins_standard_signatures(cls):
    assert issubclass(cls, HubBundle) and issubclass(cls, ModelHubMixin)
    for name in ("from_pretrained", "save_pretrained", "push_to_hub"):
        ours = inspect.signature(getattr(cls, name)).parameters
        theirs = inspect.signature(getattr(ModelHubMixin, name)).parameters
        assert list(theirs) == [p for p in ours if p in theirs], (cls, name)
        for arg, param in theirs.items():
            if param.default is not inspect.Parameter.empty and arg not in ("commit_message", "token"):
                assert ours[arg].default == param.default, (cls, name, arg)


@pytest.mark.parametrize("name", list(MAKERS))
def test_a_folder_without_the_main_weights_names_the_file_and_the_kind(tmp_path, name):
    bundle = MAKERS[name]()
    folder = bundle.save_pretrained(tmp_path / "b")
    (folder / type(bundle).main_file).unlink()
    with pytest.raises(
        BundleNotFoundError, match=rf"no {type(bundle).main_file}; the {type(bundle).kind} is"
    ):
        type(bundle).from_pretrained(folder)


@pytest.mark.parametrize("name", list(MAKERS))
def test_save_pretrained_refuses_another_config_and_says_how_to_build_one(tmp_path, name):
    bundle = MAKERS[name]()
    other = bundle.config.replace(resolution=32)
    with pytest.raises(
        ConfigError, match=r"bundle's own config.*build a bundle from it \(\w+Bundle\(config, "
    ):
        bundle.save_pretrained(tmp_path, config=other)
    assert not (tmp_path / "config.json").exists()


def test_resaving_without_an_optional_network_removes_its_stale_file(tmp_path):
    _gan().save_pretrained(tmp_path / "gan")
    _gan(discriminator=False).save_pretrained(tmp_path / "gan")
    assert not (tmp_path / "gan" / "discriminator.safetensors").exists()
    bundle = _translator()
    bundle.save_pretrained(tmp_path / "t")
    assert (tmp_path / "t" / "target_to_source.safetensors").is_file()
    TranslatorBundle(bundle.config, bundle.source_to_target).save_pretrained(tmp_path / "t")
    assert not (tmp_path / "t" / "target_to_source.safetensors").exists()
    assert TranslatorBundle.from_pretrained(tmp_path / "t").target_to_source is None


@pytest.mark.parametrize("name", list(MAKERS))
def test_push_to_hub_uploads_the_saved_folder_with_a_commit_message_naming_the_kind(name):
    bundle = MAKERS[name]()
    calls: dict[str, object] = {}

    class FakeApi:
        def __init__(self, **kwargs):
            assert kwargs["library_name"] == "latent-transforms"

        def create_repo(self, repo_id, **kwargs):
            calls["repo"] = (repo_id, kwargs["private"])

        def upload_folder(self, repo_id, folder_path, **kwargs):
            calls["files"] = sorted(f.name for f in Path(folder_path).iterdir())
            calls["card"] = (Path(folder_path) / "README.md").read_text()
            calls["upload"] = kwargs
            return mock.Mock(commit_url="https://hub/commit/3")

    with mock.patch("latent_transforms.networks.hub_bundle.HfApi", FakeApi):
        assert bundle.push_to_hub("me/model", private=True, parent_commit="c" * 40) == "https://hub/commit/3"
    assert calls["repo"] == ("me/model", True)
    assert "config.json" in calls["files"] and type(bundle).main_file in calls["files"]
    assert '("me/model")' in calls["card"]
    upload = calls["upload"]
    assert upload["commit_message"] == f"Upload {type(bundle).kind} with latent-transforms"
    assert upload["parent_commit"] == "c" * 40
