"""An optional encoder that gives the GAN-inversion projector its starting point.

A small convolutional network trained on the generator's own samples, ``z -> G -> image -> E -> w``,
so it needs no data: :func:`train_encoder` draws ``z``, renders ``G(w)`` and teaches the encoder to
recover ``w`` (a latent loss in W normalised by the per-dimension W standard deviation, plus an
image loss ``|G(E(G(w))) - G(w)|^2`` through the frozen generator). The projector then starts from
``E(image)`` instead of ``w_avg`` and reaches the same reconstruction quality in far fewer steps.

The encoder is stored in the GAN bundle as ``encoder.safetensors`` (weights, plus the JSON
:class:`EncoderConfig` in the safetensors metadata), so it travels with Hub bundles like every other
bundle file. ``latent-transforms train-encoder --gan BUNDLE`` trains and stores it;
:func:`load_encoder` reads it back and refuses an encoder trained for another generator.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from safetensors import safe_open
from torch import nn
from tqdm.auto import tqdm

from latent_transforms._version import __version__
from latent_transforms.checks import canonical_device, check_choice, check_int
from latent_transforms.errors import ConfigError, EncoderNotFoundError, WeightMismatchError
from latent_transforms.networks.bundle import CONFIG_NAME, GENERATOR_NAME, GanBundle
from latent_transforms.networks.config import GanConfig
from latent_transforms.networks.generator import Generator
from latent_transforms.networks.hub import resolve_source
from latent_transforms.networks.weights import (
    atomic_save,
    check_state_matches,
    fingerprint,
    load_strict,
    state_tensors,
)

ENCODER_NAME = "encoder.safetensors"
SPACES: tuple[str, ...] = ("w", "w+")
PRECISIONS: tuple[str, ...] = ("fp32", "bf16")
_FORMAT_VERSION = 1
_LRELU = 0.2
_MIN_STD = 1e-4

__all__ = [
    "ENCODER_NAME",
    "EncoderConfig",
    "LatentEncoder",
    "evaluate_encoder",
    "load_encoder",
    "save_encoder",
    "train_encoder",
]


@dataclass
class EncoderConfig:
    """Architecture of a :class:`LatentEncoder` and what it was trained for.

    Args:
        resolution: input image size ``R`` (power of two, at least 4), the generator's resolution.
        img_channels: input channels ``C`` (the bundle's modalities).
        w_dim: dimension of W.
        num_ws: number of W+ rows of the generator (the synthesis layers).
        space: ``"w"`` (one w per image, [B, w_dim]) or ``"w+"`` (one per layer, [B, num_ws, w_dim]).
        channel_base: the encoder has ``min(channel_base // r, channel_max)`` channels at resolution r.
        channel_max: see ``channel_base``.
        generator_fingerprint: :attr:`GanBundle.fingerprint` of the generator it was trained on.
        training: summary of the training run (steps, batch size, losses, ...); JSON-ready.

    Example:
        >>> cfg = EncoderConfig(resolution=16, img_channels=2, w_dim=16, num_ws=6, space="w+")
        >>> cfg.out_shape
        (6, 16)
        >>> EncoderConfig.from_json(cfg.to_json()) == cfg
        True
    """

    resolution: int
    img_channels: int
    w_dim: int
    num_ws: int
    space: str = "w"
    channel_base: int = 16384
    channel_max: int = 512
    generator_fingerprint: str | None = None
    training: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        r = self.resolution
        if r < 4 or r & (r - 1):
            raise ConfigError(f"encoder resolution must be a power of two >= 4, got {r}")
        check_choice("encoder space", self.space, SPACES)
        for name in ("img_channels", "w_dim", "num_ws", "channel_base", "channel_max"):
            if int(getattr(self, name)) < 1:
                raise ConfigError(f"encoder {name} must be a positive integer, got {getattr(self, name)}")

    @property
    def out_shape(self) -> tuple[int, ...]:
        """Shape of one prediction: ``(w_dim,)`` in W, ``(num_ws, w_dim)`` in W+."""
        return (self.w_dim,) if self.space == "w" else (self.num_ws, self.w_dim)

    def channels(self, res: int) -> int:
        """Feature channels at resolution ``res``."""
        return max(1, min(self.channel_base // res, self.channel_max))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EncoderConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        missing = [n for n in ("resolution", "img_channels", "w_dim", "num_ws") if n not in data]
        if missing:
            raise ConfigError(
                f"encoder config lacks {missing}; re-train with `latent-transforms train-encoder`"
            )
        return cls(**{k: v for k, v in data.items() if k in names})

    @classmethod
    def from_json(cls, text: str) -> EncoderConfig:
        return cls.from_dict(json.loads(text))


class _DownBlock(nn.Module):
    """Residual block: two 3x3 convolutions then 2x average pooling, plus a pooled 1x1 skip.

    Shapes: ``[B, cin, r, r] -> [B, cout, r / 2, r / 2]``.
    """

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv0 = nn.Conv2d(cin, cin, 3, padding=1)
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.skip = nn.Conv2d(cin, cout, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.avg_pool2d(self.skip(x), 2)
        x = F.leaky_relu(self.conv0(x), _LRELU)
        x = F.avg_pool2d(F.leaky_relu(self.conv1(x), _LRELU), 2)
        return (x + y) * (1.0 / math.sqrt(2.0))


class LatentEncoder(nn.Module):
    """Images ``[B, C, R, R]`` in ``[-1, 1]`` -> latents of the generator it was trained for.

    ``space="w"`` predicts ``[B, w_dim]``; ``space="w+"`` predicts ``[B, num_ws, w_dim]``. The network
    is a 1x1 input convolution, residual down-sampling blocks from ``R`` to 4, a 3x3 convolution and two
    linear layers (leaky ReLU 0.2). Its last layer is zero-initialised and predicts an offset in units of
    the W standard deviation: ``w = w_avg + w_std * head(features)``, with ``w_avg`` and ``w_std``
    [w_dim] stored as buffers. So an untrained encoder predicts exactly ``w_avg``, the projector's
    default start, and training can only improve on it.

    Build one for a bundle with :meth:`for_bundle`, train it with :func:`train_encoder`, store it with
    :func:`save_encoder` and read it back with :func:`load_encoder`.

    Args:
        config: architecture and provenance.
        w_avg: centre of the predictions [w_dim] (default zeros).
        w_std: scale of the predicted offsets [w_dim] (default ones).

    Example:
        >>> cfg = EncoderConfig(resolution=16, img_channels=2, w_dim=8, num_ws=6, channel_base=64,
        ...                     channel_max=16)
        >>> enc = LatentEncoder(cfg, w_avg=torch.full((8,), 0.5))
        >>> w = enc.encode(torch.zeros(3, 2, 16, 16))
        >>> w.shape, bool((w == 0.5).all())
        (torch.Size([3, 8]), True)
        >>> enc.encode(torch.zeros(3, 2, 16, 16), broadcast=True).shape
        torch.Size([3, 6, 8])
    """

    def __init__(
        self, config: EncoderConfig, *, w_avg: torch.Tensor | None = None, w_std: torch.Tensor | None = None
    ) -> None:
        super().__init__()
        self.config = config
        c = config
        self.register_buffer("w_avg", _vector(w_avg, c.w_dim, 0.0, "w_avg"))
        self.register_buffer("w_std", _vector(w_std, c.w_dim, 1.0, "w_std").clamp_min(_MIN_STD))
        self.from_rgb = nn.Conv2d(c.img_channels, c.channels(c.resolution), 1)
        self.block_resolutions = [2**i for i in range(int(math.log2(c.resolution)), 2, -1)]
        for res in self.block_resolutions:
            self.add_module(f"b{res}", _DownBlock(c.channels(res), c.channels(res // 2)))
        ch4 = c.channels(4)
        hidden = max(ch4, c.w_dim)
        self.conv4 = nn.Conv2d(ch4, ch4, 3, padding=1)
        self.fc = nn.Linear(ch4 * 16, hidden)
        self.out = nn.Linear(hidden, math.prod(c.out_shape))
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    @classmethod
    def for_bundle(
        cls,
        bundle: GanBundle,
        *,
        space: str = "w",
        channel_base: int | None = None,
        channel_max: int | None = None,
        seed: int = 0,
    ) -> LatentEncoder:
        """A fresh (untrained) encoder for ``bundle``: sizes, ``w_avg``/``w_std`` and fingerprint from it.

        ``w_avg`` is ``bundle.w_stats["w_avg"]`` (the generator's tracked average, the truncation centre
        and the projector's start); ``w_std`` is the square root of the diagonal of ``w_stats["w_cov"]``,
        estimated from 4096 samples when the bundle has no statistics. Channels default to the GAN's.
        Weights are drawn from ``seed`` without touching the global RNG.
        """
        gc = bundle.config
        config = EncoderConfig(
            resolution=gc.resolution,
            img_channels=gc.img_channels,
            w_dim=gc.w_dim,
            num_ws=bundle.generator.num_ws,
            space=space,
            channel_base=channel_base or gc.channel_base,
            channel_max=channel_max or gc.channel_max,
            generator_fingerprint=bundle.fingerprint,
        )
        w_avg, w_std = _w_centre_and_scale(bundle)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            encoder = cls(config, w_avg=w_avg, w_std=w_std)
        return encoder.to(bundle.device)

    @property
    def space(self) -> str:
        return self.config.space

    @property
    def device(self) -> torch.device:
        return self.w_avg.device

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """``images`` [B, C, R, R] in ``[-1, 1]`` -> w [B, w_dim] (W) or ws [B, num_ws, w_dim] (W+)."""
        c = self.config
        if images.ndim != 4 or tuple(images.shape[1:]) != (c.img_channels, c.resolution, c.resolution):
            raise ValueError(
                f"the encoder expects images [B, {c.img_channels}, {c.resolution}, {c.resolution}] in "
                f"[-1, 1] (the generator's channels and resolution), got {tuple(images.shape)}"
            )
        x = F.leaky_relu(self.from_rgb(images.to(self.from_rgb.weight.dtype)), _LRELU)
        for res in self.block_resolutions:
            x = getattr(self, f"b{res}")(x)
        x = F.leaky_relu(self.conv4(x), _LRELU)
        x = F.leaky_relu(self.fc(x.flatten(1)), _LRELU)
        offset = self.out(x).float().view(-1, *c.out_shape)
        return self.w_avg + self.w_std * offset

    @torch.no_grad()
    def encode(self, images: torch.Tensor, *, batch_size: int = 64, broadcast: bool = False) -> torch.Tensor:
        """Predict latents without gradients, ``batch_size`` images at a time (bounds memory).

        Args:
            images: [B, C, R, R] in ``[-1, 1]``, on any device (chunks are moved to the encoder's).
            batch_size: images per forward pass.
            broadcast: return ``[B, num_ws, w_dim]`` even in W space (w repeated for every layer), the
                shape ``synthesis`` takes.

        Returns:
            float32 latents on the encoder's device: [B, w_dim] (W) or [B, num_ws, w_dim] (W+).
        """
        was_training = self.training
        self.eval()
        try:
            parts = [self(chunk.to(self.device)) for chunk in images.split(max(1, batch_size))]
        finally:
            self.train(was_training)
        out = torch.cat(parts) if parts else torch.empty(0, *self.config.out_shape, device=self.device)
        if broadcast and self.space == "w":
            out = out.unsqueeze(1).expand(-1, self.config.num_ws, -1)
        return out

    def extra_repr(self) -> str:
        c = self.config
        n = sum(p.numel() for p in self.parameters())
        fp = (c.generator_fingerprint or "none")[:12]
        return (
            f"resolution={c.resolution}, img_channels={c.img_channels}, space={c.space!r}, w_dim={c.w_dim}, "
            f"num_ws={c.num_ws}, channels={c.channels(c.resolution)}..{c.channels(4)}, parameters={n:,}, "
            f"generator_fingerprint={fp}"
        )


def _vector(value: torch.Tensor | None, dim: int, fill: float, name: str) -> torch.Tensor:
    if value is None:
        return torch.full((dim,), fill)
    value = value.detach().float().cpu().clone()
    if tuple(value.shape) != (dim,):
        raise ConfigError(f"{name} must have shape ({dim},), got {tuple(value.shape)}")
    return value


@torch.no_grad()
def _w_centre_and_scale(bundle: GanBundle, n_samples: int = 4096) -> tuple[torch.Tensor, torch.Tensor]:
    """``w_avg`` and the per-dimension W standard deviation of ``bundle`` [w_dim] each."""
    mapping = bundle.generator.mapping
    stats = bundle.w_stats
    if "w_cov" in stats:
        std = stats["w_cov"].diagonal().clamp_min(0).sqrt()
        mean = stats.get("w_mean")
    else:  # estimate without touching the bundle
        gen = torch.Generator(device=bundle.device).manual_seed(0)
        z = bundle.generator.sample_z(n_samples, generator=gen, device=bundle.device)
        w = mapping(z, _labels(bundle, n_samples, gen))[:, 0].double()
        std, mean = w.std(0).float(), w.mean(0).float()
    if "w_avg" in stats:
        w_avg = stats["w_avg"]
    elif hasattr(mapping, "w_avg"):
        w_avg = mapping.w_avg
    else:
        w_avg = mean
    return w_avg.float().cpu(), std.float().cpu()


def _labels(bundle: GanBundle, n: int, gen: torch.Generator) -> torch.Tensor | None:
    """Uniformly drawn one-hot labels [n, c_dim] for a conditional bundle (as ``bundle.sample``)."""
    c_dim = bundle.config.c_dim
    if c_dim == 0:
        return None
    labels = torch.randint(c_dim, (n,), generator=gen, device=gen.device)
    return F.one_hot(labels, c_dim).float()


def _autocast(device: torch.device, precision: str) -> Any:
    if precision == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return torch.autocast(device_type=device.type, enabled=False)


class _FrozenGenerator:
    """Context: the generator in eval mode with gradients off, restored afterwards."""

    def __init__(self, generator: Generator) -> None:
        self.generator = generator

    def __enter__(self) -> Generator:
        g = self.generator
        self.flags = [p.requires_grad for p in g.parameters()]
        self.training = g.training
        g.eval().requires_grad_(False)
        return g

    def __exit__(self, *exc: object) -> None:
        for p, flag in zip(self.generator.parameters(), self.flags, strict=True):
            p.requires_grad_(flag)
        self.generator.train(self.training)


def _sample_targets(
    G: Generator,
    bundle: GanBundle,
    n: int,
    gen: torch.Generator,
    device: torch.device,
    truncation_psi: float,
    noise_mode: str,
) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor] | None]:
    """``ws`` [n, num_ws, w_dim], images ``G(ws)`` [n, C, R, R] and the noise maps used (or None)."""
    z = G.sample_z(n, generator=gen, device=device)
    ws = G.mapping(z, _labels(bundle, n, gen), truncation_psi=truncation_psi)
    noise = G.synthesis.make_noise(n, generator=gen, device=device) if noise_mode == "random" else None
    images = G.synthesis(ws, noise_mode=noise_mode, noise=noise)
    return ws, images, noise


def _as_ws(pred: torch.Tensor, num_ws: int) -> torch.Tensor:
    return pred.unsqueeze(1).expand(-1, num_ws, -1) if pred.ndim == 2 else pred


def train_encoder(
    bundle: GanBundle,
    *,
    steps: int = 2000,
    batch_size: int = 32,
    lr: float = 1e-3,
    space: str = "w",
    pixel_weight: float = 1.0,
    latent_weight: float = 1.0,
    truncation_psi: float = 1.0,
    noise_mode: str = "const",
    seed: int = 0,
    device: torch.device | str | None = None,
    precision: str = "fp32",
    channel_base: int | None = None,
    channel_max: int | None = None,
    progress: bool = True,
    log_every: int = 50,
) -> LatentEncoder:
    """Train a :class:`LatentEncoder` on ``bundle``'s own samples (no data needed).

    Each step draws ``z`` [batch_size, z_dim] (and labels, for a conditional GAN) from a
    ``torch.Generator`` seeded with ``seed``, maps it to ``ws = mapping(z)`` and renders
    ``x = synthesis(ws)`` without gradients. The encoder predicts ``ŵ = E(x)`` and minimises::

        latent_weight * mean(((ŵ - w) / w_std) ** 2) + pixel_weight * mean((G(ŵ) - x) ** 2)

    with ``w = ws[:, 0]`` in W space and ``ws`` in W+; ``w_std`` is the per-dimension W standard
    deviation, so the latent term is about 1 for a prediction as far off as a random w. The image term
    renders ``G(ŵ)`` through the frozen generator (gradients flow through it into the encoder only);
    ``pixel_weight=0`` skips it and makes a step several times cheaper. The generator is put in eval
    mode with gradients off during training and restored afterwards; the bundle is not modified.

    Args:
        bundle: the GAN (its device is used unless ``device`` is given; then a copy of the generator
            is moved there).
        steps: optimiser steps (Adam, ``lr``, betas 0.9/0.99).
        batch_size: generated images per step.
        lr: Adam learning rate.
        space: ``"w"`` ([B, w_dim]) or ``"w+"`` ([B, num_ws, w_dim]).
        pixel_weight: weight of the image MSE (images in ``[-1, 1]``); 0 disables it.
        latent_weight: weight of the normalised latent MSE; 0 disables it.
        truncation_psi: truncation of the training latents (1 = the full distribution).
        noise_mode: the synthesis noise, ``"const"`` (default, what the projector uses), ``"none"`` or
            ``"random"`` (fresh maps per batch, the same for ``G(w)`` and ``G(ŵ)``).
        seed: seeds the encoder's initial weights and every sample; with ``precision="fp32"`` on CPU the
            result is bit-for-bit reproducible.
        device: where to train (default the bundle's device).
        precision: ``"fp32"`` or ``"bf16"`` (autocast of encoder and generator; for CUDA).
        channel_base: encoder width (default the GAN's ``channel_base``).
        channel_max: encoder width cap (default the GAN's ``channel_max``).
        progress: show a tqdm bar with the running losses.
        log_every: steps per entry of ``encoder.config.training["history"]`` (mean losses).

    Returns:
        The trained encoder in eval mode on ``device``, ``config.training`` holding the settings, the
        final losses (mean of the last ``log_every`` steps) and the loss history.

    Example:
        >>> from latent_transforms import GanBundle, GanConfig
        >>> cfg = GanConfig(resolution=16, channel_base=256, channel_max=32, z_dim=16, w_dim=16)
        >>> bundle = GanBundle.random(cfg, seed=0)
        >>> enc = train_encoder(bundle, steps=2, batch_size=4, progress=False)
        >>> enc.encode(bundle.sample(3)).shape
        torch.Size([3, 16])
    """
    steps = check_int("steps", steps, low=0)
    batch_size = check_int("batch_size", batch_size, low=1)
    check_choice("precision", precision, PRECISIONS)
    check_choice("noise_mode", noise_mode, ("const", "random", "none"))
    if pixel_weight < 0 or latent_weight < 0 or pixel_weight + latent_weight == 0:
        raise ConfigError(
            f"pixel_weight and latent_weight must be >= 0 and not both 0, got {pixel_weight}, {latent_weight}"
        )
    device = canonical_device(device if device is not None else bundle.device)
    G = bundle.generator if device == bundle.device else copy.deepcopy(bundle.generator).to(device)
    encoder = LatentEncoder.for_bundle(
        bundle, space=space, channel_base=channel_base, channel_max=channel_max, seed=seed
    ).to(device)
    encoder.train()
    optimizer = torch.optim.Adam(encoder.parameters(), lr=lr, betas=(0.9, 0.99))
    gen = torch.Generator(device=device).manual_seed(seed)
    num_ws = G.num_ws
    inv_std = 1.0 / encoder.w_std
    history: list[dict[str, float]] = []
    sums = {"latent": 0.0, "pixel": 0.0, "loss": 0.0}
    count = 0
    last: dict[str, float] = {}
    started = time.perf_counter()
    bar = tqdm(range(steps), desc="encoder", unit="step", disable=not progress)
    with _FrozenGenerator(G):
        for step in bar:
            with torch.no_grad(), _autocast(device, precision):
                ws, images, noise = _sample_targets(
                    G, bundle, batch_size, gen, device, truncation_psi, noise_mode
                )
            ws, images = ws.float(), images.float()
            with _autocast(device, precision):
                pred = encoder(images)
                target = ws[:, 0] if space == "w" else ws
                latent = ((pred.float() - target) * inv_std).square().mean()
                loss = latent_weight * latent
                pixel = torch.zeros((), device=device)
                if pixel_weight > 0:
                    rendered = G.synthesis(_as_ws(pred, num_ws), noise_mode=noise_mode, noise=noise)
                    pixel = (rendered.float() - images).square().mean()
                    loss = loss + pixel_weight * pixel
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            values = {"latent": latent.item(), "pixel": pixel.item(), "loss": loss.item()}
            for k, v in values.items():
                sums[k] += v
            count += 1
            bar.set_postfix({k: f"{v:.4f}" for k, v in values.items()}, refresh=False)
            if count == max(1, log_every) or step == steps - 1:
                last = {k: v / count for k, v in sums.items()}
                history.append({"step": step + 1, **{k: round(v, 6) for k, v in last.items()}})
                sums = dict.fromkeys(sums, 0.0)
                count = 0
    bar.close()
    encoder.eval()
    encoder.config.training = {
        "steps": steps,
        "batch_size": batch_size,
        "lr": lr,
        "pixel_weight": pixel_weight,
        "latent_weight": latent_weight,
        "truncation_psi": truncation_psi,
        "noise_mode": noise_mode,
        "seed": seed,
        "precision": precision,
        "device": str(device),
        "seconds": round(time.perf_counter() - started, 1),
        "final_latent_mse": round(last["latent"], 6) if last else None,
        "final_pixel_mse": round(last["pixel"], 6) if last and pixel_weight > 0 else None,
        "history": history,
        "library_version": __version__,
    }
    return encoder


@torch.no_grad()
def evaluate_encoder(
    encoder: LatentEncoder,
    bundle: GanBundle,
    *,
    n_samples: int = 256,
    seed: int = 123_456,
    batch_size: int = 64,
    truncation_psi: float = 1.0,
    noise_mode: str = "const",
) -> dict[str, float]:
    """Held-out quality of ``encoder`` on ``n_samples`` fresh generator samples.

    Draws ``z`` from ``seed`` (use one the encoder was not trained with), renders ``x = G(w)`` and
    compares ``G(E(x))`` with ``x``, and, as the baseline the projector would otherwise start from,
    ``G(w_avg)`` with ``x``. Images are in ``[-1, 1]``, so PSNR is ``10 log10(2^2 / MSE)`` (dB).

    Returns:
        ``latent_mse`` (normalised by the W std, as in training), ``latent_mse_w_avg``,
        ``pixel_mse``, ``pixel_mse_w_avg``, ``psnr``, ``psnr_w_avg`` (PSNR of the mean MSE) and
        ``n_samples``.

    Example:
        >>> from latent_transforms import GanBundle, GanConfig
        >>> cfg = GanConfig(resolution=16, channel_base=256, channel_max=32, z_dim=16, w_dim=16)
        >>> bundle = GanBundle.random(cfg, seed=0)
        >>> enc = LatentEncoder.for_bundle(bundle)  # untrained: predicts w_avg
        >>> r = evaluate_encoder(enc, bundle, n_samples=8)
        >>> r["psnr"] == r["psnr_w_avg"]
        True
    """
    device = encoder.device
    G = bundle.generator if device == bundle.device else copy.deepcopy(bundle.generator).to(device)
    gen = torch.Generator(device=device).manual_seed(seed)
    num_ws = G.num_ws
    inv_std = 1.0 / encoder.w_std
    sums = dict.fromkeys(("latent_mse", "latent_mse_w_avg", "pixel_mse", "pixel_mse_w_avg"), 0.0)
    done = 0
    with _FrozenGenerator(G):
        while done < n_samples:
            b = min(batch_size, n_samples - done)
            ws, images, noise = _sample_targets(G, bundle, b, gen, device, truncation_psi, noise_mode)
            target = ws[:, 0] if encoder.space == "w" else ws
            pred = encoder.encode(images, batch_size=b)
            start = encoder.w_avg.expand_as(target)
            for suffix, latent in (("", pred), ("_w_avg", start)):
                rendered = G.synthesis(_as_ws(latent, num_ws), noise_mode=noise_mode, noise=noise)
                sums["latent_mse" + suffix] += float(((latent - target) * inv_std).square().mean()) * b
                sums["pixel_mse" + suffix] += float((rendered - images).square().mean()) * b
            done += b
    result = {k: v / max(n_samples, 1) for k, v in sums.items()}
    result["psnr"] = _psnr(result["pixel_mse"])
    result["psnr_w_avg"] = _psnr(result["pixel_mse_w_avg"])
    result["n_samples"] = n_samples
    return result


def _psnr(mse: float) -> float:
    return 10.0 * math.log10(4.0 / mse) if mse > 0 else float("inf")


# -- storage -----------------------------------------------------------------------------------------
def save_encoder(encoder: LatentEncoder, folder: str | Path) -> Path:
    """Write ``encoder`` to ``folder/encoder.safetensors`` atomically; returns the file's path.

    ``folder`` is normally a GAN bundle folder (created if missing): the file then travels with the
    bundle, to the Hub too. Weights and buffers are the tensors; the :class:`EncoderConfig` (with the
    generator fingerprint and the training summary) is JSON in the safetensors metadata.

    Example:
        >>> import tempfile
        >>> cfg = EncoderConfig(resolution=8, img_channels=1, w_dim=4, num_ws=4, channel_base=32,
        ...                     channel_max=8)
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     save_encoder(LatentEncoder(cfg), tmp).name
        'encoder.safetensors'
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / ENCODER_NAME
    metadata = {
        "format": "pt",
        "library": "latent-transforms",
        "library_version": __version__,
        "format_version": str(_FORMAT_VERSION),
        "encoder_config": encoder.config.to_json(),
    }
    tensors = {k: v.float() for k, v in state_tensors(encoder).items()}
    atomic_save(tensors, path, metadata)
    return path


def _missing(where: str, gan: str) -> EncoderNotFoundError:
    return EncoderNotFoundError(
        f"the GAN bundle {where} has no {ENCODER_NAME}: no encoder has been trained for it. Train and store "
        f"one with `latent-transforms train-encoder --gan {gan}` (add --out FOLDER for a built-in or Hub "
        "bundle), or project from w_avg without an encoder."
    )


def load_encoder(
    source: str | Path | GanBundle,
    *,
    device: torch.device | str | None = None,
    revision: str | None = None,
    cache_dir: str | Path | None = None,
    check_fingerprint: bool = True,
) -> LatentEncoder:
    """Load the encoder stored in a GAN bundle.

    Args:
        source: a bundle folder, ``"builtin:<name>"``, a Hub repo id (see :func:`load_gan`), or a
            loaded :class:`GanBundle` (its ``source`` is read; the encoder goes to its device).
        device: where to put the encoder (default: the bundle's device, else CPU).
        revision: Hub branch, tag or commit.
        cache_dir: Hub cache folder.
        check_fingerprint: refuse an encoder trained for another generator than the bundle's (compared
            with the loaded bundle's fingerprint, or with the bundle folder's ``generator.safetensors``).

    Returns:
        The encoder in eval mode.

    Raises:
        EncoderNotFoundError: the bundle has no ``encoder.safetensors`` (the message says how to train one).
        WeightMismatchError: the file is unreadable, does not match its config, or was trained for a
            different generator.

    Example:
        >>> enc = load_encoder("path/to/bundle")  # doctest: +SKIP
        >>> enc.encode(images).shape  # doctest: +SKIP
        torch.Size([8, 512])
    """
    bundle = source if isinstance(source, GanBundle) else None
    if bundle is not None:
        if bundle.source is None:
            raise EncoderNotFoundError(
                "this GanBundle was not loaded from a folder or the Hub (bundle.source is None), so there "
                "is nowhere to read encoder.safetensors from. Save the bundle and train an encoder with "
                "`latent-transforms train-encoder --gan FOLDER`, then call load_encoder(FOLDER)."
            )
        source = bundle.source
        if device is None:
            device = bundle.device
    assert not isinstance(source, GanBundle)
    folder = resolve_source(source, revision=revision, cache_dir=cache_dir)
    path = folder / ENCODER_NAME
    if not path.is_file():
        raise _missing(
            f"{source!r} ({folder})" if str(folder) != str(source) else repr(str(source)), str(source)
        )
    try:
        with safe_open(str(path), framework="pt", device="cpu") as fh:
            metadata = fh.metadata() or {}
            tensors = {k: fh.get_tensor(k) for k in fh.keys()}  # noqa: SIM118 (safe_open has no iterator)
    except Exception as exc:  # safetensors raises its own error types
        raise WeightMismatchError(f"cannot read the encoder from {path}: {exc}. Re-train it.") from exc
    if "encoder_config" not in metadata:
        raise WeightMismatchError(
            f"{path} holds no encoder config in its metadata; it was not written by save_encoder. "
            f"Re-train it with `latent-transforms train-encoder --gan {source}`."
        )
    config = EncoderConfig.from_json(metadata["encoder_config"])
    if check_fingerprint:
        expected = bundle.fingerprint if bundle is not None else _folder_fingerprint(folder)
        if config.generator_fingerprint != expected:
            raise WeightMismatchError(
                f"the encoder in {path} was trained for generator {str(config.generator_fingerprint)[:16]}"
                "... "
                f"but the bundle's generator is {expected[:16]}...; its predictions would be meaningless. "
                f"Re-train it with `latent-transforms train-encoder --gan {source}` "
                "(or pass check_fingerprint=False)."
            )
    encoder = LatentEncoder(config)
    check_state_matches(encoder, tensors, f"encoder weights in {path}")
    encoder.load_state_dict(tensors, strict=True)
    return encoder.to(device if device is not None else "cpu").eval()


def _folder_fingerprint(folder: Path) -> str:
    """Fingerprint of the generator stored in a bundle folder (built on CPU, as ``GanBundle`` does)."""
    generator = Generator(GanConfig.from_json(folder / CONFIG_NAME))
    load_strict(generator, folder / GENERATOR_NAME, "generator")
    return fingerprint(generator)
