"""Efficiency of a generator: wall-clock time per 1000 images and peak memory (the last axis of Xing et al.
2023): on CUDA the peak GPU memory, on the CPU the peak resident set size (RSS) of the process.

Xing et al. 2023 report "inference time (1000 images)" and "GB memory (8 images)" next to fidelity, variety
and utility. :func:`measure_efficiency` times any callable that makes a batch of images, so one number covers
a GAN's sampling, LatentAugment's latent walk or a diffusion sampler alike; report it with the device, the
batch size and the software versions, since all three change it.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from latent_transforms.checks import canonical_device, default_device
from latent_transforms.errors import ConfigError

#: Bytes per GiB, the unit of :attr:`Efficiency.peak_memory_gb`.
BYTES_PER_GIB = 2**30
#: How :attr:`Efficiency.peak_rss_gb` was read (see :func:`peak_rss`).
RSS_SOURCES = ("VmHWM since reset", "ru_maxrss (process lifetime)")


def reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS mark of this process, so the next :func:`peak_rss` covers what follows.

    Linux (4.0 and later) resets it when ``5`` is written to ``/proc/self/clear_refs``; elsewhere nothing
    can be reset and this returns ``False``.

    Example:
        >>> isinstance(reset_peak_rss(), bool)
        True
    """
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def peak_rss(since_reset: bool) -> tuple[float | None, str | None]:
    """The peak resident set size of this process in GiB, and how it was read.

    After a successful :func:`reset_peak_rss` (``since_reset=True``) it is ``VmHWM`` of
    ``/proc/self/status``: the peak since the reset. Otherwise it is ``resource.getrusage``'s
    ``ru_maxrss``: the peak over the process's whole life (an upper bound of the peak of the measured
    work). ``(None, None)`` where neither exists.

    Example:
        >>> gib, source = peak_rss(since_reset=reset_peak_rss())
        >>> gib > 0, source in RSS_SOURCES
        (True, True)
    """
    if since_reset:
        try:
            for line in Path("/proc/self/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024 / BYTES_PER_GIB, RSS_SOURCES[0]
        except OSError:
            pass
    try:
        import resource
    except ImportError:  # Windows
        return None, None
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    scale = 1 if sys.platform == "darwin" else 1024  # bytes on macOS, KiB on Linux
    return maxrss * scale / BYTES_PER_GIB, RSS_SOURCES[1]


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
        peak_rss_gb: with ``measure_efficiency(..., rss=True)`` on the CPU, the peak resident set size of
            the process in GiB during the warm-up and timed batches (:func:`peak_rss`: the whole process,
            model and Python included); else ``None``.
        peak_rss_source: how it was read: ``"VmHWM since reset"`` (Linux) or ``"ru_maxrss (process
            lifetime)"`` (an upper bound where the mark cannot be reset).

    Example:
        >>> Efficiency(12.5, None, 1000, 16, "cpu").to_dict()["seconds_per_1000"]
        12.5
    """

    seconds_per_1000: float
    peak_memory_gb: float | None
    images: int
    batch_size: int
    device: str
    peak_rss_gb: float | None = None
    peak_rss_source: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The fields as a plain dict (for JSON reports); the RSS fields only when measured."""
        data = dataclasses.asdict(self)
        if self.peak_rss_gb is None:
            data.pop("peak_rss_gb")
            data.pop("peak_rss_source")
        return data


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
    rss: bool = False,
) -> Efficiency:
    """Time ``generate_batch`` over ``n_images`` images and record its peak memory (GPU, or RSS on a CPU).

    ``generate_batch(b)`` must return ``b`` images (a tensor whose first dimension is ``b``). It is first
    called ``warmup`` times with ``batch_size`` untimed (CUDA kernels, cuDNN autotuning and allocator
    caches warm up there), then with ``batch_size`` until ``n_images`` are made, the last batch smaller
    if needed. On CUDA the device is synchronised before each clock reading (``time.perf_counter``) and
    the peak-memory counter is reset just before the timed batches, so the peak covers them only. On the
    CPU, with ``rss=True``, the peak RSS of the process is reset (where the kernel allows: Linux) before
    the warm-up and read after the timed batches (:func:`peak_rss`).

    Args:
        generate_batch: makes one batch of images; called with the number of images wanted.
        batch_size: images per call (the last call may ask for fewer).
        n_images: images to time (Xing et al. 2023 report time per 1000 images).
        device: the device the generator runs on, for synchronisation and memory; default: the current
            CUDA device when CUDA is available, else the CPU. Pass ``"cpu"`` to time a CPU generator on a
            machine that has a GPU.
        warmup: untimed calls before the clock starts (``0`` for none).
        progress: show a tqdm progress bar over the timed images.
        rss: on the CPU, also record the process's peak resident set size (``peak_rss_gb``).

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

    measure_rss = rss and not cuda
    rss_reset = reset_peak_rss() if measure_rss else False
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
    rss_gb, source = peak_rss(since_reset=rss_reset) if measure_rss else (None, None)
    return Efficiency(
        seconds_per_1000=elapsed * 1000.0 / n_images,
        peak_memory_gb=peak,
        images=n_images,
        batch_size=batch_size,
        device=str(dev),
        peak_rss_gb=rss_gb,
        peak_rss_source=source,
    )
