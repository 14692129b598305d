"""The shared base class: per-sample p, seeding, value ranges, input checks, the torchvision v2 protocol."""

from __future__ import annotations

import pickle
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import given, strategies as st
from torchvision import tv_tensors
from torchvision.transforms import v2

from latent_transforms.data.windows import IntensityWindow
from latent_transforms.errors import ConfigError
from latent_transforms.transforms.base import (
    RandomTransform,
    check_cuda_in_worker,
    from_working_range,
    to_working_range,
)

WINDOWS = [IntensityWindow(0.0, 1900.0), IntensityWindow(-1000.0, 2000.0, "HU")]


class AddNoise(RandomTransform):
    """A stand-in GAN-range transform: adds a per-sample random offset in [-1, 1] space."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.calls: list[int] = []

    def draw_params(self, batch: int, generator: torch.Generator) -> dict[str, Any]:
        return {"offset": torch.rand(batch, generator=generator) * 0.2 - 0.1}

    def apply_batch(self, x: torch.Tensor, params: dict[str, Any], kind: str) -> torch.Tensor:
        self.calls.append(x.shape[0])
        return (x + params["offset"].to(x.device).view(-1, 1, 1, 1)).clamp(-1, 1)

    def expected_channels(self) -> int | None:
        return 2

    def windows(self) -> list[IntensityWindow]:
        return WINDOWS


def physical_batch(b: int = 4, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    u = torch.rand(b, 2, 8, 8, generator=g)
    return torch.cat([u[:, :1] * 1900.0, u[:, 1:] * 3000.0 - 1000.0], dim=1)


def test_p_zero_returns_the_input_object_and_computes_nothing() -> None:
    t = AddNoise(p=0.0, seed=0)
    x = physical_batch()
    assert t(x) is x
    assert t.calls == []


def test_only_the_chosen_samples_are_computed() -> None:
    t = AddNoise(p=0.5, seed=3)
    x = physical_batch(16)
    y = t(x)
    chosen = t.last_params["apply"]
    assert 0 < int(chosen.sum()) < 16
    assert t.calls == [int(chosen.sum())]
    assert torch.equal(y[~chosen], x[~chosen])
    assert not torch.equal(y[chosen], x[chosen])


def test_single_sample_gets_one_draw_and_keeps_its_shape() -> None:
    t = AddNoise(p=1.0, seed=0)
    x = physical_batch(1)[0]
    y = t(x)
    assert y.shape == x.shape and t.last_params["batch"] == 1


def test_same_seed_same_output_and_set_random_state_restarts_the_stream() -> None:
    x = physical_batch(8)
    a, b = AddNoise(p=0.5, seed=7), AddNoise(p=0.5, seed=7)
    first = a(x)
    assert torch.equal(first, b(x))
    assert not torch.equal(a(x), first)  # the stream moves on
    assert torch.equal(a.set_random_state(7)(x), first)
    state = np.random.RandomState(5)
    a.set_random_state(state=state)
    assert a.seed == np.random.RandomState(5).randint(0, 2**31)


def test_seed_none_follows_torch_manual_seed() -> None:
    torch.manual_seed(11)
    s1 = AddNoise().seed
    torch.manual_seed(11)
    assert AddNoise().seed == s1


def test_replaying_params_on_another_input_uses_the_same_draw() -> None:
    t = AddNoise(p=1.0, seed=0, value_range="generator")
    x = torch.zeros(3, 2, 4, 4)
    y = t(x)
    replay = t.transform(torch.zeros(3, 2, 4, 4), t.last_params)
    assert torch.equal(y, replay)


@given(
    st.integers(1, 5),
    st.sampled_from([torch.float32, torch.float64, torch.int16, torch.uint8]),
    st.floats(0.0, 1.0),
)
def test_shape_dtype_and_device_preserved(batch: int, dtype: torch.dtype, p: float) -> None:
    x = physical_batch(batch).to(dtype) if dtype != torch.uint8 else torch.zeros(batch, 2, 8, 8).to(dtype)
    y = AddNoise(p=p, seed=1)(x)
    assert y.shape == x.shape and y.dtype == x.dtype and y.device == x.device


@given(st.sampled_from(["physical", "unit", "generator"]), st.integers(0, 2**16))
def test_working_range_round_trip(value_range: str, seed: int) -> None:
    x = to_working_range(physical_batch(2, seed), "physical", WINDOWS)  # in [-1, 1]
    if value_range == "unit":
        caller = (x + 1) / 2
    elif value_range == "generator":
        caller = x
    else:
        caller = from_working_range(x, physical_batch(2), "physical", WINDOWS)
    back = from_working_range(to_working_range(caller, value_range, WINDOWS), caller, value_range, WINDOWS)
    assert torch.allclose(back, caller, atol=1e-3 if value_range == "physical" else 1e-6)


def test_uint8_is_eight_bit_windowed_and_rounds_back() -> None:
    x = torch.arange(256, dtype=torch.uint8).reshape(1, 1, 16, 16)
    y = to_working_range(x, "physical", None)
    assert y.min() == -1 and y.max() == 1
    assert torch.equal(from_working_range(y, x, "physical", None), x)


def test_physical_without_windows_says_what_to_pass() -> None:
    with pytest.raises(ConfigError, match="value_range='generator'"):
        to_working_range(torch.zeros(1, 1, 2, 2), "physical", None)


@pytest.mark.parametrize(
    ("x", "message"),
    [
        ([1.0, 2.0], "torch.Tensor"),
        (torch.zeros(8, 8), "2-D tensor"),
        (torch.zeros(0, 2, 8, 8), "empty"),
        (torch.zeros(2, 3, 8, 8), "expects 2 channels"),
        (torch.zeros(2, 8, 8, dtype=torch.bool), "dtype"),
    ],
)
def test_bad_inputs_are_refused_with_the_fix(x: Any, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        AddNoise(p=1.0)(x)


def test_nan_input_names_the_sample() -> None:
    x = physical_batch(3)
    x[2, 1, 0, 0] = float("nan")
    with pytest.raises(ConfigError, match=r"NaN or Inf values \(in sample\(s\) \[2\]\)"):
        AddNoise(p=1.0)(x)


def test_generator_range_input_outside_its_range_suggests_physical() -> None:
    with pytest.raises(ConfigError, match="value_range='physical'"):
        AddNoise(p=1.0, value_range="generator")(physical_batch(1))


@pytest.mark.parametrize("p", [-0.1, 1.5, True, "0.5"])
def test_invalid_p(p: Any) -> None:
    with pytest.raises(ConfigError, match="probability"):
        AddNoise(p=p)


def test_masks_are_refused_by_gan_transforms() -> None:
    t = AddNoise(p=1.0, value_range="generator")
    with pytest.raises(ConfigError, match="mask cannot follow"):
        t(tv_tensors.Image(torch.zeros(2, 8, 8)), tv_tensors.Mask(torch.zeros(1, 8, 8)))


def test_works_in_v2_compose_and_random_apply_and_keeps_tv_tensor_types() -> None:
    t = AddNoise(p=1.0, seed=0, value_range="generator")
    pipeline = v2.Compose([v2.RandomApply([t], p=1.0), v2.Identity()])
    out = pipeline({"image": tv_tensors.Image(torch.zeros(2, 8, 8)), "label": 3})
    assert isinstance(out["image"], tv_tensors.Image) and out["label"] == 3
    assert not torch.equal(out["image"].as_subclass(torch.Tensor), torch.zeros(2, 8, 8))


def test_pickles_and_repr_shows_parameters() -> None:
    t = AddNoise(p=0.25, seed=4)
    clone = pickle.loads(pickle.dumps(t))
    x = physical_batch(4)
    assert torch.equal(clone(x), t(x))
    assert repr(t) == "AddNoise(p=0.25, seed=4)"
    assert t.state_dict() == {}


def test_worker_draws_do_not_depend_on_which_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    class Info:
        def __init__(self, worker: int) -> None:
            self.id, self.seed = worker, 1000 + worker

    t = AddNoise(p=1.0, seed=0)
    x = physical_batch(1)[0]
    monkeypatch.setattr(torch.utils.data, "get_worker_info", lambda: Info(0))
    a = t(x)
    monkeypatch.setattr(torch.utils.data, "get_worker_info", lambda: Info(3))
    assert torch.equal(t(x), a)  # same epoch seed (1000), same content: same draw in any worker
    other = physical_batch(1, seed=1)[0]
    assert not torch.equal(t(other) - other, a - x)


def test_set_random_state_inside_a_worker_leaves_the_transform_as_it_is(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    t = AddNoise(p=1.0, seed=0)
    monkeypatch.setattr(torch.utils.data, "get_worker_info", lambda: object())
    assert t.set_random_state(99) is t and t.seed == 0  # MONAI's per-worker reseed changes nothing
    monkeypatch.setattr(torch.utils.data, "get_worker_info", lambda: None)
    assert t.set_random_state(99).seed == 99  # outside workers it reseeds


def test_cuda_in_a_forked_worker_names_the_ways_out(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.utils.data, "get_worker_info", lambda: object())
    monkeypatch.setattr(torch.cuda, "_is_in_bad_fork", lambda: True)
    with pytest.raises(ConfigError, match=r"GPUAugment.*ThreadDataLoader.*spawn"):
        check_cuda_in_worker(torch.device("cuda"))
    check_cuda_in_worker(torch.device("cpu"))


def test_pickled_state_holds_the_generator_as_bytes_for_spawn_workers() -> None:
    from latent_transforms.transforms.base import PackedGenerator

    t = AddNoise(p=0.5, seed=2)
    state = t.__getstate__()
    assert isinstance(state["_generator"], PackedGenerator)
    assert not any(isinstance(v, torch.Generator) for v in state.values())
