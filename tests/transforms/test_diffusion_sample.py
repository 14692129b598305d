"""DiffusionSample and the labelled calls of the conditional generator transforms (SG2Sample too)."""

from __future__ import annotations

import pickle

import pytest
import torch
from torchvision.transforms import v2

from latent_transforms import DiffusionSample, GanBundle, SG2Sample
from latent_transforms.errors import ConfigError
from latent_transforms.transforms.dictionary import DiffusionSampled, SG2Sampled

from .conftest import tiny_diffusion, tiny_gan_config

FAST = {"steps": 3}


@pytest.fixture(scope="module")
def conditional():
    return tiny_diffusion(c_dim=3)


def _x(n: int = 4) -> torch.Tensor:
    return torch.rand(n, 2, 16, 16, generator=torch.Generator().manual_seed(0)) * 2 - 1


def test_each_chosen_sample_is_of_its_labels_class(conditional):
    t = DiffusionSample(conditional, p=1.0, value_range="generator", seed=0, **FAST)
    labels = torch.tensor([2, 0, 1, 2])
    out, back = t(_x(), labels)
    assert back is labels
    params = t.last_params
    assert params["labels"].tolist() == [2, 0, 1, 2]
    torch.testing.assert_close(out, t.render(params))
    other = dict(params, labels=torch.tensor([0, 1, 2, 0]))
    assert not torch.equal(t.render(other), out)  # the class changes the image


def test_labels_follow_the_chosen_samples_and_ints_label_every_sample(conditional):
    t = DiffusionSample(conditional, p=0.5, value_range="generator", seed=1, **FAST)
    x = _x(6)
    out, _ = t(x, 1)
    chosen = t.last_params["apply"]
    assert 0 < int(chosen.sum()) < 6
    assert t.last_params["labels"].tolist() == [1] * 6
    assert torch.equal(out[~chosen], x[~chosen])
    rows = t.slice_params(t.last_params, chosen.nonzero().flatten())
    torch.testing.assert_close(out[chosen], t.render(rows))


def test_the_random_stream_does_not_depend_on_whether_labels_are_given(conditional):
    a = DiffusionSample(conditional, p=0.5, value_range="generator", seed=5, **FAST)
    b = DiffusionSample(conditional, p=0.5, value_range="generator", seed=5, **FAST)
    a(_x())
    b(_x(), torch.tensor([0, 0, 0, 0]))
    assert torch.equal(a.last_params["apply"], b.last_params["apply"])
    assert torch.equal(a.last_params["noise"], b.last_params["noise"])


def test_a_fixed_class_refuses_labels_and_an_unconditional_bundle_ignores_them(conditional):
    fixed = DiffusionSample(conditional, c=1, p=1.0, value_range="generator", seed=0, **FAST)
    with pytest.raises(ConfigError, match="drop c"):
        fixed(_x(), torch.tensor([0, 1, 2, 0]))
    assert fixed.sample(2, generator=torch.Generator().manual_seed(0), value_range="generator").shape[0] == 2
    plain = DiffusionSample(tiny_diffusion(), p=1.0, value_range="generator", seed=0, **FAST)
    again = DiffusionSample(tiny_diffusion(), p=1.0, value_range="generator", seed=0, **FAST)
    with_labels, labels = plain(_x(), torch.tensor([0, 1, 0, 1]))
    assert torch.equal(with_labels, again(_x())) and labels.tolist() == [0, 1, 0, 1]
    with pytest.raises(ConfigError, match=r"class indices in \[0, 3\)"):
        DiffusionSample(conditional, p=1.0, value_range="generator", **FAST)(_x(), torch.tensor([0, 1, 3, 0]))
    with pytest.raises(ConfigError, match=r"c must be a class index in \[0, 3\)"):
        DiffusionSample(conditional, c=3)


def test_labelled_calls_work_inside_compose_and_with_a_single_sample(conditional):
    t = DiffusionSample(conditional, p=1.0, value_range="generator", seed=0, **FAST)
    x, labels = _x(2), torch.tensor([2, 2])
    _, back = v2.Compose([t])(x, labels)
    assert back is labels and t.last_params["labels"].tolist() == [2, 2]
    one, label = t(x[0], torch.tensor(1))
    assert one.shape == x[0].shape and int(label) == 1 and t.last_params["labels"].tolist() == [1]


def test_shape_dtype_device_and_channels_last_layout_are_kept():
    t = DiffusionSample(tiny_diffusion(), p=1.0, value_range="unit", seed=0, **FAST)
    x = ((_x() + 1) / 2).contiguous(memory_format=torch.channels_last)
    out = t(x)
    assert out.shape == x.shape and out.dtype == x.dtype and out.device == x.device
    assert out.is_contiguous(memory_format=torch.channels_last) and not out.is_contiguous()
    assert float(out.min()) >= 0 and float(out.max()) <= 1


def test_sample_pools_are_seeded_labelled_and_in_physical_units(conditional):
    t = DiffusionSample(conditional, seed=0, **FAST)
    a = t.sample(3, labels=[0, 1, 2], generator=torch.Generator().manual_seed(1))
    b = t.sample(3, labels=[0, 1, 2], generator=torch.Generator().manual_seed(1))
    assert torch.equal(a, b) and a.shape == (3, 2, 16, 16)
    assert float(a[:, 1].min()) >= -1000 and float(a[:, 1].max()) <= 2000  # CT in HU
    assert float(a[:, 0].min()) >= 0 and float(a[:, 0].max()) <= 1900  # MRI in the paper's window


def test_ddpm_and_noisy_ddim_are_seeded_too():
    bundle = tiny_diffusion()
    for options in ({"sampler": "ddpm"}, {"eta": 1.0, "steps": 4}):
        a = DiffusionSample(bundle, p=1.0, value_range="generator", seed=2, **options)(_x(2))
        b = DiffusionSample(bundle, p=1.0, value_range="generator", seed=2, **options)(_x(2))
        assert torch.equal(a, b)


def test_a_source_string_loads_lazily_and_pickles_as_the_string(tmp_path):
    tiny_diffusion().save_pretrained(tmp_path / "ddpm")
    t = DiffusionSample(str(tmp_path / "ddpm"), p=1.0, seed=0, **FAST)
    assert not t._gan.loaded and t.expected_resolution() == 16 and t.modality_names() == ["mri", "ct"]
    assert repr(t).startswith(f"DiffusionSample(diffusion='{tmp_path / 'ddpm'}', steps=3")
    clone = pickle.loads(pickle.dumps(t))
    x = tiny_diffusion().denormalize(_x(2))
    assert torch.equal(clone(x), t(x))
    with pytest.raises(ConfigError, match="DiffusionBundle or a load_diffusion source"):
        DiffusionSample(GanBundle.random(tiny_gan_config()))


def test_the_dictionary_form_gives_each_item_its_label(conditional):
    t = DiffusionSampled(["mri", "ct"], conditional, label_key="label", prob=1.0, seed=0, **FAST)
    batch = {
        "mri": torch.zeros(3, 1, 16, 16),
        "ct": torch.zeros(3, 1, 16, 16),
        "label": torch.tensor([2, 0, 1]),
    }
    out = t(batch)
    assert out["label"] is batch["label"] and t.transform.last_params["labels"].tolist() == [2, 0, 1]
    assert "label_key='label'" in repr(t)
    # without label_key the entry is not read: the classes are the ones drawn without it
    with_entry = DiffusionSampled(["mri", "ct"], conditional, prob=1.0, seed=0, **FAST)
    without_entry = DiffusionSampled(["mri", "ct"], conditional, prob=1.0, seed=0, **FAST)
    with_entry(batch)
    without_entry({k: v for k, v in batch.items() if k != "label"})
    assert torch.equal(
        with_entry.transform.last_params["labels"], without_entry.transform.last_params["labels"]
    )


# -- SG2Sample: the same labelled calls ---------------------------------------------------------------


def test_sg2sample_makes_each_chosen_sample_of_its_labels_class():
    bundle = GanBundle.random(tiny_gan_config().replace(c_dim=3), seed=0)
    t = SG2Sample(bundle, p=1.0, value_range="generator", seed=0)
    labels = torch.tensor([2, 0, 1, 2])
    out, back = t(torch.zeros(4, 2, 16, 16), labels)
    assert back is labels and t.last_params["labels"].tolist() == [2, 0, 1, 2]
    z = t.last_params["z"]
    with torch.no_grad():
        ws = bundle.generator.mapping(z, torch.nn.functional.one_hot(labels, 3).float())
        expected = bundle.generator.synthesis(ws, noise_mode="const").clamp(-1, 1)
    torch.testing.assert_close(out, expected)
    with pytest.raises(ConfigError, match="drop c"):
        SG2Sample(bundle, c=1, p=1.0, value_range="generator")(
            torch.zeros(2, 2, 16, 16), torch.tensor([0, 1])
        )
    pool = t.sample(2, labels=[1, 1], generator=torch.Generator().manual_seed(0), value_range="generator")
    assert pool.shape == (2, 2, 16, 16)


def test_sg2sampled_takes_the_label_key():
    bundle = GanBundle.random(tiny_gan_config().replace(c_dim=3), seed=0)
    t = SG2Sampled(["mri", "ct"], bundle, label_key="y", prob=1.0, seed=0)
    t({"mri": torch.zeros(1, 16, 16), "ct": torch.zeros(1, 16, 16), "y": 2})
    assert t.transform.last_params["labels"].tolist() == [2]
