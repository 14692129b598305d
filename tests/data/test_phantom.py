"""The pelvis phantom: item contract, determinism, plausible HU / T2 values, the MRI->CT ambiguity,
labels and attribute, and smoothness along the body axis."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, strategies as st

from latent_transforms import ConfigError
from latent_transforms.data.items import body_mask, item_key
from latent_transforms.data.phantom import TISSUES, PelvisPhantom, bone_values


def _inside_body(ct: np.ndarray) -> np.ndarray:
    """Body mask with internal holes (gas) filled row by row: between the first and last body pixel."""
    body = ct > -500
    cols = np.arange(body.shape[1])
    has = body.any(axis=1)
    first = np.where(has, body.argmax(axis=1), body.shape[1])
    last = np.where(has, body.shape[1] - 1 - body[:, ::-1].argmax(axis=1), -1)
    return (cols[None] >= first[:, None]) & (cols[None] <= last[:, None])


@pytest.fixture(scope="module")
def phantom64() -> PelvisPhantom:
    return PelvisPhantom(6, 12, 64, seed=0)


@pytest.fixture(scope="module")
def phantom128() -> PelvisPhantom:
    return PelvisPhantom(3, 10, 128, seed=5)


@pytest.mark.parametrize("resolution", [32, 64])
def test_items_follow_the_item_contract(resolution):
    ds = PelvisPhantom(2, 5, resolution, seed=3)
    assert len(ds) == 10
    for index in (0, 7, 9):
        item = ds[index]
        assert list(item) == ["mri", "ct", "mask", "patient", "slice", "key", "label", "attribute"]
        for name in ("mri", "ct", "mask"):
            assert item[name].dtype == torch.float32
            assert item[name].shape == (1, resolution, resolution)
        patient, slice_index = divmod(index, 5)
        assert item["patient"] == f"phantom-{patient:03d}" == ds.patient_of(index)
        assert item["slice"] == slice_index and isinstance(item["slice"], int)
        assert item["key"] == item_key(item["patient"], slice_index)
        assert isinstance(item["label"], int) and item["label"] in (0, 1)
        assert isinstance(item["attribute"], float) and 0.0 <= item["attribute"] <= 1.0
        assert item["label"] == ds.labels[patient] and item["attribute"] == ds.attributes[patient]
        assert torch.equal(item["mask"], body_mask(item["ct"]))
    assert len({ds[i]["key"] for i in range(len(ds))}) == len(ds)
    assert ds.patients == ["phantom-000", "phantom-001"]


def test_negative_indices_count_from_the_end_and_out_of_range_raises_index_error():
    ds = PelvisPhantom(2, 3, 16)
    assert ds[-1]["key"] == "phantom-001/0002"
    assert ds.patient_of(-4) == "phantom-000"
    with pytest.raises(IndexError):
        ds[6]
    with pytest.raises(IndexError):
        ds[-7]
    assert [item["slice"] for item in ds] == [0, 1, 2, 0, 1, 2]  # plain iteration stops at IndexError


def test_modalities_can_be_chosen_and_reordered():
    ds = PelvisPhantom(1, 2, 16, modalities=("ct",))
    assert "mri" not in ds[0] and "ct" in ds[0]
    both = PelvisPhantom(1, 2, 16, modalities=("ct", "mri"))
    assert list(both[1])[:2] == ["ct", "mri"]
    assert torch.equal(both[1]["ct"], ds[1]["ct"])


def test_repr_shows_the_parameters():
    text = repr(PelvisPhantom(3, 4, 32, seed=9, field_of_view_mm=380.0, cache=False))
    for part in ("n_patients=3", "slices_per_patient=4", "resolution=32", "seed=9", "380.0", "cache=False"):
        assert part in text


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(n_patients=0, slices_per_patient=4),
        dict(n_patients=2, slices_per_patient=0),
        dict(n_patients=2, slices_per_patient=4, resolution=8),
        dict(n_patients=2, slices_per_patient=4, resolution=1024),
        dict(n_patients=2, slices_per_patient=4, resolution=64.0),
        dict(n_patients=2, slices_per_patient=4, seed=-1),
        dict(n_patients=2, slices_per_patient=4, modalities=("mri", "pet")),
        dict(n_patients=2, slices_per_patient=4, modalities=()),
        dict(n_patients=2, slices_per_patient=4, field_of_view_mm=10.0),
    ],
)
def test_invalid_arguments_are_refused(kwargs):
    with pytest.raises(ConfigError):
        PelvisPhantom(**kwargs)


def test_same_seed_is_bit_identical_whatever_the_access_order_and_cache():
    a = PelvisPhantom(3, 4, 48, seed=11)
    b = PelvisPhantom(3, 4, 48, seed=11, cache=False)
    order = [11, 0, 5, 3, 5, 11]
    first = {i: a[i] for i in order}
    for i in reversed(order):
        item = b[i]
        for name in ("mri", "ct", "mask"):
            assert torch.equal(item[name], first[i][name])
    assert a.labels == b.labels and a.attributes == b.attributes


def test_different_seeds_give_different_patients():
    a, b = PelvisPhantom(2, 4, 32, seed=0), PelvisPhantom(2, 4, 32, seed=1)
    for i in range(len(a)):
        assert not torch.equal(a[i]["ct"], b[i]["ct"])
        assert not torch.equal(a[i]["mri"], b[i]["mri"])


def test_a_patient_does_not_depend_on_how_many_patients_there_are():
    small, large = PelvisPhantom(2, 6, 32, seed=4), PelvisPhantom(5, 6, 32, seed=4)
    assert large.labels[:2] == small.labels and large.attributes[:2] == small.attributes
    assert torch.equal(small[9]["mri"], large[9]["mri"])


def test_returned_items_are_copies():
    ds = PelvisPhantom(1, 2, 16)
    item = ds[0]
    item["ct"].fill_(0.0)
    assert ds[0]["ct"].min() == -1000.0


def test_ct_is_air_outside_the_body_and_has_fat_muscle_and_bone(phantom128):
    ds = phantom128
    for i in range(len(ds)):
        ct = ds[i]["ct"][0].numpy()
        border = np.concatenate([ct[0], ct[-1], ct[:, 0], ct[:, -1]])
        assert np.all(border == -1000.0)
        assert ct.min() >= -1024.0 and ct.max() < 2000.0
        body = ct > -500
        assert 0.25 < body.mean() < 0.75
        assert np.any(body & (ct < -50)), "subcutaneous fat is negative"
        assert np.any((ct > 20) & (ct < 70)), "soft tissue"
        assert ct.max() > 700.0, "every slice of the pelvis crosses cortical bone"
    fat, muscle = TISSUES["fat"][0], TISSUES["muscle"][0]
    assert fat < -50 < 0 < muscle < 100


def test_mri_is_non_negative_and_below_2500(phantom64):
    for i in range(len(phantom64)):
        mri = phantom64[i]["mri"]
        assert mri.min() >= 0.0 and mri.max() < 2500.0
        assert mri.max() > 900.0, "fat or urine is bright on T2"


def test_mri_cannot_tell_cortical_bone_from_gas(phantom128):
    """Inside the body, T2-dark pixels include both gas (CT < -500) and cortical bone (CT > 700)."""
    ds = phantom128
    for patient in range(ds.n_patients):
        gas = bone = 0
        volume = ds.volume(patient)
        for mri, ct in zip(volume["mri"].numpy(), volume["ct"].numpy(), strict=True):
            dark = _inside_body(ct) & (mri < 150.0)
            gas += int(np.sum(dark & (ct < -500)))
            bone += int(np.sum(dark & (ct > 700)))
        assert gas > 5 and bone > 5, (patient, gas, bone)


def test_labels_are_balanced_and_attributes_cover_the_unit_interval():
    ds = PelvisPhantom(400, 1, 16, seed=2)
    labels, attributes = np.array(ds.labels), np.array(ds.attributes)
    assert 0.42 < labels.mean() < 0.58
    assert attributes.min() >= 0 and attributes.max() <= 1
    assert 0.45 < attributes.mean() < 0.55 and attributes.std() > 0.25


def test_lesions_appear_only_in_label_one_patients():
    ds = PelvisPhantom(8, 16, 32, seed=0)
    for patient, label in enumerate(ds.labels):
        lesion = sum(float(ds.lesion_mask(patient * 16 + s).sum()) for s in range(16))
        info = ds.patient_info(patient)
        assert (lesion > 0) == bool(label) == bool(info["lesions"])
    assert 0 < sum(ds.labels) < 8


def test_bone_density_attribute_raises_bone_hu_and_darkens_marrow():
    ds = PelvisPhantom(10, 6, 48, seed=1)
    ct_means, mri_means = [], []
    for patient in range(ds.n_patients):
        volume = ds.volume(patient)
        bone = volume["ct"] > 100.0
        ct_means.append(float(volume["ct"][bone].mean()))
        mri_means.append(float(volume["mri"][bone].mean()))
    attributes = np.array(ds.attributes)
    assert np.corrcoef(attributes, ct_means)[0, 1] > 0.8
    assert np.corrcoef(attributes, mri_means)[0, 1] < -0.5
    assert bone_values(1.0)["cortical"][0] > bone_values(0.0)["cortical"][0]


def test_adjacent_slices_are_more_alike_than_distant_ones():
    ds = PelvisPhantom(2, 24, 48, seed=6)
    for patient in range(2):
        volume = ds.volume(patient)
        images = torch.stack([volume["mri"] / 1900.0, (volume["ct"] + 1000.0) / 3000.0], dim=1)
        near = (images[1:] - images[:-1]).abs().mean()
        far = (images[8:] - images[:-8]).abs().mean()
        assert near < 0.6 * far
        top_to_bottom = (images[-1] - images[0]).abs().mean()
        assert far < 1.2 * top_to_bottom


def test_volume_stacks_the_slices_of_one_patient():
    ds = PelvisPhantom(2, 3, 16)
    volume = ds.volume("phantom-001")
    assert volume["ct"].shape == (3, 16, 16)
    assert torch.equal(volume["mri"][2], ds[5]["mri"][0])
    assert torch.equal(ds.volume(1)["mask"], volume["mask"])
    with pytest.raises(ConfigError):
        ds.volume("phantom-002")


def test_anatomy_scales_with_resolution():
    """One patient at 32 and 128 px: the 128 px slice averaged down to 32 px is close to the 32 px one."""
    low, high = PelvisPhantom(1, 5, 32, seed=8)[2], PelvisPhantom(1, 5, 128, seed=8)[2]
    pooled = torch.nn.functional.avg_pool2d(high["ct"][None], 4)[0]
    body = (low["mask"] > 0) | (pooled > -500)
    assert (pooled - low["ct"]).abs()[body].mean() < 60.0
    assert ((pooled > -500) != (low["mask"] > 0)).float().mean() < 0.03


@given(
    seed=st.integers(0, 2**32 - 1),
    resolution=st.sampled_from([16, 32, 48, 64]),
    slice_index=st.integers(0, 7),
)
def test_any_seed_and_resolution_gives_finite_values_in_range(seed, resolution, slice_index):
    item = PelvisPhantom(1, 8, resolution, seed=seed, cache=False)[slice_index]
    ct, mri = item["ct"], item["mri"]
    assert torch.isfinite(ct).all() and torch.isfinite(mri).all()
    assert ct.min() >= -1024.0 and ct.max() < 2000.0
    assert mri.min() >= 0.0 and mri.max() < 2500.0
    assert ct[0, 0, 0] == -1000.0
    assert 0.2 < float(item["mask"].mean()) < 0.8
