"""GPUAugment and augment_collate: batches moved and augmented in the main process."""

from __future__ import annotations

import pickle
from collections import namedtuple
from typing import Any

import pytest
import torch
from torch.utils.data import DataLoader, Dataset, TensorDataset
from torchvision import tv_tensors
from torchvision.transforms import v2

from latent_transforms import LatentCache
from latent_transforms.errors import ConfigError
from latent_transforms.transforms.gpu import AugmentCollate, GPUAugment, apply_to_keys, augment_collate
from latent_transforms.transforms.latent_augment import LatentAugment, MissingLatentError
from latent_transforms.transforms.sg2sample import SG2Sample
from latent_transforms.transforms.standard_da import StandardDA


class Items(Dataset):
    """Paired dict items like the library's datasets: ``mri``, ``ct``, ``mask`` ``[1, H, W]``, ``key``."""

    def __init__(self, images: torch.Tensor) -> None:
        self.images = images

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> dict[str, Any]:
        x = self.images[i]
        return {
            "mri": x[:1],
            "ct": x[1:],
            "mask": (x[1:] > 500).float(),
            "key": f"p{i:03d}/0000",
            "label": i % 2,
        }


def physical(n: int = 10, size: int = 16, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    u = torch.rand(n, 2, size, size, generator=g)
    return torch.cat([u[:, :1] * 1900.0, u[:, 1:] * 3000.0 - 1000.0], dim=1)


def stacked(batches: list[dict[str, Any]]) -> torch.Tensor:
    return torch.cat([torch.cat([b["mri"], b["ct"], b["mask"]], dim=1) for b in batches])


def test_identical_batches_for_0_1_2_workers_on_the_cpu() -> None:
    data = Items(physical())
    runs = {}
    for workers in (0, 1, 2):
        loader = DataLoader(data, batch_size=4, num_workers=workers)
        t = StandardDA(p=0.5, rotate=15.0, seed=0)
        batches = list(GPUAugment(loader, t, device="cpu", keys=["mri", "ct"], mask_keys=["mask"]))
        assert len(batches) == 3 and batches[0]["mri"].device.type == "cpu"
        assert batches[0]["key"] == ["p000/0000", "p001/0000", "p002/0000", "p003/0000"]
        assert torch.equal(batches[0]["label"], torch.tensor([0, 1, 0, 1]))
        runs[workers] = stacked(batches)
    assert torch.equal(runs[0], runs[1]) and torch.equal(runs[0], runs[2])
    plain = stacked(list(DataLoader(data, batch_size=4)))
    changed = (runs[0] != plain).flatten(1).any(1)
    assert 0 < int(changed.sum()) < len(data)


def test_batches_equal_the_array_transform_on_the_collated_batch() -> None:
    loader = DataLoader(Items(physical()), batch_size=4)
    wrapped = GPUAugment(
        loader, StandardDA(p=1.0, seed=3), device="cpu", keys=["mri", "ct"], mask_keys="mask"
    )
    assert len(wrapped) == len(loader) == 3
    ref = StandardDA(p=1.0, seed=3)
    for batch, raw in zip(wrapped, loader, strict=True):
        image, mask = ref(torch.cat([raw["mri"], raw["ct"]], dim=1), tv_tensors.Mask(raw["mask"]))
        assert torch.equal(batch["mri"], image[:, :1]) and torch.equal(batch["ct"], image[:, 1:])
        assert torch.equal(batch["mask"], mask.as_subclass(torch.Tensor))


def test_tensor_and_tuple_batches_and_any_callable() -> None:
    x = physical(6)
    tensors = DataLoader(TensorDataset(x, torch.arange(6)), batch_size=4)
    out = list(GPUAugment(tensors, lambda b: b * 0, device="cpu"))
    assert isinstance(out[0], list) and out[0][0].abs().sum() == 0 and torch.equal(out[0][1], torch.arange(4))
    Pair = namedtuple("Pair", "image label")
    pairs = [Pair(x[:3], 1), Pair(x[3:], 2)]
    out = list(GPUAugment(pairs, lambda b: b + 1, device="cpu"))
    assert isinstance(out[0], Pair) and out[1].label == 2 and torch.equal(out[0].image, x[:3] + 1)
    assert torch.equal(next(iter(GPUAugment([x], lambda b: -b, device="cpu"))), -x)
    # A torchvision v2 pipeline: masks passed as tv_tensors.Mask get the same geometry.
    pipeline = v2.Compose([v2.RandomHorizontalFlip(p=1.0)])
    batch = next(
        iter(
            GPUAugment(
                DataLoader(Items(x), batch_size=6), pipeline, "cpu", keys=["mri", "ct"], mask_keys=["mask"]
            )
        )
    )
    assert torch.equal(batch["ct"], x[:, 1:].flip(-1)) and torch.equal(
        batch["mask"], (x[:, 1:] > 500).float().flip(-1)
    )


def test_latent_augment_in_gpu_augment_finds_latents_by_the_batch_keys(tiny) -> None:
    cache = LatentCache(
        tiny.folder.parent / "by-key", fingerprint=tiny.bundle.fingerprint, settings={"space": "w"}
    )
    cache.put_batch([f"p{i:03d}/0000" for i in range(len(tiny.w))], tiny.w)
    cache.flush()
    loader = DataLoader(Items(tiny.physical()), batch_size=4)
    t = LatentAugment(tiny.bundle, cache, tiny.stats, p=1.0, steps=2, on_missing="raise", seed=0)
    batches = list(GPUAugment(loader, t, device="cpu", keys=["mri", "ct"]))
    assert len(batches) == 2 and batches[0]["ct"].shape == (4, 1, 16, 16)
    with pytest.raises(MissingLatentError):  # without the keys the lookup is by content: not in this cache
        next(iter(GPUAugment(loader, t, device="cpu", keys=["mri", "ct"], key_field=None)))


def test_sg2sample_batches_do_not_depend_on_num_workers(tiny) -> None:
    data = Items(tiny.physical())
    runs = [
        stacked(
            list(
                GPUAugment(
                    DataLoader(data, batch_size=3, num_workers=w),
                    SG2Sample(tiny.bundle, p=0.5, seed=1),
                    "cpu",
                    keys=["mri", "ct"],
                )
            )
        )
        for w in (0, 2)
    ]
    assert torch.equal(runs[0], runs[1])


def test_refusals_name_the_fix() -> None:
    loader = DataLoader(Items(physical(4)), batch_size=2)
    with pytest.raises(ConfigError, match=r"keys=\['mri', 'ct'\]"):
        next(iter(GPUAugment(loader, StandardDA(p=1.0), device="cpu")))
    with pytest.raises(ConfigError, match="mask_keys need keys"):
        GPUAugment(loader, StandardDA(), device="cpu", mask_keys=["mask"])
    with pytest.raises(ConfigError, match="callable"):
        GPUAugment(loader, "flip", device="cpu")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="cannot augment"):
        next(iter(GPUAugment([3, 4], lambda b: b, device="cpu")))
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="device='cpu'"):
            GPUAugment(loader, StandardDA(), device="cuda")
    with pytest.raises(TypeError):
        len(GPUAugment(iter([torch.zeros(1)]), lambda b: b, device="cpu"))


def test_augment_collate_is_picklable_and_worker_count_independent() -> None:
    data = Items(physical())
    collate = augment_collate(StandardDA(p=0.5, rotate=10.0, seed=0), keys=["mri", "ct"], mask_keys=["mask"])
    assert isinstance(collate, AugmentCollate)
    assert isinstance(pickle.loads(pickle.dumps(collate)), AugmentCollate)
    runs = [
        stacked(
            list(
                DataLoader(
                    data,
                    batch_size=4,
                    num_workers=w,
                    collate_fn=collate,
                    generator=torch.Generator().manual_seed(0),
                )
            )
        )
        for w in (1, 2)
    ]
    assert torch.equal(runs[0], runs[1])
    in_main = stacked(list(DataLoader(data, batch_size=4, collate_fn=collate)))
    assert in_main.shape == runs[0].shape


def test_monai_loader_and_metatensor_batches() -> None:
    monai_data = pytest.importorskip("monai.data")
    items = [
        {
            "mri": monai_data.MetaTensor(x[:1], meta={"filename_or_obj": f"{i}.nii"}),
            "ct": x[1:],
            "key": f"p/{i}",
        }
        for i, x in enumerate(physical(4))
    ]
    loader = monai_data.DataLoader(items, batch_size=2, num_workers=0)
    batch = next(iter(GPUAugment(loader, StandardDA(p=1.0, seed=0), device="cpu", keys=["mri", "ct"])))
    assert isinstance(batch["mri"], monai_data.MetaTensor) and batch["mri"].meta["filename_or_obj"] == [
        "0.nii",
        "1.nii",
    ]
    assert not torch.equal(
        batch["mri"].as_tensor(), torch.stack([items[0]["mri"], items[1]["mri"]]).as_tensor()
    )


def test_apply_to_keys_leaves_the_input_alone_when_nothing_is_drawn() -> None:
    data = {"mri": torch.zeros(2, 1, 8, 8), "ct": torch.zeros(2, 1, 8, 8)}
    out = apply_to_keys(StandardDA(p=0.0), data, ["mri", "ct"])
    assert out is not data and out["mri"] is data["mri"]


@pytest.mark.cuda
def test_cuda_path_pins_prefetches_and_matches_the_cpu() -> None:
    data = Items(physical(12))
    loader = DataLoader(data, batch_size=4, num_workers=2, pin_memory=True)
    gpu = list(
        GPUAugment(loader, StandardDA(p=0.5, seed=0), device="cuda", keys=["mri", "ct"], mask_keys=["mask"])
    )
    cpu = list(
        GPUAugment(loader, StandardDA(p=0.5, seed=0), device="cpu", keys=["mri", "ct"], mask_keys=["mask"])
    )
    assert all(b["ct"].is_cuda and b["mask"].is_cuda for b in gpu)
    torch.testing.assert_close(stacked(gpu).cpu(), stacked(cpu), atol=0.5, rtol=1e-4)
    unpinned = GPUAugment(
        DataLoader(data, batch_size=4),
        StandardDA(p=0.5, seed=0),
        device="cuda",
        keys=["mri", "ct"],
        mask_keys=["mask"],
        pin_memory=True,
        prefetch=True,
    )
    torch.testing.assert_close(stacked(list(unpinned)).cpu(), stacked(cpu), atol=0.5, rtol=1e-4)


def test_a_compose_is_unrolled_so_latent_augment_gets_the_keys_and_masks_are_checked(tiny) -> None:
    cache = LatentCache(
        tiny.folder.parent / "by-key", fingerprint=tiny.bundle.fingerprint, settings={"space": "w"}
    )
    cache.put_batch([f"p{i:03d}/0000" for i in range(len(tiny.w))], tiny.w)
    cache.flush()
    loader = DataLoader(Items(tiny.physical()), batch_size=4)
    la = LatentAugment(tiny.bundle, cache, tiny.stats, p=1.0, steps=2, on_missing="raise", seed=0)
    pipeline = v2.Compose([la, v2.Compose([StandardDA(p=1.0, seed=1)])])
    batches = list(GPUAugment(loader, pipeline, device="cpu", keys=["mri", "ct"]))
    ref = StandardDA(p=1.0, seed=1)
    ref_la = LatentAugment(tiny.bundle, cache, tiny.stats, p=1.0, steps=2, on_missing="raise", seed=0)
    for batch, raw in zip(batches, loader, strict=True):
        x = torch.cat([raw["mri"], raw["ct"]], dim=1)
        expected = ref(ref_la.transform(x, {**ref_la.params_for(x), "keys": raw["key"]}))
        torch.testing.assert_close(torch.cat([batch["mri"], batch["ct"]], dim=1), expected)
    with pytest.raises(ConfigError, match="masks"):
        next(iter(GPUAugment(loader, pipeline, device="cpu", keys=["mri", "ct"], mask_keys=["mask"])))
