"""The hyper-parameter configs: presets are instances, every list of hyper-parameters derives from them."""

from __future__ import annotations

import dataclasses

import pytest

from latent_transforms import (
    PRESETS,
    GanBundle,
    LatentAugment,
    LatentAugmentConfig,
    SG2Sample,
    SG2SampleConfig,
)
from latent_transforms.errors import ConfigError
from latent_transforms.objectives import PATCH_PROTOCOLS
from latent_transforms.transforms.config import field_metadata
from latent_transforms.transforms.latent_augment import CONFIG_KEYS
from latent_transforms.tuning.spaces import PAPER_GRIDS, PARAM_LABELS

from .conftest import tiny_gan_config


def test_presets_are_frozen_config_instances_readable_as_mappings() -> None:
    assert all(isinstance(c, LatentAugmentConfig) for c in PRESETS.values())
    assert PRESETS["f1"] == LatentAugmentConfig()  # the defaults are the F1-tuned set
    assert PRESETS["mae"]["alpha_pix"] == 3.0 and dict(PRESETS["mae"])["p"] == 0.3
    with pytest.raises(dataclasses.FrozenInstanceError):
        PRESETS["f1"].steps = 3  # type: ignore[misc]
    with pytest.raises(KeyError):
        PRESETS["f1"]["nope"]
    with pytest.raises(ConfigError, match="unknown"):
        PRESETS["f1"].replace(nope=1)
    assert PRESETS["f1"].replace(steps=3.0).steps == 3  # whole floats (JSON) become ints


def test_config_repr_tuning_and_policies_derive_from_the_fields() -> None:
    names = LatentAugmentConfig.names()
    assert list(CONFIG_KEYS) == names
    assert list(PAPER_GRIDS) == ["steps", "lr", "alpha_f", "alpha_pix", "alpha_perc", "alpha_lat"]
    assert list(PARAM_LABELS) == [*PAPER_GRIDS, "p"]
    assert field_metadata(SG2SampleConfig, "aliases")["truncation_psi"] == ("psi",)


def test_a_transform_holds_its_config_and_from_config_takes_one() -> None:
    bundle = GanBundle.random(tiny_gan_config(), seed=0)
    t = LatentAugment(bundle, alpha_pix=0, alpha_perc=0, alpha_lat=0, steps=4, p=0.5)
    config = t.hyperparameters
    assert isinstance(config, LatentAugmentConfig) and (config.steps, config.p) == (4, 0.5)
    again = LatentAugment.from_config(config, bundle)
    assert again.hyperparameters == config and again.config() == t.config()
    t.p = 0.7  # MONAI's prob setter changes p; the config follows
    assert t.hyperparameters.p == 0.7
    with pytest.raises(AttributeError):
        t.steps = 3  # read-only: the config is frozen
    s = SG2Sample(bundle, truncation_psi=0.5, c=None)
    assert s.hyperparameters == SG2SampleConfig(truncation_psi=0.5)


def test_the_patch_protocol_derives_through_the_config_like_every_hyper_parameter() -> None:
    from latent_transforms.evaluation.policies import parse_policy
    from latent_transforms.tuning.spaces import SearchSpace

    assert LatentAugmentConfig().patch_protocol == "same-position"  # the default, in every preset
    assert all(c.patch_protocol == "same-position" for c in PRESETS.values())
    with pytest.raises(ConfigError, match="patch_protocol must be one of"):
        LatentAugmentConfig(patch_protocol="centre")
    bundle = GanBundle.random(tiny_gan_config(), seed=0)
    t = LatentAugment(bundle, alpha_pix=0, alpha_perc=0, alpha_lat=0, patch_protocol="authors")
    assert t.patch_protocol == "authors" and "patch_protocol='authors'" in repr(t)
    assert t.config()["patch_protocol"] == "authors"
    assert LatentAugment.from_config(t.config(), bundle).hyperparameters == t.hyperparameters
    spec = parse_policy("latentaugment:patch-protocol=authors,alpha_pix=0,alpha_perc=0,alpha_lat=0")
    assert spec.options["patch_protocol"] == "authors"
    assert spec.build(bundle).patch_protocol == "authors"
    assert "patch_protocol" not in PAPER_GRIDS  # not part of the paper's search
    space = SearchSpace(
        "protocols", {"patch_protocol": {"type": "categorical", "choices": list(PATCH_PROTOCOLS)}}
    )

    class Trial:  # what an Optuna trial answers for a categorical parameter
        def suggest_categorical(self, name: str, choices: list[str]) -> str:
            return choices[-1]

    params = space.suggest(Trial())
    assert params == {"patch_protocol": "authors"} and space.contains(params)
    assert LatentAugment(bundle, alpha_pix=0, alpha_perc=0, alpha_lat=0, **params).patch_protocol == "authors"
