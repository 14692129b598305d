"""Shared helpers for benchmarks: timing with warm-up and synchronisation, and provenance of results."""

from __future__ import annotations

import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

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
    if os.environ.get("LATENT_TRANSFORMS_COMMIT"):
        return os.environ["LATENT_TRANSFORMS_COMMIT"]
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            cwd=Path(__file__).resolve().parent,
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            cwd=Path(__file__).resolve().parent,
        ).stdout.strip()
        return out.stdout.strip() + ("+dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


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


def write_result(name: str, payload: dict[str, Any], device: torch.device, module: str) -> Path:
    """Write ``benchmarks/results/<name>-<device type>.json`` with provenance; returns the path."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}-{device.type}.json"
    path.write_text(json.dumps({**provenance(device, module), **payload}, indent=2) + "\n")
    return path
