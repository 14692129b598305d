"""Saving and loading the task network: safetensors weights beside ``NAME-network.json``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from latent_transforms.errors import ConfigError
from latent_transforms.tasks import (
    ResNetClassifier,
    ResNetRegressor,
    classifier_config_path,
    load_classifier,
    network_from_config,
    save_classifier,
)


def _trained_looking(model: ResNetClassifier) -> ResNetClassifier:
    """Weights and BN statistics away from their initial values, so a load that skips any shows."""
    generator = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for tensor in model.state_dict().values():
            if tensor.is_floating_point():
                tensor.copy_(torch.rand(tensor.shape, generator=generator) * 0.2 + 0.9)
    return model.eval()


def test_save_then_load_gives_the_same_network_and_outputs(tmp_path: Path) -> None:
    torch.manual_seed(0)
    net = _trained_looking(ResNetClassifier(2, 3, depth=10, width=4, dropout=0.25))
    path = save_classifier(net, tmp_path / "runs" / "task.safetensors")
    assert path == tmp_path / "runs" / "task.safetensors"
    assert sorted(p.name for p in path.parent.iterdir()) == ["task-network.json", "task.safetensors"]
    loaded = load_classifier(path)
    assert repr(loaded) == repr(net)
    assert not loaded.training
    x = torch.randn(4, 2, 16, 16, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(loaded(x), net(x), rtol=0, atol=0)


def test_a_regressor_comes_back_as_a_regressor(tmp_path: Path) -> None:
    net = _trained_looking(ResNetRegressor(1, outputs=2, depth=10, width=4))
    loaded = load_classifier(save_classifier(net, tmp_path / "reg.safetensors"))
    assert isinstance(loaded, ResNetRegressor)
    assert loaded.config() == net.config()
    x = torch.randn(3, 1, 16, 16, generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(loaded.predict(x), net.predict(x), rtol=0, atol=0)


def test_files_written_by_hand_in_the_stored_layout_still_load(tmp_path: Path) -> None:
    # Runs saved before save_classifier existed: save_file of the state dict, config() as JSON beside it.
    net = _trained_looking(ResNetClassifier(1, 2, depth=10, width=4))
    weights = tmp_path / "classifier-seed0.safetensors"
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(weights))
    (tmp_path / "classifier-seed0-network.json").write_text(json.dumps(net.config()), encoding="utf-8")
    x = torch.ones(2, 1, 16, 16)
    torch.testing.assert_close(load_classifier(weights)(x), net(x), rtol=0, atol=0)


def test_a_missing_half_is_named_in_the_error(tmp_path: Path) -> None:
    path = save_classifier(ResNetClassifier(1, 2, depth=10, width=4), tmp_path / "task.safetensors")
    classifier_config_path(path).unlink()
    with pytest.raises(FileNotFoundError, match=r"task-network\.json"):
        load_classifier(path)
    with pytest.raises(FileNotFoundError, match=r"nothing\.safetensors"):
        load_classifier(tmp_path / "nothing.safetensors")


def test_weights_go_to_a_safetensors_file_only(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"\.safetensors"):
        save_classifier(ResNetClassifier(1, 2, depth=10, width=4), tmp_path / "task.pt")


def test_a_config_with_unknown_arguments_is_refused() -> None:
    with pytest.raises(ConfigError, match="config"):
        network_from_config({"in_channels": 1, "num_classes": 2, "layers": 7})
