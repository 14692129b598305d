"""Every transform and dictionary variant passes the one contract (``tests/transforms/contract.py``)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch

from latent_transforms import (
    DiffusionSample,
    GanBundle,
    LatentAugment,
    SelectiveFilter,
    SG2Sample,
    StandardDA,
)
from latent_transforms.transforms import CrossModalAugment
from latent_transforms.transforms.cross_modal_dictionary import CrossModalAugmentd
from latent_transforms.transforms.dictionary import (
    DiffusionSampled,
    LatentAugmentd,
    SG2Sampled,
    StandardDAd,
    monai_available,
)
from latent_transforms.transforms.feature_net import TinyDropoutNet
from latent_transforms.translation import TranslatorBundle, TranslatorConfig

from .conftest import TinySetup, make_tiny_setup, tiny_diffusion, tiny_gan_config
from .contract import check_transform, check_workers

pytestmark = pytest.mark.skipif(not monai_available(), reason="MONAI is not installed")

FAST = {"steps": 2}


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> TinySetup:
    return make_tiny_setup(Path(tmp_path_factory.mktemp("contract")))


DIFFUSION = tiny_diffusion()
CONDITIONAL_DIFFUSION = tiny_diffusion(c_dim=3)
CONDITIONAL_GAN = GanBundle.random(tiny_gan_config().replace(c_dim=3), seed=0)
FAST_DIFFUSION = {"steps": 3}
TRANSLATOR = TranslatorBundle.random(TranslatorConfig(resolution=16, width=4, blocks=1), seed=0)
#: The translator's source pool: MRI slices in scanner units, with a bone-density label each.
MRI_POOL = torch.rand(6, 1, 16, 16, generator=torch.Generator().manual_seed(2)) * 1900.0
MRI_LABELS = torch.linspace(0.1, 0.6, 6)


def _labelled(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """A labelled call: the images and one class index per image."""
    return x, torch.arange(x.shape[0]) % 3


def _item(x: torch.Tensor) -> dict[str, Any]:
    """A MONAI-style item (or collated batch) of a [.., 2, H, W] image: one key per modality."""
    keys: Any = "p000/0000" if x.ndim == 3 else [f"p{i:03d}/0000" for i in range(x.shape[0])]
    return {"mri": x[..., :1, :, :], "ct": x[..., 1:, :, :], "key": keys, "label": 1}


def _physical_rand(n: int = 4, size: int = 16, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    u = torch.rand(n, 2, size, size, generator=g)
    x = torch.cat([u[:, :1] * 1900.0, u[:, 1:] * 3000.0 - 1000.0], dim=1)
    return x.round().to(dtype) if not dtype.is_floating_point else x.to(dtype)


# case name -> (make(setup) -> make(p, seed), sample(setup), filter)
Case = tuple[Callable[[TinySetup], Callable[[float, int], Any]], Callable[[TinySetup], Any], bool]
CASES: dict[str, Case] = {
    "StandardDA": (
        lambda s: (
            lambda p, seed: StandardDA(
                p=p, rotate=10.0, translate=0.1, elastic=(31, 16.0), elastic_alpha=3.0, seed=seed
            )
        ),
        lambda s: _physical_rand(),
        False,
    ),
    "StandardDA-uint8": (
        lambda s: lambda p, seed: StandardDA(p=p, rotate=10.0, seed=seed),
        lambda s: (torch.rand(4, 2, 16, 16, generator=torch.Generator().manual_seed(1)) * 255).to(
            torch.uint8
        ),
        False,
    ),
    "StandardDA-int16": (
        lambda s: lambda p, seed: StandardDA(p=p, seed=seed),
        lambda s: _physical_rand(dtype=torch.int16),
        False,
    ),
    "SG2Sample": (
        lambda s: lambda p, seed: SG2Sample(s.bundle, p=p, seed=seed),
        lambda s: s.physical()[:4],
        False,
    ),
    "SG2Sample-unit-float64": (
        lambda s: lambda p, seed: SG2Sample(s.bundle, p=p, value_range="unit", seed=seed),
        lambda s: ((s.images[:4] + 1) / 2).double(),
        False,
    ),
    "SG2Sample-labelled": (
        lambda s: lambda p, seed: SG2Sample(CONDITIONAL_GAN, p=p, seed=seed),
        lambda s: _labelled(s.physical()[:4]),
        False,
    ),
    "DiffusionSample": (
        lambda s: lambda p, seed: DiffusionSample(DIFFUSION, p=p, seed=seed, **FAST_DIFFUSION),
        lambda s: s.physical()[:4],
        False,
    ),
    "DiffusionSample-unit-float64-channels-last": (
        lambda s: (
            lambda p, seed: DiffusionSample(DIFFUSION, p=p, value_range="unit", seed=seed, **FAST_DIFFUSION)
        ),
        lambda s: ((s.images[:4] + 1) / 2).double().contiguous(memory_format=torch.channels_last),
        False,
    ),
    "DiffusionSample-uint8-labelled": (
        lambda s: lambda p, seed: DiffusionSample(CONDITIONAL_DIFFUSION, p=p, seed=seed, **FAST_DIFFUSION),
        lambda s: _labelled(((s.images[:4] + 1) * 127.5).round().to(torch.uint8)),
        False,
    ),
    "LatentAugment": (
        lambda s: lambda p, seed: LatentAugment(s.bundle, s.cache, s.stats, p=p, seed=seed, **FAST),
        lambda s: s.physical()[:4],
        False,
    ),
    "StandardDAd": (
        lambda s: lambda p, seed: StandardDAd(["mri", "ct"], prob=p, seed=seed),
        lambda s: _item(_physical_rand()[0]),
        False,
    ),
    "StandardDAd-batch": (
        lambda s: lambda p, seed: StandardDAd(["mri", "ct"], prob=p, seed=seed),
        lambda s: _item(_physical_rand()),
        False,
    ),
    "StandardDAd-batch-metatensor": (
        lambda s: lambda p, seed: StandardDAd(["mri", "ct"], prob=p, seed=seed),
        lambda s: _metatensors(_item(_physical_rand())),
        False,
    ),
    "SG2Sampled": (
        lambda s: lambda p, seed: SG2Sampled(["mri", "ct"], s.bundle, prob=p, seed=seed),
        lambda s: _item(s.physical()[0]),
        False,
    ),
    "DiffusionSampled": (
        lambda s: (
            lambda p, seed: DiffusionSampled(["mri", "ct"], DIFFUSION, prob=p, seed=seed, **FAST_DIFFUSION)
        ),
        lambda s: _item(s.physical()[0]),
        False,
    ),
    "DiffusionSampled-batch-labels": (
        lambda s: (
            lambda p, seed: DiffusionSampled(
                ["mri", "ct"], CONDITIONAL_DIFFUSION, label_key="label", prob=p, seed=seed, **FAST_DIFFUSION
            )
        ),
        lambda s: {**_item(s.physical()[:4]), "label": torch.tensor([0, 1, 2, 0])},
        False,
    ),
    "LatentAugmentd": (
        lambda s: (
            lambda p, seed: LatentAugmentd(
                ["mri", "ct"], s.bundle, s.cache, s.stats, prob=p, seed=seed, **FAST
            )
        ),
        lambda s: _item(s.physical()[:4]),
        False,
    ),
    "CrossModalAugment": (
        lambda s: lambda p, seed: CrossModalAugment(TRANSLATOR, MRI_POOL, MRI_LABELS, p=p, seed=seed),
        lambda s: _physical_rand()[:, 1:],
        False,
    ),
    "CrossModalAugment-uint8-channels-last": (
        lambda s: lambda p, seed: CrossModalAugment(TRANSLATOR, MRI_POOL, p=p, seed=seed),
        lambda s: (
            (torch.rand(4, 1, 16, 16, generator=torch.Generator().manual_seed(1)) * 255)
            .to(torch.uint8)
            .contiguous(memory_format=torch.channels_last)
        ),
        False,
    ),
    "CrossModalAugmentd": (
        lambda s: (
            lambda p, seed: CrossModalAugmentd(["ct"], TRANSLATOR, MRI_POOL, MRI_LABELS, prob=p, seed=seed)
        ),
        lambda s: {"ct": _physical_rand()[0, 1:], "key": "p000/0000"},
        False,
    ),
    "CrossModalAugmentd-batch": (
        lambda s: (
            lambda p, seed: CrossModalAugmentd(["ct"], TRANSLATOR, MRI_POOL, MRI_LABELS, prob=p, seed=seed)
        ),
        lambda s: {"ct": _physical_rand()[:, 1:], "key": [f"p{i:03d}/0000" for i in range(4)]},
        False,
    ),
    "SelectiveFilter": (
        lambda s: lambda p, seed: _fitted_filter(s, seed),
        lambda s: s.images,
        True,
    ),
}


def _metatensors(item: dict[str, Any]) -> dict[str, Any]:
    from monai.data import MetaTensor

    affine = torch.diag(torch.tensor([0.8, 0.8, 3.0, 1.0], dtype=torch.float64))
    return {k: MetaTensor(v, affine=affine) if k in ("mri", "ct") else v for k, v in item.items()}


def _fitted_filter(s: TinySetup, seed: int) -> SelectiveFilter:
    torch.manual_seed(0)  # the same network weights for every instance
    net = TinyDropoutNet(in_channels=2, n_classes=2, width=4)
    return SelectiveFilter(net, mc_samples=2, seed=seed).fit(s.images)


@pytest.mark.parametrize("name", list(CASES))
def test_every_transform_passes_the_contract(setup: TinySetup, name: str) -> None:
    make, sample, is_filter = CASES[name]
    module = not name.split("-")[0].endswith("d")  # the MONAI variants (LatentAugmentd...) are not modules
    check_transform(make(setup), sample(setup), filter=is_filter, module=module)


WORKER_CASES = [
    "StandardDA",
    "SG2Sample",
    "DiffusionSample",
    "LatentAugment",
    "StandardDAd-batch",
    "LatentAugmentd",
    "CrossModalAugment",
    "CrossModalAugmentd-batch",
]


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:This DataLoader will create:UserWarning")
@pytest.mark.parametrize("name", WORKER_CASES)
def test_every_transform_gives_the_same_data_in_any_worker(setup: TinySetup, name: str) -> None:
    make, sample, _ = CASES[name]
    check_workers(make(setup), sample(setup))
