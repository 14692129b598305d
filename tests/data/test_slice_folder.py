"""PairedSliceFolder: paired slices stored as PNG, NPY or NPZ files, per-modality folders or multichannel."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from latent_transforms import ConfigError, IntensityWindow
from latent_transforms.data.items import stack_modalities
from latent_transforms.data.slice_folder import UINT8_BODY_THRESHOLD, PairedSliceFolder, natural_key

H, W = 6, 8
NAMES = ["p1_0", "p1_1", "p1_2", "p2_0", "p2_1", "p10_0"]


def pattern(modality: int, name: str) -> np.ndarray:
    """A slice whose values encode its modality, file and pixel position (0..255 so PNG can hold it)."""
    row, col = np.meshgrid(np.arange(H), np.arange(W), indexing="ij")
    return (40 * modality + 7 * NAMES.index(name) + 3 * col + row) % 256


def write_png(array: np.ndarray, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array.astype(np.uint8)).save(path)


@pytest.fixture
def png_folders(tmp_path) -> Path:
    for c, folder in enumerate(["MRI", "ct"]):  # folder names match modalities case-insensitively
        for name in NAMES:
            write_png(pattern(c, name), tmp_path / folder / f"{name}.png")
    return tmp_path


def test_eight_bit_png_folders_keep_stored_values_and_use_the_uint8_threshold(png_folders):
    ds = PairedSliceFolder(png_folders)
    assert (ds.layout, ds.units, ds.mask_threshold) == ("folders", "uint8", UINT8_BODY_THRESHOLD)
    assert pytest.approx(255 * 500 / 3000) == UINT8_BODY_THRESHOLD  # -500 HU in [-1000, 2000] -> 0..255
    assert ds.patients == ["p1", "p10", "p2"] and len(ds) == len(NAMES)
    assert [ds[i]["key"] for i in range(len(ds))] == [
        "p1/0000",
        "p1/0001",
        "p1/0002",
        "p10/0000",
        "p2/0000",
        "p2/0001",
    ]
    item = ds[4]
    assert item["mri"].dtype == torch.float32 and item["mri"].shape == (1, H, W)
    torch.testing.assert_close(item["mri"][0], torch.tensor(pattern(0, "p2_0"), dtype=torch.float32))
    torch.testing.assert_close(item["ct"][0], torch.tensor(pattern(1, "p2_0"), dtype=torch.float32))
    torch.testing.assert_close(item["mask"], (item["ct"] > 42.5).float())
    assert ds.windows == {"mri": IntensityWindow(0, 255, "uint8"), "ct": IntensityWindow(0, 255, "uint8")}
    image = stack_modalities(item, ds.modalities, [ds.windows[m] for m in ds.modalities])
    assert image.shape == (2, H, W) and image.min() >= -1 and image.max() <= 1
    assert "units='uint8'" in repr(ds) and "layout='folders'" in repr(ds)


def test_folder_mapping_and_a_mask_folder(tmp_path):
    for name in NAMES[:3]:
        write_png(pattern(0, name), tmp_path / "MR" / f"{name}.png")
        write_png(pattern(1, name), tmp_path / "CT" / f"{name}.png")
        mask = np.zeros((H, W), np.uint8)
        mask[:3] = 255
        write_png(mask, tmp_path / "Masks" / f"{name}.png")
    with pytest.raises(ConfigError, match=r"none matches \['mri'\].*folders="):
        PairedSliceFolder(tmp_path, layout="folders")
    ds = PairedSliceFolder(tmp_path, folders={"mri": "MR", "ct": "CT", "mask": "Masks"})
    expected = torch.zeros(1, H, W)
    expected[:, :3] = 1
    torch.testing.assert_close(ds[0]["mask"], expected)


def test_npy_folders_are_physical_units_with_the_hu_threshold(tmp_path):
    hu = np.linspace(-1000, 1000, H * W, dtype=np.float32).reshape(H, W)
    for name in NAMES:
        (tmp_path / "mri").mkdir(exist_ok=True)
        (tmp_path / "ct").mkdir(exist_ok=True)
        np.save(tmp_path / "mri" / f"{name}.npy", hu[None] + 2000)  # [1, H, W] is accepted too
        np.save(tmp_path / "ct" / f"{name}.npy", hu)
    ds = PairedSliceFolder(tmp_path)
    assert (ds.units, ds.mask_threshold, ds.windows) == ("physical", -500.0, None)
    item = ds[0]
    torch.testing.assert_close(item["ct"][0], torch.from_numpy(hu))
    torch.testing.assert_close(item["mask"], (torch.from_numpy(hu) > -500).float()[None])


@pytest.mark.parametrize("form", ["npy_chw", "npy_hwc", "npz_named", "npz_single", "png_rgb"])
def test_multichannel_files_split_into_modalities(tmp_path, form):
    for name in NAMES:
        stack = np.stack([pattern(0, name), pattern(1, name)])  # [2, H, W]
        path = tmp_path / name
        if form == "npy_chw":
            np.save(f"{path}.npy", stack.astype(np.float32))
        elif form == "npy_hwc":
            np.save(f"{path}.npy", np.moveaxis(stack, 0, -1).astype(np.float32))
        elif form == "npz_named":
            np.savez(f"{path}.npz", mri=stack[0], ct=stack[1], mask=(stack[1] > 100))
        elif form == "npz_single":
            np.savez(f"{path}.npz", stack)
        else:
            rgb = np.stack([stack[0], stack[1], np.zeros_like(stack[0])], axis=-1)
            Image.fromarray(rgb.astype(np.uint8)).save(f"{path}.png")
    ds = PairedSliceFolder(tmp_path)
    assert ds.layout == "multichannel" and len(ds) == len(NAMES)
    assert ds.units == ("uint8" if form == "png_rgb" else "physical")
    item = ds[len(ds) - 1]  # p2_1
    assert item["key"] == "p2/0001"
    torch.testing.assert_close(item["mri"][0], torch.tensor(pattern(0, "p2_1"), dtype=torch.float32))
    torch.testing.assert_close(item["ct"][0], torch.tensor(pattern(1, "p2_1"), dtype=torch.float32))
    if form == "npz_named":
        torch.testing.assert_close(
            item["mask"][0], torch.tensor(pattern(1, "p2_1") > 100, dtype=torch.float32)
        )


def test_patient_and_slice_patterns_group_the_files(tmp_path):
    (tmp_path / "mri").mkdir()
    (tmp_path / "ct").mkdir()
    names = ["case01_slice010", "case01_slice002", "case02_slice100", "case02_slice007"]
    for i, name in enumerate(names):
        for folder in ("mri", "ct"):
            np.save(tmp_path / folder / f"{name}.npy", np.full((H, W), float(i), np.float32))
    ds = PairedSliceFolder(
        tmp_path, patient_pattern=r"^(?P<patient>case\d+)", slice_pattern=r"slice(?P<slice>\d+)"
    )
    assert ds.patients == ["case01", "case02"]
    assert [ds[i]["key"] for i in range(4)] == ["case01/0002", "case01/0010", "case02/0007", "case02/0100"]
    assert ds[1]["mri"][0, 0, 0] == names.index("case01_slice010")
    assert ds.slices_of("case02") == [7, 100] and ds.indices_of("case02") == [2, 3]
    assert [ds.patient_of(i) for i in range(4)] == ["case01", "case01", "case02", "case02"]
    # without slice_pattern, slices are numbered in natural order within each patient
    natural = PairedSliceFolder(tmp_path, patient_pattern=r"^(case\d+)")
    assert [natural[i]["mri"][0, 0, 0].item() for i in range(4)] == [1.0, 0.0, 3.0, 2.0]
    assert natural.slices_of("case01") == [0, 1]
    with pytest.raises(ConfigError, match=r"patient_pattern='\^\(p\\\\d\+\)'.*case01_slice002"):
        PairedSliceFolder(tmp_path, patient_pattern=r"^(p\d+)")
    with pytest.raises(ConfigError, match="one file per \\(patient, slice\\)"):
        PairedSliceFolder(tmp_path, patient_pattern=r"^(case\d+)", slice_pattern=r"slice(\d)")


def test_natural_order_puts_2_before_10():
    assert sorted(["p1_10", "p1_2", "P1_1"], key=natural_key) == ["P1_1", "p1_2", "p1_10"]


def test_files_missing_from_a_modality_folder_are_listed(png_folders):
    (png_folders / "ct" / "p1_1.png").unlink()
    (png_folders / "ct" / "p2_0.png").unlink()
    write_png(pattern(1, "p1_0"), png_folders / "ct" / "extra_3.png")
    expected = r"MRI/ lacks 1, e\.g\. \['extra_3'\]; ct/ lacks 2, e\.g\. \['p1_1', 'p2_0'\]"
    with pytest.raises(ConfigError, match=expected):
        PairedSliceFolder(png_folders)


def test_resolution_resizes_images_bilinear_and_masks_nearest(tmp_path):
    image = np.zeros((8, 8), np.uint8)
    image[:, 4:] = 200
    mask = np.zeros((8, 8), np.uint8)
    mask[2:6, 2:6] = 1
    for name in NAMES[:2]:
        np.savez(tmp_path / f"{name}.npz", mri=image, ct=image, mask=mask)
    ds = PairedSliceFolder(tmp_path, resolution=4)
    item = ds[0]
    assert item["mri"].shape == item["mask"].shape == (1, 4, 4)
    assert item["mri"][0, 0].tolist() == pytest.approx([0.0, 200 * 1 / 8, 200 * 7 / 8, 200.0])  # antialiased
    expected = torch.zeros(1, 4, 4)
    expected[:, 1:3, 1:3] = 1
    torch.testing.assert_close(item["mask"], expected)
    with pytest.raises(ConfigError, match="resolution"):
        PairedSliceFolder(tmp_path, resolution=(4,))


def test_modalities_of_different_sizes_need_resolution(tmp_path):
    np.savez(tmp_path / "p1_0.npz", mri=np.zeros((8, 8)), ct=np.zeros((6, 6)))
    with pytest.raises(ConfigError, match="one size"):
        PairedSliceFolder(tmp_path)[0]
    assert PairedSliceFolder(tmp_path, resolution=4)[0]["ct"].shape == (1, 4, 4)


def test_unreadable_layouts_are_explained(tmp_path):
    (tmp_path / "notes").mkdir()
    with pytest.raises(ConfigError, match="no such files"):
        PairedSliceFolder(tmp_path)
    np.save(tmp_path / "p1_0.npy", np.zeros((3, H, W)))
    with pytest.raises(ConfigError, match=r"2 channels.*\(3, 6, 8\)"):
        PairedSliceFolder(tmp_path)[0]
    with pytest.raises(ConfigError, match="layout must be"):
        PairedSliceFolder(tmp_path, layout="stacked")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="not a folder"):
        PairedSliceFolder(tmp_path / "missing")


def test_dataset_pickles_and_collates(png_folders):
    ds = PairedSliceFolder(png_folders, resolution=4)
    copy = pickle.loads(pickle.dumps(ds))
    torch.testing.assert_close(copy[2]["ct"], ds[2]["ct"])
    batch = next(iter(DataLoader(ds, batch_size=3)))
    assert batch["mri"].shape == (3, 1, 4, 4) and batch["patient"] == ["p1", "p1", "p1"]


def test_sixteen_bit_png_values_come_as_stored(tmp_path):
    hu_plus_1024 = (np.arange(H * W, dtype=np.uint16).reshape(H, W) * 90).astype(np.uint16)  # up to 4230
    for folder in ("mri", "ct"):
        (tmp_path / folder).mkdir()
        Image.fromarray(hu_plus_1024).save(tmp_path / folder / "p1_0.png")
    ds = PairedSliceFolder(tmp_path, mask_threshold=524.0)  # -500 HU stored as value + 1024
    assert ds.units == "physical" and ds.windows is None
    item = ds[0]
    torch.testing.assert_close(item["ct"][0], torch.from_numpy(hu_plus_1024.astype(np.float32)))
    torch.testing.assert_close(item["mask"], (item["ct"] > 524).float())
