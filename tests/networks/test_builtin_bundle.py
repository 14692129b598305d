"""The bundle shipped inside the package: trained on the pelvis phantom, loadable with no network."""

from __future__ import annotations

import json

import pytest
import torch

from latent_transforms import GanBundle, PelvisPhantom, load_gan
from latent_transforms.cli import main
from latent_transforms.networks import builtin
from latent_transforms.training.data import GanImages
from latent_transforms.training.scoring import FidScorer

NAME = "pelvis-phantom-64"


@pytest.fixture(scope="module")
def bundle() -> GanBundle:
    return load_gan(f"builtin:{NAME}")


def test_the_phantom_bundle_ships_with_generator_and_discriminator_under_15_mb():
    assert NAME in builtin.available()
    folder = builtin.resolve(f"builtin:{NAME}")
    sizes = {p.name: p.stat().st_size for p in folder.glob("*.safetensors")}
    assert set(sizes) == {"generator.safetensors", "discriminator.safetensors", "w_stats.safetensors"}
    assert sum(sizes.values()) < 15 * 2**20


def test_it_loads_with_the_hub_offline(monkeypatch, bundle):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    offline = load_gan(f"builtin:{NAME}")
    assert offline.fingerprint == bundle.fingerprint
    assert offline.discriminator is not None
    assert offline.modalities == ["mri", "ct"] and offline.resolution == 64
    assert [(m.window.low, m.window.high) for m in offline.config.modalities] == [(0, 1900), (-1000, 2000)]


def test_its_card_records_the_training_command_and_held_out_scores(bundle, capsys):
    training = bundle.config.training
    assert training["command"].startswith("latent-transforms train --data phantom")
    for key in ("mean_fid", "mean_precision", "mean_recall", "mri_fid", "ct_fid", "kimg"):
        assert key in training, key
    assert main(["info", f"builtin:{NAME}"]) == 0
    out = capsys.readouterr().out
    assert "training.mean_fid" in out and "64 x 64" in out


def test_its_recorded_command_names_each_option_once_and_reproduces_the_run(bundle):
    import shlex

    from latent_transforms.arguments import canonical_argv
    from latent_transforms.cli import build_parser

    argv = shlex.split(bundle.config.training["command"])[1:]
    assert canonical_argv(build_parser(), argv) == argv
    options = [token for token in argv if token.startswith("--")]
    assert len(options) == len(set(options))
    args = build_parser().parse_args(argv)
    assert (args.kimg, args.resolution, args.channel_base) == (70, 64, 2048)  # the run went to 70 kimg
    assert bundle.config.training["command"] in (builtin.resolve(f"builtin:{NAME}") / "README.md").read_text()


def test_info_says_why_precision_and_recall_are_zero(bundle, capsys):
    assert bundle.config.training["mean_precision"] == 0 and bundle.config.training["mean_recall"] == 0
    assert main(["info", f"builtin:{NAME}"]) == 0
    out = capsys.readouterr().out
    assert "note: precision and recall are 0 for every channel: not a failed measurement" in out
    assert "do not overlap" in out
    assert main(["info", f"builtin:{NAME}", "--json"]) == 0
    assert "do not overlap" in json.loads(capsys.readouterr().out)["notes"][0]
    card = (builtin.resolve(f"builtin:{NAME}") / "README.md").read_text()
    assert "precision and recall are 0 for every channel" in card


def test_it_generates_phantom_like_slices_much_closer_than_an_untrained_gan(bundle):
    phantom = PelvisPhantom(6, 8, resolution=64, seed=123)
    cfg = bundle.config
    real = GanImages(phantom, cfg.modality_names, [m.window for m in cfg.modalities])
    scorer = FidScorer(real, "random", cfg.modality_names, n_samples=48)
    trained = scorer(bundle.generator)["fid"]
    untrained = scorer(GanBundle.random(cfg, seed=0).generator)["fid"]
    assert trained < 0.5 * untrained
    ct = bundle.denormalize(bundle.sample(8, seed=0))[:, 1]
    corners = torch.cat([ct[:, :4, :4].flatten(), ct[:, -4:, -4:].flatten()])
    assert corners.median() < -900  # air around the body, as on the phantom's CT
