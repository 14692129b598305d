"""Invert a whole paired dataset into a :class:`LatentCache`: resumable, shardable, with a report.

What ``latent-transforms invert`` runs. Every item of the dataset (per-modality ``[1, H, W]`` tensors in
physical units) is stacked in the bundle's channel order and normalised with its windows;
items whose key is already in the cache are skipped (so a killed run resumes where it stopped); the rest
are projected ``batch_size`` at a time and written to the cache with their PSNR, SSIM and step count.
Under ``torchrun`` every rank takes the items ``i % world_size == rank`` and writes its own shards (the
cache is safe for concurrent writers); rank 0 then writes the report and the dataset statistics.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torchvision.utils import save_image
from tqdm.auto import tqdm

from latent_transforms.checks import check_choice
from latent_transforms.data.items import stack_modalities
from latent_transforms.errors import ConfigError
from latent_transforms.features.perceptual import PerceptualNetwork
from latent_transforms.files import atomic_write
from latent_transforms.inversion.cache import LatentCache, image_key
from latent_transforms.inversion.projector import ProjectionResult, Projector
from latent_transforms.networks.bundle import GanBundle
from latent_transforms.networks.preview import sample_grid
from latent_transforms.objectives.stats import DatasetStats

KEY_MODES = ("content", "dataset")
STATS_NAME = "stats.safetensors"
REPORT_NAME = "report.json"
GRID_NAME = "reconstructions.png"
PERCENTILES = (5, 25, 50, 75, 95)


@dataclass
class ShardInfo:
    """Which part of the work this process does (from ``torchrun``'s environment, or 0 of 1)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @classmethod
    def from_env(cls) -> ShardInfo:
        """``RANK``/``WORLD_SIZE``/``LOCAL_RANK`` as set by ``torchrun`` (defaults 0, 1, 0)."""
        return cls(
            int(os.environ.get("RANK", 0)),
            int(os.environ.get("WORLD_SIZE", 1)),
            int(os.environ.get("LOCAL_RANK", 0)),
        )


def item_image(item: dict[str, Any], bundle: GanBundle) -> torch.Tensor:
    """A dataset item as one image ``[C, R, R]`` in ``[-1, 1]`` (the bundle's channels and windows)."""
    windows = [m.window for m in bundle.config.modalities]
    image = stack_modalities(item, bundle.modalities, windows)
    if tuple(image.shape[-2:]) != (bundle.resolution, bundle.resolution):
        raise ConfigError(
            f"dataset images are {tuple(image.shape[-2:])}, the GAN makes {bundle.resolution} px. Fix: open "
            f"the dataset with resolution={bundle.resolution} (open_paired_dataset(..., resolution=...))."
        )
    return image


def entry_key(item: dict[str, Any], image: torch.Tensor, mode: str) -> str:
    """The cache key of an item: ``image_key`` of its normalised image, or its dataset ``"key"``."""
    if mode == "content":
        return image_key(image)
    if "key" not in item:
        raise ConfigError(
            "key='dataset' needs items with a 'key' field; this dataset has none. Use 'content'."
        )
    return str(item["key"])


def _batches(
    dataset: Any, indices: Sequence[int], bundle: GanBundle, cache: LatentCache, mode: str, batch_size: int
) -> Iterator[tuple[list[str], torch.Tensor, int]]:
    """Yield (keys, images [b, C, R, R], skipped so far) for the items not yet in the cache."""
    keys: list[str] = []
    images: list[torch.Tensor] = []
    skipped = 0
    for i in indices:
        item = dataset[i]
        image = item_image(item, bundle)
        key = entry_key(item, image, mode)
        if key in cache or key in keys:
            skipped += 1
            continue
        keys.append(key)
        images.append(image)
        if len(keys) == batch_size:
            yield keys, torch.stack(images), skipped
            keys, images = [], []
    if keys:
        yield keys, torch.stack(images), skipped


def invert_dataset(
    bundle: GanBundle,
    dataset: Any,
    cache: LatentCache,
    projector: Projector,
    *,
    key: str = "content",
    limit: int | None = None,
    shard: ShardInfo | None = None,
    progress: bool = True,
    grid_path: str | Path | None = None,
    grid_samples: int = 8,
) -> dict[str, Any]:
    """Invert ``dataset`` (this rank's share) into ``cache``; returns counts, timing and running PSNR.

    Items already in the cache are skipped. ``limit`` takes only the first ``limit`` items of the
    dataset. ``grid_path`` writes a PNG of the first ``grid_samples`` real images of this run above their
    reconstructions (rows: each modality real, then reconstructed). With ``progress`` a bar counts the
    images and, below it, the projector's bar counts the steps of the batch in flight, so something
    moves inside a batch too.
    """
    check_choice("key", key, KEY_MODES)
    shard = shard or ShardInfo()
    n = len(dataset) if limit is None else min(limit, len(dataset))
    indices = list(range(shard.rank, n, shard.world_size))
    bar = tqdm(total=len(indices), desc="inverting", unit="img", disable=not progress)
    done = skipped = 0
    psnr_sum = 0.0
    started = time.perf_counter()
    grid: list[tuple[torch.Tensor, torch.Tensor]] = []
    for keys, images, skipped_now in _batches(dataset, indices, bundle, cache, key, projector.batch_size):
        bar.update(skipped_now - skipped)
        skipped = skipped_now
        result: ProjectionResult = _project(projector, images, progress)
        cache.put_batch(
            keys,
            result.w.cpu(),
            psnr=result.psnr.cpu(),
            ssim=result.ssim.cpu(),
            steps=result.steps.cpu(),
        )
        cache.flush()
        if len(grid) < grid_samples:
            grid.append((images[: grid_samples - len(grid)], result.images[: grid_samples - len(grid)].cpu()))
        done += len(keys)
        psnr_sum += float(result.psnr.mean(dim=1).sum())
        elapsed = time.perf_counter() - started
        bar.update(len(keys))
        bar.set_postfix(img_s=f"{done / elapsed:.2f}", psnr=f"{psnr_sum / done:.2f}", refresh=False)
    bar.update(len(indices) - bar.n)
    bar.close()
    cache.close()
    if grid_path is not None and grid:
        real = torch.cat([g[0] for g in grid])
        recon = torch.cat([g[1] for g in grid])
        save_reconstruction_grid(real, recon, grid_path)
    seconds = time.perf_counter() - started
    return {
        "inverted": done,
        "skipped": len(indices) - done,
        "seconds": round(seconds, 2),
        "images_per_s": round(done / seconds, 4) if done else None,
        "mean_psnr_this_run": round(psnr_sum / done, 3) if done else None,
    }


def _project(projector: Projector, images: torch.Tensor, progress: bool) -> ProjectionResult:
    """``projector.project(images)`` with its per-step bar shown when ``progress`` (then restored)."""
    shown = projector.progress
    projector.progress = progress or shown
    try:
        return projector.project(images)
    finally:
        projector.progress = shown


def save_reconstruction_grid(real: torch.Tensor, recon: torch.Tensor, path: str | Path) -> Path:
    """PNG: for each modality, a row of real images ``[N, C, R, R]`` and a row of their reconstructions."""
    rows = torch.stack([real, recon.to(real.device)], dim=2).flatten(
        1, 2
    )  # [N, 2C, R, R]: real, recon per channel
    grid = sample_grid(rows)
    return atomic_write(path, lambda tmp: save_image(grid, tmp, format="png"))


def quality_report(cache: LatentCache, modalities: Sequence[str]) -> dict[str, Any]:
    """Mean and percentiles of PSNR and SSIM per modality over every entry of ``cache``.

    Entries without ``psnr``/``ssim`` fields (e.g. written by other tools) are left out.
    """
    keys = list(cache)
    if not keys or "psnr" not in cache.fields:
        return {"entries": len(keys)}
    psnr = torch.stack([cache.entry(k)["psnr"] for k in keys]).double()
    ssim = torch.stack([cache.entry(k)["ssim"] for k in keys]).double()
    q = torch.tensor([p / 100 for p in PERCENTILES], dtype=torch.float64)
    report: dict[str, Any] = {"entries": len(keys)}
    for i, name in enumerate(modalities):
        report[name] = {
            metric: {
                "mean": round(float(values[:, i].mean()), 4),
                **{
                    f"p{p}": round(float(v), 4)
                    for p, v in zip(PERCENTILES, values[:, i].quantile(q), strict=True)
                },
            }
            for metric, values in (("psnr", psnr), ("ssim", ssim))
        }
    report["mean"] = {"psnr": round(float(psnr.mean()), 4), "ssim": round(float(ssim.mean()), 4)}
    return report


def compute_cache_stats(
    bundle: GanBundle,
    dataset: Any,
    cache: LatentCache,
    perceptual: PerceptualNetwork | None,
    *,
    key: str = "content",
    limit: int | None = None,
    batch_size: int = 32,
    patch_size: int = 64,
    device: torch.device | str = "cpu",
    progress: bool = True,
) -> DatasetStats:
    """:class:`DatasetStats` of the dataset images and their cached latents (uncached: images only)."""
    n = len(dataset) if limit is None else min(limit, len(dataset))
    acc = DatasetStats.accumulator(
        resolution=bundle.resolution,
        channels=len(bundle.modalities),
        perceptual=perceptual,
        patch_size=patch_size,
        device=device,
    )
    images: list[torch.Tensor] = []
    latents: list[torch.Tensor] = []

    def flush() -> None:
        batch = torch.stack(images).to(device)
        acc.update(images=batch, w=torch.stack(latents).to(device) if latents else None)
        images.clear()
        latents.clear()

    for i in tqdm(range(n), desc="dataset statistics", unit="img", disable=not progress):
        item = dataset[i]
        image = item_image(item, bundle)
        images.append(image)
        k = entry_key(item, image, key)
        if k in cache:
            latents.append(cache.get(k))
        if len(images) == batch_size:
            if latents and len(latents) != len(images):  # keep images and latents batches independent
                acc.update(w=torch.stack(latents).to(device))
                latents.clear()
            flush()
    if images:
        if latents and len(latents) != len(images):
            acc.update(w=torch.stack(latents).to(device))
            latents.clear()
        flush()
    return acc.finalize()


def write_report(folder: str | Path, report: dict[str, Any]) -> Path:
    """Write ``report.json`` into the cache folder (atomically)."""
    return atomic_write(Path(folder) / REPORT_NAME, json.dumps(report, indent=2) + "\n")


def invert_to_cache(
    bundle: GanBundle,
    dataset: Any,
    folder: str | Path,
    projector: Projector,
    *,
    key: str = "content",
    perceptual: PerceptualNetwork | None = None,
    progress: bool = False,
    limit: int | None = None,
    shard: ShardInfo | None = None,
    grid_path: str | Path | None = None,
    stats: bool = True,
    device: torch.device | str | None = None,
    stats_info: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Invert ``dataset`` into a latent cache at ``folder`` and store its :class:`DatasetStats`
    (``stats.safetensors``) next to it: what ``latent-transforms invert`` does, in one call.

    Items already in the cache are skipped. The statistics use ``perceptual`` (default
    EfficientNet-Lite0, the network LatentAugment then rebuilds) on ``device`` (default the CPU) and
    carry ``stats_info`` in their ``info``; ``stats=False`` skips them. ``limit``, ``shard`` and
    ``grid_path`` are :func:`invert_dataset`'s. Under ``torchrun`` (a ``shard`` of several ranks) every
    rank inverts its share, all wait for each other (a ``torch.distributed`` barrier), and rank 0 alone
    writes the grid and the statistics. Returns :func:`invert_dataset`'s summary.

    Example:
        >>> import tempfile
        >>> from latent_transforms import GanBundle, GanConfig, PelvisPhantom
        >>> from latent_transforms.features.perceptual import perceptual_network
        >>> bundle = GanBundle.random(GanConfig(resolution=16, channel_base=256, channel_max=32))
        >>> projector = Projector(bundle, steps=2, perceptual=None, progress=False)
        >>> data, net = PelvisPhantom(1, 3, resolution=16), perceptual_network("random")
        >>> with tempfile.TemporaryDirectory() as d:
        ...     summary = invert_to_cache(bundle, data, d, projector, perceptual=net)
        ...     summary["inverted"], (Path(d) / STATS_NAME).is_file()
        (3, True)
    """
    from latent_transforms.features.perceptual import perceptual_network

    shard = shard or ShardInfo()
    main_rank = shard.rank == 0
    cache = LatentCache(folder, fingerprint=bundle.fingerprint, settings=projector.settings())
    summary = invert_dataset(
        bundle,
        dataset,
        cache,
        projector,
        key=key,
        limit=limit,
        shard=shard,
        progress=progress and main_rank,
        grid_path=grid_path if main_rank else None,
    )
    if shard.world_size > 1:
        import torch.distributed as dist

        dist.barrier()
    if not stats or not main_rank:
        return summary
    net = perceptual if perceptual is not None else perceptual_network("efficientnet-lite0", device=device)
    result = compute_cache_stats(
        bundle,
        dataset,
        LatentCache.open(folder),
        net,
        key=key,
        limit=limit,
        device=device if device is not None else "cpu",
        progress=progress,
    )
    result.info.update({"generator_fingerprint": bundle.fingerprint, **(stats_info or {})})
    result.save(Path(folder) / STATS_NAME)
    return summary
