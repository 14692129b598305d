"""``latent-transforms augment`` on tiny bundles: every policy and format, keys, NIfTI affines."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from latent_transforms import GanBundle, GanConfig, PairedSliceFolder, PairedVolumeDataset
from latent_transforms.cli import main

PHANTOM = "phantom:patients=10,slices=4"


@pytest.fixture
def bundle_folder(tmp_path: Path) -> Path:
    config = GanConfig(resolution=16, z_dim=16, w_dim=16, channel_base=256, channel_max=32, mapping_layers=2)
    bundle = GanBundle.random(config, seed=0)
    return bundle.save_pretrained(tmp_path / "gan", w_stats_samples=500)


def _invert(bundle_folder: Path, cache: Path, key: str = "content") -> None:
    argv = ["invert", "--gan", str(bundle_folder), "--data", PHANTOM, "--cache", str(cache), "--steps", "3"]
    argv += ["--limit", "8", "--perceptual", "none", "--key", key, "--device", "cpu", "--quiet"]
    assert main(argv) == 0


@pytest.mark.parametrize(("policy", "fmt"), [("latent-augment", "npz"), ("sg2", "png"), ("standard", "npz")])
def test_augment_writes_a_set_paired_slice_folder_reads_back(
    bundle_folder: Path, tmp_path: Path, policy: str, fmt: str
) -> None:
    cache = tmp_path / "cache"
    if policy == "latent-augment":
        _invert(bundle_folder, cache)
    out = tmp_path / "augmented"
    argv = ["augment", "--gan", str(bundle_folder), "--data", PHANTOM, "--out", str(out), "--n", "7"]
    argv += ["--policy", policy, "--format", fmt, "--batch", "4", "--device", "cpu", "--quiet"]
    if policy == "latent-augment":
        argv += ["--cache", str(cache)]
    assert main(argv) == 0
    manifest = json.loads((out / "augment.json").read_text())
    assert manifest["count"] == 7 and manifest["format"] == fmt
    assert manifest["command"].startswith("latent-transforms augment")
    data = PairedSliceFolder(out)
    assert len(data) == 7
    item = data[0]
    assert item["ct"].shape == (1, 16, 16)
    if fmt == "npz":  # physical units, inside the CT window
        assert float(item["ct"].min()) >= -1000.0 - 1e-3 and float(item["ct"].max()) <= 2000.0 + 1e-3
    sources = [f["source"] for f in manifest["files"]]
    assert (sources[0] is None) == (policy == "sg2")


def test_augment_by_dataset_key_uses_the_keyed_cache(bundle_folder: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    _invert(bundle_folder, cache, key="dataset")
    out = tmp_path / "augmented"
    argv = ["augment", "--gan", str(bundle_folder), "--data", PHANTOM, "--out", str(out), "--n", "4"]
    argv += ["--policy", "latent-augment-mae", "--cache", str(cache), "--key", "dataset", "--quiet"]
    argv += ["--device", "cpu"]
    assert main(argv) == 0
    assert "preset='mae'" in json.loads((out / "augment.json").read_text())["policy"]


def test_latent_augment_without_a_cache_says_what_to_run(
    bundle_folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["augment", "--gan", str(bundle_folder), "--data", PHANTOM, "--out", str(tmp_path / "o")]
    argv += ["--n", "2", "--policy", "latent-augment", "--quiet"]
    assert main(argv) == 2
    assert "latent-transforms invert" in capsys.readouterr().err


def test_nifti_export_of_nifti_volumes_keeps_each_source_slice_affine(
    bundle_folder: Path, tmp_path: Path
) -> None:
    nib = pytest.importorskip("nibabel")
    pytest.importorskip("monai")
    affine = np.array(
        [[0.8, 0.1, 0.0, -100.0], [0.0, -0.9, 0.05, 50.0], [0.02, 0.0, 2.5, 10.0], [0, 0, 0, 1]]
    )
    x, y, z = np.meshgrid(np.arange(24), np.arange(20), np.arange(22), indexing="ij")
    for patient in ("p0", "p1"):
        (tmp_path / "volumes" / patient).mkdir(parents=True)
        ct = (-1000 + 60 * x + 10 * y + z).astype(np.int16)
        nib.save(nib.Nifti1Image(ct, affine), str(tmp_path / "volumes" / patient / "ct.nii.gz"))
        nib.save(nib.Nifti1Image(ct + 1000.0, affine), str(tmp_path / "volumes" / patient / "mr.nii.gz"))
    out = tmp_path / "augmented"
    argv = ["augment", "--gan", str(bundle_folder), "--data", str(tmp_path / "volumes"), "--out", str(out)]
    argv += ["--n", "3", "--policy", "standard", "--format", "nifti", "--device", "cpu", "--quiet"]
    assert main(argv) == 0
    source = PairedVolumeDataset(tmp_path / "volumes", resolution=16)
    index_of = {source[i]["key"]: i for i in range(len(source))}
    for entry in json.loads((out / "augment.json").read_text())["files"]:
        written = nib.load(str(out / entry["files"]["ct"]))
        expected = source.slice_affine(index_of[entry["source"]])
        assert written.shape == (16, 16, 1)
        np.testing.assert_allclose(written.affine, expected, rtol=0, atol=1e-5)
        assert not np.allclose(written.affine, np.eye(4))
