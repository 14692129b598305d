"""The diffusion trainer: a tiny run trains and writes a bundle, resumes exactly after a kill, scores FID
along the way, and takes labelled images and paired images as channels."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from latent_transforms import DiffusionBundle, DiffusionConfig, IntensityWindow, LabelledImages, Modality
from latent_transforms.errors import ConfigError
from latent_transforms.training import DiffusionOptions, DiffusionTrainer, FidScorer, Trainer
from latent_transforms.training.checkpoint import load_training_state
from latent_transforms.training.data import TensorImages
from tests.training.killed_run import kill_after_first_checkpoint
from tests.training.test_trainer import assert_states_equal, blobs, options as gan_options, tiny as tiny_gan


def tiny(c_dim: int = 2, **kw) -> DiffusionConfig:
    """A 16 px, 2-channel (mri, ct) UNet of a few thousand parameters, 50 timesteps."""
    base = dict(
        resolution=16,
        c_dim=c_dim,
        channels=(8, 16),
        attention_levels=(False, True),
        num_head_channels=8,
        norm_num_groups=8,
        timesteps=50,
    )
    base.update(kw)
    return DiffusionConfig(**base)


def options(**kw) -> DiffusionOptions:
    base = dict(
        total_kimg=0.032,
        batch_size=4,
        snapshot_kimg=0.008,
        metric_kimg=0,
        warmup_kimg=0.008,
        ema_kimg=0.01,
        sample_steps=2,
        metric_steps=2,
        metric_samples=8,
        seed=3,
    )
    base.update(kw)
    return DiffusionOptions(**base)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    out = tmp_path_factory.mktemp("diffusion-uninterrupted")
    trainer = DiffusionTrainer(tiny(), blobs(), out, options(), progress=False, description="blobs")
    bundle = trainer.run()
    return out, trainer, bundle


def test_tiny_run_has_finite_losses_and_writes_the_ema_weights_as_a_bundle(uninterrupted):
    out, trainer, bundle = uninterrupted
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [r["kimg"] for r in log] == [0.008, 0.016, 0.024, 0.032]
    assert all(math.isfinite(r["loss"]) and r["loss"] > 0 for r in log)
    assert (out / "samples" / "reals.png").is_file() and len(list((out / "samples").glob("fakes-*.png"))) == 4
    loaded = DiffusionBundle.from_pretrained(out / "bundle")
    assert loaded.config == tiny() and loaded.config.training["kimg"] == 0.032
    assert loaded.config.training["data"] == "blobs" and loaded.config.training["training_images"] == 64
    state = load_training_state(out)
    for name, tensor in loaded.unet.state_dict().items():
        assert torch.equal(state["ema"][name], tensor), name
    assert any(not torch.equal(state["ema"][k], v) for k, v in state["unet"].items())  # EMA != raw weights
    fresh = DiffusionTrainer(tiny(), blobs(), out / "fresh", options(), progress=False)
    assert any(not torch.equal(fresh.unet.state_dict()[k], v) for k, v in trainer.unet.state_dict().items())
    assert torch.isfinite(bundle.sample(2, labels=[0, 1], seed=0, steps=3)).all()


def test_interrupted_and_resumed_run_equals_uninterrupted_run(tmp_path, uninterrupted):
    _, full, _ = uninterrupted
    DiffusionTrainer(tiny(), blobs(), tmp_path, options(), progress=False).run(stop_at_kimg=0.016)
    assert load_training_state(tmp_path)["cur_nimg"] == 16
    resumed = DiffusionTrainer(tiny(), blobs(), tmp_path, options(), progress=False)
    resumed.run()
    assert_states_equal(full.state_dict(), resumed.state_dict())


def test_killed_training_process_resumes_to_the_uninterrupted_state(tmp_path, uninterrupted):
    """SIGKILL a real training process after its first checkpoint, resume, compare with a full run."""
    _, full, _ = uninterrupted
    line, out = kill_after_first_checkpoint(
        tmp_path,
        "from tests.training.test_diffusion_trainer import DiffusionTrainer, blobs, options, tiny",
        "DiffusionTrainer(tiny(), blobs(), sys.argv[1], options(), progress=False).run()",
    )
    assert line.startswith("checkpoint 8"), line
    assert not [p.name for p in out.iterdir() if p.name.startswith(".training-state")]
    resumed = DiffusionTrainer(tiny(), blobs(), out, options(), progress=False)
    resumed.run()
    assert_states_equal(full.state_dict(), resumed.state_dict())


def test_resume_refuses_changed_options_other_runs_and_occupied_folders(tmp_path):
    DiffusionTrainer(tiny(), blobs(), tmp_path, options(total_kimg=0.008), progress=False).run()
    with pytest.raises(ConfigError, match=r"\['lr'\]"):
        DiffusionTrainer(tiny(), blobs(), tmp_path, options(lr=1e-2), progress=False).run()
    with pytest.raises(ConfigError, match="already holds a training run"):
        DiffusionTrainer(tiny(), blobs(), tmp_path, options(), progress=False, resume=False).run()
    with pytest.raises(ConfigError, match="another diffusion config"):
        DiffusionTrainer(tiny(c_dim=0), blobs(), tmp_path, options(), progress=False).run()
    # total_kimg may grow on resume
    DiffusionTrainer(tiny(), blobs(), tmp_path, options(total_kimg=0.016), progress=False).run()
    assert load_training_state(tmp_path)["cur_nimg"] == 16
    gan_run = tmp_path / "gan"
    Trainer(tiny_gan(), blobs(), gan_run, gan_options(total_kimg=0.004), progress=False).run()
    with pytest.raises(ConfigError, match="another kind"):
        DiffusionTrainer(tiny(), blobs(), gan_run, options(), progress=False).run()


def test_fid_is_logged_as_a_curve_and_the_best_smoothed_snapshot_is_the_bundle(tmp_path):
    scorer = FidScorer(blobs(n=16), "random", ["mri", "ct"], n_samples=8, batch_size=8)
    trainer = DiffusionTrainer(
        tiny(), blobs(), tmp_path, options(metric_kimg=0.016), scorer=scorer, progress=False
    )
    bundle = trainer.run()
    records = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    scored = [r for r in records if "score/fid" in r]
    assert [r["kimg"] for r in scored] == [0.016, 0.032]
    assert all(math.isfinite(r["score/fid"]) and "score/mri" in r for r in scored)
    best = min(scored, key=lambda r: r["score/smoothed"])
    assert bundle.config.training["selected_kimg"] == trainer.selection.best_kimg == best["kimg"]
    assert bundle.config.training["fid"] == pytest.approx(best["score/fid"], abs=1e-3)
    assert (tmp_path / "fid-curve.png").stat().st_size > 0


def test_time_limit_stops_after_one_step_with_a_scored_checkpoint(tmp_path):
    calls = []

    def scorer(model):
        calls.append(model.sample(2, generator=torch.Generator().manual_seed(0)).shape)
        return {"fid": 1.0}

    trainer = DiffusionTrainer(tiny(), blobs(), tmp_path, options(), scorer=scorer, progress=False)
    trainer.run(max_minutes=0.0)
    assert trainer.cur_nimg == 4 and calls == [torch.Size([2, 2, 16, 16])]
    assert (tmp_path / "bundle" / "unet.safetensors").is_file()


def test_time_budget_keeps_room_for_the_last_scoring_and_redraws_its_bar(tmp_path, capsys):
    """``max_minutes`` as the GAN trainer has it: the last snapshot's writing and scoring are reserved
    (``estimate_seconds`` before the first scoring), and the budget bar is redrawn while it trains."""
    import time

    cfg = tiny(c_dim=0, resolution=8, channels=(8, 8), attention_levels=(False, False))
    data = TensorImages(torch.rand(16, 2, 8, 8) * 2 - 1, torch.zeros(16, dtype=torch.long))
    opts = options(total_kimg=100, snapshot_kimg=100, metric_kimg=100)
    trainer = DiffusionTrainer(cfg, data, tmp_path, opts)
    score_seconds = 2.0
    called_at: list[float] = []

    class SlowScorer:  # the protocol FidScorer follows: a call, and an estimate of its time
        def __call__(self, model):
            called_at.append(time.monotonic())
            time.sleep(score_seconds)
            return {"fid": 1.0}

        def estimate_seconds(self, model):
            return score_seconds

    trainer.run(stop_at_kimg=0.004)  # the first step's one-off costs paid here; write_seconds measured
    assert trainer.write_seconds > 0
    trainer.scorer = SlowScorer()
    budget = 6.0
    started = time.monotonic()
    trainer.run(max_minutes=budget / 60)
    # Without the reserve the loop would run until the deadline and score after it; with it, the last
    # scoring starts about score_seconds before the deadline (1.5 s of slack for a step and the snapshot's
    # samples on a loaded machine).
    assert called_at, "no scoring"
    assert called_at[-1] - started < budget - score_seconds + 1.5, called_at[-1] - started
    assert trainer.score_seconds == pytest.approx(score_seconds, abs=0.5)
    records = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert records[-1]["score/fid"] == 1.0 and trainer.cur_nimg < 100_000
    shown = capsys.readouterr().err
    assert "diffusion training (" in shown and "min budget" in shown
    assert shown.count("min budget") > 3, shown  # the bar is redrawn while it trains, not only at its ends


def test_labelled_images_of_the_classification_track_train_a_conditional_model(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(12, 16, 16), dtype=np.uint8)
    data = LabelledImages(images, [0, 1] * 6, channel_names=["xray"])
    cfg = tiny(modalities=(Modality("xray", IntensityWindow(0, 255)),))
    trainer = DiffusionTrainer(cfg, data, tmp_path, options(total_kimg=0.008), progress=False)
    assert trainer.images.labels.tolist() == [0, 1] * 6  # the items' "label", preloaded
    bundle = trainer.run()
    assert bundle.modalities == ["xray"] and bundle.sample(2, labels=1, steps=2).shape == (2, 1, 16, 16)


def test_paired_images_train_with_their_modalities_as_channels(tmp_path):
    from latent_transforms import PelvisPhantom

    data = PelvisPhantom(n_patients=2, slices_per_patient=4, resolution=16)
    trainer = DiffusionTrainer(tiny(c_dim=0), data, tmp_path, options(total_kimg=0.008), progress=False)
    x, _ = trainer.images[0]
    assert tuple(x.shape) == (2, 16, 16) and float(x.min()) >= -1 and float(x.max()) <= 1
    trainer.run()
    assert (tmp_path / "bundle" / "config.json").is_file()


def test_data_that_does_not_match_the_config_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="expects"):
        DiffusionTrainer(tiny(resolution=32), blobs(resolution=16), tmp_path, options(), progress=False)
    with pytest.raises(ConfigError, match="label_key"):
        items = [{"mri": torch.zeros(1, 16, 16), "ct": torch.zeros(1, 16, 16)}] * 4
        DiffusionTrainer(tiny(), items, tmp_path, options(), progress=False)


def test_options_check_their_values():
    with pytest.raises(ConfigError, match="label_dropout"):
        DiffusionOptions(label_dropout=1.5)
    with pytest.raises(ConfigError, match="unknown diffusion training options"):
        DiffusionOptions.from_dict({"epochs": 3})
    assert DiffusionOptions.from_dict(DiffusionOptions().to_dict()) == DiffusionOptions()


def test_one_training_step_learns_the_noise_of_a_constant_image(tmp_path):
    """A few hundred steps on one constant image bring the loss well below its starting value."""
    data = TensorImages(torch.full((8, 2, 16, 16), 0.5), torch.zeros(8, dtype=torch.long))
    trainer = DiffusionTrainer(
        tiny(c_dim=0),
        data,
        tmp_path,
        options(total_kimg=0.6, lr=2e-3, snapshot_kimg=0.2, warmup_kimg=0.02),
        progress=False,
    )
    trainer.run()
    losses = [json.loads(line)["loss"] for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert losses[-1] < 0.5 * losses[0]
