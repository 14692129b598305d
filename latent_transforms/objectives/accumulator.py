"""Streaming the real set into :class:`~latent_transforms.DatasetStats`: float64 sums, one batch at a time.

:meth:`DatasetStats.accumulator <latent_transforms.DatasetStats.accumulator>` makes one;
:meth:`DatasetStats.compute <latent_transforms.DatasetStats.compute>` runs one over an iterable.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import torch

from latent_transforms.checks import check_image_batch
from latent_transforms.errors import ConfigError
from latent_transforms.features.perceptual import PerceptualNetwork
from latent_transforms.objectives.patches import RANGE_MARGIN, patch_grid

if TYPE_CHECKING:  # DatasetStats makes accumulators and passes itself as ``build``: no import at run time
    from latent_transforms.objectives.stats import DatasetStats

__all__ = ["DatasetStatsAccumulator"]


class DatasetStatsAccumulator:
    """Streams batches into float64 sums; :meth:`finalize` turns them into :class:`DatasetStats`.

    Made by :meth:`DatasetStats.accumulator` (see there for the arguments). Images and latents may come
    in the same or in separate :meth:`update` calls; they are counted separately. The result does not
    depend on how the data is split into batches (up to float64 round-off).

    Example:
        >>> from latent_transforms import DatasetStats
        >>> acc = DatasetStats.accumulator(resolution=8, channels=2)
        >>> for _ in range(3):
        ...     acc.update(torch.zeros(4, 2, 8, 8))
        >>> acc.finalize().n_images
        12
    """

    def __init__(
        self,
        *,
        build: Callable[..., DatasetStats],
        resolution: int,
        channels: int,
        perceptual: PerceptualNetwork | None = None,
        patch_size: int = 64,
        patch_stride: int | None = None,
        device: str | torch.device | None = None,
    ) -> None:
        if resolution < 1 or channels < 1:
            raise ConfigError(f"expected resolution and channels >= 1, got {resolution} and {channels}.")
        if patch_size < 1 or (patch_stride is not None and patch_stride < 1):
            raise ConfigError(
                f"expected patch_size >= 1 and patch_stride >= 1 (or None), got {patch_size} and "
                f"{patch_stride}. Fix: pass positive values."
            )
        if perceptual is not None and not isinstance(perceptual, PerceptualNetwork):
            raise ConfigError(
                f"expected a PerceptualNetwork (or None), got {type(perceptual).__name__}. Fix: build one "
                "with latent_transforms.features.perceptual.perceptual_network(...)."
            )
        if perceptual is not None and perceptual.joint and perceptual.in_channels != channels:
            raise ConfigError(
                f"expected a joint perceptual network for {channels}-channel images, got {perceptual.name!r} "
                f"built for {perceptual.in_channels}. Fix: use the bundle whose images these are."
            )
        self._build = build
        self.resolution = int(resolution)
        self.channels = int(channels)
        self.perceptual = perceptual
        self.patch_size = min(int(patch_size), self.resolution)
        self.patch_stride = int(patch_stride) if patch_stride is not None else max(1, self.patch_size // 2)
        self.positions = patch_grid(self.resolution, self.patch_size, self.patch_stride)
        if device is None:
            device = perceptual.device if perceptual is not None else "cpu"
        self.device = torch.device(device)
        # float64 sums; MPS has no float64, so they live on the CPU there
        self._sum_device = torch.device("cpu") if self.device.type == "mps" else self.device
        self.n_images = 0
        self.n_latents = 0
        self._x_sum = torch.zeros(
            channels, resolution, resolution, dtype=torch.float64, device=self._sum_device
        )
        self._x_sq = torch.zeros((), dtype=torch.float64, device=self._sum_device)
        self._w_sum: torch.Tensor | None = None
        self._w_sq = torch.zeros((), dtype=torch.float64, device=self._sum_device)
        self._f_sum: list[torch.Tensor] | None = None  # per layer [n_pos, C', c, h, w]
        self._f_sq: torch.Tensor | None = None  # [n_pos, C']: sum_j sum_l mean(phi^2)

    def update(self, images: torch.Tensor | None = None, w: torch.Tensor | None = None) -> None:
        """Add a batch: images ``[B, C, R, R]`` in ``[-1, 1]`` and/or latents ``[B, w_dim]`` or
        ``[B, num_ws, w_dim]`` (every call must give latents of the same shape). Empty batches are
        skipped."""
        if images is not None:
            self._update_images(images)
        if w is not None:
            self._update_latents(w)

    def _update_images(self, images: torch.Tensor) -> None:
        shape = (self.channels, self.resolution, self.resolution)
        if (
            isinstance(images, torch.Tensor)
            and images.ndim == 4
            and images.shape[0] == 0
            and images.shape[1:] == shape
        ):
            return  # an empty batch of the right shape adds nothing
        check_image_batch(
            images,
            channels=self.channels,
            resolution=self.resolution,
            finite=False,
            context="the channels and resolution of these statistics: resize or stack the modalities first",
        )
        if images.shape[0] == 0:
            return
        x = images.detach().to(device=self.device, dtype=torch.float32)
        if not bool(torch.isfinite(x).all()):
            raise ConfigError(
                "expected finite images, got NaN or Inf values. Fix: check the data for NaN/Inf."
            )
        lo, hi = float(x.min()), float(x.max())
        if lo < -1 - RANGE_MARGIN or hi > 1 + RANGE_MARGIN:
            raise ConfigError(
                f"expected images in [-1, 1] (the generator's range), got values from {lo:.4g} to {hi:.4g}. "
                "Fix: map each modality to [-1, 1] with its IntensityWindow (real and synthetic images "
                "must be compared in one range)."
            )
        x64 = x.to(device=self._sum_device, dtype=torch.float64)
        self._x_sum += x64.sum(dim=0)
        self._x_sq += x64.square().sum()
        self.n_images += x.shape[0]
        if self.perceptual is not None:
            self._update_patches(x)

    @torch.no_grad()
    def _update_patches(self, x: torch.Tensor) -> None:
        assert self.perceptual is not None
        p = self.patch_size
        for i, (r, c) in enumerate(self.positions.tolist()):
            feats = self.perceptual(x[:, :, r : r + p, c : c + p])
            if self._f_sum is None:
                n_pos = len(self.positions)
                self._f_sum = [
                    torch.zeros(n_pos, *f.shape[1:], dtype=torch.float64, device=self._sum_device)
                    for f in feats
                ]
                self._f_sq = torch.zeros(
                    n_pos, feats[0].shape[1], dtype=torch.float64, device=self._sum_device
                )
            assert self._f_sq is not None
            for layer, f in enumerate(feats):
                f64 = f.to(device=self._sum_device, dtype=torch.float64)
                self._f_sum[layer][i] += f64.sum(dim=0)
                self._f_sq[i] += f64.square().mean(dim=(2, 3, 4)).sum(dim=0)

    def _update_latents(self, w: torch.Tensor) -> None:
        if not isinstance(w, torch.Tensor) or w.ndim not in (2, 3) or not w.is_floating_point():
            got = (
                f"a {w.dtype} tensor of shape {tuple(w.shape)}"
                if isinstance(w, torch.Tensor)
                else type(w).__name__
            )
            raise ConfigError(
                f"expected float latents [B, w_dim] or [B, num_ws, w_dim], got {got}. Fix: pass the "
                "inverted latents with a batch dimension."
            )
        if self._w_sum is not None and tuple(w.shape[1:]) != tuple(self._w_sum.shape):
            raise ConfigError(
                f"expected latents [B, {', '.join(map(str, self._w_sum.shape))}] like the earlier batches, "
                f"got {tuple(w.shape)}. Fix: give all latents in one form (W or W+)."
            )
        if w.shape[0] == 0:
            return
        w64 = w.detach().to(device=self._sum_device, dtype=torch.float64)
        if not bool(torch.isfinite(w64).all()):
            raise ConfigError("expected finite latents, got NaN or Inf values. Fix: check the inversion.")
        if self._w_sum is None:
            self._w_sum = torch.zeros(w.shape[1:], dtype=torch.float64, device=self._sum_device)
        self._w_sum += w64.sum(dim=0)
        self._w_sq += w64.square().sum()
        self.n_latents += w.shape[0]

    def finalize(self) -> DatasetStats:
        """The :class:`DatasetStats` of everything added so far (the accumulator can keep going)."""
        image_mean = image_var = None
        if self.n_images:
            mean64 = self._x_sum / self.n_images
            image_var = float(self._x_sq) / (self.n_images * mean64.numel()) - float(mean64.square().mean())
            image_mean = mean64.float().to(self.device)
        w_mean = w_var = None
        if self.n_latents and self._w_sum is not None:
            wm64 = self._w_sum / self.n_latents
            w_var = float(self._w_sq) / (self.n_latents * wm64.numel()) - float(wm64.square().mean())
            w_mean = wm64.float().to(self.device)
        patch_means = patch_constants = None
        if self.perceptual is not None and self._f_sum is not None and self._f_sq is not None:
            means64 = [s / self.n_images for s in self._f_sum]
            const = self._f_sq / self.n_images
            for m in means64:
                const = const - m.square().mean(dim=(2, 3, 4))
            patch_means = [m.float().to(self.device) for m in means64]
            patch_constants = const.clamp_min(0).float().to(self.device)
        return self._build(
            resolution=self.resolution,
            channels=self.channels,
            n_images=self.n_images,
            n_latents=self.n_latents,
            image_mean=image_mean,
            image_var=max(image_var, 0.0) if image_var is not None else 0.0,
            w_mean=w_mean,
            w_var=max(w_var, 0.0) if w_var is not None else 0.0,
            patch_size=self.patch_size,
            patch_stride=self.patch_stride,
            patch_means=patch_means,
            patch_constants=patch_constants,
            perceptual_name=self.perceptual.name if self.perceptual is not None else None,
            perceptual_fingerprint=self.perceptual.fingerprint if self.perceptual is not None else None,
        )

    def __repr__(self) -> str:
        return (
            f"DatasetStatsAccumulator(n_images={self.n_images}, n_latents={self.n_latents}, "
            f"resolution={self.resolution}, channels={self.channels}, "
            f"perceptual={self.perceptual.name if self.perceptual is not None else None!r}, "
            f"positions={len(self.positions)})"
        )
