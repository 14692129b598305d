"""``latent-transforms invert``: a dataset into a latent cache, resumable, with a report and statistics."""

from __future__ import annotations

import json

import pytest

from latent_transforms import GanBundle, LatentCache
from latent_transforms.cli import main
from latent_transforms.objectives import DatasetStats
from tests.conftest import tiny_config

ARGS = ["--data", "phantom:patients=4,slices=4,seed=0", "--limit", "5", "--steps", "4", "--batch", "3"]
ARGS += ["--perceptual", "none", "--quiet", "--device", "cpu"]


@pytest.fixture(scope="module")
def inverted(tmp_path_factory):
    cache = tmp_path_factory.mktemp("cache")
    assert main(["invert", "--gan", "builtin:pelvis-phantom-64", "--cache", str(cache), *ARGS]) == 0
    return cache


def test_invert_fills_the_cache_and_writes_report_grid_and_stats(inverted):
    cache = LatentCache.open(inverted)
    assert len(cache) == 5 and cache.verify()["entries"] == 5
    report = json.loads((inverted / "report.json").read_text())
    assert report["this_run"]["inverted"] == 5 and report["quality"]["entries"] == 5
    for modality in ("mri", "ct"):
        psnr = report["quality"][modality]["psnr"]
        assert psnr["p5"] <= psnr["p50"] <= psnr["p95"] and psnr["mean"] > 10
    assert "invert" in report["command"] and report["settings"]["steps"] == 4
    assert (inverted / "reconstructions.png").stat().st_size > 0
    stats = DatasetStats.load(inverted / "stats.safetensors")
    assert stats.n_images == 5 and stats.n_latents == 5


def test_invert_resumes_without_redoing_finished_images(inverted, capsys):
    before = {k: LatentCache.open(inverted).get(k) for k in LatentCache.open(inverted)}
    args = ["invert", "--gan", "builtin:pelvis-phantom-64", "--cache", str(inverted), *ARGS, "--no-stats"]
    assert main(args) == 0
    report = json.loads((inverted / "report.json").read_text())
    assert report["this_run"] == {**report["this_run"], "inverted": 0, "skipped": 5}
    after = LatentCache.open(inverted)
    assert all((after.get(k) == w).all() for k, w in before.items())


def test_invert_refuses_a_cache_made_with_another_generator(inverted, tmp_path, capsys):
    other = tmp_path / "other"
    bundle = GanBundle.random(tiny_config(64), seed=1)
    bundle.save_pretrained(other, w_stats_samples=64)
    code = main(["invert", "--gan", str(other), "--cache", str(inverted), *ARGS])
    assert code != 0
    assert "fingerprint" in capsys.readouterr().err


def test_ranks_invert_disjoint_shares_that_together_cover_the_dataset(tmp_path):
    from latent_transforms import Projector, load_gan
    from latent_transforms.data.open import open_paired_dataset
    from latent_transforms.inversion.job import ShardInfo, invert_dataset

    bundle = load_gan("builtin:pelvis-phantom-64")
    data = open_paired_dataset("phantom:patients=2,slices=3,seed=0", resolution=64)
    projector = Projector(bundle, steps=2, perceptual=None, batch_size=2, progress=False)
    runs = []
    for rank in (1, 0):  # ranks write their own shards into one cache, in any order
        cache = LatentCache(tmp_path, fingerprint=bundle.fingerprint, settings=projector.settings())
        runs.append(invert_dataset(bundle, data, cache, projector, shard=ShardInfo(rank, 2), progress=False))
    assert [r["inverted"] for r in runs] == [3, 3]
    assert len(LatentCache.open(tmp_path)) == 6 and LatentCache.open(tmp_path).verify()["entries"] == 6


def test_shard_info_reads_torchrun_environment(monkeypatch):
    from latent_transforms.inversion.job import ShardInfo

    monkeypatch.setenv("RANK", "3")
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert ShardInfo.from_env() == ShardInfo(3, 4, 1)
