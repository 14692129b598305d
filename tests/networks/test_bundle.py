"""GAN bundles: save/load round trips, strict weights, Hub cache and offline behaviour, model card."""

from __future__ import annotations

import json
from pathlib import Path
from unittest import mock

import pytest
import torch
from huggingface_hub import constants as hf_constants
from safetensors.torch import load_file, save_file

from latent_transforms import BundleNotFoundError, ConfigError, GanBundle, WeightMismatchError, load_gan
from latent_transforms.networks import builtin
from tests.conftest import tiny_config


def _bundle(c_dim: int = 0, seed: int = 0) -> GanBundle:
    bundle = GanBundle.random(tiny_config(32, c_dim=c_dim), seed=seed)
    with torch.no_grad():
        for layer in bundle.generator.synthesis.noise_layers():
            layer.noise_strength.fill_(0.2)
    bundle.compute_w_stats(256)
    return bundle


def _outputs(bundle: GanBundle) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(3)
    z = torch.randn(4, bundle.config.z_dim, generator=gen)
    c = torch.eye(bundle.config.c_dim)[[0, 1, 2, 0]] if bundle.config.c_dim else None
    with torch.no_grad():
        img = bundle.generator(z, c)
        return img, bundle.discriminator(img, c)


@pytest.mark.parametrize("c_dim", [0, 3])
def test_save_load_round_trip_is_bit_identical(tmp_path, c_dim):
    bundle = _bundle(c_dim)
    bundle.save_pretrained(tmp_path / "b")
    assert sorted(p.name for p in (tmp_path / "b").iterdir()) == [
        "README.md",
        "config.json",
        "discriminator.safetensors",
        "generator.safetensors",
        "w_stats.safetensors",
    ]
    loaded = load_gan(tmp_path / "b")
    assert loaded.config == bundle.config
    assert loaded.fingerprint == bundle.fingerprint
    for a, b in zip(_outputs(bundle), _outputs(loaded), strict=True):
        assert torch.equal(a, b)
    for key in ("w_avg", "w_mean", "w_cov"):
        assert torch.equal(loaded.w_stats[key], bundle.w_stats[key])
    assert not any(p.requires_grad for p in loaded.parameters())
    assert not loaded.generator.training


def test_saved_files_are_safetensors_and_json_only(tmp_path):
    _bundle().save_pretrained(tmp_path)
    cfg = json.loads((tmp_path / "config.json").read_text())
    assert cfg["modalities"][1] == {"name": "ct", "window": {"low": -1000.0, "high": 2000.0, "unit": "HU"}}
    assert cfg["architecture"] == "stylegan2" and cfg["format_version"] == 1
    assert load_file(tmp_path / "generator.safetensors")  # readable without torch.load / pickle
    assert not list(tmp_path.glob(".*tmp"))  # no temporary file left behind


def test_w_stats_match_a_direct_computation():
    bundle = _bundle()
    bundle.compute_w_stats(512, seed=7, batch_size=100)
    gen = torch.Generator().manual_seed(7)
    ws = torch.cat(
        [
            bundle.generator.mapping(bundle.generator.sample_z(b, generator=gen))[:, 0]
            for b in (100, 100, 100, 100, 100, 12)
        ]
    )
    torch.testing.assert_close(bundle.w_stats["w_mean"], ws.mean(0), atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(bundle.w_stats["w_cov"], torch.cov(ws.t()), atol=1e-5, rtol=1e-3)


def test_weights_that_do_not_match_the_config_name_the_tensor_and_both_shapes(tmp_path):
    _bundle().save_pretrained(tmp_path)
    cfg = json.loads((tmp_path / "config.json").read_text())
    cfg["channel_max"] = 32  # the config now builds narrower layers than the weights hold
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(WeightMismatchError) as err:
        load_gan(tmp_path)
    msg = str(err.value)
    assert "synthesis.b4.const" in msg and "(64, 4, 4)" in msg and "(32, 4, 4)" in msg


def test_missing_and_unexpected_tensors_are_named(tmp_path):
    _bundle().save_pretrained(tmp_path)
    tensors = load_file(tmp_path / "generator.safetensors")
    tensors["extra.weight"] = torch.zeros(2)
    save_file(tensors, tmp_path / "generator.safetensors")
    with pytest.raises(WeightMismatchError, match=r"extra\.weight"):
        load_gan(tmp_path)
    del tensors["extra.weight"], tensors["mapping.fc1.bias"]
    save_file(tensors, tmp_path / "generator.safetensors")
    with pytest.raises(WeightMismatchError, match=r"lack tensor 'mapping\.fc1\.bias'"):
        load_gan(tmp_path)


def test_discriminator_is_optional(tmp_path):
    bundle = _bundle()
    bundle.discriminator = None
    bundle.save_pretrained(tmp_path)
    assert not (tmp_path / "discriminator.safetensors").exists()
    assert load_gan(tmp_path).discriminator is None
    full = _bundle()
    full.save_pretrained(tmp_path / "full")
    assert load_gan(tmp_path / "full", load_discriminator=False).discriminator is None


def test_model_card_describes_the_bundle(tmp_path):
    bundle = _bundle()
    bundle.config = bundle.config.replace(training={"dataset": "pelvis phantom", "kimg": 12})
    bundle.save_pretrained(tmp_path)
    card = (tmp_path / "README.md").read_text()
    assert card.startswith("---\n") and "library_name: latent-transforms" in card
    assert "| 1 | ct | [-1000, 2000] HU |" in card and "**kimg**: 12" in card
    assert "32 x 32" in card and bundle.fingerprint[:16] in card


def test_normalize_and_denormalize_use_each_modality_window():
    bundle = _bundle()
    physical = torch.stack([torch.full((2, 2), 950.0), torch.full((2, 2), -1000.0)])  # [C, H, W]
    unit = bundle.normalize(physical)
    torch.testing.assert_close(unit[0], torch.zeros(2, 2))
    torch.testing.assert_close(unit[1], -torch.ones(2, 2))
    torch.testing.assert_close(bundle.denormalize(unit), physical)
    with pytest.raises(ValueError, match="channels"):
        bundle.normalize(torch.zeros(3, 4, 4))


def test_sampling_is_seeded():
    bundle = _bundle(c_dim=3)
    a, b, c = bundle.sample(3, seed=1), bundle.sample(3, seed=1), bundle.sample(3, seed=2)
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert a.shape == (3, 2, 32, 32)


# -- sources: builtin, Hub cache, offline ----------------------------------------------------------


def _fake_hub_cache(cache: Path, repo_id: str, bundle_dir: Path, commit: str = "a" * 40) -> None:
    """Lay out a bundle the way huggingface_hub stores a downloaded snapshot."""
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    snap = repo / "snapshots" / commit
    snap.mkdir(parents=True)
    for f in bundle_dir.iterdir():
        (snap / f.name).write_bytes(f.read_bytes())


def test_load_from_the_hub_cache_in_offline_mode_is_bit_identical(tmp_path):
    bundle = _bundle()
    bundle.save_pretrained(tmp_path / "b")
    _fake_hub_cache(tmp_path / "cache", "latent-transforms/tiny", tmp_path / "b")
    with mock.patch.object(hf_constants, "HF_HUB_OFFLINE", True):
        loaded = load_gan("latent-transforms/tiny", cache_dir=tmp_path / "cache")
    assert loaded.source == "latent-transforms/tiny"
    for a, b in zip(_outputs(bundle), _outputs(loaded), strict=True):
        assert torch.equal(a, b)


def test_offline_repo_not_in_cache_names_the_repo_and_the_fix(tmp_path):
    with mock.patch.object(hf_constants, "HF_HUB_OFFLINE", True), pytest.raises(BundleNotFoundError) as err:
        load_gan("someone/pelvis-gan", cache_dir=tmp_path, revision="v1")
    msg = str(err.value)
    assert "'someone/pelvis-gan'" in msg and "'v1'" in msg and "HF_HUB_OFFLINE" in msg
    assert "hf download someone/pelvis-gan" in msg and "load_gan('path/to/folder')" in msg


def test_unreachable_hub_is_reported_like_offline(tmp_path):
    def unreachable(*args, **kwargs):
        raise ConnectionError("Name or service not known")

    with (
        mock.patch("huggingface_hub.snapshot_download", unreachable),
        pytest.raises(BundleNotFoundError) as err,
    ):
        load_gan("someone/pelvis-gan", cache_dir=tmp_path)
    assert "could not be reached (ConnectionError)" in str(err.value)


def test_repo_download_only_asks_for_bundle_files(tmp_path):
    bundle_dir = tmp_path / "b"
    _bundle().save_pretrained(bundle_dir)
    with mock.patch("huggingface_hub.snapshot_download", return_value=str(bundle_dir)) as dl:
        load_gan("org/name", revision="abc", cache_dir=tmp_path / "c")
    kwargs = dl.call_args.kwargs
    assert dl.call_args.args == ("org/name",)
    assert kwargs["allow_patterns"] == ["config.json", "*.safetensors", "README.md"]
    assert kwargs["revision"] == "abc" and kwargs["library_name"] == "latent-transforms"


def test_not_a_bundle_and_not_a_repo_id(tmp_path):
    with pytest.raises(BundleNotFoundError, match=r"holds no config\.json"):
        load_gan(tmp_path)
    with pytest.raises(BundleNotFoundError, match="not an existing folder"):
        load_gan("no/such/path/here")


def test_builtin_bundles_resolve_from_the_package_folder(tmp_path, monkeypatch):
    _bundle().save_pretrained(tmp_path / "tiny-test")
    monkeypatch.setattr(builtin, "BUILTIN_ROOT", tmp_path)
    assert builtin.available() == ["tiny-test"]
    assert load_gan("builtin:tiny-test").resolution == 32
    with pytest.raises(BundleNotFoundError, match="available: builtin:tiny-test"):
        load_gan("builtin:nope")


def test_push_to_hub_uploads_a_saved_bundle(tmp_path):
    bundle = _bundle()
    uploaded: dict[str, bytes] = {}

    class FakeApi:
        def __init__(self, **kwargs):
            assert kwargs["library_name"] == "latent-transforms"

        def create_repo(self, repo_id, **kwargs):
            assert repo_id == "me/gan" and kwargs["exist_ok"]

        def upload_folder(self, repo_id, folder_path, **kwargs):
            for f in Path(folder_path).iterdir():
                uploaded[f.name] = f.read_bytes()
            return mock.Mock(commit_url="https://hub/commit/1")

    with mock.patch("latent_transforms.networks.hub_bundle.HfApi", FakeApi):
        url = bundle.push_to_hub("me/gan")
    assert url == "https://hub/commit/1"
    assert set(uploaded) == {
        "README.md",
        "config.json",
        "discriminator.safetensors",
        "generator.safetensors",
        "w_stats.safetensors",
    }
    assert b'load_gan("me/gan")' in uploaded["README.md"]


def test_moving_a_bundle_moves_its_w_statistics():
    bundle = _bundle().to(torch.float64)
    assert bundle.generator.mapping.fc0.weight.dtype == torch.float64
    assert all(v.dtype == torch.float64 for v in bundle.w_stats.values())


# -- Hugging Face conventions: ModelHubMixin, standard signatures, the card's licence ------------------


def test_the_bundle_is_a_model_hub_mixin_with_its_standard_signatures():
    import inspect

    from huggingface_hub import ModelHubMixin

    assert issubclass(GanBundle, ModelHubMixin)
    for name in ("from_pretrained", "save_pretrained", "push_to_hub"):
        ours = inspect.signature(getattr(GanBundle, name)).parameters
        theirs = inspect.signature(getattr(ModelHubMixin, name)).parameters
        assert list(theirs) == [p for p in ours if p in theirs], name  # every standard argument, in order
        for arg, param in theirs.items():
            if param.default is not inspect.Parameter.empty and arg not in ("commit_message", "token"):
                assert ours[arg].default == param.default, (name, arg)


def test_card_data_carries_the_licence_and_the_card_kwargs_override_it(tmp_path):
    from huggingface_hub import ModelCard

    bundle = _bundle(c_dim=3)
    bundle.save_pretrained(tmp_path / "a")
    card = ModelCard.load(tmp_path / "a" / "README.md")
    assert card.data.license == "apache-2.0" and card.data.library_name == "latent-transforms"
    assert card.data.pipeline_tag is None  # conditional GAN: no unconditional-generation tag
    bundle.save_pretrained(
        tmp_path / "b", model_card_kwargs={"license": "cc-by-nc-4.0", "datasets": ["synthrad2023"]}
    )
    card = ModelCard.load(tmp_path / "b" / "README.md")
    assert card.data.license == "cc-by-nc-4.0" and card.data.datasets == ["synthrad2023"]
    assert "| 1 | ct | [-1000, 2000] HU |" in card.text


def test_resaving_rewrites_the_card_and_refuses_a_foreign_config(tmp_path):
    bundle = _bundle()
    bundle.save_pretrained(tmp_path)
    bundle.config = bundle.config.replace(training={"kimg": 99})
    bundle.save_pretrained(tmp_path, config=bundle.config.to_dict())
    assert "**kimg**: 99" in (tmp_path / "README.md").read_text()
    with pytest.raises(ConfigError, match="bundle's own config"):
        bundle.save_pretrained(tmp_path, config=bundle.config.replace(channel_max=16))
    assert json.loads((tmp_path / "config.json").read_text())["training"] == {"kimg": 99}


def test_from_pretrained_forwards_the_hub_arguments_and_refuses_unknown_ones(tmp_path):
    bundle_dir = tmp_path / "b"
    _bundle().save_pretrained(bundle_dir)
    with mock.patch("huggingface_hub.snapshot_download", return_value=str(bundle_dir)) as dl:
        loaded = GanBundle.from_pretrained(
            "org/name", force_download=True, token="t", load_discriminator=False
        )
    assert dl.call_args.kwargs["force_download"] and dl.call_args.kwargs["token"] == "t"
    assert loaded.discriminator is None and loaded.source == "org/name"
    with pytest.raises(TypeError, match="map_location"):
        GanBundle.from_pretrained(bundle_dir, map_location="cpu")


def test_save_pretrained_can_push_with_the_repo_id_in_the_card(tmp_path):
    bundle = _bundle()
    calls = []

    def fake_push(repo_id, **kwargs):
        calls.append((repo_id, kwargs))
        return "https://hub/commit/2"

    with mock.patch.object(bundle, "push_to_hub", side_effect=fake_push):
        assert bundle.save_pretrained(tmp_path / "gan", push_to_hub=True, private=True) == tmp_path / "gan"
    assert calls == [("gan", {"model_card_kwargs": None, "private": True})]


def test_sampling_takes_class_indices_as_labels_like_every_generator():
    bundle = _bundle(c_dim=3)
    by_index = bundle.sample(3, [0, 2, 1], seed=5)
    by_vector = bundle.sample(3, c=torch.eye(3)[[0, 2, 1]], seed=5)
    assert torch.equal(by_index, by_vector)
    assert torch.equal(
        bundle.sample(2, labels=1, seed=0), bundle.sample(2, labels=torch.tensor([1, 1]), seed=0)
    )
    with pytest.raises(ConfigError, match="not both"):
        bundle.sample(2, labels=[0, 1], c=torch.eye(3)[:2])
    with pytest.raises(ConfigError, match=r"class indices in \[0, 3\)"):
        bundle.sample(2, labels=[0, 3])
    with pytest.raises(ConfigError, match="unconditional"):
        _bundle().sample(2, labels=0)


@pytest.mark.parametrize(
    ("file", "what"),
    [("generator.safetensors", "generator"), ("discriminator.safetensors", "discriminator")],
)
@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_weights_with_nan_or_inf_are_refused_on_load(tmp_path, file, what, bad):
    from latent_transforms import NonFiniteWeightsError

    folder = _bundle().save_pretrained(tmp_path / "b", w_stats_samples=64)
    tensors = load_file(str(folder / file))
    name = sorted(k for k, v in tensors.items() if v.is_floating_point())[0]
    tensors[name] = tensors[name].clone().reshape(-1)
    tensors[name][0] = bad
    tensors[name] = tensors[name].reshape(load_file(str(folder / file))[name].shape)
    save_file(tensors, str(folder / file))
    with pytest.raises(NonFiniteWeightsError, match=rf"{what} weights in .* tensor '{name}' has") as info:
        load_gan(folder)
    assert isinstance(info.value, WeightMismatchError)
    assert "earlier checkpoint or retrain" in str(info.value)
    if what == "discriminator":  # the generator alone is fine
        assert load_gan(folder, load_discriminator=False).discriminator is None


def test_w_statistics_with_nan_are_refused_on_load(tmp_path):
    from latent_transforms import NonFiniteWeightsError

    folder = _bundle().save_pretrained(tmp_path / "b", w_stats_samples=64)
    stats = load_file(str(folder / "w_stats.safetensors"))
    stats["w_cov"][0, 0] = float("nan")
    save_file(stats, str(folder / "w_stats.safetensors"))
    with pytest.raises(NonFiniteWeightsError, match=r"w_stats.safetensors .*'w_cov'.*compute_w_stats"):
        load_gan(folder)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda c: {**c, "resolution": "sixty-four"},
            r"key 'resolution' must be an integer \(e\.g\. 64\), got the string 'sixty-four'\. Fix",
        ),
        (lambda c: {**c, "resolution": 64.5}, r"'resolution' must be an integer .* got the number 64\.5"),
        (lambda c: {**c, "z_dim": True}, r"'z_dim' must be an integer .* got the boolean true"),
        (lambda c: {**c, "w_avg_beta": "0.995"}, r"'w_avg_beta' must be a number"),
        (lambda c: {**c, "conv_clamp": [256]}, r"'conv_clamp' must be a number or null .* an array"),
        (lambda c: {**c, "training": "none"}, r"'training' must be a JSON object"),
        (lambda c: {**c, "modalities": "mri,ct"}, r"'modalities' must be a JSON array"),
        (lambda c: {**c, "modalities": ["mri"]}, r"modalities\[0\] must be an object with a string 'name'"),
        (
            lambda c: {**c, "modalities": [{"name": "ct", "window": {"low": "-1000", "high": 2000}}]},
            r"modalities\[0\] \('ct'\) has window .*numbers 'low' and 'high'",
        ),
        (lambda c: {**c, "format_version": "1"}, r"'format_version' must be an integer"),
        (lambda c: [c], r"must hold a JSON object .* got an array \(1 items\)"),
        (lambda c: "config", r"must hold a JSON object .* got the string"),
        (lambda c: {k: v for k, v in c.items() if k != "resolution"}, r"no key 'resolution' .*power of two"),
    ],
)
def test_a_config_json_of_the_wrong_shape_is_a_config_error_naming_the_key(tmp_path, edit, message):
    folder = _bundle().save_pretrained(tmp_path / "b", w_stats_samples=64)
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps(edit(config)))
    with pytest.raises(ConfigError, match=message):
        load_gan(folder)
