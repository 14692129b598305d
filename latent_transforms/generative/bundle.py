"""``DiffusionBundle``: a trained diffusion model as one folder or Hub repo, and :func:`load_diffusion`.

The same rules as a GAN bundle (:class:`~latent_transforms.GanBundle`): ``huggingface_hub.ModelHubMixin``'s
``from_pretrained`` / ``save_pretrained`` / ``push_to_hub``, safetensors only (never a pickle from the
network), ``config.json`` with an ``architecture`` field, a model card with the licence, weights loaded
strictly and checked finite, ``builtin:<name>`` and Hub ids resolved by the same code
(:func:`~latent_transforms.networks.hub.resolve_source`), ``HF_HUB_OFFLINE`` honoured with an error that
says how to fetch a missing repo. It answers the generators' common face: ``sample(n, labels=None,
seed=...)`` gives ``[n, C, R, R]`` in ``[-1, 1]`` with the config's channel names.
"""

from __future__ import annotations

import functools
import tempfile
from pathlib import Path
from typing import Any, ClassVar

import torch
from huggingface_hub import HfApi, ModelCard, ModelCardData, ModelHubMixin
from safetensors.torch import load_file
from torch import nn

from latent_transforms._version import __version__
from latent_transforms.checks import check_class_labels, check_int
from latent_transforms.errors import BundleNotFoundError, ConfigError, WeightMismatchError
from latent_transforms.files import atomic_write
from latent_transforms.generative.config import DiffusionConfig
from latent_transforms.generative.model_card import CARD_TAGS, MODEL_CARD_TEMPLATE, PAPER_URL, card_variables
from latent_transforms.generative.networks import build_unet
from latent_transforms.generative.sampling import denoise
from latent_transforms.networks.hub import LIBRARY_NAME, resolve_source
from latent_transforms.networks.model_card import CARD_DATA_KEYS, DOCS_URL, LICENSE, REPO_URL
from latent_transforms.networks.weights import atomic_save, check_state_matches, fingerprint, state_tensors

__all__ = ["CONFIG_NAME", "UNET_NAME", "DiffusionBundle", "check_finite_weights", "load_diffusion"]

CONFIG_NAME = "config.json"
UNET_NAME = "unet.safetensors"
CARD_NAME = "README.md"
WHAT = "diffusion bundle"
_META = {"format": "pt", "library": "latent-transforms", "library_version": __version__}


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
    nn.Module,
    ModelHubMixin,
    library_name=LIBRARY_NAME,
    license=LICENSE,
    tags=list(CARD_TAGS),
    repo_url=REPO_URL,
    docs_url=DOCS_URL,
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
    def from_pretrained(
        cls,
        pretrained_model_name_or_path: str | Path,
        *,
        force_download: bool = False,
        token: str | bool | None = None,
        cache_dir: str | Path | None = None,
        local_files_only: bool = False,
        revision: str | None = None,
        **model_kwargs: Any,
    ) -> DiffusionBundle:
        """Load a bundle from a folder, ``builtin:<name>`` or a Hub repo id (``ModelHubMixin``'s arguments).

        ``model_kwargs``: ``device`` (default ``"cpu"``). See :func:`load_diffusion`.

        Example:
            >>> import tempfile
            >>> cfg = DiffusionConfig(resolution=8, channels=(8, 8), attention_levels=(False, False),
            ...                       num_head_channels=8, norm_num_groups=8)
            >>> with tempfile.TemporaryDirectory() as d:
            ...     _ = DiffusionBundle.random(cfg).save_pretrained(d)
            ...     DiffusionBundle.from_pretrained(d).config == cfg
            True
        """
        return cls._from_pretrained(
            model_id=str(pretrained_model_name_or_path),
            revision=revision,
            cache_dir=cache_dir,
            force_download=force_download,
            local_files_only=local_files_only,
            token=token,
            **model_kwargs,
        )

    @classmethod
    def _from_pretrained(
        cls,
        *,
        model_id: str,
        revision: str | None,
        cache_dir: str | Path | None,
        force_download: bool,
        local_files_only: bool,
        token: str | bool | None,
        device: torch.device | str = "cpu",
        **model_kwargs: Any,
    ) -> DiffusionBundle:
        """``ModelHubMixin``'s loading hook: find the folder, build the UNet, load its weights strictly."""
        if model_kwargs:
            raise TypeError(
                f"DiffusionBundle.from_pretrained got unexpected arguments {sorted(model_kwargs)}; it takes "
                "device= besides the Hub's revision, cache_dir, token, local_files_only and force_download."
            )
        folder = resolve_source(
            model_id,
            revision=revision,
            cache_dir=cache_dir,
            token=token,
            local_files_only=local_files_only,
            force_download=force_download,
            what=WHAT,
            loader="load_diffusion",
        )
        config = DiffusionConfig.from_json(folder / CONFIG_NAME)
        path = folder / UNET_NAME
        if not path.is_file():
            raise BundleNotFoundError(
                f"{folder} has config.json but no {UNET_NAME}; the bundle is incomplete."
            )
        unet = build_unet(config)
        try:
            tensors = load_file(str(path), device="cpu")
        except Exception as exc:  # safetensors raises its own error types
            raise WeightMismatchError(
                f"cannot read UNet weights from {path}: {exc}. Re-save the bundle."
            ) from exc
        check_state_matches(unet, tensors, f"UNet weights in {path}")
        check_finite_weights(tensors, f"UNet weights in {path}")
        unet.load_state_dict(tensors, strict=True)
        bundle = cls(config, unet)
        bundle.source = model_id
        return bundle.to(device)

    # -- properties ----------------------------------------------------------------------------
    @property
    def modalities(self) -> list[str]:
        """Channel names in order, e.g. ``['image']``."""
        return self.config.modality_names

    @property
    def resolution(self) -> int:
        """Image side in pixels."""
        return self.config.resolution

    @property
    def device(self) -> torch.device:
        """Where the UNet's weights are."""
        return next(self.unet.parameters()).device

    @functools.cached_property
    def fingerprint(self) -> str:
        """SHA-256 of the UNet's weights (:func:`~latent_transforms.networks.weights.fingerprint`)."""
        return fingerprint(self.unet)

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

    def normalize(self, images: torch.Tensor) -> torch.Tensor:
        """Physical units -> ``[-1, 1]`` per channel (``[..., C, H, W]``, channels in bundle order)."""
        return self._per_channel(images, "normalize")

    def denormalize(self, images: torch.Tensor) -> torch.Tensor:
        """``[-1, 1]`` -> physical units per channel (``[..., C, H, W]``, channels in bundle order)."""
        return self._per_channel(images, "denormalize")

    def _per_channel(self, images: torch.Tensor, op: str) -> torch.Tensor:
        c = self.config.img_channels
        if images.ndim < 3 or images.shape[-3] != c:
            raise ConfigError(
                f"expected [..., {c}, H, W] with channels {self.modalities}, got {tuple(images.shape)}"
            )
        parts = [
            getattr(m.window, op)(images[..., i : i + 1, :, :]) for i, m in enumerate(self.config.modalities)
        ]
        return torch.cat(parts, dim=-3)

    # -- saving (huggingface_hub.ModelHubMixin) ------------------------------------------------
    def save_pretrained(  # type: ignore[override]
        self,
        save_directory: str | Path,
        *,
        config: DiffusionConfig | dict[str, Any] | None = None,
        repo_id: str | None = None,
        push_to_hub: bool = False,
        model_card_kwargs: dict[str, Any] | None = None,
        **push_to_hub_kwargs: Any,
    ) -> Path:
        """Write the bundle to ``save_directory`` (created if needed); returns the folder.

        ``ModelHubMixin``'s arguments, as :meth:`GanBundle.save_pretrained
        <latent_transforms.GanBundle.save_pretrained>`: ``config`` may only repeat the bundle's own;
        ``model_card_kwargs`` go to :meth:`generate_model_card`; ``push_to_hub=True`` uploads to ``repo_id``.
        Weights with a NaN or Inf are refused. Every file is written atomically, ``config.json`` last.

        Example:
            >>> import tempfile
            >>> cfg = DiffusionConfig(resolution=8, channels=(8, 8), attention_levels=(False, False),
            ...                       num_head_channels=8, norm_num_groups=8)
            >>> with tempfile.TemporaryDirectory() as d:
            ...     sorted(p.name for p in DiffusionBundle.random(cfg).save_pretrained(d).iterdir())
            ['README.md', 'config.json', 'unet.safetensors']
        """
        self._check_config(config)
        folder = Path(save_directory)
        folder.mkdir(parents=True, exist_ok=True)
        self._save_pretrained(folder)
        atomic_write(folder / CARD_NAME, str(self.generate_model_card(**(model_card_kwargs or {}))))
        atomic_write(folder / CONFIG_NAME, self.config.to_json())
        if push_to_hub:
            self.push_to_hub(
                repo_id or folder.name, model_card_kwargs=model_card_kwargs, **push_to_hub_kwargs
            )
        return folder

    def _save_pretrained(self, save_directory: Path) -> None:
        """``ModelHubMixin``'s saving hook: the UNet's weights (safetensors, atomic, checked finite)."""
        tensors = state_tensors(self.unet)
        check_finite_weights(tensors, "the UNet to save")
        atomic_save(tensors, save_directory / UNET_NAME, _META)

    def _check_config(self, config: DiffusionConfig | dict[str, Any] | None) -> None:
        if config is None:
            return
        given = config if isinstance(config, DiffusionConfig) else DiffusionConfig.from_dict(config)
        if given != self.config:
            raise ConfigError(
                "config must be None or the bundle's own config: config.json describes the weights being "
                "saved. To change the config, build a bundle from it (DiffusionBundle(config, unet))."
            )

    def generate_model_card(self, *args: Any, **kwargs: Any) -> ModelCard:
        """The model card (``README.md``) through ``ModelHubMixin``'s template mechanism.

        ``kwargs``: ``repo_id`` (the card's title and usage snippet), card metadata (``license``,
        ``datasets``, ``language``, ``base_model``, ...) and any other template value.

        Example:
            >>> cfg = DiffusionConfig(resolution=8, channels=(8, 8), attention_levels=(False, False),
            ...                       num_head_channels=8, norm_num_groups=8)
            >>> card = DiffusionBundle.random(cfg).generate_model_card(repo_id="me/ddpm")
            >>> card.data.license, card.data.library_name, 'load_diffusion("me/ddpm")' in card.text
            ('apache-2.0', 'latent-transforms', True)
        """
        info = self._hub_mixin_info
        data = ModelCardData(**info.model_card_data.to_dict())
        data.pipeline_tag = "unconditional-image-generation" if self.config.c_dim == 0 else None
        for key in CARD_DATA_KEYS & kwargs.keys():
            setattr(data, key, kwargs.pop(key))
        values = card_variables(
            self.config,
            parameters=sum(p.numel() for p in self.unet.parameters()),
            fingerprint=self.fingerprint,
            repo_id=kwargs.pop("repo_id", None),
        )
        card: ModelCard = ModelCard.from_template(
            card_data=data,
            template_str=info.model_card_template,
            repo_url=info.repo_url,
            paper_url=info.paper_url,
            docs_url=info.docs_url,
            **{**values, **kwargs},
        )
        return card

    def push_to_hub(  # type: ignore[override]
        self,
        repo_id: str,
        *,
        config: DiffusionConfig | dict[str, Any] | None = None,
        commit_message: str = "Upload diffusion bundle with latent-transforms",
        private: bool | None = None,
        token: str | bool | None = None,
        branch: str | None = None,
        create_pr: bool | None = None,
        allow_patterns: list[str] | str | None = None,
        ignore_patterns: list[str] | str | None = None,
        delete_patterns: list[str] | str | None = None,
        model_card_kwargs: dict[str, Any] | None = None,
    ) -> str:
        """Create ``repo_id`` on the Hub if needed and upload the bundle; returns the commit URL.

        Example:
            >>> bundle.push_to_hub("me/my-ddpm")  # doctest: +SKIP
            'https://huggingface.co/me/my-ddpm/commit/...'
        """
        api = HfApi(token=token, library_name=LIBRARY_NAME, library_version=__version__)
        api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
        with tempfile.TemporaryDirectory() as tmp:
            self.save_pretrained(
                tmp, config=config, model_card_kwargs={"repo_id": repo_id, **(model_card_kwargs or {})}
            )
            info = api.upload_folder(
                repo_id=repo_id,
                repo_type="model",
                folder_path=tmp,
                commit_message=commit_message,
                revision=branch,
                create_pr=create_pr,
                allow_patterns=allow_patterns,
                ignore_patterns=ignore_patterns,
                delete_patterns=delete_patterns,
            )
        return str(getattr(info, "commit_url", info))

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

    def extra_repr(self) -> str:
        return (
            f"source={self.source!r}, resolution={self.resolution}, modalities={self.modalities}, "
            f"c_dim={self.config.c_dim}, timesteps={self.config.timesteps}"
        )


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
