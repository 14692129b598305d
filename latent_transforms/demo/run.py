"""The demo job: the library's main job on the built-in default, offline, on a CPU.

It loads the shipped bundle ``builtin:pelvis-phantom-64``, takes a few held-out slices of the built-in
pelvis phantom (patients the GAN never saw), finds their latents (shipped with the package for the default
settings, :mod:`latent_transforms.demo.latents`; otherwise projected once into a latent cache kept in the
output folder, so a second run skips the projection), and augments them with the three policies of the
paper:

- ``StandardDA``: flip, rotation, translation, elastic deformation;
- ``SG2Sample``: random GAN samples (the usual GAN augmentation);
- ``LatentAugment``: a guided walk from each slice's own latent (the F1 preset).

It writes ``augmentations.png`` (rows: real / its inversion G(w*) / StandardDA / SG2Sample /
LatentAugment, for MRI and CT),
``table.md`` and ``report.json``: each policy's mean distance to the real set in pixel space (MSE in
``[-1, 1]``), perceptual space (the EfficientNet-Lite0 distance LatentAugment uses) and latent space (MSE
to the real latents; StandardDA's images, which no latent made, are projected first, like the slices).
A progress bar names each stage as it runs.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from latent_transforms.checks import default_device
from latent_transforms.demo.latents import DemoLatents, shipped_latents
from latent_transforms.demo.slices import (
    DEMO_DATA,
    DEMO_GAN,
    DEMO_N,
    DEMO_STEPS,
    demo_projector,
    held_out_slices,
    standard_da,
)
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

GRID_NAME = "augmentations.png"
TABLE_NAME = "table.md"
REPORT_NAME = "report.json"
#: The stages the progress bar counts, in order.
STAGES = (
    "loading the bundle",
    "held-out slices",
    "latents of the slices",
    "dataset statistics",
    "StandardDA and SG2Sample",
    "LatentAugment",
    "latents of the StandardDA images",
    "distances to the real set",
    "figure and report",
)


@dataclass
class DemoResult:
    """What :func:`run_demo` made: the files, the distance table and the time it took.

    ``inverted`` counts the images projected by this run, ``shipped`` the latents taken from the ones
    shipped with the package (:mod:`latent_transforms.demo.latents`).
    """

    folder: Path
    grid: Path
    table: list[dict[str, Any]]
    seconds: float
    inverted: int
    info: dict[str, Any] = field(default_factory=dict)
    shipped: int = 0

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


class _Stages:
    """A progress bar over :data:`STAGES` whose clock keeps ticking while a long stage runs."""

    def __init__(self, enabled: bool) -> None:
        self.bar = tqdm(total=len(STAGES), desc="demo", unit="stage", disable=not enabled, leave=False)
        self.enabled = enabled
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None
        if enabled:
            self._ticker = threading.Thread(target=self._tick, name="demo-progress", daemon=True)
            self._ticker.start()

    def _tick(self) -> None:
        while not self._stop.wait(0.5):
            self.bar.refresh()

    @contextlib.contextmanager
    def stage(self, text: str) -> Iterator[None]:
        """Show ``text`` while the block runs; count the stage when it ends."""
        self.bar.set_description_str(f"demo: {text}", refresh=True)
        yield
        self.bar.update(1)
        self.bar.refresh()

    def close(self) -> None:
        self._stop.set()
        if self._ticker is not None:
            self._ticker.join()
        self.bar.close()


def _latents(
    projector: Projector,
    cache: LatentCache,
    images: torch.Tensor,
    shipped: dict[str, tuple[torch.Tensor, torch.Tensor]],
    what: str,
    progress: bool,
) -> tuple[torch.Tensor, int, int]:
    """Latents of ``images``: from the output cache, else the shipped ones, else projected (and cached).

    ``what`` names the images in the log line, with ``{count}`` for the number projected.

    Returns:
        ``(w, projected, from_shipped)``.
    """
    on_cpu = images.detach().cpu()
    _, found = cache.get_batch(on_cpu, missing="mask")
    keys = [image_key(x) for x in on_cpu]
    todo = [i for i in range(len(keys)) if not found[i]]
    known = [i for i in todo if keys[i] in shipped]
    if known:
        cache.put_batch(
            [keys[i] for i in known],
            torch.stack([shipped[keys[i]][0] for i in known]),
            psnr=torch.stack([shipped[keys[i]][1] for i in known]),
        )
    rest = [i for i in todo if keys[i] not in shipped]
    if rest:
        if progress:
            logger.info(
                "projecting %s: %d steps each, once (cached in %s)",
                what.format(count=len(rest)),
                projector.steps,
                cache.folder,
            )
        result = projector.project(images[rest])
        cache.put_batch([keys[i] for i in rest], result.w.cpu(), psnr=result.psnr.cpu())
    if known or rest:
        cache.flush()
    w, _ = cache.get_batch(on_cpu)
    return w.to(images.device), len(rest), len(known)


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
    n: int = DEMO_N,
    steps: int = DEMO_STEPS,
    seed: int = 0,
    device: str | torch.device | None = None,
    progress: bool = True,
    use_shipped: bool = True,
) -> DemoResult:
    """Run the demo: find the latents of ``n`` held-out slices, augment them, draw and measure.

    Args:
        out: output folder (``augmentations.png``, ``table.md``, ``report.json``, ``cache/``).
        gan: the bundle (default :data:`DEMO_GAN`).
        data: the phantom spec whose validation patients give the slices.
        n: slices (columns of the figure).
        steps: projector steps per inversion (pixel loss, W space).
        seed: seed of every policy's draws.
        device: where to run (default: CUDA when available, else CPU).
        progress: show a progress bar over the stages (stderr) and log what is projected (``logging`` at
            INFO on the ``latent_transforms.demo`` logger; the ``demo`` command shows both unless
            ``--quiet``).
        use_shipped: take the latents shipped with the package where they match
            (:mod:`latent_transforms.demo.latents`); ``False`` projects every image.

    Example:
        >>> import tempfile
        >>> from latent_transforms import GanBundle, GanConfig
        >>> bundle = GanBundle.random(GanConfig(resolution=16, channel_base=256, channel_max=32))
        >>> _ = bundle.compute_w_stats(500)
        >>> with tempfile.TemporaryDirectory() as d:  # doctest: +SKIP
        ...     result = run_demo(d, gan=bundle, data="phantom:patients=10,slices=4", n=2, steps=5)
    """
    started = time.perf_counter()
    stages = _Stages(progress)
    redirect = (
        _tqdm_logging_redirect(logging.getLogger("latent_transforms"))
        if progress
        else contextlib.nullcontext()
    )
    try:
        with redirect:
            return _run(out, gan, data, n, steps, seed, device, progress, use_shipped, stages, started)
    finally:
        stages.close()


def _tqdm_logging_redirect(logger_: logging.Logger) -> contextlib.AbstractContextManager[None]:
    """Route ``logger_``'s console output through ``tqdm.write`` so log lines do not tear the bar."""
    from tqdm.contrib.logging import logging_redirect_tqdm

    return logging_redirect_tqdm(loggers=[logger_])


def _run(
    out: str | Path,
    gan: str | GanBundle,
    data: str,
    n: int,
    steps: int,
    seed: int,
    device: str | torch.device | None,
    progress: bool,
    use_shipped: bool,
    stages: _Stages,
    started: float,
) -> DemoResult:
    device = default_device(device)
    torch.manual_seed(seed)
    with stages.stage(f"loading {gan if isinstance(gan, str) else 'the bundle'}"):
        bundle = load_gan(gan, device=device) if isinstance(gan, str) else gan.to(device)
        shipped_file: DemoLatents | None = shipped_latents(gan) if use_shipped else None
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    with stages.stage(f"{n} held-out slices"):
        real, keys = held_out_slices(bundle, n, data=data)
        real = real.to(device)
    projector = demo_projector(bundle, steps, device=device, progress=progress)
    shipped = shipped_file.lookup(bundle.fingerprint, projector.settings()) if shipped_file else {}
    cache = LatentCache(folder / "cache", fingerprint=bundle.fingerprint, settings=projector.settings())
    with stages.stage(f"latents of the {n} slices"):
        w_real, inverted, from_shipped = _latents(
            projector, cache, real, shipped, "the {count} held-out slices", progress
        )

    with stages.stage("dataset statistics"):
        perceptual = perceptual_network("efficientnet-lite0", device=device)
        stats = DatasetStats.compute([(real, w_real)], perceptual=perceptual, progress=False, device=device)
        stats.info.update({"generator_fingerprint": bundle.fingerprint, "gan": str(gan), "keys": keys})
        stats.save(folder / "cache" / STATS_NAME)

    with stages.stage("StandardDA and SG2Sample"):
        standard = standard_da(real, seed)
        sg2_transform = SG2Sample(bundle, p=1.0, seed=seed, value_range="generator")
        sg2 = sg2_transform(real)
        assert sg2_transform.last_params is not None
        with torch.no_grad():  # SG2Sample's latents: the mapping of the z it drew
            z = sg2_transform.last_params["z"].to(device)
            w_sg2 = bundle.generator.mapping(z, None)[:, 0]
    latent_augment = LatentAugment(
        bundle, cache, stats, p=1.0, seed=seed, value_range="generator", perceptual=perceptual
    )
    with stages.stage(f"LatentAugment ({latent_augment.steps} steps)"):
        augmented, w_tilde = latent_augment.augment(real, w_star=w_real, return_latents=True)
    # StandardDA's images come from no latent: they are projected like the real slices (and cached).
    with stages.stage(f"latents of the {n} StandardDA images"):
        w_standard, inv_standard, shipped_standard = _latents(
            projector,
            cache,
            standard.clamp(-1, 1),
            shipped,
            "the {count} StandardDA images, whose latents give the table's latent column",
            progress,
        )
    cache.close()

    with stages.stage("distances to the real set"):
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
    with stages.stage("figure and report"):
        rows = [
            (f"{name} {modality}", (x[:, c] + 1) / 2)
            for name, x, _ in sets
            for c, modality in enumerate(bundle.modalities)
        ]
        grid = labelled_grid(rows, folder / GRID_NAME, scale=max(1, 128 // bundle.resolution))
        seconds = time.perf_counter() - started
        result = DemoResult(
            folder, grid, table, seconds, inverted + inv_standard, shipped=from_shipped + shipped_standard
        )
        atomic_write(
            folder / TABLE_NAME,
            "Mean distance of each set to the real set (pixel and latent: MSE; perceptual: "
            "EfficientNet-Lite0 patch distance). StandardDA images have no latent of their own: theirs are "
            "their projections.\n\n" + result.markdown() + "\n",
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
            "latents_shipped": result.shipped,
            "table": table,
        }
        atomic_write(folder / REPORT_NAME, json.dumps(result.info, indent=2) + "\n")
    return result


def format_summary(result: DemoResult) -> str:
    """The lines ``latent-transforms demo`` prints at the end: the table, the files written, the time.

    Example:
        >>> r = DemoResult(Path("demo"), Path("demo/augmentations.png"), [], 6.5, 0, shipped=16)
        >>> format_summary(r).splitlines()[-1]
        'wrote demo/augmentations.png, demo/table.md and demo/report.json in 6.5 s (16 latents shipped \
with the package, 0 images projected)'
    """
    where = f"{result.shipped} latents shipped with the package, " if result.shipped else ""
    return (
        f"{result.markdown()}\n\nwrote {result.grid}, {result.folder / TABLE_NAME} and "
        f"{result.folder / REPORT_NAME} in {result.seconds:.1f} s ({where}{result.inverted} images projected)"
    )
