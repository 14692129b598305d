"""Test helper: a latent-cache writer process, started (and SIGKILLed) by tests/inversion/test_cache.py.

    python _cache_writer.py FOLDER START STOP [--shard-size N] [--sleep S] [--go FILE]

(or :func:`write_range` in a forked process). Writes the entries ``key-{i:05d}`` for
``START <= i < STOP`` (values from :func:`expected_entry`), skipping keys the cache already holds, as
a resumed inversion run would. Prints, flushing stdout: ``READY`` (imports done), ``OPEN`` (cache
opened), ``FLUSHED k1,k2,...`` after each shard is on disk, and ``DONE <added> <skipped>`` at the end.
With ``--go FILE`` it waits for FILE to exist before opening the cache, so a writer can be started
(and import torch) before its turn comes.
"""

from __future__ import annotations

import argparse
import sys
import time
import types
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FINGERPRINT = "5eed" * 16
SETTINGS = {"steps": 7, "space": "W+"}
W_SHAPE = (8, 64)


def expected_entry(i: int) -> dict:
    """The entry stored under ``key-{i:05d}``: a W+ latent and psnr/steps extras."""
    import torch

    w = torch.arange(W_SHAPE[0] * W_SHAPE[1], dtype=torch.float32).reshape(W_SHAPE) * 1e-3 + i
    return {"w": w, "psnr": torch.tensor([float(i), -float(i)]), "steps": torch.tensor(i)}


def _import_cache():
    # The package __init__ imports every subsystem (~5 s on a loaded 2-core machine); the cache needs
    # only torch, safetensors and two small modules, so register bare package objects and skip it.
    for name in ("latent_transforms", "latent_transforms.networks", "latent_transforms.inversion"):
        if name not in sys.modules:
            module = types.ModuleType(name)
            module.__path__ = [str(ROOT / name.replace(".", "/"))]
            sys.modules[name] = module
    from latent_transforms.inversion.cache import LatentCache

    return LatentCache


def write_range(
    folder, start: int, stop: int, *, shard_size: int = 4, sleep: float = 0.0, emit=print
) -> tuple[int, int]:
    """Write ``key-{i:05d}`` for ``start <= i < stop`` unless present; returns (added, skipped)."""
    LatentCache = _import_cache()
    cache = LatentCache(folder, fingerprint=FINGERPRINT, settings=SETTINGS, shard_size=shard_size)
    cache.index_interval = 0.0  # rewrite index.json after every shard: kills hit the flock path too
    emit("OPEN")
    pending: list[str] = []
    added = skipped = 0
    for i in range(start, stop):
        key = f"key-{i:05d}"
        if key in cache:
            skipped += 1
            continue
        if sleep:
            time.sleep(sleep)  # the inversion work
        entry = expected_entry(i)
        added += cache.put(key, entry.pop("w"), **entry)
        pending.append(key)
        if cache.buffered == 0:
            emit("FLUSHED " + ",".join(pending))
            pending = []
    cache.close()
    if pending:
        emit("FLUSHED " + ",".join(pending))
    emit(f"DONE {added} {skipped}")
    return added, skipped


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("folder")
    parser.add_argument("start", type=int)
    parser.add_argument("stop", type=int)
    parser.add_argument("--shard-size", type=int, default=4)
    parser.add_argument("--sleep", type=float, default=0.0)
    parser.add_argument("--go", default=None)
    args = parser.parse_args()
    _import_cache()
    print("READY", flush=True)
    if args.go:
        while not Path(args.go).exists():
            time.sleep(0.005)
    write_range(
        args.folder,
        args.start,
        args.stop,
        shard_size=args.shard_size,
        sleep=args.sleep,
        emit=lambda line: print(line, flush=True),
    )


if __name__ == "__main__":
    main()
