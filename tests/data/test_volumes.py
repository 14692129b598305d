"""PairedVolumeDataset: slices of paired NIfTI volumes, in the SynthRAD2023 and the flat layout."""

from __future__ import annotations

import pickle
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from latent_transforms import ConfigError
from latent_transforms.data import volumes
from latent_transforms.data.volumes import MissingDependencyError, PairedVolumeDataset, patient_id_from_files

nib = pytest.importorskip("nibabel")

SHAPE = (24, 20, 30)  # voxel axes x, y, z; x != y so a missing transpose shows in the shape
PATIENTS = ["p0", "p1", "p2"]
MASK_BOX = (slice(6, 18), slice(4, 16))  # x, y of p1's mask file


def mri_value(p: int, z, x, y):
    """Every MRI voxel encodes its patient, slice and position."""
    return 1000.0 * p + 10.0 * z + 3.0 * x + 0.5 * y


def ct_value(p: int, z, x, y):
    """CT in HU: air (< -500) at small x, tissue beyond; integer-valued so int16 stores it exactly."""
    return -1000 + 100 * x - 3 * y + 5 * z + 20 * p


def volume(fn, p: int, shape=SHAPE) -> np.ndarray:
    x, y, z = np.meshgrid(*(np.arange(s) for s in shape), indexing="ij")
    return fn(p, z, x, y)


def save(array: np.ndarray, path: Path) -> None:
    nib.save(nib.Nifti1Image(array, np.eye(4)), str(path))


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    """SynthRAD-style ``synthrad/<patient>/{mr,ct}.nii.gz`` (mask for p1 only, plus an ``overview``
    folder to skip) and the same volumes flat as ``flat/<patient>_{mr,ct}.nii.gz``."""
    root = tmp_path_factory.mktemp("nifti")
    for p, name in enumerate(PATIENTS):
        folder = root / "synthrad" / name
        folder.mkdir(parents=True)
        (root / "flat").mkdir(exist_ok=True)
        mri = volume(mri_value, p).astype(np.float32)
        ct = volume(ct_value, p).astype(np.int16)
        for target in (folder / "mr.nii.gz", root / "flat" / f"{name}_mr.nii.gz"):
            save(mri, target)
        for target in (folder / "ct.nii.gz", root / "flat" / f"{name}_ct.nii.gz"):
            save(ct, target)
    mask = np.zeros(SHAPE, np.uint8)
    mask[MASK_BOX] = 1
    save(mask, root / "synthrad" / "p1" / "mask.nii.gz")
    (root / "synthrad" / "overview").mkdir()
    (root / "synthrad" / "overview" / "overview.csv").write_text("patient\n")
    return root


def flat_pairs(root: Path) -> list[tuple[Path, Path]]:
    return [(root / "flat" / f"{n}_mr.nii.gz", root / "flat" / f"{n}_ct.nii.gz") for n in PATIENTS]


def test_synthrad_folder_gives_the_kept_slices_patient_major(data):
    ds = PairedVolumeDataset(data / "synthrad", resolution=None, drop_slices=10)
    kept = SHAPE[2] - 2 * 10
    assert len(ds) == len(PATIENTS) * kept
    assert ds.patients == PATIENTS  # "overview" (no volume files) is skipped
    assert ds.slices_of("p1") == list(range(10, 20))
    assert ds.indices_of("p1") == list(range(kept, 2 * kept))
    assert [ds.patient_of(i) for i in (0, kept, len(ds) - 1)] == PATIENTS
    item = ds[kept + 3]
    assert (item["patient"], item["slice"], item["key"]) == ("p1", 13, "p1/0013")
    assert [ds[i]["key"] for i in range(kept)] == [f"p0/{k:04d}" for k in range(10, 20)]
    assert ds[-1]["key"] == "p2/0019"
    with pytest.raises(IndexError):
        ds[len(ds)]


def test_items_are_the_transposed_voxel_slices_in_physical_units(data):
    ds = PairedVolumeDataset(data / "synthrad", resolution=None, drop_slices=10)
    for index in (0, 14, 29):
        item = ds[index]
        p, k = PATIENTS.index(item["patient"]), item["slice"]
        rows, cols = np.meshgrid(np.arange(SHAPE[1]), np.arange(SHAPE[0]), indexing="ij")  # rows = y
        for name, fn in (("mri", mri_value), ("ct", ct_value)):
            assert item[name].dtype == torch.float32
            assert item[name].shape == (1, SHAPE[1], SHAPE[0])
            expected = torch.tensor(fn(p, k, cols, rows), dtype=torch.float32)[None]
            torch.testing.assert_close(item[name], expected, rtol=0, atol=0)


def test_resize_to_16_px_is_antialiased_bilinear_with_pixel_centres(data):
    ds = PairedVolumeDataset(data / "synthrad", resolution=16, drop_slices=10)
    item = ds[5]
    assert item["mri"].shape == item["ct"].shape == item["mask"].shape == (1, 16, 16)
    rows, cols = np.meshgrid(np.arange(SHAPE[1]), np.arange(SHAPE[0]), indexing="ij")
    native = torch.tensor(mri_value(0, 15, cols, rows), dtype=torch.float32)[None, None]
    reference = F.interpolate(native, size=(16, 16), mode="bilinear", align_corners=False, antialias=True)[0]
    torch.testing.assert_close(item["mri"], reference)
    # Independent of torch: inside the image the result follows the linear ramp sampled at the output pixel
    # centres (i + 0.5) * in / out - 0.5; a transposed slice or align_corners=True would be off by far more.
    centre = torch.arange(16.0) + 0.5
    x, y = centre * SHAPE[0] / 16 - 0.5, centre * SHAPE[1] / 16 - 0.5
    ramp = mri_value(0, 15, x[None, :], y[:, None])
    assert (item["mri"][0, 2:14, 2:14] - ramp[2:14, 2:14]).abs().max() < 0.15


def test_mask_comes_from_the_mask_file_resized_nearest(data):
    ds = PairedVolumeDataset(data / "synthrad", resolution=16, drop_slices=10, patients=["p1"])
    mask = ds[0]["mask"]
    assert mask.dtype == torch.float32 and set(mask.unique().tolist()) == {0.0, 1.0}
    source = np.zeros(SHAPE[:2], bool)
    source[MASK_BOX] = True
    centre = np.arange(16) + 0.5
    x = np.floor(centre * SHAPE[0] / 16).astype(int)  # nearest pixel centre
    y = np.floor(centre * SHAPE[1] / 16).astype(int)
    expected = torch.tensor(source[x[None, :], y[:, None]], dtype=torch.float32)[None]
    torch.testing.assert_close(mask, expected)


def test_mask_falls_back_to_the_ct_body_threshold(data):
    ds = PairedVolumeDataset(data / "synthrad", resolution=16, drop_slices=10, patients=["p0", "p2"])
    item = ds[3]
    torch.testing.assert_close(item["mask"], (item["ct"] > -500).float())
    assert set(item["mask"].unique().tolist()) == {0.0, 1.0}
    shifted = PairedVolumeDataset(data / "synthrad", resolution=16, drop_slices=10, mask_threshold=500.0)
    assert shifted[3]["mask"].sum() < item["mask"].sum()


def test_flat_pairs_give_the_same_items_with_ids_from_file_names(data):
    folder = PairedVolumeDataset(data / "synthrad", resolution=16, drop_slices=10)
    pairs = PairedVolumeDataset(list(reversed(flat_pairs(data))), resolution=16, drop_slices=10)
    named = PairedVolumeDataset(
        {f"case{i}": pair for i, pair in enumerate(flat_pairs(data))}, resolution=16, drop_slices=10
    )
    assert pairs.patients == PATIENTS and named.patients == ["case0", "case1", "case2"]
    assert len(pairs) == len(named) == len(folder)
    for index in (0, 17, 29):
        a, b, c = folder[index], pairs[index], named[index]
        assert a["key"] == b["key"] and c["key"] == a["key"].replace("p", "case")
        for name in ("mri", "ct"):
            torch.testing.assert_close(a[name], b[name], rtol=0, atol=0)
            torch.testing.assert_close(a[name], c[name], rtol=0, atol=0)
    assert (
        "pairs=3" in repr(pairs) and "drop_slices=10" in repr(pairs) and "resolution=[16, 16]" in repr(pairs)
    )


def test_patient_ids_of_flat_files():
    assert patient_id_from_files(["a/1PA001_mr.nii.gz", "a/1PA001_ct.nii.gz"]) == "1PA001"
    assert patient_id_from_files(["p1_t1.nii", "p1_t2.nii"]) == "p1"  # cut back to a whole token
    assert patient_id_from_files(["mr-sub-07.nii.gz", "ct-sub-07.nii.gz"]) == "sub-07"
    assert patient_id_from_files(["x/case3/mr.nii.gz", "x/case3/ct.nii.gz"]) == "case3"


def test_pairs_whose_names_give_one_id_are_refused(data, tmp_path):
    for n in ("a", "b"):
        (tmp_path / n).mkdir()
    pairs = []
    for n in ("a", "b"):
        for m in ("mr", "ct"):
            target = tmp_path / n / f"{m}.nii.gz"
            target.write_bytes((data / "synthrad" / "p0" / f"{m}.nii.gz").read_bytes())
        pairs.append((tmp_path / n / "mr.nii.gz", tmp_path / n / "ct.nii.gz"))
    assert PairedVolumeDataset(pairs, drop_slices=10, resolution=None).patients == ["a", "b"]
    flat = [(tmp_path / "a" / "mr.nii.gz", tmp_path / "a" / "ct.nii.gz")] * 2
    with pytest.raises(ConfigError, match="ids must be unique"):
        PairedVolumeDataset(flat, drop_slices=10)


def test_mismatched_shapes_name_the_patient_and_both_shapes(tmp_path):
    (tmp_path / "bad").mkdir()
    save(np.zeros((24, 20, 30), np.float32), tmp_path / "bad" / "mr.nii.gz")
    save(np.zeros((24, 20, 28), np.int16), tmp_path / "bad" / "ct.nii.gz")
    with pytest.raises(ConfigError, match=r"'bad'.*\(24, 20, 30\).*\(24, 20, 28\)"):
        PairedVolumeDataset(tmp_path, drop_slices=10)


def test_too_few_slices_is_an_error_naming_the_patient(data):
    with pytest.raises(ConfigError, match=r"patient 'p0' has 30 slices .* needs at least 31"):
        PairedVolumeDataset(data / "synthrad", drop_slices=15)
    assert len(PairedVolumeDataset(data / "synthrad", drop_slices=14, resolution=None)) == 3 * 2


def test_incomplete_patient_folders_and_unknown_patients_are_errors(data, tmp_path):
    (tmp_path / "p9").mkdir()
    (tmp_path / "p9" / "mr.nii.gz").write_bytes((data / "synthrad" / "p0" / "mr.nii.gz").read_bytes())
    with pytest.raises(ConfigError, match=r"p9 \(no ct.nii.gz\)"):
        PairedVolumeDataset(tmp_path)
    only_mri = PairedVolumeDataset(tmp_path, modalities=("mri",), resolution=None)
    assert set(only_mri[0]) == {"mri", "mask", "patient", "slice", "key"}
    assert only_mri[0]["mask"].min() == 1  # no mask file and no CT: all ones
    with pytest.raises(ConfigError, match=r"\['p7'\]"):
        PairedVolumeDataset(data / "synthrad", patients=["p0", "p7"])


def test_slices_along_another_axis(data):
    ds = PairedVolumeDataset(data / "synthrad", resolution=None, drop_slices=10, axis=0, patients=["p2"])
    assert len(ds) == SHAPE[0] - 20
    item = ds[1]
    assert item["slice"] == 11 and item["mri"].shape == (1, SHAPE[2], SHAPE[1])  # rows = z, columns = y
    assert item["mri"][0, 7, 3] == mri_value(2, 7, 11, 3)


def test_index_reads_only_headers_and_the_cache_reads_each_file_once(data, monkeypatch):
    calls: list[str] = []
    read = volumes._read_volume

    def counting(path, shape, *, binary):
        calls.append(path)
        return read(path, shape, binary=binary)

    monkeypatch.setattr(volumes, "_read_volume", counting)
    ds = PairedVolumeDataset(data / "synthrad", resolution=None, drop_slices=10)
    assert len(ds) == 30 and ds.patient_of(12) == "p1" and calls == []
    for index in range(len(ds)):
        ds[index]
    assert len(calls) == 2 * 3 + 1  # mr + ct per patient, p1's mask; each once
    calls.clear()
    uncached = PairedVolumeDataset(data / "synthrad", resolution=None, drop_slices=10, cache_volumes=0)
    uncached[0], uncached[1]
    assert len(calls) == 4


def test_dataset_pickles_without_its_cache_and_loads_in_workers(data):
    ds = PairedVolumeDataset(data / "synthrad", resolution=16, drop_slices=10)
    ds[0]
    copy = pickle.loads(pickle.dumps(ds))
    assert copy._cache == {} and len(copy) == len(ds)
    torch.testing.assert_close(copy[0]["ct"], ds[0]["ct"])
    loader = DataLoader(ds, batch_size=8, num_workers=2)
    keys = [key for batch in loader for key in batch["key"]]
    assert keys == [ds[i]["key"] for i in range(len(ds))]
    batch = next(iter(DataLoader(ds, batch_size=4)))
    assert batch["mri"].shape == (4, 1, 16, 16) and batch["slice"].tolist() == [10, 11, 12, 13]


def test_missing_nibabel_names_the_extra_to_install(data, monkeypatch):
    monkeypatch.setitem(sys.modules, "nibabel", None)  # makes `import nibabel` raise ImportError
    with pytest.raises(MissingDependencyError, match=r"pip install 'latent-transforms\[nifti\]'") as info:
        PairedVolumeDataset(data / "synthrad")
    assert isinstance(info.value, ImportError)


def test_invalid_arguments_say_what_was_expected(data):
    with pytest.raises(ConfigError, match="drop_slices"):
        PairedVolumeDataset(data / "synthrad", drop_slices=-1)
    with pytest.raises(ConfigError, match="axis"):
        PairedVolumeDataset(data / "synthrad", axis=3)
    with pytest.raises(ConfigError, match="resolution"):
        PairedVolumeDataset(data / "synthrad", resolution=0)
    with pytest.raises(ConfigError, match="no default file name"):
        PairedVolumeDataset(data / "synthrad", modalities=("t1", "ct"))
    with pytest.raises(ConfigError, match="not a folder"):
        PairedVolumeDataset(data / "nowhere")
    with pytest.raises(ConfigError, match="do not exist"):
        PairedVolumeDataset([(data / "flat" / "p0_mr.nii.gz", data / "flat" / "p0_pet.nii.gz")])


def test_meta_items_are_metatensors_whose_affine_maps_each_pixel_to_its_voxel(tmp_path):
    pytest.importorskip("monai")
    from monai.data import MetaTensor

    affine = np.array(
        [[0.8, 0.1, 0.0, -100.0], [0.0, -0.9, 0.05, 50.0], [0.02, 0.0, 2.5, 10.0], [0, 0, 0, 1]]
    )
    mri = volume(mri_value, 0).astype(np.float32)
    (tmp_path / "p0").mkdir()
    nib.save(nib.Nifti1Image(mri, affine), str(tmp_path / "p0" / "mr.nii.gz"))
    nib.save(
        nib.Nifti1Image(volume(ct_value, 0).astype(np.int16), affine), str(tmp_path / "p0" / "ct.nii.gz")
    )
    affine = nib.load(str(tmp_path / "p0" / "mr.nii.gz")).affine  # as stored: float32 in the header
    plain = PairedVolumeDataset(tmp_path, resolution=None, drop_slices=10)
    assert type(plain[0]["mri"]) is torch.Tensor and "meta=" not in repr(plain)  # the default is unchanged
    for axis in (0, 1, 2):
        ds = PairedVolumeDataset(tmp_path, resolution=None, drop_slices=2, axis=axis, meta=True)
        item = ds[3]
        assert all(
            isinstance(item[key], MetaTensor) for key in ("mri", "ct", "mask")
        ) and "meta=True" in repr(ds)
        plain_slice = PairedVolumeDataset(tmp_path, resolution=None, drop_slices=2, axis=axis)[3]["mri"]
        torch.testing.assert_close(item["mri"].as_tensor(), plain_slice)
        assert item["mri"].meta["filename_or_obj"].endswith("mr.nii.gz") and item["mri"].meta["slice"] == 5
        np.testing.assert_array_equal(item["ct"].meta["original_affine"], affine)
        world = item["mri"].affine.numpy()
        col_axis, row_axis = (a for a in range(3) if a != axis)
        for row, col in [(0, 0), (4, 7), (plain_slice.shape[-2] - 1, plain_slice.shape[-1] - 1)]:
            voxel = [0, 0, 0]
            voxel[row_axis], voxel[col_axis], voxel[axis] = row, col, item["slice"]
            np.testing.assert_allclose(world @ [row, col, 0, 1], affine @ [*voxel, 1], atol=1e-9)
            assert item["mri"][0, row, col] == mri[tuple(voxel)]
    resized = PairedVolumeDataset(tmp_path, resolution=(10, 12), drop_slices=10, meta=True)
    x = (0 + 0.5) * SHAPE[0] / 12 - 0.5  # pixel centres: output column 0 samples input x
    y = (0 + 0.5) * SHAPE[1] / 10 - 0.5
    np.testing.assert_allclose(resized[0]["ct"].affine.numpy() @ [0, 0, 0, 1], affine @ [x, y, 10, 1])
    np.testing.assert_array_equal(resized.slice_affine(0), resized[0]["mask"].affine.numpy())
    batch = next(iter(DataLoader(resized, batch_size=2)))
    assert batch["mri"].shape == (2, 1, 10, 12)
