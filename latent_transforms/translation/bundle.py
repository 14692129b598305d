"""``TranslatorBundle``: a trained unpaired translator as one folder or Hub repo, and :func:`load_translator`.

Like :class:`~latent_transforms.GanBundle`, it follows ``huggingface_hub``'s ``ModelHubMixin``
(``from_pretrained``, ``save_pretrained``, ``push_to_hub``, ``generate_model_card``), holds safetensors
only (never a pickle), loads weights strictly, and resolves its source through the same code: a local
folder, ``builtin:<name>`` or a Hub repo id, with ``HF_HUB_OFFLINE`` honoured.
"""

from __future__ import annotations

import functools
import tempfile
from pathlib import Path
from typing import Any

import torch
from huggingface_hub import HfApi, ModelCard, ModelCardData, ModelHubMixin
from torch import nn

from latent_transforms._version import __version__
from latent_transforms.checks import GENERATOR_RANGE_LIMIT, check_choice, check_image_batch, check_int
from latent_transforms.errors import BundleNotFoundError, ConfigError
from latent_transforms.files import atomic_write
from latent_transforms.networks.hub import LIBRARY_NAME, resolve_source
from latent_transforms.networks.weights import atomic_save, fingerprint, load_strict, state_tensors
from latent_transforms.translation.card import (
    CYCLEGAN_URL,
    DOCS_URL,
    LICENSE,
    REPO_URL,
    TRANSLATOR_CARD_TEMPLATE,
    TRANSLATOR_TAGS,
    translator_card_variables,
)
from latent_transforms.translation.config import TranslatorConfig
from latent_transforms.translation.networks import ResnetGenerator, build_predictor

__all__ = ["TranslatorBundle", "load_translator"]

CONFIG_NAME = "config.json"
FORWARD_NAME = "source_to_target.safetensors"
INVERSE_NAME = "target_to_source.safetensors"
PREDICTOR_NAME = "predictor.safetensors"
CARD_NAME = "README.md"
#: What error messages call a translator bundle.
BUNDLE_KIND = "translator bundle"
_META = {"format": "pt", "library": "latent-transforms", "library_version": __version__}
SIDES = ("source", "target")


def build_generators(config: TranslatorConfig) -> tuple[ResnetGenerator, ResnetGenerator]:
    """``(G: source -> target, F: target -> source)`` for a config, freshly initialised.

    Example:
        >>> g, f = build_generators(TranslatorConfig(resolution=32, width=4, blocks=1))
        >>> g.in_channels, f.out_channels
        (1, 1)
    """
    options = {"width": config.width, "blocks": config.blocks, "downsamplings": config.downsamplings}
    assert config.blocks is not None
    forward = ResnetGenerator(config.source_channels, config.target_channels, **options)  # type: ignore[arg-type]
    inverse = ResnetGenerator(config.target_channels, config.source_channels, **options)  # type: ignore[arg-type]
    return forward, inverse


class TranslatorBundle(
    nn.Module,
    ModelHubMixin,
    library_name=LIBRARY_NAME,
    license=LICENSE,
    tags=list(TRANSLATOR_TAGS),
    repo_url=REPO_URL,
    docs_url=DOCS_URL,
    paper_url=CYCLEGAN_URL,
    model_card_template=TRANSLATOR_CARD_TEMPLATE,
):
    """A trained translator: the generator ``G`` (source -> target), optionally ``F`` (target -> source)
    and, for DUIIT, the task predictor; with its :class:`TranslatorConfig`.

    On disk (or on the Hub) a bundle is one folder::

        config.json                    architecture, modalities and windows of both sides, training summary
        source_to_target.safetensors   G
        target_to_source.safetensors   F (optional; the cycle's other half)
        predictor.safetensors          DUIIT's predictor on target images (optional)
        README.md                      generated model card

    Networks are in eval mode with ``requires_grad_(False)``: a bundle is for using a translator.
    Images are ``[B, C, R, R]`` in ``[-1, 1]`` (source or target channels in config order);
    :meth:`normalize` / :meth:`denormalize` convert from / to physical units.

    Example:
        >>> cfg = TranslatorConfig(resolution=16, width=4, blocks=1)
        >>> bundle = TranslatorBundle.random(cfg, seed=0)
        >>> bundle.translate(torch.zeros(2, 1, 16, 16)).shape
        torch.Size([2, 1, 16, 16])
        >>> bundle.sample(3, source=torch.zeros(5, 1, 16, 16), seed=0).shape
        torch.Size([3, 1, 16, 16])
        >>> bundle
        TranslatorBundle(source=None, resolution=16, source_to_target=['mri'] -> ['ct'], inverse=True,
                         task=None)
    """

    def __init__(
        self,
        config: TranslatorConfig,
        source_to_target: ResnetGenerator,
        target_to_source: ResnetGenerator | None = None,
        predictor: nn.Module | None = None,
    ) -> None:
        super().__init__()
        self.config = config
        self.source_to_target = source_to_target.eval().requires_grad_(False)
        self.target_to_source = (
            target_to_source.eval().requires_grad_(False) if target_to_source is not None else None
        )
        self.predictor = predictor.eval().requires_grad_(False) if predictor is not None else None
        self.source: str | None = None

    # -- construction --------------------------------------------------------------------------
    @classmethod
    def random(cls, config: TranslatorConfig, *, seed: int = 0) -> TranslatorBundle:
        """A randomly initialised bundle (for tests and pipelines)."""
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            forward, inverse = build_generators(config)
            predictor = build_predictor(config)
        return cls(config, forward, inverse, predictor)

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
    ) -> TranslatorBundle:
        """Load a bundle from a folder, ``builtin:<name>`` or a Hub repo id (``ModelHubMixin``'s arguments).

        ``model_kwargs``: ``device`` (default ``"cpu"``). See :func:`load_translator`.

        Example:
            >>> import tempfile
            >>> with tempfile.TemporaryDirectory() as d:
            ...     cfg = TranslatorConfig(resolution=16, width=4, blocks=1)
            ...     _ = TranslatorBundle.random(cfg).save_pretrained(d)
            ...     TranslatorBundle.from_pretrained(d).config.resolution
            16
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
    ) -> TranslatorBundle:
        """``ModelHubMixin``'s loading hook: find the folder, build the networks, load weights strictly."""
        if model_kwargs:
            raise TypeError(
                f"TranslatorBundle.from_pretrained got unexpected arguments {sorted(model_kwargs)}; it takes "
                "device= besides the Hub's revision, cache_dir, token, local_files_only and force_download."
            )
        folder = resolve_source(
            model_id,
            revision=revision,
            cache_dir=cache_dir,
            token=token,
            local_files_only=local_files_only,
            force_download=force_download,
            what=BUNDLE_KIND,
            loader="load_translator",
        )
        config = TranslatorConfig.from_json(folder / CONFIG_NAME)
        if not (folder / FORWARD_NAME).is_file():
            raise BundleNotFoundError(
                f"{folder} has config.json but no {FORWARD_NAME}; the translator bundle is incomplete."
            )
        forward, inverse = build_generators(config)
        load_strict(forward, folder / FORWARD_NAME, "source-to-target generator")
        if (folder / INVERSE_NAME).is_file():
            load_strict(inverse, folder / INVERSE_NAME, "target-to-source generator")
        else:
            inverse = None  # type: ignore[assignment]
        predictor = build_predictor(config)
        if predictor is not None:
            if not (folder / PREDICTOR_NAME).is_file():
                raise BundleNotFoundError(
                    f"{folder}/config.json names a {config.task} predictor but {PREDICTOR_NAME} is missing."
                )
            load_strict(predictor, folder / PREDICTOR_NAME, "predictor")
        bundle = cls(config, forward, inverse, predictor)
        bundle.source = model_id
        return bundle.to(device)

    # -- properties ----------------------------------------------------------------------------
    @property
    def resolution(self) -> int:
        return self.config.resolution

    @property
    def device(self) -> torch.device:
        return next(self.source_to_target.parameters()).device

    @functools.cached_property
    def fingerprint(self) -> str:
        """SHA-256 of ``G``'s weights (computed once: a bundle's networks are frozen)."""
        return fingerprint(self.source_to_target)

    # -- use -----------------------------------------------------------------------------------
    def _check(self, images: torch.Tensor, side: str) -> tuple[torch.Tensor, bool]:
        channels = self.config.source_channels if side == "source" else self.config.target_channels
        single = isinstance(images, torch.Tensor) and images.ndim == 3
        batch = check_image_batch(
            images,
            what=f"{side} images",
            channels=channels,
            resolution=self.resolution,
            allow_single=True,
            value_limit=GENERATOR_RANGE_LIMIT,  # catches HU and 0-255 given where [-1, 1] is expected
            context=f"TranslatorBundle ({', '.join(getattr(self.config, side + '_names'))})",
        )
        return batch, single

    @torch.no_grad()
    def _run(self, net: nn.Module, images: torch.Tensor, side: str, batch_size: int) -> torch.Tensor:
        x, single = self._check(images, side)
        check_int("batch_size", batch_size, low=1)
        out = [
            net(x[i : i + batch_size].to(self.device, torch.float32)).to(x.device)
            for i in range(0, len(x), batch_size)
        ]
        y = torch.cat(out)
        return y[0] if single else y

    def translate(self, images: torch.Tensor, *, batch_size: int = 64) -> torch.Tensor:
        """``G(images)``: source images ``[B, C_s, R, R]`` (or ``[C_s, R, R]``) in ``[-1, 1]`` -> target
        images ``[B, C_t, R, R]`` in ``(-1, 1)``, on the input's device, without gradients.

        Example:
            >>> bundle = TranslatorBundle.random(TranslatorConfig(resolution=16, width=4, blocks=1))
            >>> bundle.translate(torch.zeros(1, 16, 16)).shape
            torch.Size([1, 16, 16])
        """
        return self._run(self.source_to_target, images, "source", batch_size)

    def translate_back(self, images: torch.Tensor, *, batch_size: int = 64) -> torch.Tensor:
        """``F(images)``: target images -> source images (the cycle's other direction).

        Example:
            >>> bundle = TranslatorBundle.random(TranslatorConfig(resolution=16, width=4, blocks=1))
            >>> bundle.translate_back(torch.zeros(2, 1, 16, 16)).shape
            torch.Size([2, 1, 16, 16])
        """
        if self.target_to_source is None:
            raise ConfigError("this translator bundle holds no target-to-source generator (F).")
        return self._run(self.target_to_source, images, "target", batch_size)

    def sample(
        self,
        n: int,
        labels: Any = None,
        *,
        source: torch.Tensor,
        source_labels: Any = None,
        seed: int | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """``n`` target images in ``[-1, 1]`` translated from source images drawn from ``source``.

        The face every image maker of the library shows (``sample(n, labels=None, seed=...)``): a
        translator makes images from given source images, so the pool to draw from is an argument.

        Args:
            n: images to make.
            labels: ``None`` (any source image), or one class per image (an int for all, or ``[n]``):
                each image is translated from a source image of that class (needs ``source_labels``).
            source: the pool, ``[N, C_s, R, R]`` in ``[-1, 1]``.
            source_labels: ``[N]`` class of each pool image (for ``labels``).
            seed: seed of the draws (default 0), unless ``generator`` is given.
            generator: CPU ``torch.Generator`` for the draws.

        Draws are without replacement while ``n`` fits in the pool (per class with ``labels``), with
        replacement beyond.

        Example:
            >>> bundle = TranslatorBundle.random(TranslatorConfig(resolution=16, width=4, blocks=1))
            >>> pool, classes = torch.zeros(4, 1, 16, 16), torch.tensor([0, 0, 1, 1])
            >>> bundle.sample(2, labels=1, source=pool, source_labels=classes, seed=0).shape
            torch.Size([2, 1, 16, 16])
        """
        n = check_int("n", n, low=1)
        pool, _ = self._check(source, "source")
        if pool.ndim == 3:
            pool = pool[None]
        gen = (
            generator if generator is not None else torch.Generator().manual_seed(0 if seed is None else seed)
        )
        if labels is None:
            index = draw_indices(torch.arange(len(pool)), n, gen)
        else:
            if source_labels is None:
                raise ConfigError("sample(labels=...) needs source_labels, the class of each source image.")
            classes = torch.as_tensor(source_labels).reshape(-1).long()
            wanted = torch.as_tensor(labels).long().reshape(-1)
            if wanted.numel() == 1:
                wanted = wanted.expand(n)
            if len(classes) != len(pool) or len(wanted) != n:
                raise ConfigError(
                    f"source_labels must have one entry per source image ({len(pool)}) and labels one per "
                    f"image ({n}); got {len(classes)} and {len(wanted)}."
                )
            index = torch.empty(n, dtype=torch.long)
            for value in wanted.unique().tolist():
                slots = (wanted == value).nonzero().flatten()
                members = (classes == value).nonzero().flatten()
                if len(members) == 0:
                    raise ConfigError(
                        f"no source image has class {value}; the pool's classes are "
                        f"{sorted(classes.unique().tolist())}."
                    )
                index[slots] = draw_indices(members, len(slots), gen)
        return self.translate(pool[index])

    @torch.no_grad()
    def predict(self, images: torch.Tensor, *, batch_size: int = 64) -> torch.Tensor:
        """DUIIT's predictor on target images in ``[-1, 1]``: regression values in the labels' units
        (``[B]`` for one output, ``[B, K]`` for more), or class probabilities ``[B, K]``.

        Example:
            >>> cfg = TranslatorConfig(resolution=16, width=4, blocks=1, task="regression", label_mean=50.0,
            ...                        predictor_depth=10, predictor_width=4)
            >>> TranslatorBundle.random(cfg).predict(torch.zeros(3, 1, 16, 16)).shape
            torch.Size([3])
        """
        if self.predictor is None:
            raise ConfigError("this translator was trained without a predictor (a plain CycleGAN).")
        out = self._run(self.predictor, images, "target", batch_size)
        out = out[None] if out.ndim == 1 else out
        if self.config.task == "classification":
            return out.softmax(dim=1)
        values = out * self.config.label_std + self.config.label_mean
        return values[:, 0] if values.shape[1] == 1 else values

    def normalize(self, images: torch.Tensor, side: str) -> torch.Tensor:
        """Physical units -> ``[-1, 1]`` per channel of ``side`` (``"source"`` or ``"target"``).

        Example:
            >>> bundle = TranslatorBundle.random(TranslatorConfig(resolution=16, width=4, blocks=1))
            >>> bundle.normalize(torch.full((1, 1, 2, 2), 500.0), "target").flatten()[0].item()
            0.0
        """
        return self._per_channel(images, side, "normalize")

    def denormalize(self, images: torch.Tensor, side: str) -> torch.Tensor:
        """``[-1, 1]`` -> physical units per channel of ``side``."""
        return self._per_channel(images, side, "denormalize")

    def _per_channel(self, images: torch.Tensor, side: str, op: str) -> torch.Tensor:
        check_choice("side", side, SIDES)
        windows = self.config.windows(side)
        if images.ndim < 3 or images.shape[-3] != len(windows):
            raise ConfigError(
                f"expected [..., {len(windows)}, H, W] {side} images, got {tuple(images.shape)}."
            )
        parts = [getattr(w, op)(images[..., i : i + 1, :, :]) for i, w in enumerate(windows)]
        return torch.cat(parts, dim=-3)

    # -- saving (huggingface_hub.ModelHubMixin) ------------------------------------------------
    def save_pretrained(  # type: ignore[override]
        self,
        save_directory: str | Path,
        *,
        config: TranslatorConfig | dict[str, Any] | None = None,
        repo_id: str | None = None,
        push_to_hub: bool = False,
        model_card_kwargs: dict[str, Any] | None = None,
        **push_to_hub_kwargs: Any,
    ) -> Path:
        """Write the bundle to ``save_directory`` (created if needed); returns the folder.

        Every file is written atomically, ``config.json`` last. ``config`` may only repeat the bundle's
        own; ``model_card_kwargs`` go to :meth:`generate_model_card`; ``push_to_hub=True`` uploads.

        Example:
            >>> import tempfile
            >>> with tempfile.TemporaryDirectory() as d:
            ...     cfg = TranslatorConfig(resolution=16, width=4, blocks=1)
            ...     folder = TranslatorBundle.random(cfg).save_pretrained(d)
            ...     sorted(p.name for p in folder.iterdir())
            ['README.md', 'config.json', 'source_to_target.safetensors', 'target_to_source.safetensors']
        """
        if config is not None:
            given = config if isinstance(config, TranslatorConfig) else TranslatorConfig.from_dict(config)
            if given != self.config:
                raise ConfigError(
                    "config must be None or the bundle's own config: config.json describes the weights."
                )
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
        """``ModelHubMixin``'s saving hook: the networks as safetensors (atomic)."""
        atomic_save(state_tensors(self.source_to_target), save_directory / FORWARD_NAME, _META)
        for net, name in ((self.target_to_source, INVERSE_NAME), (self.predictor, PREDICTOR_NAME)):
            if net is not None:
                atomic_save(state_tensors(net), save_directory / name, _META)
            else:
                (save_directory / name).unlink(missing_ok=True)

    def generate_model_card(self, *args: Any, **kwargs: Any) -> ModelCard:
        """The model card (``README.md``) through ``ModelHubMixin``'s template mechanism.

        ``kwargs``: ``repo_id`` (title and usage snippet), card metadata (``license``, ``datasets``, ...)
        and any other template value.

        Example:
            >>> bundle = TranslatorBundle.random(TranslatorConfig(resolution=16, width=4, blocks=1))
            >>> card = bundle.generate_model_card(repo_id="me/mri2ct")
            >>> card.data.license, 'load_translator("me/mri2ct")' in card.text
            ('apache-2.0', True)
        """
        info = self._hub_mixin_info
        data = ModelCardData(**info.model_card_data.to_dict())
        data.pipeline_tag = "image-to-image"
        for key in ("license", "license_name", "license_link", "datasets", "language", "base_model"):
            if key in kwargs:
                setattr(data, key, kwargs.pop(key))

        def count(net: nn.Module | None) -> int | None:
            return None if net is None else sum(p.numel() for p in net.parameters())

        values = translator_card_variables(
            self.config,
            parameters={
                "source_to_target": count(self.source_to_target),
                "target_to_source": count(self.target_to_source),
                "predictor": count(self.predictor),
            },
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

    def push_to_hub(
        self,
        repo_id: str,
        *,
        commit_message: str = "Upload translator bundle with latent-transforms",
        private: bool | None = None,
        token: str | bool | None = None,
        branch: str | None = None,
        create_pr: bool | None = None,
        model_card_kwargs: dict[str, Any] | None = None,
        **upload_kwargs: Any,
    ) -> str:
        """Create ``repo_id`` on the Hub if needed and upload the bundle; returns the commit URL.

        Example:
            >>> translator.push_to_hub("me/mri2ct")  # doctest: +SKIP
            'https://huggingface.co/me/mri2ct/commit/...'
        """
        api = HfApi(token=token, library_name=LIBRARY_NAME, library_version=__version__)
        api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
        with tempfile.TemporaryDirectory() as tmp:
            self.save_pretrained(tmp, model_card_kwargs={"repo_id": repo_id, **(model_card_kwargs or {})})
            info = api.upload_folder(
                repo_id=repo_id,
                repo_type="model",
                folder_path=tmp,
                commit_message=commit_message,
                revision=branch,
                create_pr=create_pr,
                **upload_kwargs,
            )
        return str(getattr(info, "commit_url", info))

    def summary(self) -> dict[str, Any]:
        """JSON-ready description.

        Example:
            >>> bundle = TranslatorBundle.random(TranslatorConfig(resolution=16, width=4, blocks=1))
            >>> bundle.summary()["task"] is None
            True
        """
        return {
            "source": self.source,
            "resolution": self.resolution,
            "source_modalities": [m.to_dict() for m in self.config.source],
            "target_modalities": [m.to_dict() for m in self.config.target],
            "task": self.config.task,
            "fingerprint": self.fingerprint,
            "training": self.config.training,
        }

    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        return (
            f"TranslatorBundle(source={self.source!r}, resolution={self.resolution}, source_to_target="
            f"{self.config.source_names} -> {self.config.target_names}, "
            f"inverse={self.target_to_source is not None}, "
            f"task={self.config.task!r})"
        )


def draw_indices(members: torch.Tensor, n: int, generator: torch.Generator) -> torch.Tensor:
    """``n`` entries of ``members``: a random permutation's first ``n`` while they suffice, then draws
    with replacement for the rest.

    Example:
        >>> sorted(draw_indices(torch.tensor([4, 5, 6]), 3, torch.Generator().manual_seed(0)).tolist())
        [4, 5, 6]
    """
    first = members[torch.randperm(len(members), generator=generator)[: min(n, len(members))]]
    if n <= len(members):
        return first
    rest = members[torch.randint(len(members), (n - len(members),), generator=generator)]
    return torch.cat([first, rest])


def load_translator(
    source: str | Path,
    *,
    revision: str | None = None,
    cache_dir: str | Path | None = None,
    token: str | bool | None = None,
    local_files_only: bool = False,
    device: torch.device | str = "cpu",
) -> TranslatorBundle:
    """Load a translator bundle from a folder, ``builtin:<name>`` or a Hub repo id.

    Args:
        source: a local folder, ``"builtin:<name>"`` or ``"namespace/name"`` (only ``config.json``,
            ``*.safetensors`` and ``README.md`` are fetched).
        revision: Hub branch, tag or commit (as for :func:`~latent_transforms.load_gan`).
        cache_dir: the Hugging Face cache folder.
        token: Hub token (private repos).
        local_files_only: never reach the network.
        device: where to put the networks.

    Raises:
        BundleNotFoundError: not a folder / not cached offline / repo missing; the message says how to
            fetch it.
        WeightMismatchError: the weights do not match ``config.json``.

    Example:
        >>> translator = load_translator("runs/mri2ct/bundle")  # doctest: +SKIP
        >>> translator.translate(mri).shape  # doctest: +SKIP
        torch.Size([8, 1, 64, 64])
    """
    return TranslatorBundle.from_pretrained(
        source,
        revision=revision,
        cache_dir=cache_dir,
        token=token,
        local_files_only=local_files_only,
        device=device,
    )
