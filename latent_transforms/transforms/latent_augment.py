"""``LatentAugment``: augment a real image by a short guided walk in the GAN's latent space.

The method of Tronchin et al. 2023. The transform is thin: it converts the caller's range to the
generator's, draws the per-sample ``p`` and patch positions, finds each image's inverted latent ``w*``
(:class:`~latent_transforms.inversion.lookup.LatentLookup`), and runs the walk
(:class:`~latent_transforms.objectives.walk.LatentWalk`, where the loss and the ``K`` Adam steps are);
its hyper-parameters are one frozen :class:`~latent_transforms.LatentAugmentConfig`.
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from latent_transforms.checks import check_image_batch
from latent_transforms.errors import ConfigError, FeatureNetworkUnavailableError
from latent_transforms.features.perceptual import PerceptualNetwork
from latent_transforms.inversion.cache import LatentCache
from latent_transforms.inversion.lookup import FAST_PROJECTOR, ON_MISSING, LatentLookup, MissingLatentError
from latent_transforms.networks.bundle import GanBundle
from latent_transforms.objectives.stats import DatasetStats
from latent_transforms.objectives.walk import (
    COMPILE_MODES,
    PRECISIONS,
    LatentWalk,
    check_latents,
    check_statistics,
    render_latents,
)
from latent_transforms.transforms.config import PRESETS, LatentAugmentConfig
from latent_transforms.transforms.gan_transform import GanTransform, insert_after
from latent_transforms.transforms.layout import keep_layout
from latent_transforms.transforms.sources import CacheSource, Shown, StatsSource, check_cache_matches

__all__ = [
    "COMPILE_MODES",
    "CONFIG_FORMAT",
    "CONFIG_KEYS",
    "CONFIG_VERSION",
    "FAST_PROJECTOR",
    "ON_MISSING",
    "PRECISIONS",
    "PRESETS",
    "LatentAugment",
    "LatentAugmentConfig",
    "MissingLatentError",
]

CONFIG_FORMAT = "LatentAugment"
CONFIG_VERSION = 1
#: Keys of :meth:`LatentAugment.config` that :meth:`LatentAugment.from_config` passes to the constructor:
#: the fields of :class:`LatentAugmentConfig`.
CONFIG_KEYS = tuple(LatentAugmentConfig.names())


def _callable_name(fn: Callable[..., Any]) -> str:
    return getattr(fn, "__qualname__", None) or type(fn).__name__


def _perceptual_name(spec: str | nn.Module | None) -> str | None:
    """How the config records a perceptual network: its name (a module of yours by its class name)."""
    if isinstance(spec, PerceptualNetwork):
        return spec.name
    if isinstance(spec, nn.Module):
        return type(spec).__name__
    return spec


class LatentAugment(GanTransform):
    """LatentAugment (Tronchin et al. 2023): a guided walk from each image's inverted latent ``w*``.

    Input and output: ``[C, R, R]`` or ``[B, C, R, R]`` images with the GAN bundle's channels (paired
    modalities in its order) and resolution, in the caller's range (``value_range``: ``"physical"`` through
    the bundle's intensity windows, ``"unit"`` ``[0, 1]``, ``"generator"`` ``[-1, 1]``; ``uint8`` 0-255);
    shape, dtype, device and memory layout are kept. Each sample is augmented with probability ``p`` (the
    paper's ``p_aug`` is ``1 - p``); the chosen ones are optimised together, one generator / discriminator /
    perceptual forward and backward per step for the whole batch. The loss is the sum of per-sample losses and
    the discriminator scores each sample alone (minibatch-std group of one, what ``D(x[None])`` gives), so a
    sample's result does not depend on the batch it is in. The output is ``G(w̃)`` with the generator's
    constant noise, clamped to ``[-1, 1]`` (the windows, the range real data have) on the way out;
    :meth:`augment` gives it unclamped. The walk itself is
    :class:`~latent_transforms.objectives.walk.LatentWalk` (:meth:`walk` gives the one of a device).

    Hyper-parameters default to ``preset`` (``"f1"``: the paper's F1-tuned set K = 9, η = 0.01,
    α_pix = 0.1, α_perc = 10, α_lat = 0.001, α_f = 0.01, p = 0.2; ``"mae"``: the MAE-tuned set α_pix = 3,
    α_perc = 1, α_lat = 0.1, α_f = 0.01, p = 0.3, K = 9, η = 0.01); explicit arguments override it. They are
    held as one frozen :class:`~latent_transforms.LatentAugmentConfig` (:attr:`hyperparameters`), and each
    is a read-only attribute (``t.steps``, ``t.alpha_pix``...). A term whose weight is 0 costs nothing: the
    discriminator is not run with ``alpha_f=0``, the perceptual network is neither built nor run with
    ``alpha_perc=0``, and with every weight 0 (and no task loss) no step is taken and the output is
    ``G(w*)``.

    Latent lookup: by :func:`~latent_transforms.image_key` of the normalised float32 image (so the same pixel
    values find the same latent whatever dtype they come in; ``uint8`` is 8-bit windowed), or by dataset keys
    when the parameters carry ``"keys"`` (the MONAI dictionary variants set them). W or W+ follows the cache
    (a ``[w_dim]`` latent is broadcast to every layer). Images without a latent are inverted on the fly
    (``on_missing="invert"``, with a one-time warning about the cost; stored in the cache when it is writable,
    else kept in memory) or refused (``on_missing="raise"``: :class:`MissingLatentError`). Put LatentAugment
    before any geometric transform in a pipeline.

    Args:
        gan: a :class:`~latent_transforms.GanBundle` or a :func:`~latent_transforms.load_gan` source
            string / path (loaded lazily, in the process that first calls the transform; a DataLoader
            worker started with ``spawn`` receives the string, not the model).
        cache: a :class:`~latent_transforms.LatentCache`, a cache folder (checked at once to hold a cache,
            else ``CacheNotFoundError``; opened read-only on first use) or ``None``. It must have been made
            with this GAN's generator (else ``CacheMismatchError``).
        stats: :class:`~latent_transforms.DatasetStats`, a statistics file, or ``None`` (then
            ``<cache folder>/stats.safetensors``, which ``latent-transforms invert`` writes). Needed when a
            diversity weight is above 0.
        preset: ``"f1"`` (default) or ``"mae"``.
        steps: ``K``, Adam steps (≥ 0).
        lr: ``η``, Adam's learning rate.
        alpha_f: weight of the fidelity term ``softplus(−D(G(w)))``.
        alpha_pix: weight of the pixel diversity term (subtracted).
        alpha_perc: weight of the perceptual diversity term (subtracted), on one patch per sample at the
            statistics' patch positions (which ones: ``patch_protocol``).
        alpha_lat: weight of the latent diversity term (subtracted).
        p: probability that a sample is augmented.
        perceptual: the perceptual network: ``None`` (the one the statistics were computed with,
            ``perceptual_network(stats.perceptual_name, bundle=gan)``), a name (``"efficientnet-lite0"``,
            ``"vgg16"``, ``"discriminator"``, ``"random"``) or an ``nn.Module`` returning feature maps;
            always checked against the statistics' fingerprint.
        patch_protocol: ``"same-position"`` (default: a new random patch position per sample and step,
            the synthetic patch against the real patches at that position) or ``"authors"`` (the authors'
            code: one position per sample and call, drawn inside the centre square of side ``R/√2`` and
            kept for the ``K`` steps, against the pool of every real image's patches at the centre-square
            positions). See "Where we differ from the authors' code" in the transforms guide.
        task_loss: optional ``images -> loss``, on the generated batch ``[B, C, R, R]`` in ``[-1, 1]``,
            per sample ``[B]`` (or a scalar, taken as the batch's total), added as
            ``alpha_task · task_loss`` to ``L`` during the walk (the task-aware variant).
        alpha_task: weight of ``task_loss``.
        differentiable: keep the graph of the output to the final latent ``w̃`` (``last_latents``, or
            ``augment(..., return_latents=True)``) so a downstream loss can steer it.
        on_missing: ``"invert"`` or ``"raise"`` for images without a cached latent.
        projector: options of the :class:`~latent_transforms.Projector` that inverts cache misses
            (default: 100 steps, the cache's space and perceptual network).
        precision: ``"fp32"`` or ``"bf16"`` (CUDA autocast for the networks; ``w`` and Adam stay fp32).
        compile_mode: ``None`` (default: eager) or a ``torch.compile`` mode (``"default"``,
            ``"reduce-overhead"``, which captures the step in CUDA graphs, ``"max-autotune"``, ...) for
            one step of the walk (render and loss, forward and backward); Adam stays eager. The first call
            per device and batch size compiles (minutes on a CPU); a step has no host synchronisation, so
            it compiles as one graph. The output matches eager to float rounding.
        value_range: what float inputs mean (see above).
        seed: seed of the transform's generator (patch positions and the per-sample draws).
        device: where the GAN runs (default: the input's device).

    Example:
        >>> import tempfile
        >>> from latent_transforms import DatasetStats, GanBundle, GanConfig, LatentCache, image_key
        >>> from latent_transforms.features.perceptual import perceptual_network
        >>> cfg = GanConfig(resolution=16, channel_base=256, channel_max=32, z_dim=16, w_dim=16)
        >>> bundle = GanBundle.random(cfg, seed=0)
        >>> z = torch.randn(4, 16, generator=torch.Generator().manual_seed(0))
        >>> w = bundle.generator.mapping(z, None)[:, 0]  # the real images' latents
        >>> real = bundle.generator.synthesis(w[:, None].expand(-1, 6, -1)).clamp(-1, 1)
        >>> folder = tempfile.mkdtemp()
        >>> cache = LatentCache(folder, fingerprint=bundle.fingerprint)
        >>> _ = cache.put_batch([image_key(x) for x in real], w); _ = cache.flush()
        >>> net = perceptual_network("random")
        >>> stats = DatasetStats.compute([(real, w)], perceptual=net, patch_size=8, progress=False)
        >>> t = LatentAugment(bundle, cache, stats, p=1.0, value_range="generator", seed=0)
        >>> out = t(real)
        >>> out.shape, out.dtype, bool((out != real).any())
        (torch.Size([4, 2, 16, 16]), torch.float32, True)
        >>> LatentAugment.preset("mae", bundle, cache, stats).alpha_pix
        3.0
        >>> t  # doctest: +ELLIPSIS +NORMALIZE_WHITESPACE
        LatentAugment(gan=GanBundle(resolution=16, modalities=['mri', 'ct']), cache='...',
        stats=DatasetStats(...), preset='f1', steps=9, lr=0.01, alpha_f=0.01, alpha_pix=0.1, alpha_perc=10.0,
        alpha_lat=0.001, p=1.0, perceptual=None, patch_protocol='same-position', task_loss=None,
        alpha_task=1.0, differentiable=False, on_missing='invert', projector=None, precision='fp32',
        compile_mode=None, value_range='generator', device=None, seed=0)
        >>> import shutil; shutil.rmtree(folder)
    """

    config_class = LatentAugmentConfig

    def __init__(
        self,
        gan: GanBundle | str | os.PathLike[str],
        cache: LatentCache | str | os.PathLike[str] | None = None,
        stats: DatasetStats | str | os.PathLike[str] | None = None,
        *,
        preset: str = "f1",
        steps: int | None = None,
        lr: float | None = None,
        alpha_f: float | None = None,
        alpha_pix: float | None = None,
        alpha_perc: float | None = None,
        alpha_lat: float | None = None,
        p: float | None = None,
        perceptual: str | nn.Module | None = None,
        patch_protocol: str = "same-position",
        task_loss: Callable[[torch.Tensor], torch.Tensor] | None = None,
        alpha_task: float = 1.0,
        differentiable: bool = False,
        on_missing: str = "invert",
        projector: Mapping[str, Any] | None = None,
        precision: str = "fp32",
        compile_mode: str | None = None,
        value_range: str = "physical",
        seed: int | None = None,
        device: torch.device | str | None = None,
    ) -> None:
        given = dict(locals())
        if preset not in PRESETS:
            raise ConfigError(f"preset must be one of {sorted(PRESETS)}, got {preset!r}.")
        if task_loss is not None and not callable(task_loss):
            raise ConfigError(f"task_loss must be a callable images -> loss, got {type(task_loss).__name__}.")
        if perceptual is not None and not isinstance(perceptual, (str, nn.Module)):
            raise ConfigError(
                f"perceptual must be None, a name ('efficientnet-lite0', 'vgg16', 'discriminator') or an "
                f"nn.Module, got {type(perceptual).__name__}."
            )
        if compile_mode not in COMPILE_MODES:
            raise ConfigError(f"compile_mode must be one of {COMPILE_MODES}, got {compile_mode!r}.")
        # Every hyper-parameter given (not None) overrides the preset's value.
        overrides = {name: given[name] for name in CONFIG_KEYS if given.get(name) is not None}
        overrides["perceptual"] = _perceptual_name(perceptual)
        super().__init__(gan, PRESETS[preset].replace(**overrides), seed=seed, device=device)
        self.compile_mode = compile_mode
        # Heavy or callable objects stay out of nn.Module's registry (empty state_dict, clean repr).
        object.__setattr__(self, "_cache", CacheSource(cache))
        object.__setattr__(self, "_stats", StatsSource(stats))
        object.__setattr__(self, "_perceptual_spec", perceptual)
        object.__setattr__(self, "_task_loss", task_loss)
        if isinstance(gan, GanBundle):  # nothing to load: check the combination now
            self._check_setup()

    # -- construction helpers ----------------------------------------------------------------------
    @classmethod
    def preset(
        cls,
        name: str,
        gan: GanBundle | str | os.PathLike[str],
        cache: LatentCache | str | os.PathLike[str] | None = None,
        stats: DatasetStats | str | os.PathLike[str] | None = None,
        **overrides: Any,
    ) -> LatentAugment:
        """A transform with the paper's ``"f1"`` or ``"mae"`` hyper-parameters; ``overrides`` win.

        Example:
            >>> from latent_transforms import GanBundle, GanConfig
            >>> cfg = GanConfig(resolution=16, channel_base=256, channel_max=32, z_dim=16, w_dim=16)
            >>> t = LatentAugment.preset("mae", GanBundle.random(cfg), alpha_pix=0, alpha_perc=0, alpha_lat=0)
            >>> t.p, t.alpha_f, t.alpha_pix
            (0.3, 0.01, 0.0)
        """
        return cls(gan, cache, stats, preset=name, **overrides)

    def config(self) -> dict[str, Any]:
        """The hyper-parameters as a JSON-able dict (what :meth:`from_config` reads).

        Holds ``transform``, ``version`` and every field of :class:`~latent_transforms.LatentAugmentConfig`
        (``preset``, ``steps``, ``lr``, ``alpha_f``, ``alpha_pix``, ``alpha_perc``, ``alpha_lat``, ``p``,
        ``perceptual`` (the name; a module of yours is recorded by its :class:`PerceptualNetwork` name and
        must be passed again), ``patch_protocol``, ``alpha_task``, ``differentiable``, ``on_missing``,
        ``projector``, ``precision`` and ``value_range``). Not the GAN, cache, statistics, task loss,
        ``compile_mode`` (a speed setting of this machine), device or seed.

        Example:
            >>> from latent_transforms import GanBundle, GanConfig
            >>> cfg = GanConfig(resolution=16, channel_base=256, channel_max=32, z_dim=16, w_dim=16)
            >>> bundle = GanBundle.random(cfg)
            >>> t = LatentAugment(bundle, alpha_pix=0, alpha_perc=0, alpha_lat=0, steps=3)
            >>> c = t.config(); c["steps"], c["alpha_f"], c["p"]
            (3, 0.01, 0.2)
            >>> LatentAugment.from_config(c, bundle).config() == c
            True
        """
        return {"transform": CONFIG_FORMAT, "version": CONFIG_VERSION, **self.hyperparameters.to_dict()}

    @classmethod
    def from_config(
        cls,
        config: Mapping[str, Any] | str | os.PathLike[str],
        gan: GanBundle | str | os.PathLike[str],
        cache: LatentCache | str | os.PathLike[str] | None = None,
        stats: DatasetStats | str | os.PathLike[str] | None = None,
        **overrides: Any,
    ) -> LatentAugment:
        """A transform from :meth:`config` output (a dict, a :class:`~latent_transforms.LatentAugmentConfig`,
        or the path of a JSON file holding one); ``overrides`` (any constructor argument) win.

        Example:
            >>> from latent_transforms import GanBundle, GanConfig
            >>> cfg = GanConfig(resolution=16, channel_base=256, channel_max=32, z_dim=16, w_dim=16)
            >>> t = LatentAugment.from_config({"steps": 5, "alpha_f": 0.5, "alpha_pix": 0, "alpha_perc": 0,
            ...                                "alpha_lat": 0}, GanBundle.random(cfg), p=1.0)
            >>> t.steps, t.alpha_f, t.p
            (5, 0.5, 1.0)
        """
        if isinstance(config, (str, os.PathLike)):
            path = Path(config)
            if not path.is_file():
                raise ConfigError(
                    f"expected a LatentAugment config JSON file at {path}, but there is none. Fix: write one "
                    "with json.dump(transform.config(), fh) (or pass the dict itself)."
                )
            try:
                config = json.loads(path.read_text(encoding="utf-8"))
            except ValueError as exc:
                raise ConfigError(f"{path} is not valid JSON ({exc}).") from exc
        if not isinstance(config, Mapping):
            raise ConfigError(f"expected a config mapping, got {type(config).__name__}.")
        kind = config.get("transform", CONFIG_FORMAT)
        if kind != CONFIG_FORMAT:
            raise ConfigError(f"this config is for {kind!r}, not {CONFIG_FORMAT!r}.")
        unknown = sorted(set(config) - set(CONFIG_KEYS) - {"transform", "version"})
        if unknown:
            raise ConfigError(
                f"unknown LatentAugment config keys {unknown}; expected some of {list(CONFIG_KEYS)}. Fix: "
                "write the config with LatentAugment.config()."
            )
        kwargs = {k: config[k] for k in CONFIG_KEYS if k in config}
        kwargs.update(overrides)
        return cls(gan, cache, stats, **kwargs)

    # -- lazily resolved parts ---------------------------------------------------------------------
    def new_runtime(self) -> dict[str, Any]:
        """The base runtime plus the latent lookup (with its in-memory store), the setup check flag and
        the last call's latents."""
        config = self._hyperparameters
        lookup = LatentLookup(
            on_missing=config.on_missing,
            projector=config.projector,
            precision=config.precision,
            gan_name=self._gan.source,
        )
        return {**super().new_runtime(), "lookup": lookup, "checked": False, "last_latents": None}

    @property
    def preset_name(self) -> str:
        """The preset the hyper-parameters started from."""
        return self._hyperparameters.preset

    @property
    def projector_options(self) -> dict[str, Any] | None:
        """The options of the projector for cache misses (``None``: the defaults)."""
        options = self._hyperparameters.projector
        return dict(options) if options is not None else None

    @property
    def cache(self) -> LatentCache | None:
        """The latent cache (opened on first access when given as a folder), or ``None``."""
        return self._cache.get()

    @property
    def stats(self) -> DatasetStats | None:
        """The dataset statistics (given, loaded, or found in the cache folder), or ``None``."""
        return self._stats.get(self._cache.folder)

    @property
    def task_loss(self) -> Callable[[torch.Tensor], torch.Tensor] | None:
        """The task loss (``None``: none)."""
        return self._task_loss

    @property
    def lookup(self) -> LatentLookup:
        """The :class:`~latent_transforms.inversion.lookup.LatentLookup` that finds ``w*``."""
        return self._runtime["lookup"]

    @property
    def last_latents(self) -> torch.Tensor | None:
        """The final latents ``w̃`` of the samples the last call augmented (``[n, w_dim]`` or
        ``[n, num_ws, w_dim]``; with ``differentiable=True`` the leaf the output's graph reaches)."""
        return self._runtime["last_latents"]

    def accepts_dataset_keys(self, keys: Sequence[str]) -> bool:
        """Whether to look the latents up by these dataset keys: when the cache holds at least one of
        them (a cache keyed by content, ``latent-transforms invert``'s default, is searched by content)."""
        cache = self.cache
        return cache is None or any(k in cache for k in keys)

    def _check_setup(self) -> None:
        """Check once that the GAN, cache and statistics fit together and the active terms can run."""
        if self._runtime["checked"]:
            return
        bundle = self._gan.bundle()
        cache = self._cache.get()
        if cache is not None:
            check_cache_matches(cache, bundle)
        if self.alpha_f > 0 and bundle.discriminator is None:
            raise FeatureNetworkUnavailableError(
                f"LatentAugment's fidelity term (alpha_f={self.alpha_f}) needs the GAN's discriminator, "
                f"but {bundle.source or 'this bundle'} has none (no discriminator.safetensors). Fix: use a "
                "bundle saved with its discriminator, or pass alpha_f=0."
            )
        if self.alpha_pix > 0 or self.alpha_perc > 0 or self.alpha_lat > 0:
            check_statistics(bundle, self.stats, self.hyperparameters, self._cache.folder)
        self._runtime["checked"] = True

    def walk(self, device: torch.device | str | None = None) -> LatentWalk:
        """The :class:`~latent_transforms.objectives.walk.LatentWalk` on ``device`` (default: the CPU),
        with copies of the bundle and statistics there; made once per device (with ``compile_mode``, its
        compiled step too).

        Example:
            >>> from latent_transforms import GanBundle, GanConfig
            >>> cfg = GanConfig(resolution=16, channel_base=256, channel_max=32, z_dim=16, w_dim=16)
            >>> t = LatentAugment(GanBundle.random(cfg), alpha_pix=0, alpha_perc=0, alpha_lat=0)
            >>> walk = t.walk("cpu")
            >>> walk is t.walk(torch.device("cpu")), walk.params.steps
            (True, 9)
        """
        with self._runtime["lock"]:
            self._check_setup()
            return self.per_device(device, self._make_walk)

    def _make_walk(self, device: torch.device) -> LatentWalk:
        stats = self.stats
        if stats is not None and stats.device != device:
            stats = copy.copy(stats).to(device)  # a shallow copy: the caller's object stays put
        return LatentWalk(
            self._gan.bundle(device),
            stats,
            self.hyperparameters,
            perceptual=self._perceptual_spec,
            task_loss=self._task_loss,
            compile_mode=self.compile_mode,
        )

    # -- rendering and the loss ----------------------------------------------------------------------
    def render(self, w: torch.Tensor) -> torch.Tensor:
        """``G(w)`` with the generator's constant noise, ``[B, C, R, R]`` float32 (nominally ``[-1, 1]``,
        unclamped, contiguous), on ``w``'s device; ``w`` is ``[B, w_dim]`` (W, broadcast to every layer) or
        ``[B, num_ws, w_dim]`` (W+). Differentiable with respect to ``w``.

        Example:
            >>> from latent_transforms import GanBundle, GanConfig
            >>> cfg = GanConfig(resolution=16, channel_base=256, channel_max=32, z_dim=16, w_dim=16)
            >>> t = LatentAugment(GanBundle.random(cfg), alpha_pix=0, alpha_perc=0, alpha_lat=0)
            >>> t.render(torch.zeros(3, 16)).shape
            torch.Size([3, 2, 16, 16])
        """
        return render_latents(self._gan.bundle(w.device), w, self.precision).contiguous()

    def loss_terms(
        self,
        w: torch.Tensor,
        images: torch.Tensor,
        positions: torch.Tensor | None = None,
        *,
        c: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """The terms of ``L`` for latents ``w`` and their images ``images = G(w)``, per sample: see
        :meth:`LatentWalk.terms <latent_transforms.objectives.walk.LatentWalk.terms>`.

        Example:
            >>> from latent_transforms import GanBundle, GanConfig
            >>> cfg = GanConfig(resolution=16, channel_base=256, channel_max=32, z_dim=16, w_dim=16)
            >>> t = LatentAugment(GanBundle.random(cfg), alpha_pix=0, alpha_perc=0, alpha_lat=0)
            >>> w = torch.zeros(2, 16)
            >>> terms = t.loss_terms(w, t.render(w))
            >>> sorted(terms), terms["total"].shape
            (['fidelity', 'total'], torch.Size([2]))
        """
        return self.walk(images.device).terms(w, images, positions, c)

    # -- the walk ------------------------------------------------------------------------------------
    def _draw_positions(self, batch: int, generator: torch.Generator) -> torch.Tensor | None:
        if not (self.alpha_perc > 0 and self.steps > 0):
            return None
        stats = self.stats
        if stats is None:
            self._check_setup()  # raises, saying what to run
            raise AssertionError("unreachable")  # pragma: no cover
        if self.patch_protocol == "authors":  # one centre-square position per walk, kept for the K steps
            centre = stats.centre_positions()
            chosen = centre[torch.randint(len(centre), (batch,), generator=generator)]
            return chosen[:, None].expand(batch, self.steps).contiguous()
        return torch.randint(stats.num_positions, (batch, self.steps), generator=generator)

    def draw_params(self, batch: int, generator: torch.Generator) -> dict[str, Any]:
        """Per-sample patch positions ``"positions"`` ``[B, K]`` (long) for the perceptual term, one per
        step, drawn from ``generator`` (none when ``alpha_perc = 0``): uniform over the statistics' grid
        (``patch_protocol="same-position"``), or one centre-square position per sample repeated for the
        ``K`` steps (``"authors"``)."""
        positions = self._draw_positions(batch, generator)
        return {} if positions is None else {"positions": positions}

    def augment(
        self,
        images: torch.Tensor,
        *,
        w_star: torch.Tensor | None = None,
        keys: Sequence[str] | None = None,
        generator: torch.Generator | None = None,
        return_latents: bool = False,
        c: torch.Tensor | None = None,
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Augment every sample of a batch (no ``p``, no range conversion): the batch core of the transform.

        Args:
            images: ``[B, C, R, R]`` float images in ``[-1, 1]`` on the device to run on.
            w_star: their latents ``[B, w_dim]`` / ``[B, num_ws, w_dim]`` (default: looked up in the cache).
            keys: ``B`` dataset keys for the cache lookup (default: :func:`image_key` of each image).
            generator: CPU ``torch.Generator`` for the patch positions (default: the transform's).
            return_latents: also return ``w̃``.
            c: ``[B, c_dim]`` labels for a conditional discriminator.

        Returns:
            ``G(w̃)`` ``[B, C, R, R]`` float32 in ``images``' memory layout, unclamped, rendered with
            constant noise from the final latents (with ``differentiable=True`` its graph reaches ``w̃``),
            or ``(images, w̃)``.

        Example:
            >>> from latent_transforms import GanBundle, GanConfig
            >>> cfg = GanConfig(resolution=16, channel_base=256, channel_max=32, z_dim=16, w_dim=16)
            >>> t = LatentAugment(GanBundle.random(cfg), alpha_pix=0, alpha_perc=0, alpha_lat=0, seed=0)
            >>> w_star = torch.randn(2, 16, generator=torch.Generator().manual_seed(0))
            >>> out, w = t.augment(torch.zeros(2, 2, 16, 16), w_star=w_star, return_latents=True)
            >>> torch.equal(out, t.render(w)), bool((w != w_star).any())
            (True, True)
        """
        R = self.expected_resolution()
        check_image_batch(
            images,
            what="float images for augment",
            channels=self.expected_channels(),
            resolution=R,
            context=f"the GAN's modalities {self.modality_names()} as channels in that order, at {R} px; "
            "the transform itself converts ranges and dtypes",
        )
        positions = self._draw_positions(
            images.shape[0], generator if generator is not None else self.generator
        )
        out, w = self._augment(images, w_star, keys, positions, c)
        out = keep_layout(out, images)
        self._runtime["last_latents"] = w
        return (out, w) if return_latents else out

    def _augment(
        self,
        images: torch.Tensor,
        w_star: torch.Tensor | None,
        keys: Sequence[str] | None,
        positions: torch.Tensor | None,
        c: torch.Tensor | None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        walk = self.walk(images.device)
        if w_star is None:
            w_star = self.lookup.find(images, walk.bundle, self._cache.get(), keys)
        w_star = w_star.to(device=images.device, dtype=torch.float32)
        check_latents(walk.bundle, w_star, images.shape[0])
        if c is not None:
            c = c.to(images.device).float()
        return walk.run(w_star, positions, c, differentiable=self.differentiable)

    # -- RandomTransform protocol ------------------------------------------------------------------------
    def apply_batch(self, x: torch.Tensor, params: dict[str, Any], kind: str) -> torch.Tensor:
        """Augment the chosen samples ``x`` ``[n, C, R, R]`` (in ``[-1, 1]``) with their ``params``
        (``"positions"``; optional ``"keys"`` and ``"c"``); returns ``G(w̃)`` clamped to ``[-1, 1]``."""
        out, w = self._augment(x, None, params.get("keys"), params.get("positions"), params.get("c"))
        self._runtime["last_latents"] = w
        return out.clamp(-1.0, 1.0)

    def repr_sources(self) -> dict[str, Any]:
        """The cache folder and the statistics (file or summary)."""
        return {"cache": self._cache.describe(), "stats": self._stats.describe()}

    def repr_value(self, name: str, value: Any) -> Any:
        """A perceptual module of yours by its class name."""
        spec = self._perceptual_spec
        if name == "perceptual" and isinstance(spec, nn.Module):
            return Shown(type(spec).__name__)
        return value

    def repr_params(self) -> dict[str, Any]:
        """Every constructor parameter; the GAN as its source string or a one-line summary."""
        task = None if self._task_loss is None else Shown(_callable_name(self._task_loss))
        params = insert_after(super().repr_params(), "patch_protocol", {"task_loss": task})
        return insert_after(params, "precision", {"compile_mode": self.compile_mode})
