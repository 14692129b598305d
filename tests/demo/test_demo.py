"""The main job (``latent-transforms demo``) on a tiny bundle."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from latent_transforms import GanBundle, GanConfig
from latent_transforms.demo import run_demo

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
