"""The StyleGAN2-ADA trainer: a tiny run trains, writes a bundle, and resumes exactly after a kill."""

from __future__ import annotations

import json
import math

import pytest
import torch

from latent_transforms import GanBundle
from latent_transforms.errors import ConfigError
from latent_transforms.training.checkpoint import load_training_state
from latent_transforms.training.data import TensorImages
from latent_transforms.training.options import TrainingOptions, r1_gamma_rule
from latent_transforms.training.trainer import Trainer
from tests.conftest import tiny_config
from tests.training.killed_run import kill_after_first_checkpoint


def blobs(n: int = 64, resolution: int = 16, seed: int = 0) -> TensorImages:
    """Paired 2-channel images: a bright disc of random size/position; channel 1 = a remapped channel 0."""
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(
        torch.linspace(-1, 1, resolution), torch.linspace(-1, 1, resolution), indexing="ij"
    )
    centre = torch.rand(n, 2, generator=g) - 0.5
    radius = 0.2 + 0.4 * torch.rand(n, generator=g)
    d = ((xx - centre[:, 0, None, None]) ** 2 + (yy - centre[:, 1, None, None]) ** 2).sqrt()
    disc = (d < radius[:, None, None]).float()
    images = torch.stack([disc * 1.6 - 0.8, 0.9 - disc * 1.4], dim=1)
    labels = (radius > 0.4).long()
    return TensorImages(images, labels)


def options(**kw) -> TrainingOptions:
    base = dict(
        total_kimg=0.064,
        batch_size=4,
        snapshot_kimg=0.016,
        metric_kimg=0,
        r1_interval=2,
        pl_interval=2,
        pl_weight=2.0,
        ada_interval=1,
        ada_kimg=0.1,
        seed=3,
    )
    base.update(kw)
    return TrainingOptions(**base)


def tiny(**kw):
    return tiny_config(16, channel_base=128, channel_max=16, z_dim=8, w_dim=8, **kw)


def assert_states_equal(a: dict, b: dict, path: str = "") -> None:
    assert type(a) is type(b), path
    if isinstance(a, dict):
        assert a.keys() == b.keys(), path
        for k in a:
            if k == "elapsed":
                continue
            assert_states_equal(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, list | tuple):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_states_equal(x, y, f"{path}[{i}]")
    elif isinstance(a, torch.Tensor):
        assert torch.equal(a, b), f"tensor {path} differs"
    else:
        assert a == b, f"{path}: {a} != {b}"


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    """One complete tiny run, shared by the tests that inspect or compare against it."""
    out = tmp_path_factory.mktemp("uninterrupted")
    trainer = Trainer(tiny(), blobs(), out, options(), progress=False, description="blobs")
    bundle = trainer.run()
    return out, trainer, bundle


def test_tiny_run_has_finite_losses_and_writes_a_loadable_bundle(uninterrupted):
    out, trainer, _ = uninterrupted
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [r["kimg"] for r in log] == [0.016, 0.032, 0.048, 0.064]
    for record in log:
        for key in ("loss_G", "loss_D", "r1_penalty", "pl_penalty"):
            assert math.isfinite(record[key]), (key, record)
    assert (out / "samples" / "reals.png").is_file()
    assert len(list((out / "samples").glob("fakes-*.png"))) == 4
    loaded = GanBundle.from_pretrained(out / "bundle")
    assert loaded.discriminator is not None
    assert loaded.config.training["kimg"] == 0.064
    assert loaded.config.training["data"] == "blobs"
    assert "w_cov" in loaded.w_stats
    assert torch.isfinite(loaded.sample(2, seed=0)).all()
    # the bundle holds the EMA generator of the last step and the discriminator
    state = load_training_state(out)
    for name, tensor in loaded.generator.state_dict().items():
        assert torch.equal(state["G_ema"][name], tensor), name
    for name, tensor in loaded.discriminator.state_dict().items():
        assert torch.equal(state["D"][name], tensor), name
    init = Trainer(tiny(), blobs(), out / "fresh", options(), progress=False)
    assert any(not torch.equal(init.G.state_dict()[k], v) for k, v in trainer.G.state_dict().items())


def test_ada_raises_p_while_the_discriminator_is_confident_on_reals(tmp_path):
    trainer = Trainer(tiny(), blobs(), tmp_path, options(total_kimg=0.016, ada_target=0.0), progress=False)
    trainer.run()
    # target 0: any positive mean sign of D(real) counts as over-fitting, so p can only have grown
    assert trainer.ada.num_updates == 4
    assert float(trainer.augment_pipe.p) > 0.0


def test_interrupted_and_resumed_run_equals_uninterrupted_run(tmp_path, uninterrupted):
    _, full, _ = uninterrupted
    part = Trainer(tiny(), blobs(), tmp_path / "part", options(), progress=False)
    part.run(stop_at_kimg=0.032)
    assert load_training_state(tmp_path / "part")["cur_nimg"] == 32
    resumed = Trainer(tiny(), blobs(), tmp_path / "part", options(), progress=False)
    resumed.run()
    assert_states_equal(full.state_dict(), resumed.state_dict())


def test_resume_refuses_changed_options_and_occupied_folders(tmp_path):
    Trainer(tiny(), blobs(), tmp_path, options(total_kimg=0.016), progress=False).run()
    with pytest.raises(ConfigError, match="r1_gamma"):
        Trainer(tiny(), blobs(), tmp_path, options(r1_gamma=5.0), progress=False).run()
    with pytest.raises(ConfigError, match="already holds a training run"):
        Trainer(tiny(), blobs(), tmp_path, options(), progress=False, resume=False).run()
    with pytest.raises(ConfigError, match="another GAN config"):
        Trainer(
            tiny(z_dim=8) if False else tiny_config(16, channel_base=128, channel_max=16, z_dim=4, w_dim=8),
            blobs(),
            tmp_path,
            options(),
            progress=False,
        ).run()
    # total_kimg may grow on resume
    Trainer(tiny(), blobs(), tmp_path, options(total_kimg=0.032), progress=False).run()
    assert load_training_state(tmp_path)["cur_nimg"] == 32


def test_conditional_bf16_run_is_finite(tmp_path):
    cfg = tiny(c_dim=2)
    data = blobs()
    trainer = Trainer(cfg, data, tmp_path, options(total_kimg=0.016, precision="bf16"), progress=False)
    bundle = trainer.run()
    assert bundle.config.c_dim == 2
    log = json.loads((tmp_path / "log.jsonl").read_text().splitlines()[-1])
    assert math.isfinite(log["loss_G"]) and math.isfinite(log["loss_D"])


def test_scorer_selects_the_checkpoint_with_the_lowest_smoothed_score(tmp_path):
    scores = iter([9.0, 1.0, 50.0, 60.0])
    seen = []

    def scorer(G):
        seen.append(G.training)
        return {"fid": next(scores)}

    trainer = Trainer(tiny(), blobs(), tmp_path, options(metric_kimg=0.016), scorer=scorer, progress=False)
    bundle = trainer.run()
    assert seen == [False] * 4  # scored in eval mode (the EMA generator)
    assert bundle.config.training["selected_kimg"] == 0.032
    assert trainer.selection.best_kimg == 0.032
    smoothed = [h["smoothed"] for h in trainer.selection.history]
    # Xue et al. 2021: d_t = alpha * d_(t-1) + (1 - alpha) * FID_t with alpha = 0.3 (the newest weighs 0.7)
    assert smoothed[1] == pytest.approx(0.3 * 9.0 + 0.7 * 1.0)
    assert (tmp_path / "fid-curve.png").stat().st_size > 0  # the curve is redrawn at every scored snapshot


def test_time_limit_stops_after_one_step_with_a_scored_checkpoint_and_resume_continues(tmp_path):
    scores = iter([5.0, 4.0, 3.0, 2.0, 1.0])
    trainer = Trainer(
        tiny(), blobs(), tmp_path, options(), scorer=lambda G: {"fid": next(scores)}, progress=False
    )
    trainer.run(max_minutes=0.0)  # the deadline has passed after the first step
    assert trainer.cur_nimg == 4
    records = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert [r["kimg"] for r in records] == [0.004] and records[0]["score/fid"] == 5.0
    assert (tmp_path / "bundle").is_dir()
    resumed = Trainer(tiny(), blobs(), tmp_path, options(), scorer=lambda G: {"fid": 9.0}, progress=False)
    resumed.run()
    assert resumed.cur_nimg == 64


def test_data_that_does_not_match_the_config_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="expects"):
        Trainer(tiny_config(32), blobs(resolution=16), tmp_path, options(), progress=False)


def test_r1_gamma_rule_gives_the_paper_value():
    assert r1_gamma_rule(256, 16) == pytest.approx(0.8192)
    assert TrainingOptions().resolved_r1_gamma(256) == pytest.approx(0.8192)
    assert TrainingOptions(r1_gamma=2.0).resolved_r1_gamma(256) == 2.0


def test_killed_training_process_resumes_to_the_uninterrupted_state(tmp_path, uninterrupted):
    """SIGKILL a real training process after its first checkpoint, resume, compare with a full run."""
    _, full, _ = uninterrupted
    line, out = kill_after_first_checkpoint(
        tmp_path,
        "from tests.training.test_trainer import Trainer, blobs, options, tiny",
        "Trainer(tiny(), blobs(), sys.argv[1], options(), progress=False).run()",
    )
    assert line.startswith("checkpoint 16"), line
    assert not [p.name for p in out.iterdir() if p.name.startswith(".training-state")]
    resumed = Trainer(tiny(), blobs(), out, options(), progress=False)
    resumed.run()
    assert_states_equal(full.state_dict(), resumed.state_dict())


def test_r1_penalty_is_the_gradient_at_the_augmented_image():
    from latent_transforms.training.loss import r1_penalty

    weight = torch.randn(2, 4, 4, generator=torch.Generator().manual_seed(0))

    def D(x, c):
        return (x.square() * weight).sum(dim=(1, 2, 3))

    def augment(x):
        return x.flip(-1) * 0.5

    real = torch.randn(3, 2, 4, 4, generator=torch.Generator().manual_seed(1))
    penalty, logits = r1_penalty(D, real, None, augment)
    y = augment(real)
    expected = (2 * y * weight).square().sum(dim=(1, 2, 3))  # ‖∇_y D(y)‖², not ‖∇_x D(aug(x))‖²
    assert torch.allclose(penalty, expected) and torch.allclose(logits, D(y, None))
