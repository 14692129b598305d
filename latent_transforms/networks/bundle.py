"""``GanBundle``: a trained GAN as one folder or Hub repo, and :func:`load_gan`.

``GanBundle`` follows the Hugging Face Hub's ``ModelHubMixin`` convention: ``from_pretrained``,
``save_pretrained`` and ``push_to_hub`` take the mixin's standard arguments, and the model card
(``README.md``) is rendered by the mixin's ``generate_model_card`` from the template in
:mod:`latent_transforms.networks.model_card`. What a bundle holds stays its own: safetensors only (never a
pickle from the network), weights loaded strictly, ``builtin:<name>`` bundles shipped in the package,
``HF_HUB_OFFLINE`` honoured with an error that says how to fetch a missing repo.
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
from latent_transforms.checks import check_class_labels
from latent_transforms.errors import BundleNotFoundError, ConfigError, WeightMismatchError
from latent_transforms.files import atomic_write
from latent_transforms.networks.config import GanConfig
from latent_transforms.networks.discriminator import Discriminator
from latent_transforms.networks.generator import Generator
from latent_transforms.networks.hub import LIBRARY_NAME, resolve_source
from latent_transforms.networks.model_card import (
    CARD_DATA_KEYS,
    CARD_TAGS,
    DOCS_URL,
    LICENSE,
    MODEL_CARD_TEMPLATE,
    PAPER_URL,
    REPO_URL,
    card_variables,
    pipeline_tag,
)
from latent_transforms.networks.weights import (
    atomic_save,
    check_finite,
    fingerprint,
    load_strict,
    state_tensors,
)

CONFIG_NAME = "config.json"
GENERATOR_NAME = "generator.safetensors"
DISCRIMINATOR_NAME = "discriminator.safetensors"
W_STATS_NAME = "w_stats.safetensors"
CARD_NAME = "README.md"
_META = {"format": "pt", "library": "latent-transforms", "library_version": __version__}


class GanBundle(
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
    """A trained StyleGAN2: EMA generator, optional discriminator, W statistics and a config.

    On disk (or on the Hugging Face Hub) a bundle is one folder::

        config.json                 architecture, modality names, intensity windows, training summary
        generator.safetensors       the (EMA) generator
        discriminator.safetensors   optional; LatentAugment's fidelity term needs it
        w_stats.safetensors         w_avg [w_dim], w_mean [w_dim], w_cov [w_dim, w_dim]
        README.md                   generated model card

    Networks are put in eval mode with ``requires_grad_(False)``: a bundle is for using a GAN, not
    training it. Saving, loading and uploading follow ``huggingface_hub.ModelHubMixin``
    (:meth:`from_pretrained`, :meth:`save_pretrained`, :meth:`push_to_hub`, :meth:`generate_model_card`).
    Images are ``[B, C, R, R]`` in ``[-1, 1]``, channels in ``config.modality_names`` order;
    :meth:`normalize`/:meth:`denormalize` convert from/to physical units.

    Example:
        >>> cfg = GanConfig(resolution=16, channel_base=256, channel_max=32, z_dim=16, w_dim=16)
        >>> bundle = GanBundle.random(cfg, seed=0)
        >>> bundle.sample(2, seed=1).shape
        torch.Size([2, 2, 16, 16])
    """

    #: The config class a bundle folder's ``config.json`` is read with.
    config_class: ClassVar[type[GanConfig]] = GanConfig

    def __init__(
        self,
        config: GanConfig,
        generator: Generator,
        discriminator: Discriminator | None = None,
        w_stats: dict[str, torch.Tensor] | None = None,
    ) -> None:
        super().__init__()
        self.config = config
        self.generator = generator.eval().requires_grad_(False)
        self.discriminator = discriminator.eval().requires_grad_(False) if discriminator is not None else None
        self.w_stats: dict[str, torch.Tensor] = dict(w_stats) if w_stats is not None else {}
        self.source: str | None = None

    # -- construction --------------------------------------------------------------------------
    @classmethod
    def random(cls, config: GanConfig, *, seed: int = 0, discriminator: bool = True) -> GanBundle:
        """A randomly initialised bundle (for tests, pipelines and as a starting point for training)."""
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            generator = Generator(config)
            disc = Discriminator(config) if discriminator else None
        return cls(config, generator, disc)

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
    ) -> GanBundle:
        """Load a bundle from a folder, ``builtin:<name>`` or a Hub repo id (``ModelHubMixin``'s arguments).

        ``model_kwargs`` are ``device`` (default ``"cpu"``) and ``load_discriminator`` (default ``True``);
        see :func:`load_gan`, which is this with the source as its first argument.

        Example:
            >>> import tempfile
            >>> cfg = GanConfig(resolution=16, channel_base=256, channel_max=32, z_dim=16, w_dim=16)
            >>> with tempfile.TemporaryDirectory() as d:
            ...     _ = GanBundle.random(cfg).save_pretrained(d, w_stats_samples=64)
            ...     GanBundle.from_pretrained(d, load_discriminator=False).discriminator is None
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
        load_discriminator: bool = True,
        **model_kwargs: Any,
    ) -> GanBundle:
        """``ModelHubMixin``'s loading hook: find the folder, build the networks, load weights strictly."""
        if model_kwargs:
            raise TypeError(
                f"GanBundle.from_pretrained got unexpected arguments {sorted(model_kwargs)}; it takes "
                "device= and load_discriminator= besides the Hub's revision, cache_dir, token, "
                "local_files_only and force_download."
            )
        folder = resolve_source(
            model_id,
            revision=revision,
            cache_dir=cache_dir,
            token=token,
            local_files_only=local_files_only,
            force_download=force_download,
        )
        config = GanConfig.from_json(folder / CONFIG_NAME)
        if not (folder / GENERATOR_NAME).is_file():
            raise BundleNotFoundError(
                f"{folder} has config.json but no {GENERATOR_NAME}; the bundle is incomplete."
            )
        generator = Generator(config)
        load_strict(generator, folder / GENERATOR_NAME, "generator")
        disc = None
        if load_discriminator and (folder / DISCRIMINATOR_NAME).is_file():
            disc = Discriminator(config)
            load_strict(disc, folder / DISCRIMINATOR_NAME, "discriminator")
        w_stats = load_file(str(folder / W_STATS_NAME)) if (folder / W_STATS_NAME).is_file() else None
        bundle = cls(config, generator, disc, w_stats)
        bundle.source = model_id
        if w_stats is not None:
            bundle._check_w_stats()
        return bundle.to(device)

    def _apply(self, fn: Any, recurse: bool = True) -> GanBundle:
        # ``to()``, ``cuda()``, ``half()`` ... also move the W statistics, which are not buffers.
        super()._apply(fn, recurse)
        self.w_stats = {k: fn(v) for k, v in self.w_stats.items()}
        return self

    # -- properties ----------------------------------------------------------------------------
    @property
    def modalities(self) -> list[str]:
        """Channel names in order, e.g. ``['mri', 'ct']``."""
        return self.config.modality_names

    @property
    def resolution(self) -> int:
        return self.config.resolution

    @property
    def device(self) -> torch.device:
        return self.generator.mapping.fc0.weight.device

    @functools.cached_property
    def fingerprint(self) -> str:
        """SHA-256 of the generator weights (see :func:`latent_transforms.networks.weights.fingerprint`).

        Computed once per bundle object: a bundle's networks are frozen.
        """
        return fingerprint(self.generator)

    # -- use -----------------------------------------------------------------------------------
    def sample(
        self,
        n: int,
        labels: torch.Tensor | int | list[int] | tuple[int, ...] | None = None,
        *,
        seed: int | None = None,
        generator: torch.Generator | None = None,
        c: torch.Tensor | None = None,
        truncation_psi: float = 1.0,
        noise_mode: str = "const",
    ) -> torch.Tensor:
        """``n`` images [n, C, R, R] in ``[-1, 1]`` from random z (``seed`` or ``generator``).

        The face every generator of the library shares (``sample(n, labels=None, seed=...)``, as
        :meth:`DiffusionBundle.sample <latent_transforms.DiffusionBundle.sample>`). A conditional GAN takes
        its classes as ``labels`` (one class index for every image, or ``n`` of them: a sequence or an
        int64 tensor ``[n]``) or as ``c`` (label vectors ``[n, c_dim]``, e.g. one-hot); with neither, one
        class per image is drawn uniformly from the same generator. An unconditional GAN takes neither.

        Example:
            >>> cfg = GanConfig(resolution=16, channel_base=256, channel_max=32, z_dim=16, w_dim=16, c_dim=3)
            >>> bundle = GanBundle.random(cfg, seed=0)
            >>> a = bundle.sample(2, labels=[0, 2], seed=1)
            >>> torch.equal(a, bundle.sample(2, c=torch.eye(3)[[0, 2]], seed=1))
            True
        """
        if labels is not None and c is not None:
            raise ConfigError(
                "give the classes either as labels (class indices) or as c (label vectors), not both."
            )
        if labels is not None:
            c = self._one_hot(labels, n)
        if generator is None:
            generator = torch.Generator(device=self.device).manual_seed(0 if seed is None else seed)
        z = self.generator.sample_z(n, generator=generator, device=self.device)
        if self.config.c_dim > 0 and c is None:
            labels = torch.randint(self.config.c_dim, (n,), generator=generator, device=self.device)
            c = torch.nn.functional.one_hot(labels, self.config.c_dim).float()
        with torch.no_grad():
            return self.generator(
                z, c, truncation_psi=truncation_psi, noise_mode=noise_mode, generator=generator
            )

    def _one_hot(self, labels: torch.Tensor | int | list[int] | tuple[int, ...], n: int) -> torch.Tensor:
        """Class indices (an int, or ``n`` of them) as one-hot vectors ``[n, c_dim]`` on the bundle's
        device."""
        values = check_class_labels(labels, n, self.config.c_dim)
        assert values is not None
        return torch.nn.functional.one_hot(values.to(self.device), self.config.c_dim).float()

    def normalize(self, images: torch.Tensor) -> torch.Tensor:
        """Physical units -> ``[-1, 1]`` per channel ([..., C, H, W], channels in bundle order)."""
        return self._per_channel(images, "normalize")

    def denormalize(self, images: torch.Tensor) -> torch.Tensor:
        """``[-1, 1]`` -> physical units per channel ([..., C, H, W], channels in bundle order)."""
        return self._per_channel(images, "denormalize")

    def _per_channel(self, images: torch.Tensor, op: str) -> torch.Tensor:
        c = self.config.img_channels
        if images.ndim < 3 or images.shape[-3] != c:
            raise ValueError(
                f"expected [..., {c}, H, W] with channels {self.modalities}, got {tuple(images.shape)}"
            )
        parts = [
            getattr(m.window, op)(images[..., i : i + 1, :, :]) for i, m in enumerate(self.config.modalities)
        ]
        return torch.cat(parts, dim=-3)

    # -- W statistics --------------------------------------------------------------------------
    @torch.no_grad()
    def compute_w_stats(
        self, n_samples: int = 10_000, *, seed: int = 0, batch_size: int = 1024
    ) -> dict[str, Any]:
        """Mean and covariance of W over ``n_samples`` random z (float64 sums); stored and returned."""
        gen = torch.Generator(device=self.device).manual_seed(seed)
        mapping = self.generator.mapping
        w_dim = self.config.w_dim
        total = torch.zeros(w_dim, dtype=torch.float64, device=self.device)
        outer = torch.zeros(w_dim, w_dim, dtype=torch.float64, device=self.device)
        done = 0
        while done < n_samples:
            b = min(batch_size, n_samples - done)
            z = self.generator.sample_z(b, generator=gen, device=self.device)
            c = None
            if self.config.c_dim > 0:
                labels = torch.randint(self.config.c_dim, (b,), generator=gen, device=self.device)
                c = torch.nn.functional.one_hot(labels, self.config.c_dim).float()
            w = mapping(z, c)[:, 0].double()
            total += w.sum(0)
            outer += w.t() @ w
            done += b
        mean = total / n_samples
        cov = (outer - n_samples * torch.outer(mean, mean)) / max(n_samples - 1, 1)
        self.w_stats = {
            "w_avg": mapping.w_avg.detach().float().clone(),
            "w_mean": mean.float(),
            "w_cov": cov.float(),
        }
        return {"n_samples": n_samples, "seed": seed}

    def _check_w_stats(self) -> None:
        w_dim = self.config.w_dim
        expected = {"w_avg": (w_dim,), "w_mean": (w_dim,), "w_cov": (w_dim, w_dim)}
        for name, shape in expected.items():
            got = self.w_stats.get(name)
            if got is None or tuple(got.shape) != shape:
                raise WeightMismatchError(
                    f"{W_STATS_NAME} tensor '{name}' should have shape {shape}, got "
                    f"{None if got is None else tuple(got.shape)}; recompute with bundle.compute_w_stats()."
                )
        check_finite(
            {k: self.w_stats[k] for k in expected},
            W_STATS_NAME,
            "Fix: recompute them with bundle.compute_w_stats() and save the bundle again.",
        )

    # -- saving (huggingface_hub.ModelHubMixin) ------------------------------------------------
    def save_pretrained(  # type: ignore[override]
        self,
        save_directory: str | Path,
        *,
        config: GanConfig | dict[str, Any] | None = None,
        repo_id: str | None = None,
        push_to_hub: bool = False,
        model_card_kwargs: dict[str, Any] | None = None,
        w_stats_samples: int = 10_000,
        **push_to_hub_kwargs: Any,
    ) -> Path:
        """Write the bundle to ``save_directory`` (created if needed); returns the folder.

        ``ModelHubMixin``'s arguments: ``config`` may only repeat the bundle's own config (``config.json``
        always describes the weights); ``model_card_kwargs`` go to :meth:`generate_model_card`;
        ``push_to_hub=True`` then uploads to ``repo_id`` (default the folder name) with
        ``push_to_hub_kwargs``. W statistics are computed first (``w_stats_samples`` z) if missing.

        Every file is written atomically (:func:`latent_transforms.files.atomic_write`), ``config.json``
        last, so an interrupted save never leaves a half-written file. Unlike the mixin, which returns
        ``None`` unless it pushes, this returns the folder, for chaining.

        Example:
            >>> import tempfile
            >>> cfg = GanConfig(resolution=16, channel_base=256, channel_max=32, z_dim=16, w_dim=16)
            >>> with tempfile.TemporaryDirectory() as d:
            ...     folder = GanBundle.random(cfg).save_pretrained(d, w_stats_samples=64)
            ...     sorted(p.name for p in folder.iterdir())
            ['README.md', 'config.json', 'discriminator.safetensors', 'generator.safetensors',
             'w_stats.safetensors']
        """
        self._check_config(config)
        folder = Path(save_directory)
        folder.mkdir(parents=True, exist_ok=True)
        if not self.w_stats:
            self.compute_w_stats(w_stats_samples)
        self._save_pretrained(folder)
        atomic_write(folder / CARD_NAME, str(self.generate_model_card(**(model_card_kwargs or {}))))
        atomic_write(folder / CONFIG_NAME, self.config.to_json())
        if push_to_hub:
            self.push_to_hub(
                repo_id or folder.name, model_card_kwargs=model_card_kwargs, **push_to_hub_kwargs
            )
        return folder

    def _save_pretrained(self, save_directory: Path) -> None:
        """``ModelHubMixin``'s saving hook: the weights and W statistics (safetensors, atomic)."""
        atomic_save(state_tensors(self.generator), save_directory / GENERATOR_NAME, _META)
        if self.discriminator is not None:
            atomic_save(state_tensors(self.discriminator), save_directory / DISCRIMINATOR_NAME, _META)
        else:
            (save_directory / DISCRIMINATOR_NAME).unlink(missing_ok=True)
        w_stats = {k: v.detach().cpu() for k, v in self.w_stats.items()}
        atomic_save(w_stats, save_directory / W_STATS_NAME, _META)

    def _check_config(self, config: GanConfig | dict[str, Any] | None) -> None:
        if config is None:
            return
        given = config if isinstance(config, GanConfig) else GanConfig.from_dict(config)
        if given != self.config:
            raise ConfigError(
                "config must be None or the bundle's own config: config.json describes the weights being "
                "saved. To change the config, build a bundle from it (GanBundle(config, generator, ...))."
            )

    def generate_model_card(self, *args: Any, **kwargs: Any) -> ModelCard:
        """The model card (``README.md``) through ``ModelHubMixin``'s template mechanism.

        ``kwargs``: ``repo_id`` (the card's title and usage snippet), card metadata (``license``,
        ``datasets``, ``language``, ``base_model``, ...) and any other template value.

        Example:
            >>> cfg = GanConfig(resolution=16, channel_base=256, channel_max=32, z_dim=16, w_dim=16)
            >>> card = GanBundle.random(cfg).generate_model_card(repo_id="me/gan")
            >>> card.data.license, card.data.library_name, 'load_gan("me/gan")' in card.text
            ('apache-2.0', 'latent-transforms', True)
        """
        info = self._hub_mixin_info
        data = ModelCardData(**info.model_card_data.to_dict())
        data.pipeline_tag = pipeline_tag(self.config)
        for key in CARD_DATA_KEYS & kwargs.keys():
            setattr(data, key, kwargs.pop(key))
        values = card_variables(
            self.config,
            generator_parameters=sum(p.numel() for p in self.generator.parameters()),
            discriminator_parameters=(
                sum(p.numel() for p in self.discriminator.parameters()) if self.discriminator else None
            ),
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
        config: GanConfig | dict[str, Any] | None = None,
        commit_message: str = "Upload GAN bundle with latent-transforms",
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

        ``ModelHubMixin``'s arguments; the card names ``repo_id`` in its usage snippet.

        Example:
            >>> bundle.push_to_hub("me/my-gan")  # doctest: +SKIP
            'https://huggingface.co/me/my-gan/commit/...'
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
        """JSON-ready description (what ``latent-transforms info --json`` prints)."""
        cfg = self.config
        return {
            "source": self.source,
            "resolution": cfg.resolution,
            "modalities": [m.to_dict() for m in cfg.modalities],
            "z_dim": cfg.z_dim,
            "w_dim": cfg.w_dim,
            "c_dim": cfg.c_dim,
            "num_ws": cfg.num_ws,
            "mapping_layers": cfg.mapping_layers,
            "channel_base": cfg.channel_base,
            "channel_max": cfg.channel_max,
            "generator_parameters": sum(p.numel() for p in self.generator.parameters()),
            "discriminator_parameters": (
                sum(p.numel() for p in self.discriminator.parameters()) if self.discriminator else None
            ),
            "fingerprint": self.fingerprint,
            "w_stats": sorted(self.w_stats),
            "training": cfg.training,
        }

    def extra_repr(self) -> str:
        return (
            f"source={self.source!r}, resolution={self.resolution}, modalities={self.modalities}, "
            f"c_dim={self.config.c_dim}, discriminator={self.discriminator is not None}"
        )


def load_gan(
    source: str | Path,
    *,
    revision: str | None = None,
    cache_dir: str | Path | None = None,
    token: str | bool | None = None,
    local_files_only: bool = False,
    device: torch.device | str = "cpu",
    load_discriminator: bool = True,
) -> GanBundle:
    """Load a GAN bundle.

    Args:
        source: a local folder, ``"builtin:<name>"`` (shipped with the package) or a Hugging Face Hub
            repo id ``"namespace/name"`` (downloaded to the Hub cache; only ``config.json``,
            ``*.safetensors`` and ``README.md`` are fetched).
        revision: Hub branch, tag or commit (default ``main``).
        cache_dir: Hub cache folder (default ``~/.cache/huggingface/hub``).
        token: Hub token for private repos.
        local_files_only: never touch the network (also implied by ``HF_HUB_OFFLINE=1``).
        device: where to put the networks.
        load_discriminator: skip the discriminator to save memory when it is not needed.

    Returns:
        The :class:`GanBundle`, networks in eval mode with gradients off.

    Raises:
        BundleNotFoundError: not a folder / not cached offline / repo missing; the message says how
            to fetch it.
        WeightMismatchError: the weights do not match ``config.json`` (names the first tensor).

    Example:
        >>> bundle = load_gan("path/to/bundle")  # doctest: +SKIP
        >>> bundle.modalities  # doctest: +SKIP
        ['mri', 'ct']
    """
    return GanBundle.from_pretrained(
        source,
        revision=revision,
        cache_dir=cache_dir,
        token=token,
        local_files_only=local_files_only,
        device=device,
        load_discriminator=load_discriminator,
    )
