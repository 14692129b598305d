"""Batched GAN inversion: find the latent ``w*`` whose image ``G(w*)`` reconstructs a real image.

:class:`Projector` optimises a whole batch of images at once (one forward/backward per step for the
batch), in W (one vector broadcast to every layer, what LatentAugment's paper used) or W+ (one vector
per layer), following Karras et al.'s StyleGAN2 projector: Adam from the mean of W, ``w_avg`` (or a
given start: the neighbouring slice, an encoder's guess), learning-rate ramp-up and cosine ramp-down,
decaying latent noise, and optionally optimised noise maps with the multi-scale autocorrelation
regulariser. The reconstruction loss is a perceptual distance (each modality channel separately, any
:class:`~latent_transforms.features.perceptual.PerceptualNetwork`) plus a weighted pixel MSE.

Each sample stops on its own, once its PSNR reaches ``psnr_target`` or its loss has not improved for
``patience`` steps; stopped samples leave the batch (the optimiser state is sliced), so the remaining
steps get cheaper, and every sample keeps the best step it reached.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from latent_transforms.checks import (
    GENERATOR_RANGE_LIMIT,
    check_choice,
    check_image_batch,
    check_int,
)
from latent_transforms.errors import ConfigError
from latent_transforms.features.perceptual import PerceptualNetwork, perceptual_network
from latent_transforms.inversion.quality import psnr, ssim
from latent_transforms.networks.bundle import GanBundle
from latent_transforms.networks.generator import Generator

SPACES = ("w", "w+")
PRECISIONS = ("fp32", "bf16")


@dataclass
class ProjectionResult:
    """What :meth:`Projector.project` returns for ``B`` images with ``C`` channels.

    Attributes:
        w: the latents, float32, ``[B, w_dim]`` (W) or ``[B, num_ws, w_dim]`` (W+), on the projector's
            device. :meth:`ws` broadcasts them to what ``G.synthesis`` takes.
        images: the reconstructions ``G(w)`` ``[B, C, R, R]`` in ``[-1, 1]`` (with the optimised noise
            maps when those were optimised, else the generator's constant noise).
        psnr: dB per sample and channel ``[B, C]`` (data range 2, i.e. images in ``[-1, 1]``).
        ssim: per sample and channel ``[B, C]`` in ``[-1, 1]``.
        steps: ``[B]`` int64, the step whose latent was kept (the best one each sample reached).
        stopped: ``[B]`` int64, the step at which each sample left the optimisation.
        noise: per-layer noise maps ``[B, 1, r, r]`` when they were optimised, else ``None``.
        seconds: wall time of the projection.

    Example:
        >>> from latent_transforms import GanBundle, GanConfig
        >>> cfg = GanConfig(resolution=16, channel_base=256, channel_max=32, z_dim=16, w_dim=16)
        >>> bundle = GanBundle.random(cfg)
        >>> projector = Projector(bundle, steps=5, perceptual=None, progress=False)
        >>> r = projector.project(bundle.sample(2).clamp(-1, 1))
        >>> r.ws(bundle.generator.num_ws).shape, r.steps.dtype
        (torch.Size([2, 6, 16]), torch.int64)
    """

    w: torch.Tensor
    images: torch.Tensor
    psnr: torch.Tensor
    ssim: torch.Tensor
    steps: torch.Tensor
    stopped: torch.Tensor
    noise: list[torch.Tensor] | None = None
    seconds: float = 0.0
    extras: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.w.shape[0])

    def ws(self, num_ws: int) -> torch.Tensor:
        """The latents as ``[B, num_ws, w_dim]`` (W vectors repeated to every layer)."""
        return self.w if self.w.ndim == 3 else self.w.unsqueeze(1).expand(-1, num_ws, -1)

    def summary(self, modalities: Sequence[str] | None = None) -> dict[str, dict[str, float]]:
        """Mean PSNR/SSIM per modality (``modalities`` names the channels) and over all of them.

        Example:
            >>> r = ProjectionResult(w=torch.zeros(2, 4), images=torch.zeros(2, 1, 4, 4),
            ...     psnr=torch.tensor([[30.0], [40.0]]), ssim=torch.tensor([[0.8], [1.0]]),
            ...     steps=torch.zeros(2, dtype=torch.long), stopped=torch.zeros(2, dtype=torch.long))
            >>> r.summary(["ct"])
            {'ct': {'psnr': 35.0, 'ssim': 0.9}, 'mean': {'psnr': 35.0, 'ssim': 0.9}}
        """
        names = list(modalities) if modalities is not None else [f"c{i}" for i in range(self.psnr.shape[1])]
        out = {
            name: {
                "psnr": round(float(self.psnr[:, i].mean()), 4),
                "ssim": round(float(self.ssim[:, i].mean()), 4),
            }
            for i, name in enumerate(names)
        }
        out["mean"] = {"psnr": round(float(self.psnr.mean()), 4), "ssim": round(float(self.ssim.mean()), 4)}
        return out


def concatenate(results: Sequence[ProjectionResult]) -> ProjectionResult:
    """Join results of consecutive batches into one (in order)."""
    if not results:
        raise ConfigError("expected at least one ProjectionResult to concatenate, got none.")
    noise = None
    if results[0].noise is not None:
        noise = [torch.cat([r.noise[i] for r in results]) for i in range(len(results[0].noise))]  # type: ignore[index]
    return ProjectionResult(
        w=torch.cat([r.w for r in results]),
        images=torch.cat([r.images for r in results]),
        psnr=torch.cat([r.psnr for r in results]),
        ssim=torch.cat([r.ssim for r in results]),
        steps=torch.cat([r.steps for r in results]),
        stopped=torch.cat([r.stopped for r in results]),
        noise=noise,
        seconds=sum(r.seconds for r in results),
    )


def learning_rate(t: float, lr: float, rampup: float, rampdown: float) -> float:
    """Karras et al.'s schedule at progress ``t`` in ``[0, 1]``: linear ramp-up, cosine ramp-down.

    Example:
        >>> [round(learning_rate(t, 0.1, 0.05, 0.25), 4) for t in (0.0, 0.025, 0.5, 0.875, 1.0)]
        [0.0, 0.05, 0.1, 0.05, 0.0]
    """
    ramp = min(1.0, (1.0 - t) / rampdown) if rampdown > 0 else 1.0
    ramp = 0.5 - 0.5 * math.cos(ramp * math.pi)
    if rampup > 0:
        ramp *= min(1.0, t / rampup)
    return lr * ramp


def noise_regularizer(noise: Sequence[torch.Tensor]) -> torch.Tensor:
    """Multi-scale autocorrelation penalty of noise maps ``[B, 1, r, r]``, per sample ``[B]``.

    For every map and its 2x average-pooled pyramid down to 8 px: the squared mean of the map times
    itself shifted by one pixel, horizontally and vertically (Karras et al.). Zero-mean, unit-variance
    white noise scores about 0.

    Example:
        >>> maps = [torch.ones(2, 1, 16, 16)]
        >>> noise_regularizer(maps)
        tensor([4., 4.])
    """
    total = torch.zeros(noise[0].shape[0], device=noise[0].device)
    for n in noise:
        while True:
            total = total + (n * torch.roll(n, shifts=1, dims=3)).mean(dim=(1, 2, 3)).square()
            total = total + (n * torch.roll(n, shifts=1, dims=2)).mean(dim=(1, 2, 3)).square()
            if n.shape[2] <= 8:
                break
            n = F.avg_pool2d(n, kernel_size=2)
    return total


class Projector:
    """Invert a batch of images ``[B, C, R, R]`` in ``[-1, 1]`` to latents of a StyleGAN2 generator.

    Args:
        gan: a :class:`GanBundle` (its ``w_stats`` give w_avg and the W spread) or a bare
            :class:`Generator` (the spread is then estimated from 2,000 mapped latents).
        space: ``"w"`` (one ``[w_dim]`` vector per image, broadcast to every layer) or ``"w+"``.
        steps: maximum optimisation steps.
        lr: peak Adam learning rate (β = 0.9, 0.999).
        lr_rampup: fraction of ``steps`` for the linear learning-rate ramp-up.
        lr_rampdown: fraction of ``steps`` for the cosine ramp-down.
        noise_scale: latent noise of ``noise_scale`` times the W spread (Karras et al.: 0.05) ...
        noise_ramp: ... decaying quadratically to 0 at this fraction of the steps (0.75).
        optimize_noise: also optimise the per-layer noise maps (per image, regularised by
            :func:`noise_regularizer` with weight ``noise_regularize``); otherwise the generator's
            constant noise is used, which is what LatentAugment renders with.
        perceptual: a :class:`PerceptualNetwork`, a name for
            :func:`~latent_transforms.features.perceptual.perceptual_network` (``"efficientnet-lite0"``,
            ``"vgg16"``, ``"discriminator"``, ``"random"``), or ``None`` for pixel loss only.
        perceptual_weight: weight of the perceptual distance (mean over channels) in the loss.
        pixel_weight: weight of the pixel MSE; loss = perceptual_weight · perceptual + pixel_weight · MSE
            (+ the noise regulariser).
        psnr_target: a sample stops once the mean over its channels of the PSNR (dB) reaches this.
        patience: a sample stops when its loss has not improved by ``min_delta`` (relative) for this
            many steps (counted after the learning-rate ramp-up); ``None`` disables.
        min_delta: relative improvement that resets the patience counter.
        encoder: a callable ``images -> w`` (e.g. a
            :class:`~latent_transforms.inversion.encoder.LatentEncoder`) giving the start point.
        precision: ``"bf16"`` runs the generator and perceptual network under CUDA autocast (the latents
            and Adam state stay fp32); ``"fp32"`` (default).
        batch_size: images per optimisation batch in :meth:`project_all` / :func:`invert`.
        device: where to run (default: the generator's device).
        progress: show a tqdm bar per batch (steps, active samples, mean PSNR).
        seed: seeds the latent noise and the initial noise maps (``torch.Generator``).

    Example:
        >>> from latent_transforms import GanBundle, GanConfig
        >>> cfg = GanConfig(resolution=16, channel_base=256, channel_max=32, z_dim=16, w_dim=16)
        >>> bundle = GanBundle.random(cfg)
        >>> target = bundle.sample(2, seed=1)
        >>> projector = Projector(bundle, steps=20, perceptual=None, progress=False)
        >>> result = projector.project(target)
        >>> result.w.shape, result.psnr.shape
        (torch.Size([2, 16]), torch.Size([2, 2]))
    """

    def __init__(
        self,
        gan: GanBundle | Generator,
        *,
        space: str = "w",
        steps: int = 500,
        lr: float = 0.1,
        lr_rampup: float = 0.05,
        lr_rampdown: float = 0.25,
        noise_scale: float = 0.05,
        noise_ramp: float = 0.75,
        optimize_noise: bool = False,
        noise_regularize: float = 1e5,
        perceptual: PerceptualNetwork | str | None = "efficientnet-lite0",
        perceptual_weight: float = 1.0,
        pixel_weight: float = 1.0,
        psnr_target: float | None = None,
        patience: int | None = 100,
        min_delta: float = 1e-3,
        encoder: Callable[[torch.Tensor], torch.Tensor] | None = None,
        precision: str = "fp32",
        batch_size: int = 32,
        device: torch.device | str | None = None,
        progress: bool = True,
        seed: int = 0,
    ) -> None:
        check_choice("space", space, SPACES)
        check_choice("precision", precision, PRECISIONS)
        steps = check_int("steps", steps, low=1)
        batch_size = check_int("batch_size", batch_size, low=1)
        if patience is not None:
            patience = check_int("patience (an integer or None)", patience, low=1)
        self.bundle = gan if isinstance(gan, GanBundle) else None
        self.G: Generator = gan.generator if isinstance(gan, GanBundle) else gan
        if not isinstance(self.G, Generator):
            raise ConfigError(f"expected a GanBundle or Generator, got {type(gan).__name__}.")
        self.device = torch.device(device) if device is not None else self.G.mapping.fc0.weight.device
        self.G = self.G.to(self.device).eval().requires_grad_(False)
        self.space = space
        self.steps = steps
        self.lr = lr
        self.lr_rampup = lr_rampup
        self.lr_rampdown = lr_rampdown
        self.noise_scale = noise_scale
        self.noise_ramp = noise_ramp
        self.optimize_noise = optimize_noise
        self.noise_regularize = noise_regularize
        if isinstance(perceptual, str):
            perceptual = perceptual_network(perceptual, bundle=self.bundle, device=self.device)
        self.perceptual = perceptual.to(self.device) if perceptual is not None else None
        self.perceptual_weight = perceptual_weight
        self.pixel_weight = pixel_weight
        self.psnr_target = psnr_target
        self.patience = patience
        self.min_delta = min_delta
        self.encoder = encoder
        self.precision = precision
        self.batch_size = batch_size
        self.progress = progress
        self.seed = seed
        self.w_avg, self.w_std = self._w_statistics()

    # -- set-up ----------------------------------------------------------------------------------
    @torch.no_grad()
    def _w_statistics(self) -> tuple[torch.Tensor, float]:
        stats = self.bundle.w_stats if self.bundle is not None else {}
        if "w_mean" in stats and "w_cov" in stats:
            # the measured mean of W (equal to the tracked w_avg for a trained GAN; random bundles
            # never update w_avg, which stays 0)
            w_mean = stats["w_mean"].to(self.device, torch.float32)
            return w_mean, float(torch.trace(stats["w_cov"].double()).clamp_min(0).sqrt())
        gen = torch.Generator(device=self.device).manual_seed(123)
        z = self.G.sample_z(2000, generator=gen, device=self.device)
        c = None
        if self.G.c_dim > 0:
            labels = torch.randint(self.G.c_dim, (2000,), generator=gen, device=self.device)
            c = F.one_hot(labels, self.G.c_dim).float()
        w = self.G.mapping(z, c)[:, 0]
        w_mean = w.mean(dim=0)
        return w_mean, float((w - w_mean).square().sum(dim=1).mean().sqrt())

    def settings(self) -> dict[str, Any]:
        """The settings that determine the latents (stored with a :class:`LatentCache`).

        Example:
            >>> from latent_transforms import GanBundle, GanConfig
            >>> cfg = GanConfig(resolution=16, channel_base=256, channel_max=32, z_dim=16, w_dim=16)
            >>> Projector(GanBundle.random(cfg), perceptual=None, progress=False).settings()["space"]
            'w'
        """
        return {
            "space": self.space,
            "steps": self.steps,
            "lr": self.lr,
            "lr_rampup": self.lr_rampup,
            "lr_rampdown": self.lr_rampdown,
            "noise_scale": self.noise_scale,
            "noise_ramp": self.noise_ramp,
            "optimize_noise": self.optimize_noise,
            "noise_regularize": self.noise_regularize if self.optimize_noise else None,
            "perceptual": None if self.perceptual is None else self.perceptual.name,
            "perceptual_fingerprint": None if self.perceptual is None else self.perceptual.fingerprint,
            "perceptual_weight": self.perceptual_weight if self.perceptual is not None else None,
            "pixel_weight": self.pixel_weight,
            "psnr_target": self.psnr_target,
            "patience": self.patience,
            "min_delta": self.min_delta,
            "encoder": self.encoder is not None,
            "precision": self.precision,
            "seed": self.seed,
        }

    def _check_images(self, images: torch.Tensor) -> torch.Tensor:
        R = self.G.img_resolution
        images = check_image_batch(
            images,
            channels=self.G.img_channels,
            resolution=R,
            allow_single=True,
            value_limit=GENERATOR_RANGE_LIMIT,  # catches [0, 255] and HU; tolerates a GAN's overshoot
            context=f"the generator's channels and resolution: resize to {R} px and stack the modalities "
            "in bundle order",
        )
        return images.to(self.device, torch.float32)

    def _initial_w(self, images: torch.Tensor, init_w: torch.Tensor | None) -> torch.Tensor:
        b, num_ws, w_dim = images.shape[0], self.G.num_ws, self.G.w_dim
        if init_w is None and self.encoder is not None:
            with torch.no_grad():
                init_w = self.encoder(images).float()
        if init_w is None:
            w = self.w_avg.expand(b, w_dim)
        else:
            w = init_w.detach().to(self.device, torch.float32)
            if w.ndim == 1:
                w = w.expand(b, -1)
            if w.shape[0] != b or w.shape[-1] != w_dim or w.ndim not in (2, 3):
                raise ConfigError(
                    f"init_w must be [B, {w_dim}] or [B, {num_ws}, {w_dim}] with B = {b}, "
                    f"got {tuple(w.shape)}."
                )
            if w.ndim == 3 and self.space == "w":
                w = w.mean(dim=1)  # a W+ start for a W projection: the mean over layers
        if self.space == "w+" and w.ndim == 2:
            w = w.unsqueeze(1).expand(-1, num_ws, -1)
        return w.clone().contiguous()

    # -- the optimisation --------------------------------------------------------------------------
    def _render(self, w: torch.Tensor, noise: list[torch.Tensor] | None) -> torch.Tensor:
        ws = w if w.ndim == 3 else w.unsqueeze(1).expand(-1, self.G.num_ws, -1)
        use_bf16 = self.precision == "bf16" and self.device.type == "cuda"
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=use_bf16):
            return self.G.synthesis(ws, noise=noise, noise_mode="const").float()

    def _reconstruction_loss(
        self, synth: torch.Tensor, target_feats: list[torch.Tensor] | None, target: torch.Tensor
    ) -> torch.Tensor:
        loss = self.pixel_weight * (synth - target).square().mean(dim=(1, 2, 3))
        if self.perceptual is not None and target_feats is not None:
            use_bf16 = self.precision == "bf16" and self.device.type == "cuda"
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=use_bf16):
                feats = self.perceptual(synth)
            dist = PerceptualNetwork.distance([f.float() for f in feats], target_feats)
            loss = loss + self.perceptual_weight * dist.mean(dim=1)
        return loss

    def project(
        self,
        images: torch.Tensor,
        *,
        init_w: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> ProjectionResult:
        """Invert one batch ``[B, C, R, R]`` in ``[-1, 1]`` (all ``B`` optimised together).

        ``init_w`` (``[B, w_dim]`` or ``[B, num_ws, w_dim]``) overrides the start (default: the
        encoder's guess when an encoder is set, else ``w_avg``). ``generator`` (a ``torch.Generator``
        on the projector's device) draws the latent noise; default: seeded from ``seed``.
        """
        started = time.perf_counter()
        target = self._check_images(images)
        b = target.shape[0]
        if generator is None:
            generator = torch.Generator(device=self.device).manual_seed(self.seed)
        w_opt = self._initial_w(target, init_w).requires_grad_(True)
        noise: list[torch.Tensor] | None = None
        params: list[torch.Tensor] = [w_opt]
        if self.optimize_noise:
            noise = [
                n.requires_grad_(True)
                for n in self.G.synthesis.make_noise(b, generator=generator, device=self.device)
            ]
            params += noise
        optimizer = torch.optim.Adam(params, betas=(0.9, 0.999), lr=self.lr)
        with torch.no_grad():
            target_feats = None
            if self.perceptual is not None:
                target_feats = [f.float() for f in self.perceptual(target)]

        # bookkeeping, full batch (index into it with ``alive``)
        best_loss = torch.full((b,), float("inf"), device=self.device)
        best_w = w_opt.detach().clone()
        best_noise = [n.detach().clone() for n in noise] if noise is not None else None
        best_step = torch.zeros(b, dtype=torch.long, device=self.device)
        stopped = torch.full((b,), self.steps, dtype=torch.long, device=self.device)
        last_improved = torch.zeros(b, dtype=torch.long, device=self.device)
        alive = torch.arange(b, device=self.device)
        rampup_steps = math.ceil(self.lr_rampup * self.steps)

        bar = tqdm(total=self.steps, desc="projecting", unit="step", disable=not self.progress, leave=False)
        for step in range(self.steps):
            t = step / self.steps
            lr = learning_rate(t, self.lr, self.lr_rampup, self.lr_rampdown)
            for group in optimizer.param_groups:
                group["lr"] = lr
            scale = (
                self.w_std * self.noise_scale * max(0.0, 1.0 - t / self.noise_ramp) ** 2
                if self.noise_ramp > 0
                else 0.0
            )
            w_in = w_opt
            if scale > 0:
                w_in = w_opt + torch.randn(w_opt.shape, generator=generator, device=self.device) * scale
            synth = self._render(w_in, noise)
            sel = alive
            recon = self._reconstruction_loss(
                synth, [f[sel] for f in target_feats] if target_feats else None, target[sel]
            )
            loss = recon
            if noise is not None and self.noise_regularize > 0:
                loss = loss + self.noise_regularize * noise_regularizer(noise)
            optimizer.zero_grad(set_to_none=True)
            loss.sum().backward()

            with torch.no_grad():
                # the step's image was rendered from the iterate before this update: judge that one
                value = recon.detach()
                improved = value < best_loss[sel] * (1 - self.min_delta)
                better = value < best_loss[sel]
                best_idx = sel[better]
                best_loss[best_idx] = value[better]
                best_w[best_idx] = w_opt.detach()[better]
                best_step[best_idx] = step
                if best_noise is not None and noise is not None:
                    for bn, n in zip(best_noise, noise, strict=True):
                        bn[best_idx] = n.detach()[better]
                last_improved[sel[improved]] = step
                done = torch.zeros(len(sel), dtype=torch.bool, device=self.device)
                if self.psnr_target is not None:
                    done |= psnr(synth.detach(), target[sel]).mean(dim=1) >= self.psnr_target
                if self.patience is not None and step >= rampup_steps:
                    done |= (step - last_improved[sel]) >= self.patience

            optimizer.step()
            if noise is not None:
                with torch.no_grad():
                    for n in noise:  # keep the maps zero-mean, unit-variance
                        n -= n.mean(dim=(1, 2, 3), keepdim=True)
                        n /= n.square().mean(dim=(1, 2, 3), keepdim=True).sqrt().clamp_min(1e-8)

            n_done = int(done.sum())
            if self.progress:
                bar.update(1)
                bar.set_postfix(active=len(sel) - n_done, refresh=False)
            if n_done:
                stopped[sel[done]] = step
                keep = ~done
                alive = sel[keep]
                if len(alive) == 0:
                    break
                w_opt, noise, optimizer = _shrink(optimizer, w_opt, noise, keep)
        bar.close()

        with torch.no_grad():
            final = self._render(best_w, best_noise)
            result = ProjectionResult(
                w=best_w,
                images=final,
                psnr=psnr(final, target),
                ssim=ssim(final, target),
                steps=best_step,
                stopped=stopped,
                noise=best_noise,
            )
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        result.seconds = time.perf_counter() - started
        return result

    def batches(self, images: torch.Tensor, init_w: torch.Tensor | None = None) -> Iterator[ProjectionResult]:
        """Project ``images`` ``[N, C, R, R]`` in chunks of ``batch_size``, yielding one result per chunk."""
        generator = torch.Generator(device=self.device).manual_seed(self.seed)
        for start in range(0, images.shape[0], self.batch_size):
            chunk = images[start : start + self.batch_size]
            start_w = None if init_w is None else init_w[start : start + self.batch_size]
            yield self.project(chunk, init_w=start_w, generator=generator)

    def project_all(self, images: torch.Tensor, init_w: torch.Tensor | None = None) -> ProjectionResult:
        """Project any number of images ``[N, C, R, R]`` in batches of ``batch_size`` (one result)."""
        return concatenate(list(self.batches(images, init_w)))

    def __repr__(self) -> str:
        perceptual = None if self.perceptual is None else self.perceptual.name
        return (
            f"Projector(space={self.space!r}, steps={self.steps}, lr={self.lr}, perceptual={perceptual!r}, "
            f"pixel_weight={self.pixel_weight}, psnr_target={self.psnr_target}, patience={self.patience}, "
            f"optimize_noise={self.optimize_noise}, encoder={self.encoder is not None}, "
            f"precision={self.precision!r}, batch_size={self.batch_size}, device={str(self.device)!r})"
        )


def _shrink(
    optimizer: torch.optim.Adam, w: torch.Tensor, noise: list[torch.Tensor] | None, keep: torch.Tensor
) -> tuple[torch.Tensor, list[torch.Tensor] | None, torch.optim.Adam]:
    """Drop the stopped samples from the parameters and from Adam's moments (same step count)."""
    old = [w, *(noise or [])]
    new = [p.detach()[keep].clone().requires_grad_(True) for p in old]
    fresh = torch.optim.Adam(new, betas=(0.9, 0.999), lr=optimizer.param_groups[0]["lr"])
    for p_old, p_new in zip(old, new, strict=True):
        state = optimizer.state.get(p_old)
        if state:
            fresh.state[p_new] = {
                "step": state["step"],
                "exp_avg": state["exp_avg"][keep].clone(),
                "exp_avg_sq": state["exp_avg_sq"][keep].clone(),
            }
    return new[0], (new[1:] if noise is not None else None), fresh


def invert(
    gan: GanBundle | Generator,
    images: torch.Tensor,
    *,
    init_w: torch.Tensor | None = None,
    **options: Any,
) -> ProjectionResult:
    """Invert images ``[N, C, R, R]`` in ``[-1, 1]`` with a :class:`Projector` built from ``options``.

    Returns one :class:`ProjectionResult` for all ``N`` images (projected ``batch_size`` at a time).

    Example:
        >>> from latent_transforms import GanBundle, GanConfig
        >>> cfg = GanConfig(resolution=16, channel_base=256, channel_max=32, z_dim=16, w_dim=16)
        >>> bundle = GanBundle.random(cfg)
        >>> targets = bundle.sample(3, seed=2).clamp(-1, 1)
        >>> result = invert(bundle, targets, steps=10, perceptual=None, progress=False)
        >>> result.w.shape
        torch.Size([3, 16])
    """
    return Projector(gan, **options).project_all(images, init_w)
