"""Policy specs: what a user types becomes the right transform, with p = 1 and clear errors otherwise."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from latent_transforms import GanBundle, GanConfig, LatentAugment, SG2Sample, StandardDA
from latent_transforms.errors import ConfigError
from latent_transforms.evaluation.policies import load_sample_folder, parse_policies, parse_policy
from latent_transforms.export import augment_dataset
from tests.transforms.conftest import make_tiny_setup


@pytest.fixture(scope="module")
def bundle() -> GanBundle:
    b = GanBundle.random(GanConfig(resolution=16, channel_base=256, channel_max=32, z_dim=16, w_dim=16))
    b.compute_w_stats(200)
    return b


@pytest.mark.parametrize(
    ("spec", "kind", "options"),
    [
        ("sg2sample:psi=0.7", "sg2sample", {"truncation_psi": 0.7}),
        ("SG2:psi=1,cutoff=4", "sg2sample", {"truncation_psi": 1.0, "truncation_cutoff": 4}),
        ("sg2sample", "sg2sample", {"truncation_psi": 1.0}),
        ("latentaugment:preset=mae", "latentaugment", {"preset": "mae"}),
        ("latent-augment", "latentaugment", {"preset": "f1"}),
        ("latent-augment-mae", "latentaugment", {"preset": "mae"}),
        (
            "latentaugment:preset=F1,steps=3,alpha_f=0.1",
            "latentaugment",
            {"preset": "f1", "steps": 3, "alpha_f": 0.1},
        ),
        ("standardda:rotate=5,elastic=none", "standardda", {"rotate": 5, "elastic": None}),
        ("standard:elastic=31/16", "standardda", {"elastic": (31, 16.0)}),
        ("real", "real", {}),
    ],
)
def test_specs_parse_to_kind_and_constructor_options(spec: str, kind: str, options: dict) -> None:
    parsed = parse_policy(spec)
    assert parsed.kind == kind and parsed.options == options and parsed.name


def test_display_names_say_what_differs_and_can_be_overridden() -> None:
    names = [
        p.name for p in parse_policies(["sg2sample:psi=0.3", "sg2sample:psi=1.0", "latentaugment:preset=mae"])
    ]
    assert names == ["SG2Sample ψ=0.3", "SG2Sample ψ=1.0", "LatentAugment (MAE)"]
    assert parse_policy("latentaugment:preset=f1,steps=3").name == "LatentAugment (F1, steps=3)"
    assert parse_policy("sg2sample:psi=0.5,name=half").name == "half"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("stylegan9:psi=1", "unknown policy"),
        ("sg2sample:truncation=0.5", "unknown option"),
        ("latentaugment:p=0.3", "p = 1"),
        ("sg2sample:value_range=unit", "p = 1"),
        ("latentaugment:preset=fast", "preset must be one of"),
        ("sg2sample:psi", "key=value"),
        ("sg2sample:psi=high", "psi must be a number"),
        ("standardda:elastic=big", "KERNEL/SIGMA"),
        ("latentaugment:config=/no/such/best.json", "no LatentAugment config file"),
        ("dir:/no/such/folder", "not a folder"),
        ("real:psi=1", "unknown option"),
        ("", "expected a policy spec"),
    ],
)
def test_bad_specs_are_refused_with_a_fix(spec: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        parse_policy(spec)
    assert "Fix" in str(info.value) or "expected" in str(info.value) or "must be" in str(info.value)


def test_duplicate_display_names_are_refused() -> None:
    with pytest.raises(ConfigError, match="same display name"):
        parse_policies(["sg2sample:psi=0.7", "sg2:psi=0.7"])


def test_every_built_policy_augments_every_sample_in_the_generator_range(
    bundle: GanBundle, tmp_path: Path
) -> None:
    sg2 = parse_policy("sg2sample:psi=0.3").build(bundle, seed=5)
    assert isinstance(sg2, SG2Sample) and sg2.p == 1.0 and sg2.value_range == "generator"
    assert sg2.truncation_psi == 0.3
    sda = parse_policy("standardda:rotate=5").build(bundle)
    assert isinstance(sda, StandardDA) and sda.p == 1.0 and sda.rotate == 5.0
    tiny = make_tiny_setup(tmp_path, n=4)
    la = parse_policy("latentaugment:preset=mae,steps=2").build(
        tiny.bundle, cache=tiny.folder, stats=tiny.stats
    )
    assert isinstance(la, LatentAugment) and la.p == 1.0 and la.value_range == "generator"
    assert (la.alpha_pix, la.steps, la.on_missing) == (3.0, 2, "raise")
    assert parse_policy("real").build(bundle) is None


def test_latentaugment_config_files_are_read_with_from_config(bundle: GanBundle, tmp_path: Path) -> None:
    tuned = LatentAugment(bundle, steps=4, alpha_f=0.3, alpha_pix=0.0, alpha_perc=0.0, alpha_lat=0.0, p=0.4)
    path = tmp_path / "best_config.json"
    path.write_text(json.dumps(tuned.config()))
    spec = parse_policy(f"latentaugment:config={path},steps=5")
    assert spec.name == "LatentAugment (best_config.json, steps=5)"
    built = spec.build(bundle)
    assert isinstance(built, LatentAugment)
    assert (built.steps, built.alpha_f, built.p, built.value_range) == (5, 0.3, 1.0, "generator")
    with pytest.raises(ConfigError, match="not both"):
        parse_policy(f"latentaugment:config={path},preset=f1")


def test_a_folder_written_by_augment_is_read_back_as_the_same_images(
    bundle: GanBundle, tmp_path: Path
) -> None:
    from latent_transforms.data import PelvisPhantom

    data = PelvisPhantom(1, 4, resolution=16)
    seen: list[torch.Tensor] = []

    def keep(x: torch.Tensor) -> torch.Tensor:
        seen.append(x.clone())
        return x

    augment_dataset(bundle, data, keep, tmp_path / "npz", n=4, fmt="npz", progress=False)
    augment_dataset(bundle, data, lambda x: x, tmp_path / "png", n=4, fmt="png", progress=False)
    written = torch.cat(seen)
    spec = parse_policy(str(tmp_path / "npz"))
    assert (
        spec.kind == "directory"
        and spec.name == "npz"
        and parse_policy(f"dir:{tmp_path / 'png'}").kind == "directory"
    )
    npz = load_sample_folder(tmp_path / "npz", bundle)
    png = load_sample_folder(tmp_path / "png", bundle)
    assert npz.shape == png.shape == written.shape
    assert torch.allclose(npz, written.clamp(-1, 1), atol=1e-5)  # float32 physical units round trip
    assert (png - written.clamp(-1, 1)).abs().max() <= 1 / 127.5 + 1e-6  # 8-bit quantisation only
    assert load_sample_folder(tmp_path / "npz", bundle, n=2).shape[0] == 2
