"""The translator trainer: DUIIT's prediction loss reaches the translator, the paper's optimiser settings,
exact resume after an interruption or a kill, and the checks on its data."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from latent_transforms.errors import ConfigError
from latent_transforms.translation import (
    TranslatorBundle,
    TranslatorConfig,
    TranslatorOptions,
    TranslatorTrainer,
    prediction_loss,
)
from tests.training.test_trainer import assert_states_equal

R = 16


def tiny(task: str | None = "regression", **kw) -> TranslatorConfig:
    """A 16 px translator of a few thousand parameters (and a ResNet-10 predictor of width 4)."""
    base = dict(
        resolution=R, width=4, blocks=1, disc_width=4, task=task, predictor_depth=10, predictor_width=4
    )
    base.update(kw)
    return TranslatorConfig(**base)


def data(n_source: int = 6, n_target: int = 4, classes: bool = False):
    """Source images brighter with their label, target images darker with theirs (in [-1, 1])."""
    g = torch.Generator().manual_seed(0)
    ys = torch.rand(n_source, generator=g)
    yt = torch.rand(n_target, generator=g)
    source = (ys.view(-1, 1, 1, 1) * 2 - 1).expand(-1, 1, R, R) * 0.8
    target = (-ys[:n_target].view(-1, 1, 1, 1) * 2 + 1).expand(-1, 1, R, R) * 0.8
    source = (source + 0.05 * torch.randn(n_source, 1, R, R, generator=g)).clamp(-1, 1)
    target = (target + 0.05 * torch.randn(n_target, 1, R, R, generator=g)).clamp(-1, 1)
    if classes:
        return (source, (ys > 0.5).long()), (target, (yt > 0.5).long())
    return (source, ys * 50 + 20), (target, yt * 50 + 20)


def options(**kw) -> TranslatorOptions:
    base = dict(epochs=2, batch_size=2, checkpoint_every=2, pool_size=3, seed=3)
    base.update(kw)
    return TranslatorOptions(**base)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    out = tmp_path_factory.mktemp("translator-uninterrupted")
    source, target = data()
    trainer = TranslatorTrainer(tiny(), source, target, out, options(), device="cpu", progress=False)
    bundle = trainer.run()
    return out, trainer, bundle


def test_the_defaults_are_the_papers():
    o = TranslatorOptions()
    assert (o.lr, o.beta1, o.beta2, o.cycle_weight, o.pool_size, o.batch_size) == (
        2e-4,
        0.5,
        0.999,
        10,
        50,
        1,
    )
    assert (o.prediction_weight, o.predictor_lr, o.epochs, o.decay_start) == (0.001, 1e-3, 200, 100)
    # Zhu et al.'s linear policy: constant for 100 epochs, then down to 1/101 in the last
    assert o.lr_factor(99) == 1.0 and o.lr_factor(100) == pytest.approx(1 - 1 / 101)
    assert o.lr_factor(199) == pytest.approx(1 / 101)


def test_a_run_sets_the_learning_rates_of_each_epoch_and_writes_a_loadable_bundle(uninterrupted):
    out, trainer, _ = uninterrupted
    assert trainer.finished and trainer.step == 6 and len(trainer.history) == 2
    for opt, base in ((trainer.opt_g, 2e-4), (trainer.opt_d, 2e-4), (trainer.opt_p, 1e-3)):
        assert opt.param_groups[0]["betas"] == (0.5, 0.999)
        assert opt.param_groups[0]["lr"] == pytest.approx(base * options().lr_factor(1))
    loaded = TranslatorBundle.from_pretrained(out / "bundle")
    assert loaded.config.task == "regression" and loaded.config.training["steps"] == 6
    for name, tensor in loaded.source_to_target.state_dict().items():
        assert torch.equal(trainer.G.state_dict()[name], tensor), name
    assert all(v == v for row in trainer.history for v in row.values())  # finite (no NaN)


def test_regression_labels_are_standardised_and_predictions_mapped_back(uninterrupted):
    _, trainer, bundle = uninterrupted
    (_, ys), (_, yt) = data()
    labels = torch.cat([ys, yt])
    assert trainer.config.label_mean == pytest.approx(float(labels.mean()))
    assert trainer.config.label_std == pytest.approx(float(labels.std()))
    raw = bundle.predictor(torch.zeros(2, 1, R, R))[:, 0]
    values = bundle.predict(torch.zeros(2, 1, R, R))
    assert torch.allclose(values, raw * trainer.config.label_std + trainer.config.label_mean)


def test_the_prediction_loss_reaches_the_translator_through_the_translated_images():
    source, target = data()
    trainer = TranslatorTrainer(tiny(), source, target, "unused", options(), device="cpu", resume=False)
    y, x = trainer.source_images[:2], trainer.target_images[:2]
    r_s, r_t = trainer.prediction_labels[0][:2], trainer.prediction_labels[1][:2]
    outputs = trainer.P(torch.cat([trainer.G(y), x]))
    loss = prediction_loss("regression", outputs[:2], r_s, outputs[2:], r_t)
    loss.backward()
    grads = [p.grad for p in trainer.G.parameters()]
    assert all(g is not None for g in grads) and sum(float(g.abs().sum()) for g in grads) > 0
    assert all(p.grad is None for p in trainer.F.parameters())  # F plays no part in L_pred


def _step_changes(task: str | None, weight: float) -> dict[str, torch.Tensor]:
    source, target = data()
    cfg = tiny(task)
    trainer = TranslatorTrainer(
        cfg, source, target, "unused", options(prediction_weight=weight), device="cpu", resume=False
    )
    if task is None:
        with torch.random.fork_rng(devices=[]):  # the same G, F, D as the DUIIT trainer
            torch.manual_seed(3)
            duiit = TranslatorTrainer(tiny(), source, target, "unused", options(), device="cpu", resume=False)
        assert all(
            torch.equal(a, b) for a, b in zip(trainer.G.parameters(), duiit.G.parameters(), strict=True)
        )
    y, x = trainer.source_images[:2], trainer.target_images[:2]
    labels = (
        (None, None) if task is None else (trainer.prediction_labels[0][:2], trainer.prediction_labels[1][:2])
    )
    trainer.train_step(y, x, *labels)
    return {k: v.clone() for k, v in trainer.G.state_dict().items()}


def test_duiit_steps_the_translator_differently_from_cyclegan_and_equal_to_it_at_lambda_zero():
    cyclegan, duiit, zero = (
        _step_changes(None, 0.001),
        _step_changes("regression", 0.001),
        _step_changes("regression", 0.0),
    )
    differs = [k for k in cyclegan if not torch.equal(cyclegan[k], duiit[k])]
    assert differs, "the prediction loss did not change the translator's update"
    assert all(torch.equal(cyclegan[k], zero[k]) for k in cyclegan)


def test_the_generator_step_leaves_the_discriminators_alone_and_the_discriminator_step_moves_them():
    source, target = data()
    trainer = TranslatorTrainer(tiny(None), source, target, "unused", options(), device="cpu", resume=False)
    before = [p.clone() for p in trainer.D_target.parameters()]
    trainer.opt_d.step = lambda: None  # type: ignore[method-assign]
    trainer.train_step(trainer.source_images[:2], trainer.target_images[:2])
    assert all(torch.equal(a, b) for a, b in zip(before, trainer.D_target.parameters(), strict=True))
    assert all(p.grad is not None for p in trainer.D_target.parameters())  # from the D loss only


def test_interrupted_and_resumed_run_equals_uninterrupted_run(tmp_path, uninterrupted):
    _, full, _ = uninterrupted
    source, target = data()
    first = TranslatorTrainer(tiny(), source, target, tmp_path, options(), device="cpu", progress=False)
    first.run(stop_after_steps=3)  # mid-epoch
    assert first.step == 3 and not (tmp_path / "bundle").exists()
    resumed = TranslatorTrainer(tiny(), source, target, tmp_path, options(), device="cpu", progress=False)
    assert resumed.step == 3
    resumed.run()
    assert_states_equal(full.state_dict(), resumed.state_dict())


KILLED_RUN = """
import sys, time
sys.path.insert(0, {root!r})
import latent_transforms.translation.trainer as t
from tests.translation.test_trainer import TranslatorTrainer, data, options, tiny

save = t.TranslatorTrainer.save

def save_then_wait(self):
    path = save(self)
    print("checkpoint", self.step, flush=True)
    time.sleep(60)  # killed here
    return path

t.TranslatorTrainer.save = save_then_wait
source, target = data()
TranslatorTrainer(tiny(), source, target, sys.argv[1], options(), device="cpu", progress=False).run()
"""


def test_killed_training_process_resumes_to_the_uninterrupted_state(tmp_path, uninterrupted):
    """SIGKILL a real training process after its first checkpoint, resume, compare with a full run."""
    _, full, _ = uninterrupted
    script = tmp_path / "run.py"
    script.write_text(KILLED_RUN.format(root=str(Path(__file__).parents[2])))
    out = tmp_path / "killed"
    env = {**os.environ, "OMP_NUM_THREADS": str(torch.get_num_threads())}  # the same arithmetic as here
    proc = subprocess.Popen(
        [sys.executable, str(script), str(out)], stdout=subprocess.PIPE, text=True, env=env
    )
    try:
        line = proc.stdout.readline()
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    assert line.startswith("checkpoint 2"), line
    assert not [p.name for p in out.iterdir() if p.name.startswith(".") and "training-state" in p.name]
    source, target = data()
    resumed = TranslatorTrainer(tiny(), source, target, out, options(), device="cpu", progress=False)
    assert resumed.step == 2
    resumed.run()
    assert_states_equal(full.state_dict(), resumed.state_dict())


def test_resume_refuses_changed_options_and_occupied_folders(tmp_path):
    source, target = data()
    TranslatorTrainer(tiny(), source, target, tmp_path, options(), device="cpu", progress=False).run(
        stop_after_steps=1
    )
    with pytest.raises(ConfigError, match="another config, options or data sizes"):
        TranslatorTrainer(tiny(), source, target, tmp_path, options(seed=4), device="cpu")
    with pytest.raises(ConfigError, match="holds a training state"):
        TranslatorTrainer(tiny(), source, target, tmp_path, options(), device="cpu", resume=False)


def test_classification_duiit_trains_with_cross_entropy(tmp_path):
    source, target = data(classes=True)
    cfg = tiny("classification", outputs=2)
    trainer = TranslatorTrainer(
        cfg, source, target, tmp_path, options(epochs=1), device="cpu", progress=False
    )
    bundle = trainer.run()
    probs = bundle.predict(torch.zeros(3, 1, R, R))
    assert probs.shape == (3, 2) and torch.allclose(probs.sum(1), torch.ones(3))
    assert trainer.config.label_mean == 0.0 and "prediction" in trainer.history[-1]


def test_data_that_does_not_match_the_config_is_refused():
    source, target = data()
    with pytest.raises(ConfigError, match=r"source images must be \[N, 1, 16, 16\]"):
        TranslatorTrainer(tiny(), (torch.zeros(2, 2, R, R), torch.zeros(2)), target, "x", device="cpu")
    with pytest.raises(ConfigError, match="needs labels for both sets"):
        TranslatorTrainer(tiny(), source[0], target, "x", device="cpu")
    TranslatorTrainer(tiny(None), source[0], target[0], "unused", options(), device="cpu", resume=False)


def test_images_of_other_modalities_or_windows_than_the_config_are_refused():
    from latent_transforms import IntensityWindow, Modality
    from latent_transforms.translation import UnpairedImages

    source, target = data()
    pet = UnpairedImages(source[0], (Modality("pet", IntensityWindow(0, 10)),), labels=source[1])
    with pytest.raises(ConfigError, match="the source images are"):
        TranslatorTrainer(tiny(), pet, target, "unused", options(), device="cpu", resume=False)
    matching = tiny().replace(source=pet.modalities)
    TranslatorTrainer(matching, pet, target, "unused", options(), device="cpu", resume=False)
