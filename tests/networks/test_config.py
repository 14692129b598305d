"""GanConfig: derived architecture, validation with fixes in the messages, JSON round trip."""

from __future__ import annotations

import json

import pytest

from latent_transforms import ConfigError, GanConfig, Modality
from tests.conftest import tiny_config


def test_paper_defaults():
    cfg = GanConfig()
    assert cfg.resolution == 256 and cfg.mapping_layers == 2 and cfg.channel_base == 16384
    assert cfg.modality_names == ["mri", "ct"] and cfg.windows["ct"].low == -1000
    assert cfg.num_ws == 14 and cfg.channels_at(256) == 64 and cfg.channels_at(4) == 512


def test_json_round_trip(tmp_path):
    cfg = tiny_config(c_dim=4, training={"kimg": 3.5})
    cfg.to_json(tmp_path / "config.json")
    again = GanConfig.from_json(tmp_path / "config.json")
    assert again == cfg and again.training == {"kimg": 3.5}


def test_unknown_keys_and_future_versions_are_refused(tmp_path):
    data = tiny_config().to_dict()
    with pytest.raises(ConfigError, match=r"unknown keys \['colour'\]"):
        GanConfig.from_dict({**data, "colour": "red"})
    with pytest.raises(ConfigError, match="upgrade"):
        GanConfig.from_dict({**data, "format_version": 99})
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ConfigError, match="not valid JSON"):
        GanConfig.from_json(tmp_path / "bad.json")
    json.dumps(data)  # JSON-ready


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"modalities": ()}, "at least one modality"),
        ({"modalities": (Modality("ct"), Modality("ct"))}, "unique"),
        ({"c_dim": -1}, "c_dim"),
        ({"channel_base": 16}, "0 feature maps"),
        ({"conv_clamp": 0.0}, "conv_clamp"),
    ],
)
def test_invalid_configs_explain_themselves(changes, message):
    with pytest.raises(ConfigError, match=message):
        tiny_config().replace(**changes)


def test_modality_names_must_be_identifiers():
    with pytest.raises(ConfigError, match="valid identifier"):
        Modality("T2 weighted")
