"""``SG2Sample``: the paper's "Standard SG2 DA", random StyleGAN2 samples in place of real ones.

A chosen sample is replaced by ``G(w)`` for a fresh ``w = mapping(z, c)`` (optionally truncated towards
``w_avg``): a paired synthetic image with every modality in the GAN bundle's channel order, unrelated to
the image it replaces. Every random number (``z``, labels, noise maps) is drawn on the CPU from the
transform's generator, so a seed gives the same samples on any device up to float round-off.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F

from latent_transforms.checks import check_choice
from latent_transforms.errors import ConfigError
from latent_transforms.networks.bundle import GanBundle
from latent_transforms.networks.config import GanConfig
from latent_transforms.transforms.base import VALUE_RANGES, check_cuda_in_worker, from_working_range
from latent_transforms.transforms.config import NOISE_MODES, SG2SampleConfig
from latent_transforms.transforms.gan_transform import GanTransform
from latent_transforms.transforms.labels import ConditionalTransform
from latent_transforms.transforms.sources import Shown

__all__ = ["NOISE_MODES", "SG2Sample", "SG2SampleConfig"]


def noise_resolutions(config: GanConfig) -> list[int]:
    """Side of each noise map of the synthesis network, in the order of its noise layers.

    Example:
        >>> noise_resolutions(GanConfig(resolution=16, channel_base=256, channel_max=32, z_dim=16, w_dim=16))
        [4, 8, 8, 16, 16]
    """
    sides = [4]
    for k in range(3, int(math.log2(config.resolution)) + 1):
        sides += [2**k, 2**k]
    return sides


class SG2Sample(ConditionalTransform, GanTransform):
    """Standard SG2 DA (Tronchin et al. 2023): each chosen sample is replaced by a random GAN sample.

    Input and output: ``[C, R, R]`` or ``[B, C, R, R]`` images with the bundle's channels (paired modalities,
    in its order) and resolution, in the caller's range (``value_range``: ``"physical"`` through the bundle's
    intensity windows, ``"unit"`` ``[0, 1]``, ``"generator"`` ``[-1, 1]``; ``uint8`` 0-255); shape, dtype,
    device and memory layout are kept. Each sample is replaced with probability ``p``; the default ``p = 0.3``
    is the paper's best ``p_aug = 0.7`` for Standard SG2 DA (``p = 1 − p_aug``). The new image is
    ``G(mapping(z, c))`` with ``z ~ N(0, I)``, truncated ``w = w_avg + ψ (w − w_avg)`` on the first
    ``truncation_cutoff`` layers (all when ``None``), clamped to ``[-1, 1]`` (the windows, the range real data
    have). :meth:`sample` makes a pool of synthetic images without any input.

    Labels: a conditional bundle makes each chosen sample of a class drawn uniformly, or of the fixed
    ``c``; called on ``(images, labels)`` (labels an int or an int64 tensor ``[B]``), each chosen sample
    is of its own label's class and the labels come back unchanged (see
    :mod:`latent_transforms.transforms.labels`). An unconditional bundle ignores the labels.

    Args:
        gan: a :class:`~latent_transforms.GanBundle` or a :func:`~latent_transforms.load_gan` source
            string / path (loaded lazily in the process that first uses it; pickles as the string).
        truncation_psi: ``ψ``; 1 = no truncation, 0 = every sample is ``G(w_avg)``.
        truncation_cutoff: truncate only the first this many layers of W+ (``None``: all).
        c: labels of a conditional bundle: ``None`` (a uniformly random class per sample), a class index
            for every sample, or a label vector ``[c_dim]``. Must be ``None`` for an unconditional bundle.
        noise_mode: ``"const"`` (default), ``"random"`` or ``"none"``.
        p: probability that a sample is replaced.
        precision: ``"fp32"`` or ``"bf16"`` (CUDA autocast for the generator).
        value_range: what float inputs mean (see above).
        seed: seed of the transform's generator.
        device: where the GAN runs (default: the input's device).

    Example:
        >>> from latent_transforms import GanBundle, GanConfig
        >>> cfg = GanConfig(resolution=16, channel_base=256, channel_max=32, z_dim=16, w_dim=16)
        >>> t = SG2Sample(GanBundle.random(cfg), p=1.0, value_range="generator", seed=0)
        >>> x = torch.zeros(3, 2, 16, 16)
        >>> out = t(x)
        >>> out.shape, bool((out != x).any()), bool(out.abs().max() <= 1)
        (torch.Size([3, 2, 16, 16]), True, True)
        >>> torch.equal(SG2Sample(t.bundle, p=1.0, value_range="generator", seed=0)(x), out)
        True
        >>> t.sample(5, value_range="unit").shape
        torch.Size([5, 2, 16, 16])
        >>> out, labels = t(x, torch.tensor([0, 1, 1]))  # unconditional: the labels pass through
        >>> labels.tolist()
        [0, 1, 1]
        >>> t  # doctest: +NORMALIZE_WHITESPACE
        SG2Sample(gan=GanBundle(resolution=16, modalities=['mri', 'ct']), truncation_psi=1.0,
        truncation_cutoff=None, c=None, noise_mode='const', p=1.0, precision='fp32', value_range='generator',
        device=None, seed=0)
    """

    config_class = SG2SampleConfig

    def __init__(
        self,
        gan: GanBundle | str | os.PathLike[str],
        *,
        truncation_psi: float = SG2SampleConfig.truncation_psi,
        truncation_cutoff: int | None = SG2SampleConfig.truncation_cutoff,
        c: int | Sequence[float] | torch.Tensor | None = SG2SampleConfig.c,
        noise_mode: str = SG2SampleConfig.noise_mode,
        p: float = SG2SampleConfig.p,
        precision: str = SG2SampleConfig.precision,
        value_range: str = SG2SampleConfig.value_range,
        seed: int | None = None,
        device: torch.device | str | None = None,
    ) -> None:
        given = dict(locals())
        config = SG2SampleConfig(**{name: given[name] for name in SG2SampleConfig.names()})
        super().__init__(gan, config, seed=seed, device=device)
        if isinstance(gan, GanBundle):
            self._check_labels(gan.config)

    def _check_labels(self, config: GanConfig) -> None:
        if config.c_dim == 0 and self.c is not None:
            raise ConfigError(
                f"c={self.c!r} was given but this GAN is unconditional (c_dim = 0). Fix: drop c."
            )
        if config.c_dim > 0 and self.c is not None:
            if isinstance(self.c, int) and not 0 <= self.c < config.c_dim:
                raise ConfigError(f"c must be a class index in [0, {config.c_dim}), got {self.c}.")
            if isinstance(self.c, tuple) and len(self.c) != config.c_dim:
                raise ConfigError(
                    f"c must be a label vector of length c_dim = {config.c_dim}, got {len(self.c)}."
                )

    def class_count(self) -> int:
        """The bundle's number of classes (0: unconditional)."""
        return int(self._gan.config.c_dim)

    def fixed_class(self) -> Any | None:
        """The fixed ``c`` (``None``: a class per sample, drawn or from the call's labels)."""
        return self.c

    def draw_params(self, batch: int, generator: torch.Generator) -> dict[str, Any]:
        """``"z"`` ``[B, z_dim]``, and when needed ``"labels"`` ``[B]`` (long, conditional bundle without
        ``c``; replaced by the call's labels on an ``(images, labels)`` call) and ``"noise"`` ``[B, n]``
        (``noise_mode="random"``: every noise map, flattened), drawn from ``generator`` on the CPU."""
        config = self._gan.config
        self._check_labels(config)
        params: dict[str, Any] = {"z": torch.randn(batch, config.z_dim, generator=generator)}
        if config.c_dim > 0 and self.c is None:
            params["labels"] = torch.randint(config.c_dim, (batch,), generator=generator)
        if self.noise_mode == "random":
            total = sum(r * r for r in noise_resolutions(config))
            params["noise"] = torch.randn(batch, total, generator=generator)
        return params

    def _labels(
        self, config: GanConfig, params: dict[str, Any], batch: int, device: torch.device
    ) -> torch.Tensor | None:
        if config.c_dim == 0:
            return None
        if self.c is None:
            return F.one_hot(params["labels"].to(device), config.c_dim).float()
        if isinstance(self.c, int):
            return F.one_hot(torch.full((batch,), self.c, device=device), config.c_dim).float()
        return torch.tensor(self.c, device=device, dtype=torch.float32).expand(batch, -1)

    def render(self, params: dict[str, Any], device: torch.device | str | None = None) -> torch.Tensor:
        """The images of drawn ``params`` (:meth:`draw_params`): ``[B, C, R, R]`` float32 in ``[-1, 1]``
        (unclamped, contiguous) on ``device`` (default: the bundle's).

        Example:
            >>> from latent_transforms import GanBundle, GanConfig
            >>> cfg = GanConfig(resolution=16, channel_base=256, channel_max=32, z_dim=16, w_dim=16)
            >>> t = SG2Sample(GanBundle.random(cfg))
            >>> t.render(t.draw_params(2, torch.Generator().manual_seed(0))).shape
            torch.Size([2, 2, 16, 16])
        """
        bundle = self._gan.bundle(device)
        dev = bundle.device
        G = bundle.generator
        z = params["z"].to(dev)
        batch = z.shape[0]
        c = self._labels(bundle.config, params, batch, dev)
        noise = None
        if self.noise_mode == "random":
            flat = params["noise"].to(dev)
            sides = [layer.resolution for layer in G.synthesis.noise_layers()]
            parts = torch.split(flat, [r * r for r in sides], dim=1)
            noise = [part.reshape(batch, 1, r, r) for part, r in zip(parts, sides, strict=True)]
        enabled = self.precision == "bf16" and dev.type == "cuda"
        with torch.no_grad(), torch.autocast(dev.type, dtype=torch.bfloat16, enabled=enabled):
            ws = G.mapping(z, c, truncation_psi=self.truncation_psi, truncation_cutoff=self.truncation_cutoff)
            mode = "none" if self.noise_mode == "none" else "const"
            return G.synthesis(ws, noise_mode=mode, noise=noise).float().contiguous()

    def sample(
        self,
        n: int,
        labels: torch.Tensor | int | Sequence[int] | None = None,
        *,
        generator: torch.Generator | None = None,
        value_range: str | None = None,
        device: torch.device | str | None = None,
    ) -> torch.Tensor:
        """``n`` synthetic images ``[n, C, R, R]`` float32, contiguous (a pool of samples, no input needed).

        Args:
            n: number of images (≥ 1).
            labels: classes of a conditional bundle: an int for every image or ``n`` class indices
                (default: drawn uniformly, or the fixed ``c``).
            generator: CPU ``torch.Generator`` for the draws (default: the transform's).
            value_range: ``"physical"``, ``"unit"`` or ``"generator"`` (default: the transform's).
            device: where to run and return them (default: the transform's device, else CPU).

        Example:
            >>> from latent_transforms import GanBundle, GanConfig
            >>> cfg = GanConfig(resolution=16, channel_base=256, channel_max=32, z_dim=16, w_dim=16)
            >>> t = SG2Sample(GanBundle.random(cfg))
            >>> ct = t.sample(4, generator=torch.Generator().manual_seed(0))[:, 1]
            >>> bool(ct.min() >= -1000 and ct.max() <= 2000)
            True
        """
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ConfigError(f"n must be an integer >= 1, got {n!r}.")
        value_range = check_choice(
            "value_range", self.value_range if value_range is None else value_range, VALUE_RANGES
        )
        dev = torch.device(device) if device is not None else (self.device or torch.device("cpu"))
        check_cuda_in_worker(dev)
        params = self.draw_params(n, generator if generator is not None else self.generator)
        params = self.sample_labels(params, labels, n)
        images = self.render(params, dev).clamp(-1.0, 1.0)
        like = torch.empty(0, dtype=torch.float32, device=images.device)
        return from_working_range(images, like, value_range, self.windows())

    # -- RandomTransform protocol ------------------------------------------------------------------------
    def apply_batch(self, x: torch.Tensor, params: dict[str, Any], kind: str) -> torch.Tensor:
        """Replace the chosen samples ``x`` ``[n, C, R, R]`` by the images of their ``params``, clamped to
        ``[-1, 1]``."""
        return self.render(params, x.device).clamp(-1.0, 1.0)

    def repr_value(self, name: str, value: Any) -> Any:
        """A label vector ``c`` as a list."""
        return Shown(repr(list(value))) if name == "c" and isinstance(value, tuple) else value
