"""Labelled single-modality images: MedMNIST files, class folders, arrays; stratified splits."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from latent_transforms.data import LabelledImages, stratified_indices, stratified_split
from latent_transforms.errors import ConfigError, MissingDependencyError


def _medmnist(tmp_path, n=(20, 6, 8), colour=False):
    rng = np.random.default_rng(0)
    arrays = {}
    for split, count in zip(("train", "val", "test"), n, strict=True):
        shape = (count, 28, 28, 3) if colour else (count, 28, 28)
        arrays[f"{split}_images"] = rng.integers(0, 256, shape, dtype=np.uint8)
        arrays[f"{split}_labels"] = (np.arange(count) % 3 == 0).astype(np.uint8)[:, None]
    path = tmp_path / "toymnist.npz"
    np.savez(path, **arrays)
    return path, arrays


def test_medmnist_items_follow_the_contract_and_keep_the_pixels(tmp_path):
    path, arrays = _medmnist(tmp_path)
    ds = LabelledImages.from_medmnist(path, "val")
    item = ds[2]
    assert set(item) == {"image", "label", "key"}
    assert item["image"].dtype == torch.float32 and item["image"].shape == (1, 28, 28)
    assert torch.equal(item["image"][0], torch.from_numpy(arrays["val_images"][2]).float())
    assert item["label"] == int(arrays["val_labels"][2, 0]) and item["key"] == "val/00002"
    assert len(ds) == 6 and ds.num_classes == 2


def test_resizing_to_the_gan_side_keeps_the_window(tmp_path):
    path, _ = _medmnist(tmp_path)
    ds = LabelledImages.from_medmnist(path, "train", resolution=32)
    image = ds[0]["image"]
    assert image.shape == (1, 32, 32)
    assert float(image.min()) >= 0.0 and float(image.max()) <= 255.0
    normalized = ds.images_tensor()
    assert normalized.shape == (20, 1, 32, 32) and normalized.abs().max() <= 1.0


def test_colour_medmnist_images_become_channels_first(tmp_path):
    path, arrays = _medmnist(tmp_path, colour=True)
    ds = LabelledImages.from_medmnist(path, "test")
    assert ds[1]["image"].shape == (3, 28, 28)
    assert torch.equal(ds[1]["image"][2], torch.from_numpy(arrays["test_images"][1, :, :, 2]).float())
    assert ds.channel_names == ("channel0", "channel1", "channel2")


def test_class_folders_give_sorted_classes_and_relative_keys(tmp_path):
    for name, value in (("normal", 10), ("pneumonia", 200)):
        (tmp_path / name).mkdir()
        for i in range(3):
            Image.fromarray(np.full((8, 8), value + i, np.uint8)).save(tmp_path / name / f"{i}.png")
    ds = LabelledImages.from_folder(tmp_path, channel_names=["xray"])
    assert ds.class_names == ["normal", "pneumonia"] and ds.class_counts() == [3, 3]
    assert ds[4]["key"] == "pneumonia/1.png" and ds[4]["label"] == 1
    assert float(ds[4]["image"].mean()) == 201.0
    assert ds.window.low == 0 and ds.window.high == 255


def test_wrong_inputs_say_what_to_do(tmp_path):
    with pytest.raises(ConfigError, match="one label per image"):
        LabelledImages(np.zeros((3, 4, 4)), [0, 1])
    with pytest.raises(ConfigError, match="class folders"):
        LabelledImages.from_folder(tmp_path)
    path, _ = _medmnist(tmp_path)
    with pytest.raises(ConfigError, match="split must be one of"):
        LabelledImages.from_medmnist(path, "validation")
    with pytest.raises(ConfigError, match="intensity window"):
        LabelledImages(np.full((2, 4, 4), 300.0), [0, 1])


def test_a_medmnist_flag_offline_names_the_path_option(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "medmnist" else real(name)
    )
    with pytest.raises(MissingDependencyError, match=r"medmnist:/path/to/pneumoniamnist\.npz"):
        LabelledImages.from_medmnist("pneumoniamnist")


def test_stratified_parts_keep_class_proportions_and_cover_everything():
    labels = torch.tensor([0] * 30 + [1] * 70)
    parts = stratified_indices(labels, (0.7, 0.2, 0.1), seed=3)
    assert sorted(i for p in parts for i in p) == list(range(100))
    assert [len(p) for p in parts] == [70, 20, 10]
    for part, share in zip(parts, (0.7, 0.2, 0.1), strict=True):
        assert int((labels[part] == 0).sum()) == round(30 * share)
    assert stratified_indices(labels, (0.5, 0.5), seed=3) == stratified_indices(labels, (0.5, 0.5), seed=3)
    assert stratified_indices(labels, (0.5, 0.5), seed=3) != stratified_indices(labels, (0.5, 0.5), seed=4)


def test_stratified_split_of_a_dataset_returns_subsets():
    ds = LabelledImages(np.zeros((12, 4, 4), np.uint8), [0] * 4 + [1] * 8)
    train, val = stratified_split(ds, (0.75, 0.25), seed=0)
    assert len(train) == 9 and ds.labels[val.indices].tolist() == [0, 1, 1]
    with pytest.raises(ConfigError, match="sum to 1"):
        stratified_split(ds, (0.5, 0.2))
