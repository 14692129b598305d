"""The performance issue's reference setting, shared by the policy benchmarks.

256 px, 2 channels (MRI+CT), channel_base 16384, mapping depth 2, z/w 512, batch 16, LatentAugment with
every loss term on and 64 x 64 perceptual patches on EfficientNet-Lite0. The generator and discriminator
have random weights (timing does not depend on them) unless ``--gan`` names a bundle. The "real" images
are ``G(w)`` of mapped latents; their latents go into a temporary latent cache and their
:class:`~latent_transforms.DatasetStats` are computed, so LatentAugment runs exactly as on inverted data.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import torch

from latent_transforms import DatasetStats, GanBundle, GanConfig, LatentCache, image_key, load_gan
from latent_transforms.features import PerceptualNetwork, perceptual_network
from latent_transforms.objectives import COMPILE_MODES, PRECISIONS


def add_setting_arguments(parser: argparse.ArgumentParser) -> None:
    """The options that define the setting (defaults: the reference setting)."""
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--resolution", type=int, default=256)
    parser.add_argument("--channel-base", type=int, default=16384)
    parser.add_argument("--channel-max", type=int, default=512)
    parser.add_argument("--z-dim", type=int, default=512)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--real", type=int, default=64, help="real images in the cache and statistics")
    parser.add_argument("--perceptual", default="efficientnet-lite0")
    parser.add_argument(
        "--gan", default=None, help="a bundle (e.g. builtin:pelvis-phantom-64) instead of random"
    )
    parser.add_argument("--steps", type=int, default=9, help="LatentAugment's K (default 9)")
    parser.add_argument("--patch-size", type=int, default=64, help="perceptual patch size (default 64)")
    parser.add_argument("--threads", type=int, default=0, help="CPU threads (0: torch's default)")


def add_speed_arguments(parser: argparse.ArgumentParser) -> None:
    """LatentAugment's speed settings (defaults: the library's): precision, compile mode, channels_last."""
    parser.add_argument("--precision", default="fp32", choices=list(PRECISIONS), help="LatentAugment's")
    parser.add_argument(
        "--compile-mode",
        default=None,
        choices=[m for m in COMPILE_MODES if m is not None],
        help="LatentAugment's compile_mode (default: eager)",
    )
    parser.add_argument(
        "--channels-last",
        choices=sorted(CHANNELS_LAST),
        default="auto",
        help="the generator's activations in channels_last (default auto: on for CPU, off for CUDA)",
    )


def timing_parser(doc: str | None, *, speed: bool = True) -> argparse.ArgumentParser:
    """The command line shared by the timing scripts: the setting, (with ``speed``) LatentAugment's speed
    settings, ``--warmup``, ``--repeats``, ``--tag`` and ``--no-write``; a script adds its own options."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_setting_arguments(parser)
    if speed:
        add_speed_arguments(parser)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--tag", default="", help="suffix of the result file name")
    parser.add_argument("--no-write", action="store_true", help="print only (smoke runs)")
    return parser


#: ``--channels-last`` values -> ``Generator.channels_last``.
CHANNELS_LAST: dict[str, bool | str] = {"auto": "auto", "on": True, "off": False}


def speed_options(args: argparse.Namespace) -> dict[str, str | None]:
    """The :class:`~latent_transforms.LatentAugment` keyword arguments of :func:`add_speed_arguments`."""
    return {"precision": args.precision, "compile_mode": args.compile_mode}


def gan_config(args: argparse.Namespace) -> GanConfig:
    """The StyleGAN2 of ``args`` (resolution, channel base / max, z = w size), mapping depth 2."""
    return GanConfig(
        resolution=args.resolution,
        channel_base=args.channel_base,
        channel_max=args.channel_max,
        z_dim=args.z_dim,
        w_dim=args.z_dim,
        mapping_layers=2,
    )


@dataclass
class Setting:
    """A GAN, real images with their latents in a cache, and LatentAugment's statistics."""

    device: torch.device
    bundle: GanBundle
    real: torch.Tensor  # [N, 2, R, R] in [-1, 1]
    w: torch.Tensor  # [N, w_dim]
    stats: DatasetStats
    perceptual: PerceptualNetwork
    cache: LatentCache

    @property
    def batch(self) -> int:
        return self._batch

    def images(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The first batch of real images and their latents."""
        return self.real[: self._batch], self.w[: self._batch]

    def describe(self, args: argparse.Namespace) -> dict[str, object]:
        cfg = self.bundle.config
        return {
            "gan": args.gan or "random",
            "resolution": cfg.resolution,
            "channels": len(cfg.modalities),
            "channel_base": cfg.channel_base,
            "channel_max": cfg.channel_max,
            "z_dim": cfg.z_dim,
            "mapping_layers": cfg.mapping_layers,
            "batch": self._batch,
            "real_images": len(self.real),
            "perceptual": args.perceptual,
            "patch_size": self.stats.patch_size,
            "steps": args.steps,
            **(
                {**speed_options(args), "channels_last": args.channels_last}
                if hasattr(args, "precision")
                else {}
            ),
        }

    _batch: int = 16


def build_setting(args: argparse.Namespace, folder: str | Path) -> Setting:
    """The setting of ``args``, with its latent cache in ``folder`` (a temporary folder)."""
    device = torch.device(args.device)
    if device.type == "cpu" and args.threads:
        torch.set_num_threads(args.threads)
    if args.gan:  # a real bundle (e.g. the shipped phantom one) at its own resolution
        bundle = load_gan(args.gan, device=device)
    else:
        bundle = GanBundle.random(gan_config(args), seed=0).to(device)
        bundle.compute_w_stats(2000)
    bundle.generator.channels_last = CHANNELS_LAST[getattr(args, "channels_last", "auto")]
    cfg = bundle.config
    g = torch.Generator(device=device).manual_seed(0)
    with torch.no_grad():
        z = torch.randn(args.real, cfg.z_dim, device=device, generator=g)
        w = bundle.generator.mapping(z, None)[:, 0]
        real = bundle.generator.synthesis(w[:, None].expand(-1, bundle.generator.num_ws, -1)).clamp(-1, 1)
    perceptual = perceptual_network(args.perceptual, device=device)
    stats = DatasetStats.compute(
        [(real[i : i + 16], w[i : i + 16]) for i in range(0, args.real, 16)],
        perceptual=perceptual,
        patch_size=min(args.patch_size, cfg.resolution),
        device=device,
        progress=False,
    )
    cache = LatentCache(folder, fingerprint=bundle.fingerprint, settings={"space": "w"})
    cache.put_batch([image_key(x) for x in real.cpu()], w.cpu())
    cache.flush()
    setting = Setting(device, bundle, real, w, stats, perceptual, cache)
    setting._batch = args.batch
    return setting
