"""Efficiency of a generator: wall-clock time per 1000 images and peak GPU memory (the last axis of
Xing et al. 2023).

Xing et al. 2023 report "inference time (1000 images)" and "GB memory (8 images)" next to fidelity, variety
and utility. :func:`measure_efficiency` times any callable that makes a batch of images, so one number covers
a GAN's sampling, LatentAugment's latent walk or a diffusion sampler alike; report it with the device, the
batch size and the software versions, since all three change it.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import Any

import torch
from tqdm.auto import tqdm

from latent_transforms.checks import canonical_device, default_device
from latent_transforms.errors import ConfigError

#: Bytes per GiB, the unit of :attr:`Efficiency.peak_memory_gb`.
BYTES_PER_GIB = 2**30


@dataclasses.dataclass(frozen=True)
class Efficiency:
    """What :func:`measure_efficiency` measured.

    Attributes:
        seconds_per_1000: wall-clock seconds per 1000 images over the timed batches (warm-up excluded).
        peak_memory_gb: on CUDA, ``torch.cuda.max_memory_allocated`` during the timed batches in GiB
            (``2**30`` bytes), counting every tensor the process holds on that device (the model's
            weights included) but not the caching allocator's reserve nor the CUDA context; ``None``
            on the CPU.
        images: images generated in the timed batches.
        batch_size: the largest batch requested.
        device: the device measured (``"cpu"``, ``"cuda:0"``, ...).

    Example:
        >>> Efficiency(12.5, None, 1000, 16, "cpu").to_dict()["seconds_per_1000"]
        12.5
    """

    seconds_per_1000: float
    peak_memory_gb: float | None
    images: int
    batch_size: int
    device: str

    def to_dict(self) -> dict[str, Any]:
        """The fields as a plain dict (for JSON reports)."""
        return dataclasses.asdict(self)


def _resolve_device(device: str | torch.device | None) -> torch.device:
    return canonical_device(default_device(device))  # CUDA with its index: timings name one device


def measure_efficiency(
    generate_batch: Callable[[int], torch.Tensor],
    *,
    batch_size: int = 16,
    n_images: int = 1000,
    device: str | torch.device | None = None,
    warmup: int = 1,
    progress: bool = False,
) -> Efficiency:
    """Time ``generate_batch`` over ``n_images`` images and record its peak GPU memory.

    ``generate_batch(b)`` must return ``b`` images (a tensor whose first dimension is ``b``). It is first
    called ``warmup`` times with ``batch_size`` untimed (CUDA kernels, cuDNN autotuning and allocator
    caches warm up there), then with ``batch_size`` until ``n_images`` are made, the last batch smaller
    if needed. On CUDA the device is synchronised before each clock reading (``time.perf_counter``) and
    the peak-memory counter is reset just before the timed batches, so the peak covers them only.

    Args:
        generate_batch: makes one batch of images; called with the number of images wanted.
        batch_size: images per call (the last call may ask for fewer).
        n_images: images to time (Xing et al. 2023 report time per 1000 images).
        device: the device the generator runs on, for synchronisation and memory; default: the current
            CUDA device when CUDA is available, else the CPU. Pass ``"cpu"`` to time a CPU generator on a
            machine that has a GPU.
        warmup: untimed calls before the clock starts (``0`` for none).
        progress: show a tqdm progress bar over the timed images.

    Returns:
        An :class:`Efficiency`.

    Example:
        >>> calls = []
        >>> def generate(b):
        ...     calls.append(b)
        ...     return torch.zeros(b, 1, 4, 4)
        >>> result = measure_efficiency(generate, batch_size=4, n_images=10, device="cpu")
        >>> calls, result.images, result.peak_memory_gb  # one untimed warm-up batch, then 4 + 4 + 2
        ([4, 4, 4, 2], 10, None)
    """
    if batch_size < 1 or n_images < 1 or warmup < 0:
        raise ConfigError(
            f"expected batch_size >= 1, n_images >= 1 and warmup >= 0, got batch_size={batch_size}, "
            f"n_images={n_images}, warmup={warmup}. Fix: pass positive counts."
        )
    dev = _resolve_device(device)
    cuda = dev.type == "cuda"

    def run(b: int) -> None:
        out = generate_batch(b)
        if not isinstance(out, torch.Tensor) or out.ndim == 0 or out.shape[0] != b:
            got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            raise ConfigError(
                f"expected generate_batch({b}) to return a tensor of {b} images [{b}, ...], got {got}. "
                "Fix: make the callable return exactly the number of images it is asked for."
            )

    def sync() -> None:
        if cuda:
            torch.cuda.synchronize(dev)

    for _ in range(warmup):
        run(batch_size)
    sync()
    if cuda:
        torch.cuda.reset_peak_memory_stats(dev)
    made = 0
    with tqdm(total=n_images, desc="measuring efficiency", unit="img", disable=not progress) as bar:
        start = time.perf_counter()
        while made < n_images:
            b = min(batch_size, n_images - made)
            run(b)
            made += b
            bar.update(b)
        sync()
        elapsed = time.perf_counter() - start
    peak = torch.cuda.max_memory_allocated(dev) / BYTES_PER_GIB if cuda else None
    return Efficiency(
        seconds_per_1000=elapsed * 1000.0 / n_images,
        peak_memory_gb=peak,
        images=n_images,
        batch_size=batch_size,
        device=str(dev),
    )
