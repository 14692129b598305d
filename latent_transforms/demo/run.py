"""The demo job: the library's main job on the built-in default, offline, on a CPU.

It loads the shipped bundle ``builtin:pelvis-phantom-64``, takes a few held-out slices of the built-in
pelvis phantom (patients the GAN never saw), inverts them into a latent cache (kept in the output folder,
so a second run skips the inversion), and augments them with the three policies of the paper:

- ``StandardDA``: flip, rotation, translation, elastic deformation;
- ``SG2Sample``: random GAN samples (the usual GAN augmentation);
- ``LatentAugment``: a guided walk from each slice's own latent (the F1 preset).

It writes ``augmentations.png`` (rows: real / its inversion G(w*) / StandardDA / SG2Sample /
LatentAugment, for MRI and CT),
``table.md`` and ``report.json``: each policy's mean distance to the real set in pixel space (MSE in
``[-1, 1]``), perceptual space (the EfficientNet-Lite0 distance LatentAugment uses) and latent space (MSE
to the real latents; StandardDA's images, which no latent made, are projected first).
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from latent_transforms.checks import default_device
from latent_transforms.data.items import stack_modalities
from latent_transforms.data.open import open_paired_dataset
from latent_transforms.data.splits import split_dataset
from latent_transforms.features.perceptual import PerceptualNetwork, perceptual_network
from latent_transforms.files import atomic_write
from latent_transforms.inversion.cache import LatentCache, image_key
from latent_transforms.inversion.job import STATS_NAME
from latent_transforms.inversion.projector import Projector
from latent_transforms.networks.bundle import GanBundle, load_gan
from latent_transforms.networks.preview import labelled_grid
from latent_transforms.objectives.stats import DatasetStats
from latent_transforms.transforms.latent_augment import LatentAugment
from latent_transforms.transforms.sg2sample import SG2Sample
from latent_transforms.transforms.standard_da import StandardDA

logger = logging.getLogger(__name__)

__all__ = [
    "DEMO_DATA",
    "DEMO_GAN",
    "DemoResult",
    "format_summary",
    "held_out_slices",
    "policy_distances",
    "run_demo",
]

#: The bundle the demo runs on.
DEMO_GAN = "builtin:pelvis-phantom-64"
#: The phantom the built-in bundle was trained on (its config's ``training.data``), split by patient
#: 0.7 / 0.2 / 0.1 with seed 0; the demo takes its slices from the validation patients.
DEMO_DATA = "phantom:patients=48,slices=32,seed=0"
GRID_NAME = "augmentations.png"
TABLE_NAME = "table.md"
REPORT_NAME = "report.json"


@dataclass
class DemoResult:
    """What :func:`run_demo` made: the files, the distance table and the time it took."""

    folder: Path
    grid: Path
    table: list[dict[str, Any]]
    seconds: float
    inverted: int
    info: dict[str, Any] = field(default_factory=dict)

    def markdown(self) -> str:
        """The distance table as Markdown."""
        lines = [
            "| policy | pixel MSE | perceptual | latent MSE |",
            "|---|---|---|---|",
        ]
        for row in self.table:
            lines.append(
                f"| {row['policy']} | {row['pixel']:.4f} | {row['perceptual']:.4f} | {row['latent']:.4f} |"
            )
        return "\n".join(lines)


def held_out_slices(
    bundle: GanBundle, n: int, *, data: str = DEMO_DATA, split: str = "val"
) -> tuple[torch.Tensor, list[str]]:
    """``n`` slices of the held-out phantom patients, spread evenly over the split.

    Returns:
        ``(images, keys)``: ``[n, C, R, R]`` in ``[-1, 1]`` (the bundle's channels and windows) and their
        dataset keys ``"<patient>/<slice>"``.

    Example:
        >>> from latent_transforms import GanBundle, GanConfig
        >>> bundle = GanBundle.random(GanConfig(resolution=16, channel_base=256, channel_max=32))
        >>> images, keys = held_out_slices(bundle, 2, data="phantom:patients=10,slices=4")
        >>> images.shape, len(keys)
        (torch.Size([2, 2, 16, 16]), 2)
    """
    dataset = open_paired_dataset(data, resolution=bundle.resolution)
    subset = split_dataset(dataset, (0.7, 0.2, 0.1), seed=0)[split]
    if n < 1 or n > len(subset):
        raise ValueError(f"n must be in [1, {len(subset)}] (slices in the {split} split), got {n}.")
    picks = torch.linspace(0, len(subset) - 1, n).round().long().tolist()
    windows = [m.window for m in bundle.config.modalities]
    items = [subset[i] for i in picks]
    images = torch.stack([stack_modalities(item, bundle.modalities, windows) for item in items])
    return images, [str(item["key"]) for item in items]


def _invert_missing(
    projector: Projector, cache: LatentCache, images: torch.Tensor, progress: bool
) -> tuple[torch.Tensor, int]:
    """Latents of ``images`` from the cache, projecting (and storing) the ones it lacks."""
    _, found = cache.get_batch(images.cpu(), missing="mask")
    todo = (~found).nonzero().flatten()
    if len(todo):
        if progress:
            logger.info("inverting %d images (once; cached in %s)", len(todo), cache.folder)
        result = projector.project(images[todo])
        cache.put_batch([image_key(x) for x in images[todo].cpu()], result.w.cpu(), psnr=result.psnr.cpu())
        cache.flush()
    w, _ = cache.get_batch(images.cpu())
    return w.to(images.device), len(todo)


def policy_distances(
    stats: DatasetStats, perceptual: PerceptualNetwork, images: torch.Tensor, w: torch.Tensor
) -> dict[str, float]:
    """Mean distance of a set to the real set: pixel MSE, perceptual (every patch position), latent MSE.

    Each is the exact mean over the real images (or latents) in ``stats`` of the per-pair distance,
    averaged over ``images`` ``[B, C, R, R]`` (in ``[-1, 1]``) and their latents ``w``.

    Example:
        >>> net = perceptual_network("random")
        >>> real = torch.rand(4, 2, 16, 16) * 2 - 1
        >>> stats = DatasetStats.compute([(real, torch.zeros(4, 8))], perceptual=net, progress=False)
        >>> d = policy_distances(stats, net, real, torch.zeros(4, 8))
        >>> sorted(d), d["latent"]
        (['latent', 'perceptual', 'pixel'], 0.0)
    """
    with torch.no_grad():
        pixel = float(stats.pixel_loss(images).mean())
        per_position = []
        for index in range(stats.num_positions):
            positions = torch.full((images.shape[0],), index, dtype=torch.long)
            per_position.append(stats.image_perceptual_loss(perceptual, images, positions).mean())
        perc = float(torch.stack(per_position).mean())
        latent = float(stats.latent_loss(w).mean())
    return {"pixel": pixel, "perceptual": perc, "latent": latent}


def run_demo(
    out: str | Path = "demo",
    *,
    gan: str | GanBundle = DEMO_GAN,
    data: str = DEMO_DATA,
    n: int = 8,
    steps: int = 150,
    seed: int = 0,
    device: str | torch.device | None = None,
    progress: bool = True,
) -> DemoResult:
    """Run the demo: invert ``n`` held-out slices (cached), augment them, draw and measure.

    Args:
        out: output folder (``augmentations.png``, ``table.md``, ``report.json``, ``cache/``).
        gan: the bundle (default :data:`DEMO_GAN`).
        data: the phantom spec whose validation patients give the slices.
        n: slices (columns of the figure).
        steps: projector steps per inversion (pixel loss, W space).
        seed: seed of every policy's draws.
        device: where to run (default: CUDA when available, else CPU).
        progress: report what is happening (``logging`` at INFO on the ``latent_transforms.demo`` logger;
            the ``demo`` command shows it unless ``--quiet``).

    Example:
        >>> import tempfile
        >>> from latent_transforms import GanBundle, GanConfig
        >>> bundle = GanBundle.random(GanConfig(resolution=16, channel_base=256, channel_max=32))
        >>> _ = bundle.compute_w_stats(500)
        >>> with tempfile.TemporaryDirectory() as d:  # doctest: +SKIP
        ...     result = run_demo(d, gan=bundle, data="phantom:patients=10,slices=4", n=2, steps=5)
    """
    started = time.perf_counter()
    device = default_device(device)
    torch.manual_seed(seed)
    bundle = load_gan(gan, device=device) if isinstance(gan, str) else gan.to(device)
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    real, keys = held_out_slices(bundle, n, data=data)
    real = real.to(device)
    projector = Projector(bundle, steps=steps, perceptual=None, patience=None, device=device, progress=False)
    cache = LatentCache(folder / "cache", fingerprint=bundle.fingerprint, settings=projector.settings())
    w_real, inverted = _invert_missing(projector, cache, real, progress)

    perceptual = perceptual_network("efficientnet-lite0", device=device)
    stats = DatasetStats.compute([(real, w_real)], perceptual=perceptual, progress=False, device=device)
    stats.info.update({"generator_fingerprint": bundle.fingerprint, "gan": str(gan), "keys": keys})
    stats.save(folder / "cache" / STATS_NAME)

    if progress:
        logger.info("augmenting with StandardDA, SG2Sample and LatentAugment")
    standard = StandardDA(p=1.0, seed=seed)(real)
    sg2_transform = SG2Sample(bundle, p=1.0, seed=seed, value_range="generator")
    sg2 = sg2_transform(real)
    assert sg2_transform.last_params is not None
    with torch.no_grad():  # SG2Sample's latents: the mapping of the z it drew
        z = sg2_transform.last_params["z"].to(device)
        w_sg2 = bundle.generator.mapping(z, None)[:, 0]
    latent_augment = LatentAugment(
        bundle, cache, stats, p=1.0, seed=seed, value_range="generator", perceptual=perceptual
    )
    augmented, w_tilde = latent_augment.augment(real, w_star=w_real, return_latents=True)
    # StandardDA's images come from no latent: they are projected like the real slices (and cached).
    w_standard, inv_standard = _invert_missing(projector, cache, standard.clamp(-1, 1), progress)
    cache.close()

    with torch.no_grad():  # the inversions themselves: where LatentAugment starts from
        num_ws = bundle.generator.num_ws
        start = w_real[:, None].expand(-1, num_ws, -1) if w_real.ndim == 2 else w_real
        reconstructed = bundle.generator.synthesis(start, noise_mode="const").clamp(-1, 1)
    sets = [
        ("real", real, w_real),
        ("G(w*)", reconstructed, w_real),
        ("StandardDA", standard, w_standard),
        ("SG2Sample", sg2, w_sg2),
        ("LatentAugment", augmented.detach(), w_tilde.detach()),
    ]
    table = [{"policy": name, **policy_distances(stats, perceptual, x, w)} for name, x, w in sets]
    rows = [
        (f"{name} {modality}", (x[:, c] + 1) / 2)
        for name, x, _ in sets
        for c, modality in enumerate(bundle.modalities)
    ]
    grid = labelled_grid(rows, folder / GRID_NAME, scale=max(1, 128 // bundle.resolution))
    seconds = time.perf_counter() - started
    result = DemoResult(folder, grid, table, seconds, inverted + inv_standard)
    atomic_write(
        folder / TABLE_NAME,
        "Mean distance of each set to the real set (pixel and latent: MSE; perceptual: EfficientNet-Lite0 "
        "patch distance). StandardDA images have no latent of their own: theirs are their projections.\n\n"
        + result.markdown()
        + "\n",
    )
    result.info = {
        "gan": str(gan),
        "data": data,
        "keys": keys,
        "policies": {
            "StandardDA": repr(StandardDA(p=1.0, seed=seed)),
            "SG2Sample": repr(SG2Sample(bundle, p=1.0, seed=seed, value_range="generator")),
            "LatentAugment": repr(latent_augment),
        },
        "projector": projector.settings(),
        "device": str(device),
        "seconds": round(seconds, 2),
        "inverted_this_run": result.inverted,
        "table": table,
    }
    atomic_write(folder / REPORT_NAME, json.dumps(result.info, indent=2) + "\n")
    return result


def format_summary(result: DemoResult) -> str:
    """The lines ``latent-transforms demo`` prints at the end: the table and the files written."""
    return (
        f"{result.markdown()}\n\nwrote {result.grid}, {result.folder / TABLE_NAME} and "
        f"{result.folder / REPORT_NAME} in {result.seconds:.1f} s ({result.inverted} images inverted)"
    )
