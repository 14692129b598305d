"""Patient-level splits: no patient in two splits, all covered, deterministic, order-independent."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, strategies as st
from torch.utils.data import Dataset, Subset

from latent_transforms import ConfigError
from latent_transforms.data.slice_folder import PairedSliceFolder
from latent_transforms.data.splits import (
    PatientIndexed,
    PatientSubset,
    patient_split,
    split_dataset,
    split_sizes,
    subset_by_patients,
)

ids = st.lists(st.text(alphabet="abcxyz019_-", min_size=1, max_size=6), max_size=40)


@st.composite
def fractions(draw) -> tuple[float, ...]:
    weights = draw(st.lists(st.integers(0, 10), min_size=1, max_size=4).filter(lambda w: sum(w) > 0))
    return tuple(w / sum(weights) for w in weights)


def names_for(parts: tuple[float, ...]) -> list[str]:
    return [f"s{i}" for i in range(len(parts))]


@given(patients=ids, parts=fractions(), seed=st.integers(0, 2**32))
def test_every_patient_lands_in_exactly_one_split(patients, parts, seed):
    split = patient_split(patients, parts, seed, names_for(parts))
    assert list(split) == names_for(parts)
    flat = [p for group in split.values() for p in group]
    assert sorted(flat) == sorted(set(patients))  # covers all, none twice
    assert all(group == sorted(group) for group in split.values())
    assert sum(len(g) for g in split.values()) == len(set(patients))


@given(patients=ids, parts=fractions(), seed=st.integers(0, 1000), data=st.data())
def test_split_is_deterministic_and_ignores_input_order_and_duplicates(patients, parts, seed, data):
    shuffled = data.draw(st.permutations(patients))
    first = patient_split(patients, parts, seed, names_for(parts))
    assert patient_split(patients, parts, seed, names_for(parts)) == first
    assert patient_split(shuffled + shuffled[:3], parts, seed, names_for(parts)) == first


@given(count=st.integers(0, 200), parts=fractions())
def test_sizes_are_largest_remainder_with_one_per_nonzero_fraction(count, parts):
    sizes = split_sizes(count, parts)
    assert sum(sizes) == count and all(s >= 0 for s in sizes)
    assert all(s == 0 for s, f in zip(sizes, parts, strict=True) if f == 0)
    nonzero = [s for s, f in zip(sizes, parts, strict=True) if f > 0]
    if count >= len(nonzero):
        assert min(nonzero) >= 1
    quotas = [count * f for f in parts]
    if all(q >= 1 for q, f in zip(quotas, parts, strict=True) if f > 0):
        assert all(abs(s - q) < 1 for s, q in zip(sizes, quotas, strict=True))


def test_paper_fractions_and_seeds():
    patients = [f"1PA{i:03d}" for i in range(20)]
    split = patient_split(patients, seed=0)
    assert [len(v) for v in split.values()] == [14, 4, 2] and list(split) == ["train", "val", "test"]
    assert len({tuple(patient_split(patients, seed=s)["test"]) for s in range(10)}) > 5  # the seed matters
    assert list(patient_split(patients, (0.8, 0.2))) == ["train", "val"]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"fractions": (0.5, 0.4)}, "summing to 1"),
        ({"fractions": (1.2, -0.2)}, "non-negative"),
        ({"fractions": (0.5, 0.5), "names": ("a", "a")}, "distinct"),
        ({"fractions": (0.25,) * 4}, "names="),
        ({"seed": 1.5}, "seed"),
    ],
)
def test_invalid_split_arguments_are_explained(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        patient_split(["a", "b"], **kwargs)


def test_patient_ids_must_be_strings():
    with pytest.raises(ConfigError, match="must be str"):
        patient_split([1, 2, 3])


class Toy(Dataset):
    """A dataset following the patient protocol only through ``patients_per_item``."""

    def __init__(self, per_item: list[str]) -> None:
        self.patients_per_item = per_item

    def __len__(self) -> int:
        return len(self.patients_per_item)

    def __getitem__(self, index: int) -> dict[str, object]:
        return {"patient": self.patients_per_item[index], "index": index}


@given(
    per_item=st.lists(st.sampled_from(["a", "b", "c", "d", "e", "f"]), min_size=1, max_size=30),
    seed=st.integers(0, 100),
)
def test_subsets_hold_exactly_their_patients_items(per_item, seed):
    parts = split_dataset(Toy(per_item), (0.5, 0.3, 0.2), seed)
    seen: list[int] = []
    for subset in parts.values():
        items = [subset[i] for i in range(len(subset))]
        assert {item["patient"] for item in items} <= set(subset.patients)
        assert [subset.patient_of(i) for i in range(len(subset))] == [item["patient"] for item in items]
        expected = [i for i, p in enumerate(per_item) if p in subset.patients]
        assert [item["index"] for item in items] == expected
        seen += expected
    assert sorted(seen) == list(range(len(per_item)))
    groups = [set(s.patients) for s in parts.values()]
    assert all(not (a & b) for i, a in enumerate(groups) for b in groups[i + 1 :])


def test_split_of_a_slice_folder_never_splits_a_patient(tmp_path):
    for patient in range(7):
        for k in range(patient % 3 + 1):
            np.save(tmp_path / f"p{patient}_{k}.npy", np.full((2, 4, 4), patient, np.float32))
    ds = PairedSliceFolder(tmp_path)
    assert isinstance(ds, PatientIndexed)
    parts = split_dataset(ds, seed=3)
    assert sum(len(s) for s in parts.values()) == len(ds)
    for name, subset in parts.items():
        assert isinstance(subset, Subset) and isinstance(subset, PatientSubset)
        patients = {subset[i]["patient"] for i in range(len(subset))}
        assert patients == set(subset.patients) == set(patient_split(ds, seed=3)[name])
        for patient in subset.patients:
            assert len(subset.indices_of(patient)) == len(ds.indices_of(patient))
    train = parts["train"]
    again = subset_by_patients(train, train.patients[:1])  # a subset can be split again
    assert again.patients == train.patients[:1] and len(again) == len(ds.indices_of(train.patients[0]))
    assert repr(train).startswith("PatientSubset(PairedSliceFolder(")
    assert f"patients={train.patients!r}, slices={len(train)})" in repr(train)


def test_unknown_patients_and_datasets_without_the_protocol_are_refused(tmp_path):
    np.save(tmp_path / "p1_0.npy", np.zeros((2, 4, 4), np.float32))
    ds = PairedSliceFolder(tmp_path)
    with pytest.raises(ConfigError, match=r"\['p9'\]"):
        subset_by_patients(ds, ["p1", "p9"])
    with pytest.raises(ConfigError, match=r"no item belongs to \['z'\]"):
        subset_by_patients(Toy(["a"]), ["z"])

    class Plain(Dataset):
        def __len__(self) -> int:
            return 1

        def __getitem__(self, index: int) -> int:
            return index

    with pytest.raises(ConfigError, match="patient_of"):
        split_dataset(Plain())
