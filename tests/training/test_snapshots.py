"""Kept snapshots: every snapshot's EMA model as a loadable bundle under ``out/snapshots``."""

from __future__ import annotations

import torch

from latent_transforms import DiffusionBundle, GanBundle
from latent_transforms.training import DiffusionTrainer, Trainer, snapshot_bundles
from latent_transforms.training.checkpoint import load_training_state
from tests.training.test_diffusion_trainer import options as diffusion_options, tiny as tiny_diffusion
from tests.training.test_trainer import blobs, options, tiny


def test_every_snapshot_is_kept_as_a_bundle_of_that_moment(tmp_path):
    trainer = Trainer(tiny(c_dim=2), blobs(), tmp_path, options(keep_snapshots=True), progress=False)
    final = trainer.run()
    kept = snapshot_bundles(tmp_path)
    assert [kimg for kimg, _ in kept] == [0.016, 0.032, 0.048, 0.064]
    first = GanBundle.from_pretrained(kept[0][1])
    last = GanBundle.from_pretrained(kept[-1][1])
    assert first.config.training["snapshot_kimg"] == 0.016
    assert last.discriminator is not None  # LatentAugment's fidelity term needs it
    z = torch.randn(2, first.config.z_dim, generator=torch.Generator().manual_seed(0))
    c = torch.eye(2)
    with torch.no_grad():
        same = last.generator(z, c, noise_mode="const")
        earlier = first.generator(z, c, noise_mode="const")
        assert torch.equal(same, final.generator(z, c, noise_mode="const"))
    assert not torch.equal(earlier, same)  # each snapshot holds its own weights


def test_without_the_option_no_snapshot_is_kept(tmp_path):
    Trainer(tiny(), blobs(), tmp_path, options(total_kimg=0.032), progress=False).run()
    assert snapshot_bundles(tmp_path) == []
    assert not (tmp_path / "snapshots").exists()


def test_keeping_snapshots_may_be_switched_on_when_a_run_is_resumed(tmp_path):
    Trainer(tiny(), blobs(), tmp_path, options(total_kimg=0.032), progress=False).run()
    Trainer(tiny(), blobs(), tmp_path, options(keep_snapshots=True), progress=False).run()
    assert [kimg for kimg, _ in snapshot_bundles(tmp_path)] == [0.048, 0.064]
    assert '"keep_snapshots": true' in load_training_state(tmp_path)["options"]


def test_a_diffusion_run_keeps_its_snapshots_too(tmp_path):
    trainer = DiffusionTrainer(
        tiny_diffusion(),
        blobs(),
        tmp_path,
        diffusion_options(total_kimg=0.016, keep_snapshots=True),
        progress=False,
    )
    trainer.run()
    kept = snapshot_bundles(tmp_path)
    assert [kimg for kimg, _ in kept] == [0.008, 0.016]
    assert DiffusionBundle.from_pretrained(kept[-1][1]).config.training["snapshot_kimg"] == 0.016


def test_a_restored_training_state_writes_the_snapshot_bundle_of_its_moment(tmp_path):
    run = tmp_path / "run"
    Trainer(tiny(c_dim=2), blobs(), run, options(total_kimg=0.032, keep_snapshots=True), progress=False).run()
    state = load_training_state(run)
    other = Trainer(tiny(c_dim=2), blobs(), tmp_path / "other", options(total_kimg=0.032), progress=False)
    other.load_state_dict(state)
    folder = other.save_snapshot_bundle()
    assert folder == tmp_path / "other" / "snapshots" / "kimg-000000.032"
    kept = dict(snapshot_bundles(run))[0.032]
    assert GanBundle.from_pretrained(folder).fingerprint == GanBundle.from_pretrained(kept).fingerprint
