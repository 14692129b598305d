"""MONAI dictionary variants: stacking keys as channels, metadata, prob/seeding, masks, dataset keys,
CacheDataset / Compose / DataLoader integration, and MONAI staying optional."""

from __future__ import annotations

import pickle
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torchvision import tv_tensors

from latent_transforms import LatentCache
from latent_transforms.errors import ConfigError, MissingDependencyError
from latent_transforms.transforms import dictionary
from latent_transforms.transforms.base import RandomTransform
from latent_transforms.transforms.dictionary import (
    LatentAugmentD,
    LatentAugmentd,
    LatentAugmentDict,
    RandomTransformd,
    SG2SampleD,
    SG2Sampled,
    SG2SampleDict,
    StandardDAD,
    StandardDAd,
    StandardDADict,
    monai_available,
)
from latent_transforms.transforms.latent_augment import LatentAugment, MissingLatentError
from latent_transforms.transforms.standard_da import StandardDA

pytestmark = pytest.mark.skipif(not monai_available(), reason="MONAI is not installed")

ROOT = Path(__file__).resolve().parents[2]


class Tagger(RandomTransform):
    """Stand-in: adds ``10 * channel index`` plus a per-sample random offset in [0, 1) (caller's range)."""

    needs_generator_range = False

    def __init__(self, names: list[str] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.names = names
        self.seen_keys: list[Any] = []

    def draw_params(self, batch: int, generator: torch.Generator) -> dict[str, Any]:
        return {"offset": torch.rand(batch, generator=generator)}

    def apply_batch(self, x: torch.Tensor, params: dict[str, Any], kind: str) -> torch.Tensor:
        self.seen_keys.append(params.get("keys"))
        tag = 10.0 * torch.arange(x.shape[1], dtype=x.dtype).view(1, -1, 1, 1)
        return x + tag + params["offset"].view(-1, 1, 1, 1)

    def modality_names(self) -> list[str] | None:
        return self.names


def item(seed: int = 0, size: int = 8, key: str = "p000/0000") -> dict[str, Any]:
    g = torch.Generator().manual_seed(seed)
    return {
        "mri": torch.rand(1, size, size, generator=g) * 1900.0,
        "ct": torch.rand(1, size, size, generator=g) * 3000.0 - 1000.0,
        "mask": (torch.rand(1, size, size, generator=g) > 0.5).float(),
        "key": key,
        "label": 1,
    }


# -- stacking ---------------------------------------------------------------------------------------------
def test_keys_are_stacked_in_the_given_order_split_back_and_other_entries_kept() -> None:
    data = item()
    before = {k: v.clone() for k, v in data.items() if isinstance(v, torch.Tensor)}
    t = RandomTransformd(["mri", "ct"], Tagger(p=1.0, seed=0))
    out = t(data)
    offset = float((out["mri"] - data["mri"]).mean())
    assert 0.0 <= offset < 1.0
    torch.testing.assert_close(out["mri"], data["mri"] + offset)
    torch.testing.assert_close(out["ct"], data["ct"] + 10.0 + offset)
    assert out["label"] == 1 and out["key"] == "p000/0000" and out["mask"] is data["mask"]
    for k, v in before.items():  # the input dict is not changed
        assert torch.equal(data[k], v)
    swapped = RandomTransformd(["ct", "mri"], Tagger(p=1.0, seed=0))(data)
    torch.testing.assert_close(swapped["ct"], data["ct"] + offset)
    torch.testing.assert_close(swapped["mri"], data["mri"] + 10.0 + offset)


def test_metatensor_metadata_numpy_and_dtypes_are_kept_single_and_batched() -> None:
    from monai.data import MetaTensor, list_data_collate

    def meta_item(i: int) -> dict[str, Any]:
        base = item(i)
        affine = torch.diag(torch.tensor([0.8, 0.8, 3.0, 1.0], dtype=torch.float64))
        return {
            "mri": MetaTensor(base["mri"], affine=affine, meta={"filename_or_obj": f"mri_{i}.nii.gz"}),
            "ct": MetaTensor(base["ct"], affine=affine, meta={"filename_or_obj": f"ct_{i}.nii.gz"}),
            "key": base["key"],
        }

    t = RandomTransformd(["mri", "ct"], Tagger(p=1.0, seed=0))
    single = meta_item(0)
    out = t(single)
    for k in ("mri", "ct"):
        assert isinstance(out[k], MetaTensor) and out[k].shape == (1, 8, 8)
        assert out[k].meta["filename_or_obj"] == single[k].meta["filename_or_obj"]
        assert torch.equal(out[k].affine, single[k].affine)
        assert not torch.equal(out[k].as_tensor(), single[k].as_tensor())
    batch = list_data_collate([meta_item(i) for i in range(3)])
    out = t(batch)
    for k in ("mri", "ct"):
        assert isinstance(out[k], MetaTensor) and out[k].is_batch and out[k].shape == (3, 1, 8, 8)
        assert out[k].meta["filename_or_obj"] == batch[k].meta["filename_or_obj"]
        assert torch.equal(out[k].affine, batch[k].affine)
    npy = {"mri": np.zeros((1, 4, 4), np.float32), "ct": np.ones((1, 4, 4), np.float32)}
    out = RandomTransformd(["mri", "ct"], Tagger(p=1.0, seed=0))(npy)
    assert isinstance(out["ct"], np.ndarray) and out["ct"].dtype == np.float32 and out["ct"].min() >= 11.0
    u8 = {
        "mri": torch.zeros(1, 16, 16, dtype=torch.uint8),
        "ct": torch.full((1, 16, 16), 200, dtype=torch.uint8),
    }
    out = StandardDAd(["mri", "ct"], prob=1.0, seed=0)(u8)
    assert out["ct"].dtype == torch.uint8 and out["ct"].shape == (1, 16, 16)


def test_batches_get_per_sample_draws_and_prob_is_the_array_p() -> None:
    from monai.data import list_data_collate

    batch = list_data_collate([item(i, key=f"p/{i:04d}") for i in range(16)])
    t = RandomTransformd(["mri", "ct"], Tagger(p=0.5, seed=3))
    assert t.prob == 0.5
    out = t(batch)
    changed = (out["mri"] != batch["mri"]).flatten(1).any(1)
    assert 0 < int(changed.sum()) < 16 and t._do_transform
    assert torch.equal(out["mri"][~changed], batch["mri"][~changed])
    t.prob = 0.0
    assert t.transform.p == 0.0
    out = t(batch)
    assert out["mri"] is batch["mri"] and out["ct"] is batch["ct"] and not t._do_transform
    with pytest.raises(ConfigError, match="prob"):
        t.prob = 1.5
    with pytest.raises(ConfigError, match="both prob"):
        StandardDAd(["mri"], prob=0.5, p=0.5)
    assert StandardDAd(["mri"]).prob == 0.1  # StandardDA's default
    assert StandardDAd(["mri"], prob=0.7).transform.p == 0.7


def test_set_random_state_reseeds_the_array_transform_and_compose_forwards_it() -> None:
    from monai.transforms import Compose

    data = item()
    t = StandardDAd(["mri", "ct"], prob=1.0)
    a = t.set_random_state(seed=5)(data)
    b = t.set_random_state(seed=5)(data)
    assert t.transform.seed == 5
    assert torch.equal(a["ct"], b["ct"])
    c = t.set_random_state(state=np.random.RandomState(1))(data)
    d = t.set_random_state(state=np.random.RandomState(1))(data)
    assert torch.equal(c["ct"], d["ct"]) and not torch.equal(a["ct"], c["ct"])
    pipeline = Compose([StandardDAd(["mri", "ct"], prob=1.0)])
    e = pipeline.set_random_state(seed=7)(data)
    f = pipeline.set_random_state(seed=7)(data)
    assert torch.equal(e["ct"], f["ct"])


def test_standard_dad_masks_follow_the_image_geometry_exactly() -> None:
    data = item(size=16)
    out = StandardDAd(["mri", "ct"], mask_keys=["mask"], prob=1.0, rotate=20.0, seed=0)(data)
    image, mask = StandardDA(p=1.0, rotate=20.0, seed=0)(
        torch.cat([data["mri"], data["ct"]]), tv_tensors.Mask(data["mask"])
    )
    assert torch.equal(out["mri"], image[:1]) and torch.equal(out["ct"], image[1:])
    assert torch.equal(out["mask"], mask.as_subclass(torch.Tensor))
    assert not torch.equal(out["mask"], data["mask"])
    assert set(out["mask"].unique().tolist()) <= {0.0, 1.0}
    with pytest.raises(ConfigError, match="both keys and mask_keys"):
        StandardDAd(["mri", "mask"], mask_keys=["mask"])


# -- the GAN variants -------------------------------------------------------------------------------------
def test_latent_augmentd_finds_latents_by_the_dataset_key(tiny) -> None:
    cache = LatentCache(
        tiny.folder.parent / "by-key", fingerprint=tiny.bundle.fingerprint, settings={"space": "w"}
    )
    keys = [f"p{i:03d}/0000" for i in range(len(tiny.w))]
    cache.put_batch(keys, tiny.w)
    cache.flush()
    physical = tiny.physical()
    data = {"mri": physical[3, :1], "ct": physical[3, 1:], "key": keys[3]}
    kwargs = dict(prob=1.0, steps=2, on_missing="raise", seed=0)
    out = LatentAugmentd(["mri", "ct"], tiny.bundle, cache, tiny.stats, **kwargs)(data)
    # The same image through the array transform, its latent found by content in the content-keyed cache.
    ref = LatentAugment(tiny.bundle, tiny.cache, tiny.stats, p=1.0, steps=2, on_missing="raise", seed=0)
    expected = ref(physical[3])
    torch.testing.assert_close(out["mri"], expected[:1])
    torch.testing.assert_close(out["ct"], expected[1:])
    # Another image under a cached key is still found (by key); by content it is not.
    blank = {"mri": torch.zeros(1, 16, 16), "ct": torch.full((1, 16, 16), -1000.0), "key": keys[0]}
    LatentAugmentd(["mri", "ct"], tiny.bundle, cache, tiny.stats, **kwargs)(blank)
    with pytest.raises(MissingLatentError, match="content key"):
        LatentAugmentd(["mri", "ct"], tiny.bundle, cache, tiny.stats, key_field=None, **kwargs)(blank)
    # A cache keyed by content (the default of `latent-transforms invert`) is searched by content even
    # though the item carries a dataset key.
    content = LatentAugmentd(["mri", "ct"], tiny.bundle, tiny.cache, tiny.stats, **kwargs)(data)
    torch.testing.assert_close(content["ct"], expected[1:])
    # A collated batch: one key per sample.
    batch = {"mri": physical[:4, :1], "ct": physical[:4, 1:], "key": keys[:4]}
    out = LatentAugmentd(["mri", "ct"], tiny.bundle, cache, tiny.stats, **kwargs)(batch)
    assert out["ct"].shape == (4, 1, 16, 16)
    with pytest.raises(ConfigError, match="dataset key"):
        LatentAugmentd(["mri", "ct"], tiny.bundle, cache, tiny.stats, **kwargs)({**batch, "key": keys[:3]})


def test_gan_variants_check_the_bundle_channel_order(tiny, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"Fix: keys=\['mri', 'ct'\]"):
        SG2Sampled(["ct", "mri"], tiny.bundle)
    with pytest.raises(ConfigError, match=r"Fix: keys=\['mri', 'ct'\]"):
        LatentAugmentd(["ct", "mri"], tiny.bundle, tiny.cache, tiny.stats)
    tiny.bundle.save_pretrained(tmp_path / "bundle")
    lazy = SG2Sampled(["ct", "mri"], str(tmp_path / "bundle"), prob=1.0)  # checked at the first call
    with pytest.raises(ConfigError, match=r"Fix: keys=\['mri', 'ct'\]"):
        lazy({"ct": torch.zeros(1, 16, 16), "mri": torch.zeros(1, 16, 16)})
    # Keys that do not name the modalities are taken in the bundle's order.
    out = SG2Sampled(["t2", "hu"], tiny.bundle, prob=1.0, seed=0)(
        {"t2": torch.zeros(1, 16, 16), "hu": torch.zeros(1, 16, 16)}
    )
    assert out["hu"].shape == (1, 16, 16) and bool(out["hu"].min() >= -1000.0)
    with pytest.raises(ConfigError, match="expects 2 channels"):
        SG2Sampled(["mri"], tiny.bundle, prob=1.0)({"mri": torch.zeros(1, 16, 16)})
    with pytest.raises(ConfigError, match="masks"):
        RandomTransformd(["mri", "ct"], lazy.transform, mask_keys=["mask"])


def test_sg2sampled_in_monai_compose_keeps_metatensors(tiny) -> None:
    from monai.data import MetaTensor
    from monai.transforms import Compose, EnsureTyped

    pipeline = Compose(
        [
            EnsureTyped(keys=["mri", "ct"], track_meta=True),
            SG2Sampled(["mri", "ct"], tiny.bundle, prob=1.0, seed=0),
        ]
    )
    physical = tiny.physical()
    out = pipeline({"mri": physical[0, :1], "ct": physical[0, 1:]})
    assert isinstance(out["ct"], MetaTensor) and out["ct"].shape == (1, 16, 16)
    assert not torch.equal(out["ct"].as_tensor(), physical[0, 1:])


# -- keys, errors -----------------------------------------------------------------------------------------
def test_missing_keys_and_bad_inputs_are_refused_with_the_fix() -> None:
    t = RandomTransformd(["mri", "ct"], Tagger(p=1.0, seed=0))
    with pytest.raises(ConfigError, match="allow_missing_keys"):
        t({"mri": torch.zeros(1, 4, 4)})
    lenient = RandomTransformd(["mri", "ct"], Tagger(p=1.0, seed=0), allow_missing_keys=True)
    out = lenient({"mri": torch.zeros(1, 4, 4)})
    assert out["mri"].shape == (1, 4, 4) and bool((out["mri"] > 0).all())
    assert lenient({"other": 1}) == {"other": 1}
    with pytest.raises(ConfigError, match="dict"):
        t(torch.zeros(2, 4, 4))
    with pytest.raises(ConfigError, match="channel dimension"):
        t({"mri": torch.zeros(4, 4), "ct": torch.zeros(4, 4)})
    with pytest.raises(ConfigError, match="same batch size and image size"):
        t({"mri": torch.zeros(1, 4, 4), "ct": torch.zeros(1, 5, 5)})
    with pytest.raises(ConfigError, match="CastToTyped"):
        t({"mri": torch.zeros(1, 4, 4), "ct": torch.zeros(1, 4, 4, dtype=torch.float64)})
    with pytest.raises(ConfigError, match="RandomTransform"):
        RandomTransformd(["mri"], lambda x: x)  # type: ignore[arg-type]

    class Geometric(RandomTransformd):
        array_class = StandardDA

    with pytest.raises(ConfigError, match="wraps a StandardDA"):
        Geometric(["mri"], Tagger())


def test_gan_variant_with_allow_missing_keys_needs_every_modality(tiny) -> None:
    t = SG2Sampled(["mri", "ct"], tiny.bundle, prob=1.0, allow_missing_keys=True)
    assert t({"label": 3}) == {"label": 3}
    with pytest.raises(ConfigError, match="every modality"):
        t({"mri": torch.zeros(1, 16, 16)})


def test_aliases_traits_pickling_and_repr(tiny, tmp_path: Path) -> None:
    from monai.transforms import MapTransform, Randomizable, RandomizableTrait

    assert LatentAugmentD is LatentAugmentDict is LatentAugmentd
    assert SG2SampleD is SG2SampleDict is SG2Sampled
    assert StandardDAD is StandardDADict is StandardDAd
    t = StandardDAd(["mri", "ct"], mask_keys="mask", prob=0.4, seed=2)
    assert isinstance(t, RandomizableTrait) and isinstance(t, Randomizable) and isinstance(t, MapTransform)
    assert repr(t).startswith(
        "StandardDAd(keys=['mri', 'ct'], mask_keys=['mask'], transform=StandardDA(p=0.4"
    )
    tiny.bundle.save_pretrained(tmp_path / "bundle")
    lazy = LatentAugmentd(["mri", "ct"], str(tmp_path / "bundle"), str(tiny.folder), prob=1.0, seed=1)
    blob = pickle.dumps(lazy)
    assert len(blob) < 20_000  # the path travels, not the model
    again = pickle.loads(blob)
    assert again.keys == ("mri", "ct") and again.prob == 1.0 and again.transform.seed == 1


# -- MONAI datasets and loaders ---------------------------------------------------------------------------
def test_cache_dataset_caches_up_to_the_random_transform_and_never_its_output() -> None:
    from monai.data import CacheDataset
    from monai.transforms import Compose, Lambdad

    items = [item(i, size=16, key=f"p/{i:04d}") for i in range(4)]
    pipeline = Compose([Lambdad(["ct"], lambda x: x + 1.0), StandardDAd(["mri", "ct"], prob=1.0, seed=0)])
    ds = CacheDataset(items, pipeline, cache_rate=1.0, num_workers=0, progress=False)
    cached = ds._cache[0]  # what CacheDataset stored: the deterministic prefix only
    torch.testing.assert_close(cached["ct"], items[0]["ct"] + 1.0)
    first, second = ds[0], ds[0]
    assert not torch.equal(first["ct"], second["ct"])  # a fresh draw on every access
    torch.testing.assert_close(ds._cache[0]["ct"], items[0]["ct"] + 1.0)


def _epoch(loader: Any) -> torch.Tensor:
    return torch.cat([torch.cat([b["mri"], b["ct"]], dim=1) for b in loader])


def test_monai_dataloader_workers_give_the_same_data_for_any_worker_count() -> None:
    from monai.data import DataLoader, Dataset

    items = [item(i, size=16, key=f"p/{i:04d}") for i in range(6)]
    ds = Dataset(items, StandardDAd(["mri", "ct"], mask_keys=["mask"], prob=0.6, seed=0))
    runs = {}
    for workers in (0, 1, 2):
        loader = DataLoader(ds, batch_size=2, num_workers=workers, generator=torch.Generator().manual_seed(1))
        runs[workers] = _epoch(loader)
    assert torch.equal(runs[1], runs[2])  # MONAI's per-worker reseeding does not leak into the draws
    assert runs[0].shape == runs[1].shape
    # num_workers=0: MONAI's DataLoader reseeds the transform in the main process from the loader's
    # generator, so the same generator seed gives the same epoch again.
    again = DataLoader(ds, batch_size=2, num_workers=0, generator=torch.Generator().manual_seed(1))
    assert torch.equal(_epoch(again), runs[0])
    # ... the loader's generator, not the transform's seed (documented: MONAI's own rule).
    other_seed = Dataset(items, StandardDAd(["mri", "ct"], mask_keys=["mask"], prob=0.6, seed=1))
    again = DataLoader(other_seed, batch_size=2, num_workers=0, generator=torch.Generator().manual_seed(1))
    assert torch.equal(_epoch(again), runs[0])


# -- MONAI is optional ------------------------------------------------------------------------------------
def test_without_monai_the_classes_refuse_to_build_with_the_pip_command(monkeypatch) -> None:
    monkeypatch.setattr(dictionary, "_MONAI_IMPORT_ERROR", ModuleNotFoundError("No module named 'monai'"))
    with pytest.raises(MissingDependencyError, match=r"pip install"):
        StandardDAd(["mri", "ct"])
    with pytest.raises(MissingDependencyError, match=r"latent-transforms\[monai\]"):
        LatentAugmentd(["mri", "ct"], "builtin:pelvis-phantom-64")
    assert not dictionary.monai_available()


@pytest.mark.slow
def test_latent_transforms_imports_without_monai() -> None:
    code = textwrap.dedent(
        """
        import sys
        sys.modules["monai"] = None  # what an environment without MONAI looks like to `import monai`
        import latent_transforms
        import latent_transforms.transforms
        import latent_transforms.transforms.gpu
        from latent_transforms.transforms import dictionary
        assert not dictionary.monai_available()
        assert "+SKIP" in dictionary.StandardDAd.__doc__
        try:
            dictionary.StandardDAd(["mri", "ct"])
        except latent_transforms.MissingDependencyError as error:
            print("refused:", error)
        """
    )
    run = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "refused:" in run.stdout and "pip install" in run.stdout


def test_the_stacking_step_asks_each_transform_whether_it_takes_dataset_keys() -> None:
    from latent_transforms.transforms.stacking import apply_to_keys

    class NoKeys(Tagger):
        def accepts_dataset_keys(self, keys):
            return False

    taker, refuser = Tagger(p=1.0, seed=0), NoKeys(p=1.0, seed=0)
    apply_to_keys(taker, item(), ["mri", "ct"])
    apply_to_keys(refuser, item(), ["mri", "ct"])
    assert taker.seen_keys == [["p000/0000"]] and refuser.seen_keys == [None]


# -- StandardDAd as a MONAI InvertibleTransform -----------------------------------------------------------
def _blob_item(size: int = 32) -> dict[str, Any]:
    """A smooth off-centre blob (MRI), a ramp (CT) and the blob's mask, as MetaTensors with a real affine."""
    from monai.data import MetaTensor

    ys, xs = torch.meshgrid(
        torch.arange(size, dtype=torch.float32), torch.arange(size, dtype=torch.float32), indexing="ij"
    )
    blob = 1000.0 * torch.exp(-((ys - 11.0) ** 2 + (xs - 19.0) ** 2) / (2 * 3.0**2))
    ramp = 40.0 * xs - 1000.0
    affine = torch.tensor(
        [[0.8, 0.0, 0.0, -12.0], [0.0, 0.7, 0.0, 30.0], [0.0, 0.0, 3.0, 5.0], [0.0, 0.0, 0.0, 1.0]],
        dtype=torch.float64,
    )
    return {
        "mri": MetaTensor(blob[None], affine=affine),
        "ct": MetaTensor(ramp[None], affine=affine),
        "mask": MetaTensor((blob[None] > 300).float(), affine=affine),
    }


def _world_centre(x: Any) -> torch.Tensor:
    """The intensity-weighted centre of a [1, H, W] MetaTensor, in world coordinates through its affine."""
    img = x.as_tensor()[0].double()
    rows, cols = torch.meshgrid(
        torch.arange(img.shape[0], dtype=torch.float64),
        torch.arange(img.shape[1], dtype=torch.float64),
        indexing="ij",
    )
    total = img.sum()
    voxel = torch.tensor(
        [(img * rows).sum() / total, (img * cols).sum() / total, 0.0, 1.0], dtype=torch.float64
    )
    return (x.affine.double() @ voxel)[:3]


RIGID = dict(flip=True, rotate=25.0, translate=0.1, elastic=None)


def test_standard_dad_updates_the_affine_so_world_coordinates_follow_the_anatomy() -> None:
    item = _blob_item()
    for seed in range(4):
        t = StandardDAd(["mri", "ct"], mask_keys=["mask"], prob=1.0, seed=seed, **RIGID)
        out = t(item)
        assert not torch.equal(out["mri"].as_tensor(), item["mri"].as_tensor())
        assert not torch.allclose(out["mri"].affine, item["mri"].affine)
        # The blob moved in voxel space, but its world position (through the new affine) is where it was.
        torch.testing.assert_close(_world_centre(out["mri"]), _world_centre(item["mri"]), atol=0.05, rtol=0)
        for k in ("ct", "mask"):
            torch.testing.assert_close(out[k].affine, out["mri"].affine)
        assert item["mri"].applied_operations == []  # the input is left alone


def test_standard_dad_records_applied_operations_and_inverts_within_interpolation_error() -> None:
    item = _blob_item()
    t = StandardDAd(["mri", "ct"], mask_keys=["mask"], prob=1.0, seed=2, **{**RIGID, "translate": 0.05})
    out = t(item)
    for k in ("mri", "ct", "mask"):
        (record,) = out[k].applied_operations
        assert record["class"] == "StandardDAd" and record["extra_info"]["applied"]
        assert len(record["extra_info"]["index_affine"]) == 3 and record["orig_size"] == (32, 32)
    back = t.inverse(out)
    for k in ("mri", "ct", "mask"):
        assert back[k].applied_operations == []
        torch.testing.assert_close(back[k].affine, item[k].affine)
    # Pixels whose round trip stayed two pixels inside the image come back within bilinear interpolation
    # error (resampled twice).
    inverse = torch.linalg.inv(torch.tensor(out["mri"].applied_operations[0]["extra_info"]["index_affine"]))
    rows, cols = torch.meshgrid(torch.arange(32.0), torch.arange(32.0), indexing="ij")
    src = inverse.float() @ torch.stack([rows, cols, torch.ones_like(rows)]).reshape(3, -1)
    inside = torch.ones(32 * 32, dtype=torch.bool)
    for coord in (src[0], src[1], rows.flatten(), cols.flatten()):
        inside &= (coord >= 2) & (coord <= 29)
    inside = inside.reshape(1, 32, 32)
    assert inside.float().mean() > 0.5
    err = (back["mri"].as_tensor() - item["mri"].as_tensor()).abs()[inside]
    assert err.max() < 0.1 * 1000.0 and err.mean() < 0.01 * 1000.0
    ct_err = (back["ct"].as_tensor() - item["ct"].as_tensor()).abs()[inside]
    assert ct_err.max() < 1e-2 * 40.0  # a ramp is resampled exactly by bilinear interpolation
    agree = (back["mask"].as_tensor() == item["mask"].as_tensor())[inside].float().mean()
    assert agree > 0.97


def test_standard_dad_inverse_keeps_the_elastic_part_and_says_so() -> None:
    item = _blob_item()
    t = StandardDAd(["mri"], prob=1.0, seed=0, rotate=0, translate=0, flip=False, elastic_alpha=4.0)
    out = t(item)
    assert out["mri"].applied_operations[-1]["extra_info"]["elastic"]
    with pytest.warns(UserWarning, match="elastic deformation"):
        back = t.inverse(out)
    assert torch.equal(back["mri"].as_tensor(), out["mri"].as_tensor())  # identity affine: nothing to undo
    torch.testing.assert_close(back["mri"].affine, item["mri"].affine)


def test_standard_dad_batches_get_per_sample_affines_and_invert_after_decollate() -> None:
    from monai.data import decollate_batch, list_data_collate

    items = [_blob_item() for _ in range(3)]
    batch = list_data_collate(items)
    t = StandardDAd(["mri", "ct"], prob=1.0, seed=1, **RIGID)
    out = t(batch)
    assert out["mri"].affine.shape == (3, 4, 4)
    assert not torch.allclose(out["mri"].affine[0], out["mri"].affine[1])
    with pytest.raises(ConfigError, match="decollate_batch"):
        t.inverse(out)
    for original, one in zip(items, decollate_batch(out), strict=True):
        torch.testing.assert_close(
            _world_centre(one["mri"]), _world_centre(original["mri"]), atol=0.05, rtol=0
        )
        back = t.inverse(one)
        torch.testing.assert_close(back["mri"].affine, original["mri"].affine)
        assert back["mri"].applied_operations == []


def test_standard_dad_left_alone_records_nothing_and_inverts_to_itself() -> None:
    item = _blob_item()
    t = StandardDAd(["mri", "ct"], prob=0.0, seed=0)
    out = t(item)
    assert out["mri"] is item["mri"] and out["mri"].applied_operations == []
    assert t.inverse(out)["mri"] is item["mri"]


def test_standard_dad_inverts_through_monai_compose_and_invertd() -> None:
    from monai.transforms import Compose, Invertd

    item = _blob_item()
    pipeline = Compose([StandardDAd(["mri", "ct"], prob=1.0, seed=2, **RIGID)])
    out = pipeline(item)
    back = pipeline.inverse(out)
    assert back["mri"].applied_operations == [] and torch.allclose(back["mri"].affine, item["mri"].affine)
    inverted = Invertd(keys=["mri"], transform=pipeline, orig_keys=["mri"])(pipeline(item))
    assert torch.allclose(inverted["mri"].affine, item["mri"].affine)
