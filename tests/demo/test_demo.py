"""The main job (``latent-transforms demo``) on a tiny bundle."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from latent_transforms import GanBundle, GanConfig
from latent_transforms.demo import format_summary, run_demo

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


def test_the_demo_says_what_it_projects_once_each_and_shows_its_stages(
    bundle_folder: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    import logging

    from latent_transforms.demo.run import STAGES

    with caplog.at_level(logging.INFO, logger="latent_transforms"):
        run_demo(tmp_path / "demo", gan=str(bundle_folder), data=PHANTOM, n=3, steps=3, progress=True)
    lines = [r.getMessage() for r in caplog.records if r.name.startswith("latent_transforms.demo")]
    assert len(lines) == len(set(lines)) == 2, lines  # no line repeated
    assert lines[0].startswith("projecting the 3 held-out slices: 3 steps each, once (cached in")
    assert lines[1].startswith(
        "projecting the 3 StandardDA images, whose latents give the table's latent column: 3 steps each"
    )
    err = capsys.readouterr().err
    for stage in ("demo: loading", "demo: 3 held-out slices", "demo: LatentAugment (9 steps)"):
        assert stage in err, stage
    assert f"{len(STAGES)}/{len(STAGES)}" in err  # every stage counted
    quiet = run_demo(tmp_path / "demo", gan=str(bundle_folder), data=PHANTOM, n=3, steps=3, progress=False)
    assert quiet.inverted == 0 and "demo:" not in capsys.readouterr().err


def test_the_shipped_latents_are_those_of_the_demo_defaults() -> None:
    """The demo with its defaults finds every latent it needs in the file shipped with the package: the
    same images (content keys), generator (fingerprint) and projector (settings)."""
    from latent_transforms import load_gan
    from latent_transforms.demo.latents import SHIPPED_SETTINGS, shipped_latents
    from latent_transforms.demo.slices import DEMO_GAN, demo_projector, held_out_slices, standard_da
    from latent_transforms.inversion.cache import image_key

    bundle = load_gan(DEMO_GAN)
    shipped = shipped_latents(DEMO_GAN)
    assert shipped is not None
    assert shipped.info["n"] == SHIPPED_SETTINGS["n"] == 8
    real, keys = held_out_slices(bundle, 8)
    images = [*real, *standard_da(real, 0).clamp(-1, 1)]
    assert shipped.keys == [image_key(x) for x in images] and shipped.info["slices"] == keys
    found = shipped.lookup(bundle.fingerprint, demo_projector(bundle).settings())
    assert set(found) == set(shipped.keys) and shipped.w.shape == (16, bundle.config.w_dim)
    assert shipped.lookup(bundle.fingerprint, demo_projector(bundle, steps=10).settings()) == {}


@pytest.mark.slow
def test_the_shipped_latents_are_recomputed_and_match() -> None:
    """Recompute the shipped latents with the same settings (16 projections of 150 steps): they cannot go
    stale. Identical on the machine that made them; float rounding elsewhere moves them a little (with 1
    thread instead of 2: w by at most 0.045 on a range of +-5.6, PSNR by 0.008 dB), well inside the
    tolerances, while a changed phantom, StandardDA, generator or projector changes the keys, settings or
    values far beyond them."""
    from latent_transforms import load_gan
    from latent_transforms.demo.latents import SHIPPED_SETTINGS, compute_demo_latents, shipped_latents

    settings = SHIPPED_SETTINGS
    bundle = load_gan(settings["gan"])
    shipped = shipped_latents(settings["gan"])
    assert shipped is not None
    again = compute_demo_latents(
        bundle,
        gan=settings["gan"],
        data=settings["data"],
        n=settings["n"],
        steps=settings["steps"],
        seed=settings["seed"],
    )
    assert again.keys == shipped.keys and again.info == shipped.info
    assert again.fingerprint == shipped.fingerprint and again.settings == shipped.settings
    torch.testing.assert_close(again.w, shipped.w, atol=0.15, rtol=0)
    torch.testing.assert_close(again.psnr, shipped.psnr, atol=0.1, rtol=0)


@pytest.mark.slow
def test_the_demo_with_its_defaults_projects_nothing(tmp_path: Path) -> None:
    result = run_demo(tmp_path / "demo", progress=False)
    assert result.inverted == 0 and result.shipped == 16
    report = json.loads((tmp_path / "demo" / "report.json").read_text())
    assert report["latents_shipped"] == 16 and report["inverted_this_run"] == 0
    assert "16 latents shipped with the package, 0 images projected" in format_summary(result)
    again = run_demo(tmp_path / "demo", progress=False)  # the second run finds them in its own cache
    assert again.shipped == 0 and again.inverted == 0 and again.table == result.table
