"""The class labels of a dataset: training pairs, dict items, and label tensors read without the images."""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Subset

from latent_transforms.data import LabelledImages
from latent_transforms.data.labels import dataset_labels, items_labels
from latent_transforms.data.windows import IntensityWindow
from latent_transforms.training.data import GanImages, TensorImages


class Counting(LabelledImages):
    """LabelledImages that counts item reads (the labels path must not read any)."""

    reads = 0

    def __getitem__(self, index: int):  # type: ignore[override]
        Counting.reads += 1
        return super().__getitem__(index)


def test_dataset_labels_reads_tensor_and_item_datasets():
    data = TensorImages(torch.zeros(5, 1, 4, 4), torch.tensor([0, 0, 1, 1, 1]))
    assert dataset_labels(data).tolist() == [0, 0, 1, 1, 1]
    items = [{"xray": torch.zeros(1, 4, 4), "label": label} for label in (1, 0, 1)]
    images = GanImages(items, ["xray"], [IntensityWindow(0.0, 1.0)], label_key="label", c_dim=2)
    assert dataset_labels(images).tolist() == [1, 0, 1]


def test_nested_subsets_of_a_labelled_set_are_read_without_their_images():
    data = Counting(np.zeros((6, 8, 8), np.uint8), [0, 1, 2, 0, 1, 2])
    inner = Subset(data, [5, 4, 3, 1])
    assert dataset_labels(Subset(inner, [0, 2])).tolist() == [2, 0]
    assert Counting.reads == 0


def test_items_without_an_integer_label_give_none():
    assert dataset_labels([{"image": 0, "label": 1}, {"image": 0}]) is None
    assert items_labels([{"label": True}]) is None  # a flag is not a class
    assert items_labels([{"label": torch.tensor(3)}]).tolist() == [3]
    assert items_labels([(None, np.int64(2)), {"label": np.uint8(1)}]).tolist() == [2, 1]  # NumPy integers
    assert items_labels([]) is None
