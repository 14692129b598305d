"""``HubBundle``: what every weight bundle (GAN, diffusion, translator) shares on ``ModelHubMixin``.

A bundle is one folder or Hugging Face Hub repo: ``config.json``, one ``*.safetensors`` file per network
and a generated model card ``README.md``. Everything about such a folder that does not depend on the
networks inside lives here, once: finding it (a folder, ``builtin:<name>`` or a Hub repo id, with
``HF_HUB_OFFLINE`` honoured and an error that says how to fetch a missing repo:
:func:`~latent_transforms.networks.hub.resolve_source`), reading ``config.json`` with the bundle's config
class (whose checks name the wrong key), refusing an incomplete folder, writing it atomically with
``config.json`` last, the model card through the mixin's template mechanism, ``push_to_hub``, the
fingerprint and the device. A bundle class says what differs in a few class attributes and hooks:

- ``config_class``, ``kind`` (what messages call it), ``loader`` (the function that loads it),
  ``main_file`` (the weight file that must be there; its network is fingerprinted), ``load_options`` (its
  ``from_pretrained`` keywords besides ``device``) and ``construction`` (how to build one, for an error);
- :meth:`HubBundle._from_folder` (build the networks from the config, load their weights strictly),
  :meth:`HubBundle._weight_files` (file name -> network), :meth:`HubBundle._card_values` and
  :meth:`HubBundle._pipeline_tag` (the card).

:class:`ModalityBundle` adds what the image generators share: one list of channels with their intensity
windows (``config.modalities``), :attr:`~ModalityBundle.modalities`, ``normalize`` / ``denormalize``.
"""

from __future__ import annotations

import functools
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import torch
from huggingface_hub import HfApi, ModelCard, ModelCardData, ModelHubMixin
from torch import nn

from latent_transforms._version import __version__
from latent_transforms.data.windows import IntensityWindow
from latent_transforms.errors import BundleNotFoundError, ConfigError
from latent_transforms.files import atomic_write
from latent_transforms.networks.hub import LIBRARY_NAME, resolve_source
from latent_transforms.networks.model_card import CARD_DATA_KEYS, DOCS_URL, LICENSE, REPO_URL, pipeline_tag
from latent_transforms.networks.weights import atomic_save, fingerprint, state_tensors

__all__ = [
    "CARD_NAME",
    "CONFIG_NAME",
    "WEIGHTS_METADATA",
    "HubBundle",
    "ModalityBundle",
    "parameter_count",
]

CONFIG_NAME = "config.json"
CARD_NAME = "README.md"
#: The metadata written into every safetensors file of a bundle.
WEIGHTS_METADATA = {"format": "pt", "library": "latent-transforms", "library_version": __version__}

B = TypeVar("B", bound="HubBundle")


def parameter_count(network: nn.Module | None) -> int | None:
    """The number of parameters of ``network``, ``None`` for a network the bundle does not hold.

    Example:
        >>> parameter_count(nn.Linear(3, 2)), parameter_count(None)
        (8, None)
    """
    return None if network is None else sum(p.numel() for p in network.parameters())


class HubBundle(
    nn.Module,
    ModelHubMixin,
    library_name=LIBRARY_NAME,
    license=LICENSE,
    repo_url=REPO_URL,
    docs_url=DOCS_URL,
):
    """The folder / Hub side of a bundle: load, save, push, model card, fingerprint and device.

    Not used on its own: :class:`~latent_transforms.GanBundle`, :class:`~latent_transforms.DiffusionBundle`
    and :class:`~latent_transforms.TranslatorBundle` are its subclasses. Saving, loading and uploading
    follow ``huggingface_hub.ModelHubMixin`` (:meth:`from_pretrained`, :meth:`save_pretrained`,
    :meth:`push_to_hub`, :meth:`generate_model_card`) with the mixin's standard arguments. Weights are
    safetensors only (never a pickle from the network), loaded strictly (a tensor that does not match
    ``config.json`` is named) and checked finite. Networks are in eval mode with ``requires_grad_(False)``.

    Example:
        >>> import tempfile
        >>> from latent_transforms import GanBundle, GanConfig
        >>> cfg = GanConfig(resolution=16, channel_base=256, channel_max=32, z_dim=16, w_dim=16)
        >>> issubclass(GanBundle, HubBundle), GanBundle.kind, GanBundle.main_file
        (True, 'GAN bundle', 'generator.safetensors')
        >>> with tempfile.TemporaryDirectory() as d:
        ...     folder = GanBundle.random(cfg).save_pretrained(d, w_stats_samples=64)
        ...     GanBundle.from_pretrained(folder).config == cfg
        True
    """

    #: The config class ``config.json`` is read with (``from_json`` / ``from_dict`` / ``to_json``).
    config_class: ClassVar[type[Any]]
    #: What messages call this kind of bundle, e.g. ``"GAN bundle"`` (also in the default commit message).
    kind: ClassVar[str]
    #: The function that loads it, named in messages, e.g. ``"load_gan"``.
    loader: ClassVar[str]
    #: The weight file a bundle folder must hold; its network is the one :attr:`fingerprint` hashes.
    main_file: ClassVar[str]
    #: ``from_pretrained`` keyword arguments besides ``device`` (passed to :meth:`_from_folder`).
    load_options: ClassVar[tuple[str, ...]] = ()
    #: How to build a bundle from a config (named when ``save_pretrained`` is given another config).
    construction: ClassVar[str]

    config: Any
    source: str | None

    # -- hooks ---------------------------------------------------------------------------------
    @classmethod
    def _from_folder(cls: type[B], folder: Path, config: Any, **options: Any) -> B:
        """Build the networks from ``config`` and load their weights from ``folder`` (strictly).

        ``options`` are the bundle's :attr:`load_options` that ``from_pretrained`` was given (only those).
        """
        raise NotImplementedError

    def _weight_files(self) -> dict[str, nn.Module | None]:
        """File name -> network, in saving order; ``None`` for a network the bundle lacks (its file is
        removed from the folder on save, so a re-save never leaves a stale network behind)."""
        raise NotImplementedError

    def _card_values(self, repo_id: str | None) -> dict[str, Any]:
        """The values the card's template fills in (``repo_id``: the card's title and usage snippet)."""
        raise NotImplementedError

    def _pipeline_tag(self) -> str | None:
        """The card's Hub ``pipeline_tag``."""
        return None

    # -- loading -------------------------------------------------------------------------------
    @classmethod
    def from_pretrained(
        cls: type[B],
        pretrained_model_name_or_path: str | Path,
        *,
        force_download: bool = False,
        token: str | bool | None = None,
        cache_dir: str | Path | None = None,
        local_files_only: bool = False,
        revision: str | None = None,
        **model_kwargs: Any,
    ) -> B:
        """Load a bundle from a folder, ``builtin:<name>`` or a Hub repo id (``ModelHubMixin``'s arguments).

        ``model_kwargs`` are ``device`` (default ``"cpu"``) and the bundle's :attr:`load_options` (a GAN
        bundle's ``load_discriminator``); see the bundle's loader (:func:`~latent_transforms.load_gan`,
        :func:`~latent_transforms.load_diffusion`, :func:`~latent_transforms.load_translator`), which is
        this with the source as its first argument.

        Example:
            >>> import tempfile
            >>> from latent_transforms import GanBundle, GanConfig
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
        cls: type[B],
        *,
        model_id: str,
        revision: str | None,
        cache_dir: str | Path | None,
        force_download: bool,
        local_files_only: bool,
        token: str | bool | None,
        device: torch.device | str = "cpu",
        **model_kwargs: Any,
    ) -> B:
        """``ModelHubMixin``'s loading hook: find the folder, read ``config.json``, build and load."""
        unknown = sorted(set(model_kwargs) - set(cls.load_options))
        if unknown:
            takes = " and ".join(f"{name}=" for name in ("device", *cls.load_options))
            raise TypeError(
                f"{cls.__name__}.from_pretrained got unexpected arguments {unknown}; it takes {takes} "
                "besides the Hub's revision, cache_dir, token, local_files_only and force_download."
            )
        folder = resolve_source(
            model_id,
            revision=revision,
            cache_dir=cache_dir,
            token=token,
            local_files_only=local_files_only,
            force_download=force_download,
            what=cls.kind,
            loader=cls.loader,
        )
        config = cls.config_class.from_json(folder / CONFIG_NAME)
        if not (folder / cls.main_file).is_file():
            raise BundleNotFoundError(
                f"{folder} has config.json but no {cls.main_file}; the {cls.kind} is incomplete."
            )
        bundle = cls._from_folder(folder, config, **model_kwargs)
        bundle.source = model_id
        return bundle.to(device)

    # -- properties ----------------------------------------------------------------------------
    @property
    def resolution(self) -> int:
        """Image side in pixels (``config.resolution``)."""
        return self.config.resolution

    @property
    def device(self) -> torch.device:
        """Where the networks' weights are."""
        return next(self._main_network().parameters()).device

    @functools.cached_property
    def fingerprint(self) -> str:
        """SHA-256 of the main network's weights (the generator, the UNet, the source-to-target generator;
        :func:`~latent_transforms.networks.weights.fingerprint`).

        Computed once per bundle object: a bundle's networks are frozen.
        """
        return fingerprint(self._main_network())

    def _main_network(self) -> nn.Module:
        network = self._weight_files()[self.main_file]
        assert network is not None
        return network

    # -- saving (huggingface_hub.ModelHubMixin) ------------------------------------------------
    def save_pretrained(  # type: ignore[override]
        self,
        save_directory: str | Path,
        *,
        config: Any = None,
        repo_id: str | None = None,
        push_to_hub: bool = False,
        model_card_kwargs: dict[str, Any] | None = None,
        **push_to_hub_kwargs: Any,
    ) -> Path:
        """Write the bundle to ``save_directory`` (created if needed); returns the folder.

        ``ModelHubMixin``'s arguments: ``config`` may only repeat the bundle's own config (``config.json``
        always describes the weights); ``model_card_kwargs`` go to :meth:`generate_model_card`;
        ``push_to_hub=True`` then uploads to ``repo_id`` (default the folder name) with
        ``push_to_hub_kwargs``.

        Every file is written atomically (:func:`latent_transforms.files.atomic_write`), ``config.json``
        last, so an interrupted save never leaves a half-written file. Unlike the mixin, which returns
        ``None`` unless it pushes, this returns the folder, for chaining.

        Example:
            >>> import tempfile
            >>> from latent_transforms import DiffusionBundle, DiffusionConfig
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
        """``ModelHubMixin``'s saving hook: each network of :meth:`_weight_files` as safetensors (atomic)."""
        for name, network in self._weight_files().items():
            if network is None:
                (save_directory / name).unlink(missing_ok=True)
            else:
                atomic_save(state_tensors(network), save_directory / name, WEIGHTS_METADATA)

    def _check_config(self, config: Any) -> None:
        if config is None:
            return
        given = config if isinstance(config, self.config_class) else self.config_class.from_dict(config)
        if given != self.config:
            raise ConfigError(
                "config must be None or the bundle's own config: config.json describes the weights being "
                f"saved. To change the config, build a bundle from it ({self.construction})."
            )

    def generate_model_card(self, *args: Any, **kwargs: Any) -> ModelCard:
        """The model card (``README.md``) through ``ModelHubMixin``'s template mechanism.

        ``kwargs``: ``repo_id`` (the card's title and usage snippet), card metadata (``license``,
        ``datasets``, ``language``, ``base_model``, ...) and any other template value.

        Example:
            >>> from latent_transforms import GanBundle, GanConfig
            >>> cfg = GanConfig(resolution=16, channel_base=256, channel_max=32, z_dim=16, w_dim=16)
            >>> card = GanBundle.random(cfg).generate_model_card(repo_id="me/gan")
            >>> card.data.license, card.data.library_name, 'load_gan("me/gan")' in card.text
            ('apache-2.0', 'latent-transforms', True)
        """
        info = self._hub_mixin_info
        data = ModelCardData(**info.model_card_data.to_dict())
        data.pipeline_tag = self._pipeline_tag()
        for key in CARD_DATA_KEYS & kwargs.keys():
            setattr(data, key, kwargs.pop(key))
        values = self._card_values(kwargs.pop("repo_id", None))
        card: ModelCard = ModelCard.from_template(
            card_data=data,
            template_str=info.model_card_template,
            repo_url=info.repo_url,
            paper_url=info.paper_url,
            docs_url=info.docs_url,
            **{**values, **kwargs},
        )
        return card

    def push_to_hub(
        self,
        repo_id: str,
        *,
        config: Any = None,
        commit_message: str | None = None,
        private: bool | None = None,
        token: str | bool | None = None,
        branch: str | None = None,
        create_pr: bool | None = None,
        allow_patterns: list[str] | str | None = None,
        ignore_patterns: list[str] | str | None = None,
        delete_patterns: list[str] | str | None = None,
        model_card_kwargs: dict[str, Any] | None = None,
        **upload_kwargs: Any,
    ) -> str:
        """Create ``repo_id`` on the Hub if needed and upload the bundle; returns the commit URL.

        ``ModelHubMixin``'s arguments; the card names ``repo_id`` in its usage snippet. ``commit_message``
        defaults to ``"Upload <kind> with latent-transforms"``; ``upload_kwargs`` go to
        ``HfApi.upload_folder`` (e.g. ``parent_commit``).

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
                commit_message=commit_message or f"Upload {self.kind} with latent-transforms",
                revision=branch,
                create_pr=create_pr,
                allow_patterns=allow_patterns,
                ignore_patterns=ignore_patterns,
                delete_patterns=delete_patterns,
                **upload_kwargs,
            )
        return str(getattr(info, "commit_url", info))

    # -- description ---------------------------------------------------------------------------
    def _repr_fields(self) -> dict[str, Any]:
        """What :meth:`extra_repr` shows after the source and the resolution."""
        return {}

    def extra_repr(self) -> str:
        fields = {"source": repr(self.source), "resolution": self.resolution, **self._repr_fields()}
        return ", ".join(f"{key}={value}" for key, value in fields.items())

    # -- physical units ------------------------------------------------------------------------
    @staticmethod
    def _per_channel(
        images: torch.Tensor, windows: Sequence[IntensityWindow], op: str, expected: str
    ) -> torch.Tensor:
        """Apply ``window.normalize`` or ``window.denormalize`` (``op``) channel by channel to
        ``[..., C, H, W]``; ``expected`` says which channels in the error for a wrong shape."""
        if images.ndim < 3 or images.shape[-3] != len(windows):
            raise ConfigError(f"expected [..., {len(windows)}, H, W] {expected}, got {tuple(images.shape)}.")
        parts = [getattr(w, op)(images[..., i : i + 1, :, :]) for i, w in enumerate(windows)]
        return torch.cat(parts, dim=-3)


class ModalityBundle(HubBundle):
    """A :class:`HubBundle` of an image generator: one list of channels (``config.modalities``, each with
    its intensity window) and, optionally, classes (``config.c_dim``).

    Example:
        >>> from latent_transforms import GanBundle, GanConfig
        >>> bundle = GanBundle.random(GanConfig(resolution=16, channel_base=256, channel_max=32))
        >>> physical = torch.tensor([0.0, 2000.0]).reshape(1, 2, 1, 1)  # MRI [0, 1900], CT [-1000, 2000] HU
        >>> bundle.modalities, bundle.normalize(physical).flatten().tolist()
        (['mri', 'ct'], [-1.0, 1.0])
    """

    @property
    def modalities(self) -> list[str]:
        """Channel names in order, e.g. ``['mri', 'ct']``."""
        return self.config.modality_names

    def normalize(self, images: torch.Tensor) -> torch.Tensor:
        """Physical units -> ``[-1, 1]`` per channel (``[..., C, H, W]``, channels in bundle order)."""
        return self._modality_channels(images, "normalize")

    def denormalize(self, images: torch.Tensor) -> torch.Tensor:
        """``[-1, 1]`` -> physical units per channel (``[..., C, H, W]``, channels in bundle order)."""
        return self._modality_channels(images, "denormalize")

    def _modality_channels(self, images: torch.Tensor, op: str) -> torch.Tensor:
        windows = [m.window for m in self.config.modalities]
        return self._per_channel(images, windows, op, f"with channels {self.modalities}")

    def _pipeline_tag(self) -> str | None:
        return pipeline_tag(self.config)

    def _repr_fields(self) -> dict[str, Any]:
        return {"modalities": self.modalities, "c_dim": self.config.c_dim}
