"""The main job (``latent-transforms demo``) and ``latent-transforms augment`` on tiny bundles."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from latent_transforms import GanBundle, GanConfig, PairedSliceFolder
from latent_transforms.cli import main
from latent_transforms.transforms.demo import run_demo

PHANTOM = "phantom:patients=10,slices=4"


@pytest.fixture
def bundle_folder(tmp_path: Path) -> Path:
    config = GanConfig(resolution=16, z_dim=16, w_dim=16, channel_base=256, channel_max=32, mapping_layers=2)
    bundle = GanBundle.random(config, seed=0)
    return bundle.save_pretrained(tmp_path / "gan", w_stats_samples=500)


def test_demo_writes_the_figure_table_and_report_and_reuses_its_cache(
    bundle_folder: Path, tmp_path: Path
) -> None:
    out = tmp_path / "demo"
    first = run_demo(out, gan=str(bundle_folder), data=PHANTOM, n=3, steps=3, progress=False)
    assert first.grid.is_file() and (out / "table.md").is_file()
    assert [row["policy"] for row in first.table] == [
        "real",
        "G(w*)",
        "StandardDA",
        "SG2Sample",
        "LatentAugment",
    ]
    assert all(np.isfinite([row["pixel"], row["perceptual"], row["latent"]]).all() for row in first.table)
    report = json.loads((out / "report.json").read_text())
    assert report["inverted_this_run"] == 6  # the 3 real slices and their 3 StandardDA versions
    again = run_demo(out, gan=str(bundle_folder), data=PHANTOM, n=3, steps=3, progress=False)
    assert again.inverted == 0  # everything came from the cache
    assert again.table == first.table  # seeded: the same augmentations and distances


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
