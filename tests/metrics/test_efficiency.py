"""Efficiency: time per 1000 images against a fake clock, the batches requested, peak memory."""

from __future__ import annotations

import types

import pytest
import torch

from latent_transforms.errors import ConfigError
from latent_transforms.metrics import efficiency
from latent_transforms.metrics.efficiency import Efficiency, measure_efficiency


class FakeGenerator:
    """Advances a fake clock by 0.125 s per image it makes (binary fractions: exact in float)."""

    def __init__(self) -> None:
        self.now = 100.0
        self.calls: list[int] = []

    def clock(self) -> float:
        return self.now

    def __call__(self, b: int) -> torch.Tensor:
        self.calls.append(b)
        self.now += 0.125 * b
        return torch.zeros(b, 2, 4, 4)


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeGenerator:
    gen = FakeGenerator()
    monkeypatch.setattr(efficiency, "time", types.SimpleNamespace(perf_counter=gen.clock))
    return gen


def test_time_per_1000_images_is_exact_with_a_fake_clock(fake):
    result = measure_efficiency(fake, batch_size=4, n_images=10, device="cpu", warmup=2)
    # two untimed warm-up batches of 4, then 4 + 4 + 2 timed images: 10 * 0.125 s = 1.25 s for 10
    assert fake.calls == [4, 4, 4, 4, 2]
    assert result == Efficiency(
        seconds_per_1000=125.0, peak_memory_gb=None, images=10, batch_size=4, device="cpu"
    )


def test_warmup_is_not_timed(fake, monkeypatch):
    ticks = iter([0.0, 0.5])  # exactly two clock readings, around the timed batches only
    monkeypatch.setattr(efficiency, "time", types.SimpleNamespace(perf_counter=lambda: next(ticks)))
    result = measure_efficiency(fake, batch_size=8, n_images=8, device="cpu", warmup=3)
    assert fake.calls == [8, 8, 8, 8]
    assert result.seconds_per_1000 == 0.5 * 1000 / 8


def test_no_warmup_and_a_batch_larger_than_the_set(fake):
    result = measure_efficiency(fake, batch_size=16, n_images=5, device="cpu", warmup=0, progress=True)
    assert fake.calls == [5]
    assert result.seconds_per_1000 == 125.0
    assert result.to_dict() == {
        "seconds_per_1000": 125.0,
        "peak_memory_gb": None,
        "images": 5,
        "batch_size": 16,
        "device": "cpu",
    }


def test_results_are_frozen():
    result = Efficiency(1.0, None, 10, 2, "cpu")
    with pytest.raises(AttributeError):
        result.images = 3  # type: ignore[misc]


def test_bad_arguments_and_wrong_batches_are_explained(fake):
    with pytest.raises(ConfigError, match="batch_size >= 1"):
        measure_efficiency(fake, batch_size=0, device="cpu")
    with pytest.raises(ConfigError, match="warmup >= 0"):
        measure_efficiency(fake, warmup=-1, device="cpu")
    with pytest.raises(ConfigError, match=r"tensor of 3 images"):
        measure_efficiency(lambda b: torch.zeros(b + 1, 1), batch_size=3, n_images=3, device="cpu")
    with pytest.raises(ConfigError, match="return exactly"):
        measure_efficiency(lambda b: None, device="cpu")  # type: ignore[arg-type,return-value]


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU-only error")
def test_asking_for_cuda_without_it_is_explained():
    with pytest.raises(ConfigError, match="CUDA is not available"):
        measure_efficiency(lambda b: torch.zeros(b), device="cuda")


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_peak_memory_is_recorded_in_gib():
    def generate(b: int) -> torch.Tensor:
        return torch.randn(b, 256, 256, 256, device="cuda").mean(dim=1)  # b * 64 MiB of float32 noise

    result = measure_efficiency(generate, batch_size=4, n_images=8)
    assert result.device.startswith("cuda")
    assert result.peak_memory_gb is not None
    assert result.peak_memory_gb >= 4 * 256**3 * 4 / 2**30  # one batch of noise, in GiB: 0.25
    assert result.seconds_per_1000 > 0.0


def test_on_a_cpu_the_peak_rss_of_the_measured_work_is_recorded_when_asked(fake):
    from latent_transforms.metrics.efficiency import RSS_SOURCES

    def allocate(b: int) -> torch.Tensor:
        big = torch.ones(64 * 2**20 // 4)  # 64 MiB held while the batch is made
        return fake(b) + big[:1].sum() * 0

    result = measure_efficiency(allocate, batch_size=4, n_images=4, device="cpu", rss=True)
    assert result.peak_rss_source in RSS_SOURCES
    assert result.peak_rss_gb is not None and result.peak_rss_gb >= 64 / 1024
    assert result.to_dict()["peak_rss_gb"] == result.peak_rss_gb and result.peak_memory_gb is None
    plain = measure_efficiency(fake, batch_size=4, n_images=4, device="cpu")
    assert plain.peak_rss_gb is None and "peak_rss_gb" not in plain.to_dict()
