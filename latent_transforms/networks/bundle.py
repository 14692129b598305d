"""``GanBundle``: a trained GAN as one folder or Hub repo, and :func:`load_gan`.

``GanBundle`` follows the Hugging Face Hub's ``ModelHubMixin`` convention through
:class:`~latent_transforms.networks.hub_bundle.HubBundle`, which every bundle shares: ``from_pretrained``,
``save_pretrained`` and ``push_to_hub`` take the mixin's standard arguments, and the model card
(``README.md``) is rendered by the mixin's ``generate_model_card`` from the template in
:mod:`latent_transforms.networks.model_card`. Safetensors only (never a pickle from the network), weights
loaded strictly, ``builtin:<name>`` bundles shipped in the package, ``HF_HUB_OFFLINE`` honoured with an
error that says how to fetch a missing repo. What is the GAN's own lives here: its networks and files, the
W statistics, sampling and the card's values.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import torch
from safetensors.torch import load_file
from torch import nn

from latent_transforms.checks import check_class_labels
from latent_transforms.errors import ConfigError, WeightMismatchError
from latent_transforms.networks.config import GanConfig
from latent_transforms.networks.discriminator import Discriminator
from latent_transforms.networks.generator import Generator
from latent_transforms.networks.hub_bundle import (
    CARD_NAME as CARD_NAME,
    CONFIG_NAME as CONFIG_NAME,
    WEIGHTS_METADATA,
    ModalityBundle,
    parameter_count,
)
from latent_transforms.networks.model_card import CARD_TAGS, MODEL_CARD_TEMPLATE, PAPER_URL, card_variables
from latent_transforms.networks.weights import atomic_save, check_finite, load_strict

GENERATOR_NAME = "generator.safetensors"
DISCRIMINATOR_NAME = "discriminator.safetensors"
W_STATS_NAME = "w_stats.safetensors"


class GanBundle(
    ModalityBundle,
    tags=list(CARD_TAGS),
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
    kind: ClassVar[str] = "GAN bundle"
    loader: ClassVar[str] = "load_gan"
    main_file: ClassVar[str] = GENERATOR_NAME
    load_options: ClassVar[tuple[str, ...]] = ("load_discriminator",)
    construction: ClassVar[str] = "GanBundle(config, generator, ...)"

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
    def _from_folder(cls, folder: Path, config: GanConfig, **options: Any) -> GanBundle:
        """The generator (strictly), the discriminator when present unless ``load_discriminator=False``,
        the W statistics (checked)."""
        generator = Generator(config)
        load_strict(generator, folder / GENERATOR_NAME, "generator")
        disc = None
        if options.get("load_discriminator", True) and (folder / DISCRIMINATOR_NAME).is_file():
            disc = Discriminator(config)
            load_strict(disc, folder / DISCRIMINATOR_NAME, "discriminator")
        w_stats = load_file(str(folder / W_STATS_NAME)) if (folder / W_STATS_NAME).is_file() else None
        bundle = cls(config, generator, disc, w_stats)
        if w_stats is not None:
            bundle._check_w_stats()
        return bundle

    def _apply(self, fn: Any, recurse: bool = True) -> GanBundle:
        # ``to()``, ``cuda()``, ``half()`` ... also move the W statistics, which are not buffers.
        super()._apply(fn, recurse)
        self.w_stats = {k: fn(v) for k, v in self.w_stats.items()}
        return self

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

    # -- saving (huggingface_hub.ModelHubMixin, through HubBundle) ----------------------------
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
        if not self.w_stats:
            self.compute_w_stats(w_stats_samples)
        return super().save_pretrained(
            save_directory,
            config=config,
            repo_id=repo_id,
            push_to_hub=push_to_hub,
            model_card_kwargs=model_card_kwargs,
            **push_to_hub_kwargs,
        )

    def _weight_files(self) -> dict[str, nn.Module | None]:
        return {GENERATOR_NAME: self.generator, DISCRIMINATOR_NAME: self.discriminator}

    def _save_pretrained(self, save_directory: Path) -> None:
        """``ModelHubMixin``'s saving hook: the networks and the W statistics (safetensors, atomic)."""
        super()._save_pretrained(save_directory)
        w_stats = {k: v.detach().cpu() for k, v in self.w_stats.items()}
        atomic_save(w_stats, save_directory / W_STATS_NAME, WEIGHTS_METADATA)

    def _card_values(self, repo_id: str | None) -> dict[str, Any]:
        return card_variables(
            self.config,
            generator_parameters=sum(p.numel() for p in self.generator.parameters()),
            discriminator_parameters=parameter_count(self.discriminator),
            fingerprint=self.fingerprint,
            repo_id=repo_id,
        )

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
            "discriminator_parameters": parameter_count(self.discriminator),
            "fingerprint": self.fingerprint,
            "w_stats": sorted(self.w_stats),
            "training": cfg.training,
        }

    def _repr_fields(self) -> dict[str, Any]:
        return {**super()._repr_fields(), "discriminator": self.discriminator is not None}


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
