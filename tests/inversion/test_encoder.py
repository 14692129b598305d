"""The inversion encoder: shapes, zero-offset start, training helps, determinism, storage, CLI."""

from __future__ import annotations

import re

import pytest
import torch

from latent_transforms import GanBundle
from latent_transforms.cli import main
from latent_transforms.errors import (
    ConfigError,
    EncoderNotFoundError,
    LatentTransformsError,
    WeightMismatchError,
)
from latent_transforms.inversion.encoder import (
    ENCODER_NAME,
    EncoderConfig,
    LatentEncoder,
    evaluate_encoder,
    load_encoder,
    save_encoder,
    train_encoder,
)
from tests.conftest import tiny_config

# Training run of the quality test: 100 Adam steps of 16 samples on the 16 px tiny generator (~7 s on one
# CPU thread). Measured on held-out samples (seed 99, 128 samples), from w_avg -> from the encoder: latent
# MSE 1.03 -> 0.83 (W std units), pixel MSE 1.28 -> 0.35, PSNR 4.9 -> 10.6 dB. Over other bundle/encoder
# seeds the ratios were 0.75-0.86 (latent) and 0.28-0.37 (pixel); the thresholds below leave a margin.
STEPS, BATCH, LR = 100, 16, 2e-3


def _bundle(seed: int = 0) -> GanBundle:
    """A 16 px random bundle whose ``w_avg`` is the mean of W, as training leaves it (a random network
    has ``w_avg = 0``, which would make the baseline needlessly poor)."""
    bundle = GanBundle.random(tiny_config(16), seed=seed, discriminator=False)
    with torch.no_grad():
        z = torch.randn(2048, bundle.config.z_dim, generator=torch.Generator().manual_seed(7))
        bundle.generator.mapping.w_avg.copy_(bundle.generator.mapping(z)[:, 0].mean(0))
    bundle.compute_w_stats(1024)
    return bundle


@pytest.fixture(scope="module")
def bundle() -> GanBundle:
    return _bundle()


@pytest.fixture(scope="module")
def trained(bundle) -> LatentEncoder:
    return train_encoder(bundle, steps=STEPS, batch_size=BATCH, lr=LR, progress=False, log_every=25)


@pytest.fixture(scope="module")
def saved(tmp_path_factory, bundle, trained):
    folder = tmp_path_factory.mktemp("bundle")
    bundle.save_pretrained(folder)
    save_encoder(trained, folder)
    return folder


@pytest.mark.parametrize("space", ["w", "w+"])
def test_output_shapes_and_an_untrained_encoder_predicts_w_avg(bundle, space):
    enc = LatentEncoder.for_bundle(bundle, space=space)
    images = bundle.sample(3, seed=1)
    out = enc(images)
    num_ws, w_dim = bundle.generator.num_ws, bundle.config.w_dim
    assert out.shape == ((3, w_dim) if space == "w" else (3, num_ws, w_dim))
    assert enc.encode(images, broadcast=True, batch_size=2).shape == (3, num_ws, w_dim)
    # The last layer is zero-initialised: the prediction is exactly w_avg, the projector's default start.
    torch.testing.assert_close(out, bundle.w_stats["w_avg"].expand_as(out), rtol=0, atol=0)
    torch.testing.assert_close(enc.w_std, bundle.w_stats["w_cov"].diagonal().sqrt())
    assert enc.config.generator_fingerprint == bundle.fingerprint
    assert "parameters=" in repr(enc) and f"space='{space}'" in repr(enc)


def test_wrong_input_shape_and_bad_config_are_explained(bundle):
    enc = LatentEncoder.for_bundle(bundle)
    with pytest.raises(ValueError, match=r"expects images \[B, 2, 16, 16\]"):
        enc(torch.zeros(1, 2, 32, 32))
    with pytest.raises(ConfigError, match="space"):
        EncoderConfig(resolution=16, img_channels=2, w_dim=8, num_ws=6, space="z")
    with pytest.raises(ConfigError, match="power of two"):
        EncoderConfig(resolution=12, img_channels=2, w_dim=8, num_ws=6)


def test_training_reduces_the_latent_loss_and_the_held_out_error_from_w_avg(bundle, trained):
    history = trained.config.training["history"]
    assert [h["step"] for h in history] == [25, 50, 75, 100]
    assert history[-1]["latent"] < 0.93 * history[0]["latent"]
    assert history[-1]["pixel"] < 0.7 * history[0]["pixel"]
    result = evaluate_encoder(trained, bundle, n_samples=128, seed=99)  # not the training seed
    # From w_avg the latent error is ~1 (one W std per dimension, by construction).
    assert 0.8 < result["latent_mse_w_avg"] < 1.2
    assert result["latent_mse"] < 0.93 * result["latent_mse_w_avg"]
    # Threshold: the image error of G(E(G(w))) is at least 40% below that of G(w_avg) (measured: 73%),
    # i.e. at least 2.2 dB better PSNR (measured: 5.6 dB).
    assert result["pixel_mse"] < 0.6 * result["pixel_mse_w_avg"]
    assert result["psnr"] > result["psnr_w_avg"] + 2.2
    assert trained.config.training["final_latent_mse"] == history[-1]["latent"]
    assert not trained.training  # returned in eval mode


def test_training_is_deterministic_for_a_seed_and_leaves_the_generator_frozen(bundle):
    before = [p.requires_grad for p in bundle.generator.parameters()]
    kwargs = dict(steps=4, batch_size=4, space="w+", progress=False)
    a = train_encoder(bundle, seed=3, **kwargs)
    b = train_encoder(bundle, seed=3, **kwargs)
    c = train_encoder(bundle, seed=4, **kwargs)
    for (name, x), y in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.equal(x, y), name
    assert not torch.equal(a.out.weight, c.out.weight)
    assert [p.requires_grad for p in bundle.generator.parameters()] == before
    assert not bundle.generator.training


def test_pixel_loss_can_be_disabled_and_options_are_checked(bundle):
    enc = train_encoder(bundle, steps=3, batch_size=4, pixel_weight=0, progress=False, log_every=2)
    assert [h["step"] for h in enc.config.training["history"]] == [2, 3]
    assert enc.config.training["final_pixel_mse"] is None
    with pytest.raises(ConfigError, match="not both 0"):
        train_encoder(bundle, steps=1, pixel_weight=0, latent_weight=0, progress=False)
    with pytest.raises(ConfigError, match="precision"):
        train_encoder(bundle, steps=1, precision="fp8", progress=False)


def test_save_load_round_trip_gives_identical_outputs(bundle, trained, saved):
    images = bundle.sample(5, seed=11)
    for source in (saved, str(saved), GanBundle.from_pretrained(saved)):
        loaded = load_encoder(source)
        assert loaded.config == trained.config
        assert torch.equal(loaded.encode(images), trained.encode(images))
    assert (saved / ENCODER_NAME).is_file() and not list(saved.glob(".*tmp"))


def test_load_refuses_an_encoder_trained_for_another_generator(tmp_path, trained, saved):
    other = _bundle(seed=1)
    other.save_pretrained(tmp_path)
    save_encoder(trained, tmp_path)  # the encoder of generator 0 in the folder of generator 1
    with pytest.raises(WeightMismatchError, match="trained for generator"):
        load_encoder(tmp_path)
    loaded_other = GanBundle.from_pretrained(tmp_path)
    with pytest.raises(WeightMismatchError, match="train-encoder --gan"):
        load_encoder(loaded_other)
    assert load_encoder(tmp_path, check_fingerprint=False).config == trained.config
    # A bundle object whose generator differs from the folder it names is refused as well.
    loaded_other.source = str(saved)
    with pytest.raises(WeightMismatchError):
        load_encoder(loaded_other)


def test_missing_encoder_says_how_to_train_one(tmp_path, bundle):
    bundle.save_pretrained(tmp_path)
    with pytest.raises(
        EncoderNotFoundError, match=re.escape(f"latent-transforms train-encoder --gan {tmp_path}")
    ):
        load_encoder(tmp_path)
    with pytest.raises(FileNotFoundError):  # also a FileNotFoundError / LatentTransformsError
        load_encoder(GanBundle.from_pretrained(tmp_path))
    with pytest.raises(LatentTransformsError, match=r"bundle\.source is None"):
        load_encoder(bundle)


def test_cli_train_encoder_writes_a_loadable_encoder(tmp_path, capsys):
    folder = tmp_path / "gan"
    _bundle().save_pretrained(folder, w_stats_samples=256)
    args = ["--steps", "3", "--batch", "4", "--eval-samples", "8", "--device", "cpu", "--quiet"]
    assert main(["train-encoder", "--gan", str(folder), *args]) == 0
    text = capsys.readouterr().out
    assert "PSNR of G(E(G(w))) vs G(w)" in text and f"wrote {folder / ENCODER_NAME}" in text
    enc = load_encoder(folder)
    assert enc.config.training["steps"] == 3 and enc.config.training["evaluation"]["n_samples"] == 8

    # --out: a complete copy of the bundle plus the encoder, in the W+ space.
    out = tmp_path / "copy"
    assert main(["train-encoder", "--gan", str(folder), "--out", str(out), "--space", "w+", *args]) == 0
    assert {p.name for p in out.iterdir()} >= {"config.json", "generator.safetensors", ENCODER_NAME}
    assert load_encoder(out).space == "w+" and load_encoder(folder).space == "w"


def test_cli_refuses_to_write_into_a_builtin_bundle_or_over_another_bundle(tmp_path, capsys):
    assert main(["train-encoder", "--gan", "builtin:pelvis-phantom-64", "--steps", "1"]) == 2
    assert "pass --out FOLDER" in capsys.readouterr().err
    first, second = tmp_path / "a", tmp_path / "b"
    _bundle(seed=0).save_pretrained(first, w_stats_samples=64)
    _bundle(seed=1).save_pretrained(second, w_stats_samples=64)
    assert main(["train-encoder", "--gan", str(first), "--out", str(second), "--steps", "1"]) == 2
    assert "already holds a different" in capsys.readouterr().err
    assert not (second / ENCODER_NAME).exists()
