"""``DiffusionBundle``: a trained diffusion model as one folder or Hub repo, and :func:`load_diffusion`.

The same rules as a GAN bundle (:class:`~latent_transforms.GanBundle`), through the same code
(:class:`~latent_transforms.networks.hub_bundle.HubBundle`): ``huggingface_hub.ModelHubMixin``'s
``from_pretrained`` / ``save_pretrained`` / ``push_to_hub``, safetensors only (never a pickle from the
network), ``config.json`` with an ``architecture`` field, a model card with the licence, weights loaded
strictly and checked finite, ``builtin:<name>`` and Hub ids resolved by
:func:`~latent_transforms.networks.hub.resolve_source`, ``HF_HUB_OFFLINE`` honoured with an error that
says how to fetch a missing repo. It answers the generators' common face: ``sample(n, labels=None,
seed=...)`` gives ``[n, C, R, R]`` in ``[-1, 1]`` with the config's channel names.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn

from latent_transforms.checks import check_class_labels, check_int
from latent_transforms.errors import ConfigError, WeightMismatchError
from latent_transforms.generative.config import DiffusionConfig
from latent_transforms.generative.model_card import CARD_TAGS, MODEL_CARD_TEMPLATE, PAPER_URL, card_variables
from latent_transforms.generative.networks import build_unet
from latent_transforms.generative.sampling import denoise
from latent_transforms.networks.hub_bundle import CARD_NAME as CARD_NAME, CONFIG_NAME, ModalityBundle
from latent_transforms.networks.weights import load_strict, state_tensors

__all__ = ["CONFIG_NAME", "UNET_NAME", "DiffusionBundle", "check_finite_weights", "load_diffusion"]

UNET_NAME = "unet.safetensors"
WHAT = "diffusion bundle"


def check_finite_weights(tensors: dict[str, torch.Tensor], source: str) -> None:
    """Raise :class:`WeightMismatchError` naming the first tensor with a NaN or Inf (a diverged run).

    Example:
        >>> check_finite_weights({"w": torch.zeros(2)}, "unet")
        >>> check_finite_weights({"w": torch.tensor([1.0, float("nan")])}, "unet")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        latent_transforms.errors.WeightMismatchError: unet holds NaN or Inf values in tensor 'w'...
    """
    for name, tensor in tensors.items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise WeightMismatchError(
                f"{source} holds NaN or Inf values in tensor {name!r}: the training diverged or the file is "
                "damaged. Fix: use an earlier checkpoint, or retrain with a lower learning rate."
            )


class DiffusionBundle(
    ModalityBundle,
    tags=list(CARD_TAGS),
    paper_url=PAPER_URL,
    model_card_template=MODEL_CARD_TEMPLATE,
):
    """A trained diffusion model: MONAI ``DiffusionModelUNet`` (EMA weights) and its :class:`DiffusionConfig`.

    On disk (or on the Hugging Face Hub) a bundle is one folder::

        config.json         architecture ("ddpm-unet"), schedule, classes, modalities and windows, training
        unet.safetensors    the UNet (the EMA weights of training)
        README.md           generated model card (licence, architecture, windows, training summary)

    The UNet is in eval mode with ``requires_grad_(False)``: a bundle is for sampling, not training.
    Images are ``[B, C, R, R]`` in ``[-1, 1]``, channels in ``config.modality_names`` order;
    :meth:`normalize` / :meth:`denormalize` convert from / to physical units.

    Example:
        >>> cfg = DiffusionConfig(resolution=8, c_dim=2, channels=(8, 8), attention_levels=(False, False),
        ...                       num_head_channels=8, norm_num_groups=8, timesteps=20)
        >>> bundle = DiffusionBundle.random(cfg, seed=0)
        >>> images = bundle.sample(3, labels=[0, 1, 1], seed=1, steps=4)
        >>> images.shape, bool(images.abs().max() <= 1)
        (torch.Size([3, 2, 8, 8]), True)
        >>> torch.equal(images, bundle.sample(3, labels=[0, 1, 1], seed=1, steps=4))
        True
    """

    #: The config class a bundle folder's ``config.json`` is read with.
    config_class: ClassVar[type[DiffusionConfig]] = DiffusionConfig
    kind: ClassVar[str] = WHAT
    loader: ClassVar[str] = "load_diffusion"
    main_file: ClassVar[str] = UNET_NAME
    construction: ClassVar[str] = "DiffusionBundle(config, unet)"

    def __init__(self, config: DiffusionConfig, unet: nn.Module) -> None:
        super().__init__()
        self.config = config
        self.unet = unet.eval().requires_grad_(False)
        self.source: str | None = None

    # -- construction --------------------------------------------------------------------------
    @classmethod
    def random(cls, config: DiffusionConfig, *, seed: int = 0) -> DiffusionBundle:
        """A randomly initialised bundle (MONAI's initialisation, whose last layer is zero: for tests and
        pipelines; train it with :class:`~latent_transforms.training.DiffusionTrainer`)."""
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            unet = build_unet(config)
        return cls(config, unet)

    @classmethod
    def _from_folder(cls, folder: Path, config: DiffusionConfig, **options: Any) -> DiffusionBundle:
        """The UNet, its weights loaded strictly and checked finite."""
        unet = build_unet(config)
        load_strict(unet, folder / UNET_NAME, "UNet", finite=check_finite_weights)
        return cls(config, unet)

    # -- use -----------------------------------------------------------------------------------
    def sample(
        self,
        n: int,
        labels: torch.Tensor | int | list[int] | tuple[int, ...] | None = None,
        *,
        seed: int | None = None,
        generator: torch.Generator | None = None,
        steps: int | None = None,
        sampler: str = "ddim",
        eta: float = 0.0,
        guidance: float = 1.0,
        batch_size: int | None = None,
        precision: str = "fp32",
        progress: bool = False,
    ) -> torch.Tensor:
        """``n`` images ``[n, C, R, R]`` float32 in ``[-1, 1]`` on the bundle's device.

        The starting noise (and, for a conditional model without ``labels``, one uniformly random class per
        image) is drawn on the CPU from ``generator`` (default: seeded with ``seed``, 0 when ``None``), so a
        seed gives the same images on the CPU every time and, with the deterministic DDIM (``eta = 0``),
        the same images on any device up to float round-off. Stochastic steps (DDPM, DDIM with
        ``eta > 0``) draw their noise from a device generator seeded from the same stream.

        Args:
            n: number of images.
            labels: class indices of a conditional model: one int for every image, or ``n`` of them (a
                sequence or an int64 tensor ``[n]``); ``None`` draws them uniformly.
            seed: seed of the draws (used when ``generator`` is ``None``).
            generator: a CPU ``torch.Generator`` to draw from instead (it advances).
            steps: DDIM steps (default 50); DDPM always runs every training timestep.
            sampler: ``"ddim"`` (Song et al. 2021) or ``"ddpm"`` (Ho et al. 2020).
            eta: DDIM's noise weight (0: deterministic).
            guidance: classifier-free guidance weight (1: none; needs ``config.null_class``).
            batch_size: images per UNet batch (default: all ``n`` at once).
            precision: ``"fp32"`` or ``"bf16"`` (CUDA autocast).
            progress: a tqdm bar over the denoising steps of each batch.

        Example:
            >>> cfg = DiffusionConfig(resolution=8, channels=(8, 8), attention_levels=(False, False),
            ...                       num_head_channels=8, norm_num_groups=8, timesteps=10)
            >>> DiffusionBundle.random(cfg).sample(2, seed=0, sampler="ddpm").shape
            torch.Size([2, 2, 8, 8])
        """
        n = check_int("n", n, low=1)
        chosen = check_class_labels(labels, n, self.config.c_dim)
        if generator is None:
            generator = torch.Generator().manual_seed(0 if seed is None else int(seed))
        if generator.device.type != "cpu":
            raise ConfigError("generator must be a CPU torch.Generator (the draws are made on the CPU).")
        size = n if batch_size is None else check_int("batch_size", batch_size, low=1)
        noise = torch.randn(
            n, self.config.img_channels, self.resolution, self.resolution, generator=generator
        )
        if chosen is None and self.config.c_dim > 0:
            chosen = torch.randint(self.config.c_dim, (n,), generator=generator)
        step_seed = int(torch.randint(0, 2**62, (), generator=generator))
        dev = self.device
        step_generator = torch.Generator(device=dev).manual_seed(step_seed)
        out = []
        for start in range(0, n, size):
            part = slice(start, start + size)
            out.append(
                denoise(
                    self.unet,
                    self.config,
                    noise[part].to(dev),
                    labels=chosen[part].to(dev) if chosen is not None else None,
                    steps=steps,
                    sampler=sampler,
                    eta=eta,
                    guidance=guidance,
                    generator=step_generator,
                    precision=precision,
                    progress=progress,
                )
            )
        return torch.cat(out)

    # -- saving (huggingface_hub.ModelHubMixin, through HubBundle) ----------------------------
    def _weight_files(self) -> dict[str, nn.Module | None]:
        return {UNET_NAME: self.unet}

    def _save_pretrained(self, save_directory: Path) -> None:
        """``ModelHubMixin``'s saving hook: the UNet (safetensors, atomic), refused if not finite."""
        check_finite_weights(state_tensors(self.unet), "the UNet to save")
        super()._save_pretrained(save_directory)

    def _card_values(self, repo_id: str | None) -> dict[str, Any]:
        return card_variables(
            self.config,
            parameters=sum(p.numel() for p in self.unet.parameters()),
            fingerprint=self.fingerprint,
            repo_id=repo_id,
        )

    def summary(self) -> dict[str, Any]:
        """JSON-ready description of the bundle.

        Example:
            >>> cfg = DiffusionConfig(resolution=8, channels=(8, 8), attention_levels=(False, False),
            ...                       num_head_channels=8, norm_num_groups=8)
            >>> DiffusionBundle.random(cfg).summary()["architecture"]
            'ddpm-unet'
        """
        cfg = self.config
        data = cfg.to_dict()
        data.pop("format_version", None)
        return {
            "source": self.source,
            **data,
            "unet_parameters": sum(p.numel() for p in self.unet.parameters()),
            "fingerprint": self.fingerprint,
        }

    def _repr_fields(self) -> dict[str, Any]:
        return {**super()._repr_fields(), "timesteps": self.config.timesteps}


def load_diffusion(
    source: str | Path,
    *,
    revision: str | None = None,
    cache_dir: str | Path | None = None,
    token: str | bool | None = None,
    local_files_only: bool = False,
    device: torch.device | str = "cpu",
) -> DiffusionBundle:
    """Load a diffusion bundle, as :func:`~latent_transforms.load_gan` loads a GAN bundle.

    Args:
        source: a local folder, ``"builtin:<name>"`` (shipped with the package) or a Hugging Face Hub
            repo id ``"namespace/name"`` (only ``config.json``, ``*.safetensors`` and ``README.md`` are
            fetched).
        revision: Hub branch, tag or commit (default ``main``).
        cache_dir: Hub cache folder (default ``~/.cache/huggingface/hub``).
        token: Hub token for private repos.
        local_files_only: never touch the network (also implied by ``HF_HUB_OFFLINE=1``).
        device: where to put the UNet.

    Returns:
        The :class:`DiffusionBundle`, the UNet in eval mode with gradients off.

    Raises:
        BundleNotFoundError: not a folder / not cached offline / repo missing; the message says how to
            fetch it.
        ConfigError: ``config.json`` describes another architecture (e.g. a StyleGAN2 bundle).
        WeightMismatchError: the weights do not match ``config.json`` (names the first tensor), or hold
            NaN / Inf.

    Example:
        >>> bundle = load_diffusion("path/to/bundle")  # doctest: +SKIP
        >>> bundle.sample(4, labels=1, seed=0).shape  # doctest: +SKIP
        torch.Size([4, 1, 32, 32])
    """
    return DiffusionBundle.from_pretrained(
        source,
        revision=revision,
        cache_dir=cache_dir,
        token=token,
        local_files_only=local_files_only,
        device=device,
    )
