"""``DiffusionSample``: random diffusion samples in place of real ones, the diffusion counterpart of
:class:`~latent_transforms.SG2Sample`.

A chosen sample is replaced by an image the diffusion bundle denoises from fresh noise ``x_T`` (DDIM with
``steps`` steps by default; see :func:`~latent_transforms.generative.denoise`), of the sample's class when
the call carries labels. Every random number of a sample (``x_T``, its class, the seed of stochastic steps)
is drawn on the CPU from the transform's generator, so a seed gives the same samples on any device up to
float round-off with the deterministic DDIM (``eta = 0``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from latent_transforms.checks import check_choice, check_int
from latent_transforms.errors import ConfigError
from latent_transforms.generative.bundle import DiffusionBundle
from latent_transforms.generative.config import DiffusionConfig
from latent_transforms.generative.sampling import denoise
from latent_transforms.transforms.base import VALUE_RANGES, check_cuda_in_worker, from_working_range
from latent_transforms.transforms.config import DiffusionSampleConfig
from latent_transforms.transforms.gan_transform import GanTransform
from latent_transforms.transforms.labels import ConditionalTransform

__all__ = ["DiffusionSample", "DiffusionSampleConfig"]


class DiffusionSample(ConditionalTransform, GanTransform):
    """Each chosen sample is replaced by a random sample of a diffusion bundle (DDIM or DDPM).

    Input and output: ``[C, R, R]`` or ``[B, C, R, R]`` images with the bundle's channels and resolution,
    in the caller's range (``value_range``: ``"physical"`` through the bundle's intensity windows,
    ``"unit"`` ``[0, 1]``, ``"generator"`` ``[-1, 1]``; ``uint8`` 0-255); shape, dtype, device and memory
    layout are kept. Each sample is replaced with probability ``p`` (default 0.3, as ``SG2Sample``), only
    the chosen ones are denoised, as one batch. :meth:`sample` makes a pool of images without any input.

    Labels: a conditional bundle makes each chosen sample of a class drawn uniformly, or of the fixed
    ``c``; called on ``(images, labels)`` (labels an int or an int64 tensor ``[B]``), each chosen sample
    is of its own label's class and the labels come back unchanged (see
    :mod:`latent_transforms.transforms.labels`; the MONAI form takes ``label_key``). An unconditional
    bundle ignores the labels.

    Args:
        diffusion: a :class:`~latent_transforms.DiffusionBundle` or a
            :func:`~latent_transforms.load_diffusion` source string / path (loaded lazily in the process that
            first uses it; pickles as the string).
        steps: DDIM denoising steps (DDPM runs every training timestep).
        sampler: ``"ddim"`` or ``"ddpm"``.
        eta: DDIM's noise weight (0: deterministic).
        guidance: classifier-free guidance weight (1: none).
        c: the class of every sample (``None``: per sample, drawn or from the call's labels).
        p: probability that a sample is replaced.
        precision: ``"fp32"`` or ``"bf16"`` (CUDA autocast for the UNet).
        value_range: what float inputs mean (see above).
        seed: seed of the transform's generator.
        device: where the UNet runs (default: the input's device).

    Example:
        >>> from latent_transforms import DiffusionBundle, DiffusionConfig
        >>> cfg = DiffusionConfig(resolution=8, c_dim=2, channels=(8, 8), attention_levels=(False, False),
        ...                       num_head_channels=8, norm_num_groups=8, timesteps=20)
        >>> t = DiffusionSample(DiffusionBundle.random(cfg), steps=4, p=1.0, value_range="generator", seed=0)
        >>> x = torch.zeros(3, 2, 8, 8)
        >>> out, labels = t(x, torch.tensor([0, 1, 1]))
        >>> out.shape, labels.tolist(), bool(out.abs().max() <= 1)
        (torch.Size([3, 2, 8, 8]), [0, 1, 1], True)
        >>> again = DiffusionSample(t.bundle, steps=4, p=1.0, value_range="generator", seed=0)
        >>> torch.equal(again(x, torch.tensor([0, 1, 1]))[0], out)  # the same seed, the same images
        True
        >>> t.sample(2, labels=1).shape
        torch.Size([2, 2, 8, 8])
        >>> t  # doctest: +NORMALIZE_WHITESPACE
        DiffusionSample(diffusion=DiffusionBundle(resolution=8, modalities=['mri', 'ct'], c_dim=2), steps=4,
        sampler='ddim', eta=0.0, guidance=1.0, c=None, p=1.0, precision='fp32', value_range='generator',
        device=None, seed=0)
    """

    config_class = DiffusionSampleConfig
    bundle_class = DiffusionBundle

    def __init__(
        self,
        diffusion: Any,
        *,
        steps: int = DiffusionSampleConfig.steps,
        sampler: str = DiffusionSampleConfig.sampler,
        eta: float = DiffusionSampleConfig.eta,
        guidance: float = DiffusionSampleConfig.guidance,
        c: int | None = DiffusionSampleConfig.c,
        p: float = DiffusionSampleConfig.p,
        precision: str = DiffusionSampleConfig.precision,
        value_range: str = DiffusionSampleConfig.value_range,
        seed: int | None = None,
        device: torch.device | str | None = None,
    ) -> None:
        given = dict(locals())
        config = DiffusionSampleConfig(**{name: given[name] for name in DiffusionSampleConfig.names()})
        super().__init__(diffusion, config, seed=seed, device=device)
        if isinstance(diffusion, DiffusionBundle):
            self._check_class(diffusion.config)

    @property
    def bundle(self) -> DiffusionBundle:  # type: ignore[override]  # the bundle_class of this transform
        """The diffusion bundle (loaded on first access when given as a source string)."""
        bundle: DiffusionBundle = self._gan.bundle()
        return bundle

    def _check_class(self, config: DiffusionConfig) -> None:
        if self.c is not None and config.c_dim == 0:
            raise ConfigError(
                f"c={self.c!r} was given but this diffusion bundle is unconditional. Fix: drop c."
            )
        if self.c is not None and self.c >= config.c_dim:
            raise ConfigError(f"c must be a class index in [0, {config.c_dim}), got {self.c}.")

    # -- labels --------------------------------------------------------------------------------------------
    def class_count(self) -> int:
        """The bundle's number of classes (0: unconditional)."""
        return int(self._gan.config.c_dim)

    def fixed_class(self) -> Any | None:
        """The fixed ``c`` (``None``: a class per sample, drawn or from the call's labels)."""
        return self.c

    # -- RandomTransform protocol ------------------------------------------------------------------------
    def draw_params(self, batch: int, generator: torch.Generator) -> dict[str, Any]:
        """Per sample, drawn from ``generator`` on the CPU: ``"noise"`` ``x_T`` ``[B, C, R, R]``,
        ``"seed"`` ``[B]`` (int64; seeds the noise of stochastic steps) and, for a conditional bundle
        without ``c``, ``"labels"`` ``[B]`` (int64, uniform; replaced by the call's labels on an
        ``(images, labels)`` call)."""
        config = self._gan.config
        self._check_class(config)
        side = config.resolution
        params: dict[str, Any] = {
            "noise": torch.randn(batch, config.img_channels, side, side, generator=generator),
            "seed": torch.randint(0, 2**62, (batch,), generator=generator),
        }
        if config.c_dim > 0 and self.c is None:
            params["labels"] = torch.randint(config.c_dim, (batch,), generator=generator)
        return params

    def render(self, params: dict[str, Any], device: torch.device | str | None = None) -> torch.Tensor:
        """The images of drawn ``params`` (:meth:`draw_params`): ``[B, C, R, R]`` float32 in ``[-1, 1]`` on
        ``device`` (default: the bundle's).

        Example:
            >>> from latent_transforms import DiffusionBundle, DiffusionConfig
            >>> cfg = DiffusionConfig(resolution=8, channels=(8, 8), attention_levels=(False, False),
            ...                       num_head_channels=8, norm_num_groups=8, timesteps=10)
            >>> t = DiffusionSample(DiffusionBundle.random(cfg), steps=2)
            >>> t.render(t.draw_params(2, torch.Generator().manual_seed(0))).shape
            torch.Size([2, 2, 8, 8])
        """
        bundle = self._gan.bundle(device)
        dev = bundle.device
        noise = params["noise"].to(dev, torch.float32)
        batch = noise.shape[0]
        labels = None
        if bundle.config.c_dim > 0:
            labels = (
                torch.full((batch,), int(self.c), dtype=torch.long)
                if self.c is not None
                else torch.as_tensor(params["labels"]).long()
            ).to(dev)
        step_generator = torch.Generator(device=dev).manual_seed(int(params["seed"][0]))
        return denoise(
            bundle.unet,
            bundle.config,
            noise,
            labels=labels,
            steps=None if self.sampler == "ddpm" else self.steps,
            sampler=self.sampler,
            eta=self.eta,
            guidance=self.guidance,
            generator=step_generator,
            precision=self.precision,
        )

    def apply_batch(self, x: torch.Tensor, params: dict[str, Any], kind: str) -> torch.Tensor:
        """Replace the chosen samples ``x`` ``[n, C, R, R]`` by the images of their ``params``."""
        return self.render(params, x.device)

    def sample(
        self,
        n: int,
        labels: torch.Tensor | int | Sequence[int] | None = None,
        *,
        generator: torch.Generator | None = None,
        value_range: str | None = None,
        device: torch.device | str | None = None,
    ) -> torch.Tensor:
        """``n`` synthetic images ``[n, C, R, R]`` float32 (a pool of samples, no input needed).

        Args:
            n: number of images (≥ 1).
            labels: classes of a conditional bundle: an int for every image or ``n`` class indices
                (default: drawn uniformly, or the fixed ``c``).
            generator: CPU ``torch.Generator`` for the draws (default: the transform's).
            value_range: ``"physical"``, ``"unit"`` or ``"generator"`` (default: the transform's).
            device: where to run and return them (default: the transform's device, else CPU).

        Example:
            >>> from latent_transforms import DiffusionBundle, DiffusionConfig
            >>> cfg = DiffusionConfig(resolution=8, channels=(8, 8), attention_levels=(False, False),
            ...                       num_head_channels=8, norm_num_groups=8, timesteps=10)
            >>> ct = DiffusionSample(DiffusionBundle.random(cfg), steps=2).sample(3)[:, 1]
            >>> bool(ct.min() >= -1000 and ct.max() <= 2000)  # HU, inside the CT window
            True
        """
        n = check_int("n", n, low=1)
        value_range = check_choice(
            "value_range", self.value_range if value_range is None else value_range, VALUE_RANGES
        )
        dev = torch.device(device) if device is not None else (self.device or torch.device("cpu"))
        check_cuda_in_worker(dev)
        params = self.draw_params(n, generator if generator is not None else self.generator)
        params = self.sample_labels(params, labels, n)
        images = self.render(params, dev)
        like = torch.empty(0, dtype=torch.float32, device=images.device)
        return from_working_range(images, like, value_range, self.windows())

    def repr_params(self) -> dict[str, Any]:
        """The bundle (as ``diffusion=``), every hyper-parameter, ``device`` and ``seed``."""
        params = super().repr_params()
        return {"diffusion": params.pop("gan"), **params}
