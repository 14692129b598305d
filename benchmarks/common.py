"""Shared helpers for benchmarks: timing with warm-up and synchronisation, and provenance of results."""

from __future__ import annotations

import json
import platform
import shlex
import statistics
import sys
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

from latent_transforms.evaluation import commit_label

RESULTS = Path(__file__).resolve().parent / "results"


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_call(
    fn: Callable[[], Any], device: torch.device, *, warmup: int = 3, repeats: int = 10
) -> dict[str, float]:
    """Median / min / max wall time in seconds of ``fn()`` after ``warmup`` calls, synchronised."""
    for _ in range(warmup):
        fn()
    synchronize(device)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        synchronize(device)
        times.append(time.perf_counter() - start)
    return {
        "median_s": statistics.median(times),
        "min_s": min(times),
        "max_s": max(times),
        "repeats": repeats,
    }


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{platform.processor() or platform.machine()} CPU, {torch.get_num_threads()} threads"


def git_commit() -> str:
    """The checkout's commit (``+dirty`` with local changes); ``LATENT_TRANSFORMS_COMMIT`` when set
    (a copy of the tree without ``.git``, e.g. on a remote GPU machine)."""
    return commit_label(Path(__file__).resolve().parent, short=False)


def provenance(device: torch.device, module: str) -> dict[str, Any]:
    """Who made a result: command, device, commit, versions, date."""
    return {
        "command": " ".join(["python", "-m", module, *(shlex.quote(a) for a in sys.argv[1:])]),
        "device": device_name(device),
        "device_type": device.type,
        "commit": git_commit(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def script_main(
    name: str,
    module: str,
    build_parser: Callable[[], Any],
    run: Callable[[Any], dict[str, Any]],
    markdown: Callable[[dict[str, Any]], str],
) -> None:
    """A benchmark script's ``main``: parse, run, print the table, write ``<name>[-<tag>]-<device>.json``
    (unless ``--no-write``)."""
    args = build_parser().parse_args()
    result = run(args)
    print(markdown(result))
    if not args.no_write:
        tag = getattr(args, "tag", "")
        path = write_result(name + (f"-{tag}" if tag else ""), result, torch.device(args.device), module)
        print(f"wrote {path}")


def write_result(name: str, payload: dict[str, Any], device: torch.device, module: str) -> Path:
    """Write ``benchmarks/results/<name>-<device type>.json`` with provenance; returns the path."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}-{device.type}.json"
    path.write_text(json.dumps({**provenance(device, module), **payload}, indent=2) + "\n")
    return path


#: Dense bf16 tensor-core peak (FLOP/s) of the GPUs the suite runs on, from NVIDIA's data sheets
#: (without sparsity). Matched against ``torch.cuda.get_device_name``; unknown devices give ``None``.
BF16_DENSE_PEAK = {
    "H100 SXM": 989.4e12,
    "H100 80GB HBM3": 989.4e12,
    "H100 PCIe": 756.5e12,
    "H100 NVL": 835.5e12,
    "H200": 989.4e12,
    "A100": 312e12,
    "RTX A5000": 111.1e12,
}


def bf16_peak(device: torch.device) -> float | None:
    """The device's dense bf16 peak in FLOP/s (``None`` on CPU or an unknown GPU)."""
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    for key, value in BF16_DENSE_PEAK.items():
        if key in name:
            return value
    return None


def count_flops(fn: Callable[[], Any]) -> int:
    """FLOPs of one call of ``fn`` (forward and backward passes inside it), by ``torch.utils.flop_counter``
    (convolutions and matrix products; elementwise work is not counted)."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        fn()
    return int(counter.get_total_flops())


def measure(
    fn: Callable[[], Any],
    device: torch.device,
    *,
    warmup: int = 3,
    repeats: int = 10,
    flops: bool = True,
    flops_of: Callable[[], Any] | None = None,
) -> dict[str, Any]:
    """:func:`time_call` plus the peak CUDA memory of the timed calls (GiB), the FLOPs of one call and the
    share of the device's dense bf16 peak those FLOPs reach at the median time. ``flops_of``: count the
    FLOPs on this call instead (the eager twin of a compiled ``fn``, whose kernels the counter cannot see).
    """
    twins = {"fn": flops_of} if flops_of is not None else None
    return measure_side_by_side(
        {"fn": fn}, device, warmup=warmup, repeats=repeats, flops=flops, flops_of=twins
    )["fn"]


def measure_side_by_side(
    calls: dict[str, Callable[[], Any]],
    device: torch.device,
    *,
    warmup: int = 3,
    repeats: int = 10,
    flops: bool = True,
    flops_of: dict[str, Callable[[], Any]] | None = None,
) -> dict[str, dict[str, Any]]:
    """:func:`measure` for several calls, timed in turn: each repeat calls every one once, so a machine
    that slows down or speeds up during the run (a shared CPU) shifts all of them alike and their ratios
    hold. Returns one timing per name (median / min / max seconds, peak CUDA memory of its calls, FLOPs
    and bf16 peak share); ``flops_of[name]`` counts FLOPs on a twin call (see :func:`measure`)."""
    for fn in calls.values():
        for _ in range(warmup):
            fn()
    synchronize(device)
    times: dict[str, list[float]] = {name: [] for name in calls}
    peaks: dict[str, int] = dict.fromkeys(calls, 0)
    for _ in range(repeats):
        for name, fn in calls.items():
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(device)
            start = time.perf_counter()
            fn()
            synchronize(device)
            times[name].append(time.perf_counter() - start)
            if device.type == "cuda":
                peaks[name] = max(peaks[name], torch.cuda.max_memory_allocated(device))
    out: dict[str, dict[str, Any]] = {}
    for name, fn in calls.items():
        median = statistics.median(times[name])
        timing: dict[str, Any] = {
            "median_s": median,
            "min_s": min(times[name]),
            "max_s": max(times[name]),
            "repeats": repeats,
            "peak_memory_gib": round(peaks[name] / 2**30, 3) if device.type == "cuda" else None,
        }
        if flops:
            n = count_flops((flops_of or {}).get(name) or fn)
            peak = bf16_peak(device)
            timing["gflops"] = round(n / 1e9, 3)
            timing["tflops_per_s"] = round(n / median / 1e12, 3)
            timing["bf16_peak_fraction"] = round(n / median / peak, 5) if peak else None
        out[name] = timing
    return out
