"""``TranslatorBundle``: a trained unpaired translator as one folder or Hub repo, and :func:`load_translator`.

Like :class:`~latent_transforms.GanBundle`, and through the same code
(:class:`~latent_transforms.networks.hub_bundle.HubBundle`), it follows ``huggingface_hub``'s
``ModelHubMixin`` (``from_pretrained``, ``save_pretrained``, ``push_to_hub``, ``generate_model_card``),
holds safetensors only (never a pickle), loads weights strictly, and resolves its source from a local
folder, ``builtin:<name>`` or a Hub repo id, with ``HF_HUB_OFFLINE`` honoured.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn

from latent_transforms.checks import GENERATOR_RANGE_LIMIT, check_choice, check_image_batch, check_int
from latent_transforms.errors import BundleNotFoundError, ConfigError
from latent_transforms.networks.hub_bundle import (
    CARD_NAME as CARD_NAME,
    CONFIG_NAME as CONFIG_NAME,
    HubBundle,
    parameter_count,
)
from latent_transforms.networks.weights import load_strict
from latent_transforms.translation.card import (
    CYCLEGAN_URL,
    TRANSLATOR_CARD_TEMPLATE,
    TRANSLATOR_TAGS,
    translator_card_variables,
)
from latent_transforms.translation.config import TranslatorConfig
from latent_transforms.translation.networks import ResnetGenerator, build_predictor

__all__ = ["TranslatorBundle", "load_translator"]

FORWARD_NAME = "source_to_target.safetensors"
INVERSE_NAME = "target_to_source.safetensors"
PREDICTOR_NAME = "predictor.safetensors"
#: What error messages call a translator bundle.
BUNDLE_KIND = "translator bundle"
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
    HubBundle,
    tags=list(TRANSLATOR_TAGS),
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

    #: The config class a bundle folder's ``config.json`` is read with.
    config_class: ClassVar[type[TranslatorConfig]] = TranslatorConfig
    kind: ClassVar[str] = BUNDLE_KIND
    loader: ClassVar[str] = "load_translator"
    main_file: ClassVar[str] = FORWARD_NAME
    construction: ClassVar[str] = "TranslatorBundle(config, source_to_target, ...)"

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
    def _from_folder(cls, folder: Path, config: TranslatorConfig, **options: Any) -> TranslatorBundle:
        """``G`` (strictly), ``F`` when present, and the predictor the config names (it must be there)."""
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
        return cls(config, forward, inverse, predictor)

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
        return self._side_channels(images, side, "normalize")

    def denormalize(self, images: torch.Tensor, side: str) -> torch.Tensor:
        """``[-1, 1]`` -> physical units per channel of ``side``."""
        return self._side_channels(images, side, "denormalize")

    def _side_channels(self, images: torch.Tensor, side: str, op: str) -> torch.Tensor:
        check_choice("side", side, SIDES)
        return self._per_channel(images, self.config.windows(side), op, f"{side} images")

    # -- saving (huggingface_hub.ModelHubMixin, through HubBundle) ----------------------------
    def _weight_files(self) -> dict[str, nn.Module | None]:
        return {
            FORWARD_NAME: self.source_to_target,
            INVERSE_NAME: self.target_to_source,
            PREDICTOR_NAME: self.predictor,
        }

    def _pipeline_tag(self) -> str | None:
        return "image-to-image"

    def _card_values(self, repo_id: str | None) -> dict[str, Any]:
        return translator_card_variables(
            self.config,
            parameters={
                "source_to_target": parameter_count(self.source_to_target),
                "target_to_source": parameter_count(self.target_to_source),
                "predictor": parameter_count(self.predictor),
            },
            fingerprint=self.fingerprint,
            repo_id=repo_id,
        )

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

    def _repr_fields(self) -> dict[str, Any]:
        return {
            "source_to_target": f"{self.config.source_names} -> {self.config.target_names}",
            "inverse": self.target_to_source is not None,
            "task": repr(self.config.task),
        }

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.extra_repr()})"


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
