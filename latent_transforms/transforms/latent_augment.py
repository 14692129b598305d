"""``LatentAugment``: augment a real image by a short guided walk in the GAN's latent space (DESIGN §4).

For a real image ``x`` with inverted latent ``w*`` (from the :class:`~latent_transforms.LatentCache`),
``w⁰ = w*`` and ``K`` Adam steps (learning rate ``η``, ``β = (0.9, 0.999)``) minimise (seed 000, eqs. 3-10)::

    L(w) = α_f·softplus(−D(G(w))) − α_pix·L_pix(G(w)) − α_perc·L_perc(G(w)) − α_lat·L_lat(w)

with the diversity terms the mean distances to the whole real training set, ``L_pix = mean_j MSE(G(w),
x_j)``, ``L_perc = mean_j Σ_l mean((φ_l(P(G(w))) − φ_l(P(x_j)))²)`` on patches ``P`` and ``L_lat = mean_j
MSE(w, w*_j)``. They are evaluated exactly in closed form from the dataset means that
:class:`~latent_transforms.DatasetStats` holds (``mean_j |a − x_j|² = |a − x̄|² + const``), so a step costs
one generator, one discriminator and one perceptual pass for the whole batch, whatever the size of the
training set. The output is ``G(w̃)``, the image of the final latent, rendered with the generator's
constant noise exactly as during the walk.
"""

from __future__ import annotations

import contextlib
import copy
import json
import math
import os
import threading
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from latent_transforms.data.windows import IntensityWindow
from latent_transforms.errors import ConfigError, FeatureNetworkUnavailableError
from latent_transforms.features.perceptual import (
    DEFAULT_PERCEPTUAL_NETWORK,
    PerceptualNetwork,
    perceptual_network,
)
from latent_transforms.inversion.cache import LatentCache, image_key
from latent_transforms.inversion.projector import Projector
from latent_transforms.networks.bundle import GanBundle
from latent_transforms.objectives.stats import DatasetStats
from latent_transforms.transforms.base import RandomTransform
from latent_transforms.transforms.sources import (
    CacheSource,
    GanSource,
    Shown,
    StatsSource,
    canonical_device,
    check_cache_matches,
)

__all__ = ["PRESETS", "LatentAugment", "MissingLatentError"]

#: The paper's two tuned hyper-parameter sets (seed 000, Table II and §V-D). ``p`` is the probability of
#: augmenting a sample, ``1 - p_aug`` of the paper.
PRESETS: dict[str, dict[str, float | int]] = {
    "f1": {
        "steps": 9,
        "lr": 0.01,
        "alpha_pix": 0.1,
        "alpha_perc": 10.0,
        "alpha_lat": 0.001,
        "alpha_f": 0.01,
        "p": 0.2,
    },
    "mae": {
        "steps": 9,
        "lr": 0.01,
        "alpha_pix": 3.0,
        "alpha_perc": 1.0,
        "alpha_lat": 0.1,
        "alpha_f": 0.01,
        "p": 0.3,
    },
}
PRECISIONS = ("fp32", "bf16")
#: ``compile_mode`` values: ``None`` (eager) or a ``torch.compile`` mode.
COMPILE_MODES = (None, "default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")
ON_MISSING = ("invert", "raise")
CONFIG_FORMAT = "LatentAugment"
CONFIG_VERSION = 1
#: Keys of :meth:`LatentAugment.config` that :meth:`LatentAugment.from_config` passes to the constructor.
CONFIG_KEYS = (
    "preset",
    "steps",
    "lr",
    "alpha_f",
    "alpha_pix",
    "alpha_perc",
    "alpha_lat",
    "p",
    "perceptual",
    "alpha_task",
    "differentiable",
    "on_missing",
    "projector",
    "precision",
    "value_range",
)
#: Projector options used for images missing from the cache (``projector=`` overrides any of them).
FAST_PROJECTOR: dict[str, Any] = {"steps": 100, "progress": False}
# Guards the temporary minibatch-std group size of a discriminator shared between threads.
_MBSTD_LOCK = threading.RLock()


class MissingLatentError(ConfigError, KeyError):
    """Images have no inverted latent in the cache and ``on_missing="raise"`` (a ``KeyError`` too).

    Example:
        >>> isinstance(MissingLatentError("2 of 4 missing"), KeyError), str(MissingLatentError("x"))
        (True, 'x')
    """

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


@contextlib.contextmanager
def _single_sample_mbstd(discriminator: nn.Module) -> Iterator[None]:
    """Score every sample on its own: minibatch-std group size 1 while the discriminator runs.

    ``D(x[None])`` has a group of one whatever the default, so this makes ``D(batch)[i] == D(x_i[None])``
    and the walk of a sample independent of the rest of its batch.
    """
    epilogue = getattr(discriminator, "b4", None)
    mbstd = getattr(epilogue, "mbstd", None)
    if mbstd is None:
        yield
        return
    with _MBSTD_LOCK:
        old = mbstd.group_size
        mbstd.group_size = 1
        try:
            yield
        finally:
            mbstd.group_size = old


@dataclass
class _OnDevice:
    """What one device needs: the bundle, the statistics and (built on first use) the perceptual network
    and the projector for cache misses."""

    bundle: GanBundle
    stats: DatasetStats | None
    perceptual: PerceptualNetwork | None = None
    projector: Projector | None = None
    step: Callable[..., torch.Tensor] | None = None  # the compiled step (``compile_mode``)


def _check_weight(name: str, value: Any) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or value < 0
    ):
        raise ConfigError(f"{name} must be a finite number >= 0, got {value!r}.")
    return float(value)


def _callable_name(fn: Callable[..., Any]) -> str:
    return getattr(fn, "__qualname__", None) or type(fn).__name__


class LatentAugment(RandomTransform):
    """LatentAugment (seed 000 §III-C): a guided walk from each image's inverted latent ``w*``.

    Input and output: ``[C, R, R]`` or ``[B, C, R, R]`` images with the GAN bundle's channels (paired
    modalities in its order) and resolution, in the caller's range (``value_range``: ``"physical"``
    through the bundle's intensity windows, ``"unit"`` ``[0, 1]``, ``"generator"`` ``[-1, 1]``; ``uint8``
    0-255); shape, dtype and device are kept. Each sample is augmented with probability ``p`` (the paper's
    ``p_aug`` is ``1 - p``); the chosen ones are optimised together, one generator / discriminator /
    perceptual forward and backward per step for the whole batch. The loss is the sum of per-sample
    losses and the discriminator scores each sample alone (minibatch-std group of one, what ``D(x[None])``
    gives), so a sample's result does not depend on the batch it is in. The output is ``G(w̃)`` with the
    generator's constant noise, clamped to ``[-1, 1]`` (the windows, the range real data have) on the way
    out; :meth:`augment` gives it unclamped.

    Hyper-parameters default to ``preset`` (``"f1"``: the paper's F1-tuned set K = 9, η = 0.01,
    α_pix = 0.1, α_perc = 10, α_lat = 0.001, α_f = 0.01, p = 0.2; ``"mae"``: the MAE-tuned set α_pix = 3,
    α_perc = 1, α_lat = 0.1, α_f = 0.01, p = 0.3, K = 9, η = 0.01); explicit arguments override it. A term
    whose weight is 0 costs nothing: the discriminator is not run with ``alpha_f=0``, the perceptual network
    is neither built nor run with ``alpha_perc=0``, and with every weight 0 (and no task loss) no step is
    taken and the output is ``G(w*)``.

    Latent lookup (DESIGN §5): by :func:`~latent_transforms.image_key` of the normalised image, or by
    dataset keys when the parameters carry ``"keys"`` (the MONAI dictionary variants set them). W or W+
    follows the cache (a ``[w_dim]`` latent is broadcast to every layer). Images without a latent are
    inverted on the fly (``on_missing="invert"``, with a one-time warning about the cost; stored in the
    cache when it is writable, else kept in memory) or refused (``on_missing="raise"``:
    :class:`MissingLatentError`).

    Args:
        gan: a :class:`~latent_transforms.GanBundle` or a :func:`~latent_transforms.load_gan` source
            string / path (loaded lazily, in the process that first calls the transform; a DataLoader
            worker started with ``spawn`` receives the string, not the model).
        cache: a :class:`~latent_transforms.LatentCache`, a cache folder (opened read-only on first use) or
            ``None``. It must have been made with this GAN's generator (else ``CacheMismatchError``).
        stats: :class:`~latent_transforms.DatasetStats`, a statistics file, or ``None`` (then
            ``<cache folder>/stats.safetensors``, which ``latent-transforms invert`` writes). Needed when a
            diversity weight is above 0.
        preset: ``"f1"`` (default) or ``"mae"``.
        steps: ``K``, Adam steps (≥ 0).
        lr: ``η``, Adam's learning rate.
        alpha_f: weight of the fidelity term ``softplus(−D(G(w)))``.
        alpha_pix: weight of the pixel diversity term (subtracted).
        alpha_perc: weight of the perceptual diversity term (subtracted), on one random patch per sample
            and step at the statistics' patch positions.
        alpha_lat: weight of the latent diversity term (subtracted).
        p: probability that a sample is augmented.
        perceptual: the perceptual network: ``None`` (the one the statistics were computed with,
            ``perceptual_network(stats.perceptual_name, bundle=gan)``), a name (``"efficientnet-lite0"``,
            ``"vgg16"``, ``"discriminator"``, ``"random"``) or an ``nn.Module`` returning feature maps;
            always checked against the statistics' fingerprint.
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
        alpha_lat=0.001, p=1.0, perceptual=None, task_loss=None, alpha_task=1.0, differentiable=False,
        on_missing='invert', projector=None, precision='fp32', compile_mode=None, value_range='generator',
        device=None, seed=0)
        >>> import shutil; shutil.rmtree(folder)
    """

    needs_generator_range: ClassVar[bool] = True

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
        if preset not in PRESETS:
            raise ConfigError(f"preset must be one of {sorted(PRESETS)}, got {preset!r}.")
        base = PRESETS[preset]
        p_value = base["p"] if p is None else p
        super().__init__(p=p_value, seed=seed, value_range=value_range, device=device)
        self.preset_name = preset
        steps_value = base["steps"] if steps is None else steps
        if isinstance(steps_value, float) and steps_value.is_integer():  # e.g. from a JSON search space
            steps_value = int(steps_value)
        if isinstance(steps_value, bool) or not isinstance(steps_value, int) or steps_value < 0:
            raise ConfigError(f"steps must be an integer >= 0, got {steps_value!r}.")
        self.steps = int(steps_value)
        lr_value = base["lr"] if lr is None else lr
        if _check_weight("lr", lr_value) <= 0:
            raise ConfigError(f"lr must be > 0, got {lr_value!r}.")
        self.lr = float(lr_value)

        def weight(name: str, value: float | None) -> float:
            return _check_weight(name, base[name] if value is None else value)

        self.alpha_f = weight("alpha_f", alpha_f)
        self.alpha_pix = weight("alpha_pix", alpha_pix)
        self.alpha_perc = weight("alpha_perc", alpha_perc)
        self.alpha_lat = weight("alpha_lat", alpha_lat)
        self.alpha_task = _check_weight("alpha_task", alpha_task)
        if task_loss is not None and not callable(task_loss):
            raise ConfigError(f"task_loss must be a callable images -> loss, got {type(task_loss).__name__}.")
        if perceptual is not None and not isinstance(perceptual, (str, nn.Module)):
            raise ConfigError(
                f"perceptual must be None, a name ('efficientnet-lite0', 'vgg16', 'discriminator') or an "
                f"nn.Module, got {type(perceptual).__name__}."
            )
        if on_missing not in ON_MISSING:
            raise ConfigError(f"on_missing must be one of {ON_MISSING}, got {on_missing!r}.")
        if precision not in PRECISIONS:
            raise ConfigError(f"precision must be one of {PRECISIONS}, got {precision!r}.")
        if compile_mode not in COMPILE_MODES:
            raise ConfigError(f"compile_mode must be one of {COMPILE_MODES}, got {compile_mode!r}.")
        if projector is not None and not isinstance(projector, Mapping):
            raise ConfigError(
                f"projector must be a mapping of Projector options (e.g. {{'steps': 200}}), got "
                f"{type(projector).__name__}."
            )
        self.differentiable = bool(differentiable)
        self.on_missing = on_missing
        self.projector_options: dict[str, Any] | None = dict(projector) if projector is not None else None
        self.precision = precision
        self.compile_mode = compile_mode
        # Heavy or callable objects stay out of nn.Module's registry (empty state_dict, clean repr).
        object.__setattr__(self, "_perceptual_spec", perceptual)
        object.__setattr__(self, "_task_loss", task_loss)
        object.__setattr__(self, "_gan", GanSource(gan))
        object.__setattr__(self, "_cache", CacheSource(cache))
        object.__setattr__(self, "_stats", StatsSource(stats))
        self._reset_runtime()
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

        Holds ``transform``, ``version``, ``preset``, ``steps``, ``lr``, ``alpha_f``, ``alpha_pix``,
        ``alpha_perc``, ``alpha_lat``, ``p``, ``perceptual`` (the name; a module of yours is recorded by
        its :class:`PerceptualNetwork` name and must be passed again), ``alpha_task``, ``differentiable``,
        ``on_missing``, ``projector``, ``precision`` and ``value_range``. Not the GAN, cache, statistics,
        task loss, ``compile_mode`` (a speed setting of this machine), device or seed.

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
        spec = self._perceptual_spec
        if isinstance(spec, PerceptualNetwork):
            perceptual: str | None = spec.name
        elif isinstance(spec, nn.Module):
            perceptual = type(spec).__name__
        else:
            perceptual = spec
        return {
            "transform": CONFIG_FORMAT,
            "version": CONFIG_VERSION,
            "preset": self.preset_name,
            "steps": self.steps,
            "lr": self.lr,
            "alpha_f": self.alpha_f,
            "alpha_pix": self.alpha_pix,
            "alpha_perc": self.alpha_perc,
            "alpha_lat": self.alpha_lat,
            "p": self.p,
            "perceptual": perceptual,
            "alpha_task": self.alpha_task,
            "differentiable": self.differentiable,
            "on_missing": self.on_missing,
            "projector": json.loads(json.dumps(self.projector_options, default=str))
            if self.projector_options is not None
            else None,
            "precision": self.precision,
            "value_range": self.value_range,
        }

    @classmethod
    def from_config(
        cls,
        config: Mapping[str, Any] | str | os.PathLike[str],
        gan: GanBundle | str | os.PathLike[str],
        cache: LatentCache | str | os.PathLike[str] | None = None,
        stats: DatasetStats | str | os.PathLike[str] | None = None,
        **overrides: Any,
    ) -> LatentAugment:
        """A transform from :meth:`config` output (a dict, or the path of a JSON file holding one);
        ``overrides`` (any constructor argument) win.

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

    # -- lazily resolved parts -----------------------------------------------------------------------
    def _reset_runtime(self) -> None:
        object.__setattr__(
            self,
            "_runtime",
            {
                "devices": {},
                "memory": {},
                "warned": False,
                "checked": False,
                "last_latents": None,
                "lock": threading.RLock(),
            },
        )

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        state["_runtime"] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        self._reset_runtime()

    @property
    def bundle(self) -> GanBundle:
        """The GAN bundle (loaded on first access when given as a source string)."""
        return self._gan.bundle()

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
    def last_latents(self) -> torch.Tensor | None:
        """The final latents ``w̃`` of the samples the last call augmented (``[n, w_dim]`` or
        ``[n, num_ws, w_dim]``; with ``differentiable=True`` the leaf the output's graph reaches)."""
        return self._runtime["last_latents"]

    def _diversity_active(self) -> bool:
        return self.alpha_pix > 0 or self.alpha_perc > 0 or self.alpha_lat > 0

    def _walk_active(self) -> bool:
        task = self._task_loss is not None and self.alpha_task > 0
        return self.steps > 0 and (self.alpha_f > 0 or self._diversity_active() or task)

    def _perc_active(self) -> bool:
        return self.alpha_perc > 0 and self.steps > 0

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
        stats = self.stats
        if self._diversity_active():
            if stats is None:
                where = self._cache.folder
                raise ConfigError(
                    "LatentAugment's diversity terms (alpha_pix="
                    f"{self.alpha_pix}, alpha_perc={self.alpha_perc}, alpha_lat={self.alpha_lat}) need the "
                    "real training set's statistics, but none were found ("
                    + (f"no stats= given and no stats.safetensors in {where}" if where else "no stats= given")
                    + "). Fix: run `latent-transforms invert --gan GAN --data DATA --cache CACHE`, which "
                    "writes CACHE/stats.safetensors, or compute them with DatasetStats.compute(...) (and "
                    ".save(...)) and pass stats=...; or set alpha_pix=alpha_perc=alpha_lat=0."
                )
            res, ch = bundle.resolution, bundle.config.img_channels
            if (stats.resolution, stats.channels) != (res, ch):
                raise ConfigError(
                    f"the dataset statistics are for {stats.channels}-channel {stats.resolution} px images, "
                    f"the GAN makes {ch}-channel {res} px images. Fix: compute the statistics on this GAN's "
                    "training images."
                )
            needs = [
                (self.alpha_pix > 0 and stats.image_mean is None, "alpha_pix", "image statistics"),
                (self.alpha_lat > 0 and stats.w_mean is None, "alpha_lat", "latent statistics"),
                (
                    self.alpha_perc > 0 and stats.patch_means is None,
                    "alpha_perc",
                    "perceptual patch statistics",
                ),
            ]
            for missing, name, what in needs:
                if missing:
                    raise ConfigError(
                        f"{name}={getattr(self, name)} needs {what}, which these DatasetStats lack "
                        f"({stats!r}). Fix: recompute them with DatasetStats.compute on the images (and "
                        f"latents, with a perceptual network), or set {name}=0."
                    )
            if (
                self.alpha_lat > 0
                and stats.w_mean is not None
                and stats.w_mean.shape[-1] != bundle.config.w_dim
            ):
                raise ConfigError(
                    f"the latent statistics have w_dim {stats.w_mean.shape[-1]}, the GAN "
                    f"{bundle.config.w_dim}. Fix: compute the statistics with this GAN's inverted latents."
                )
        self._runtime["checked"] = True

    def _on(self, device: torch.device) -> _OnDevice:
        """The per-device objects (bundle and statistics copies), made on first use."""
        dev = canonical_device(device)
        with self._runtime["lock"]:
            self._check_setup()
            found = self._runtime["devices"].get(str(dev))
            if found is None:
                stats = self.stats
                if stats is not None and stats.device != dev:
                    stats = copy.copy(stats).to(dev)  # a shallow copy: the caller's object stays put
                found = _OnDevice(self._gan.bundle(dev), stats)
                self._runtime["devices"][str(dev)] = found
            return found

    def _perceptual_on(self, on: _OnDevice) -> PerceptualNetwork:
        if on.perceptual is not None:
            return on.perceptual
        stats = on.stats
        assert stats is not None
        spec = self._perceptual_spec
        dev = on.bundle.device
        if spec is None:
            name = stats.perceptual_name
            if name is None:
                raise ConfigError(
                    "alpha_perc > 0 needs the statistics' perceptual network, but these DatasetStats were "
                    "computed without one. Fix: recompute them with a perceptual network, or alpha_perc=0."
                )
            try:
                net = perceptual_network(name, bundle=on.bundle, device=dev)
            except ConfigError as exc:
                raise ConfigError(
                    f"the dataset statistics were computed with the perceptual network {name!r}, which "
                    f"cannot be rebuilt by name ({exc}). Fix: pass perceptual=<that network>."
                ) from exc
        elif isinstance(spec, str):
            net = perceptual_network(spec, bundle=on.bundle, device=dev)
        else:
            module = spec
            owner = next(iter(module.parameters()), None)
            if owner is not None and canonical_device(owner.device) != canonical_device(dev):
                module = copy.deepcopy(module)
            net = perceptual_network(module, device=dev)
        stats.check_perceptual(net)
        on.perceptual = net
        return net

    # -- rendering and the loss ----------------------------------------------------------------------
    def _autocast(self, device: torch.device) -> contextlib.AbstractContextManager[Any]:
        enabled = self.precision == "bf16" and device.type == "cuda"
        return torch.autocast(device.type, dtype=torch.bfloat16, enabled=enabled)

    def render(self, w: torch.Tensor) -> torch.Tensor:
        """``G(w)`` with the generator's constant noise, ``[B, C, R, R]`` float32 (nominally ``[-1, 1]``,
        unclamped), on ``w``'s device; ``w`` is ``[B, w_dim]`` (W, broadcast to every layer) or
        ``[B, num_ws, w_dim]`` (W+). Differentiable with respect to ``w``.

        Example:
            >>> from latent_transforms import GanBundle, GanConfig
            >>> cfg = GanConfig(resolution=16, channel_base=256, channel_max=32, z_dim=16, w_dim=16)
            >>> t = LatentAugment(GanBundle.random(cfg), alpha_pix=0, alpha_perc=0, alpha_lat=0)
            >>> t.render(torch.zeros(3, 16)).shape
            torch.Size([3, 2, 16, 16])
        """
        bundle = self._gan.bundle(w.device)
        return self._render(bundle, w)

    def _render(self, bundle: GanBundle, w: torch.Tensor) -> torch.Tensor:
        G = bundle.generator
        if w.ndim == 2:
            ws = w.unsqueeze(1).expand(-1, G.num_ws, -1)
        elif w.ndim == 3:
            ws = w
        else:
            raise ConfigError(
                f"expected latents [B, {G.w_dim}] (W) or [B, {G.num_ws}, {G.w_dim}] (W+), got "
                f"{tuple(w.shape)}."
            )
        with self._autocast(w.device):
            return G.synthesis(ws, noise_mode="const").float()

    def loss_terms(
        self,
        w: torch.Tensor,
        images: torch.Tensor,
        positions: torch.Tensor | None = None,
        *,
        c: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """The terms of ``L`` for latents ``w`` and their images ``images = G(w)``, per sample.

        Args:
            w: ``[B, w_dim]`` or ``[B, num_ws, w_dim]``.
            images: ``[B, C, R, R]`` (the generated images, ``[-1, 1]``).
            positions: ``[B]`` long, each sample's patch position (index into ``stats.patch_positions``);
                needed when ``alpha_perc > 0``.
            c: ``[B, c_dim]`` labels for a conditional discriminator.

        Returns:
            A dict of ``[B]`` tensors, only for the terms whose weight is above 0: ``"fidelity"``
            (``softplus(−D(images))``), ``"pixel"``, ``"perceptual"``, ``"latent"`` (the exact means over the
            real set, constants included), ``"task"`` (with a task loss), and ``"total"``, the weighted sum
            ``α_f·fidelity − α_pix·pixel − α_perc·perceptual − α_lat·latent + α_task·task`` whose batch sum
            the walk minimises. Differentiable with respect to ``w`` and ``images``.

        Example:
            >>> from latent_transforms import GanBundle, GanConfig
            >>> cfg = GanConfig(resolution=16, channel_base=256, channel_max=32, z_dim=16, w_dim=16)
            >>> t = LatentAugment(GanBundle.random(cfg), alpha_pix=0, alpha_perc=0, alpha_lat=0)
            >>> w = torch.zeros(2, 16)
            >>> terms = t.loss_terms(w, t.render(w))
            >>> sorted(terms), terms["total"].shape
            (['fidelity', 'total'], torch.Size([2]))
        """
        on = self._on(images.device)
        return self._terms(on, w, images, positions, c)

    def _terms(
        self,
        on: _OnDevice,
        w: torch.Tensor,
        images: torch.Tensor,
        positions: torch.Tensor | None,
        c: torch.Tensor | None,
        in_walk: bool = False,
    ) -> dict[str, torch.Tensor]:
        """The terms; ``in_walk=True`` inside the walk's loop, which has checked the patch positions and
        the inputs once, and set the discriminator's minibatch-std group: nothing here reads a value on
        the host (no device synchronisation), so a step traces as one graph."""
        b = images.shape[0]
        terms: dict[str, torch.Tensor] = {}
        total = torch.zeros(b, device=images.device)
        if self.alpha_f > 0:
            D = on.bundle.discriminator
            assert D is not None
            if on.bundle.config.c_dim > 0 and c is None:
                raise ConfigError(
                    "this GAN is conditional: the fidelity term needs each image's label c [B, c_dim] "
                    "(augment(..., c=...) or params['c']). Fix: pass the labels, or alpha_f=0."
                )
            group = contextlib.nullcontext() if in_walk else _single_sample_mbstd(D)
            with self._autocast(images.device), group:
                logits = D(images, c)
            terms["fidelity"] = F.softplus(-logits.float()).reshape(b)
            total = total + self.alpha_f * terms["fidelity"]
        stats = on.stats
        if self.alpha_pix > 0:
            assert stats is not None
            terms["pixel"] = stats.pixel_loss(images)
            total = total - self.alpha_pix * terms["pixel"]
        if self.alpha_perc > 0:
            assert stats is not None
            if positions is None:
                raise ConfigError(
                    "alpha_perc > 0 needs one patch position per sample: positions [B] (long) indices into "
                    "stats.patch_positions, e.g. stats.random_positions(B, generator)."
                )
            net = self._perceptual_on(on)
            positions = positions.to(images.device)
            with self._autocast(images.device):
                feats = net(stats.patch(images, positions, check_range=not in_walk), check_finite=not in_walk)
            feats = [f.float() for f in feats]
            terms["perceptual"] = stats.perceptual_loss(feats, positions, check_range=not in_walk)
            total = total - self.alpha_perc * terms["perceptual"]
        if self.alpha_lat > 0:
            assert stats is not None
            terms["latent"] = stats.latent_loss(w)
            total = total - self.alpha_lat * terms["latent"]
        if self._task_loss is not None and self.alpha_task > 0:
            task = self._task_loss(images)
            if not isinstance(task, torch.Tensor) or tuple(task.shape) not in ((b,), ()):
                got = tuple(task.shape) if isinstance(task, torch.Tensor) else type(task).__name__
                raise ConfigError(
                    f"task_loss must return a tensor [B] (per sample, B = {b}) or a scalar, got {got}."
                )
            terms["task"] = task.float()
            per_sample = task.float() if task.ndim == 1 else task.float().expand(b) / b
            total = total + self.alpha_task * per_sample
        terms["total"] = total
        return terms

    # -- the walk ------------------------------------------------------------------------------------------
    def _draw_positions(self, batch: int, generator: torch.Generator) -> torch.Tensor | None:
        if not self._perc_active():
            return None
        stats = self.stats
        if stats is None:
            self._check_setup()  # raises, saying what to run
            raise AssertionError("unreachable")  # pragma: no cover
        return torch.randint(stats.num_positions, (batch, self.steps), generator=generator)

    def draw_params(self, batch: int, generator: torch.Generator) -> dict[str, Any]:
        """Per-sample patch positions ``"positions"`` ``[B, K]`` (long) for the perceptual term, one per
        step, drawn from ``generator`` (none when ``alpha_perc = 0``)."""
        positions = self._draw_positions(batch, generator)
        return {} if positions is None else {"positions": positions}

    def _walk(
        self, on: _OnDevice, w_star: torch.Tensor, positions: torch.Tensor | None, c: torch.Tensor | None
    ) -> torch.Tensor:
        """``K`` Adam steps from ``w*`` on the batch's summed loss; returns ``w̃`` (detached)."""
        if not self._walk_active():
            return w_star.detach()
        if positions is not None:  # checked once here, on the host; no device synchronisation in the loop
            stats = on.stats
            assert stats is not None
            if positions.numel() and (
                int(positions.min()) < 0 or int(positions.max()) >= stats.num_positions
            ):
                raise ConfigError(
                    f"expected patch position indices in [0, {stats.num_positions}), got values from "
                    f"{int(positions.min())} to {int(positions.max())}. Fix: draw them with draw_params."
                )
            positions = positions.to(w_star.device, non_blocking=True)
        step = self._step_function(on)
        D = on.bundle.discriminator if self.alpha_f > 0 else None
        group = _single_sample_mbstd(D) if D is not None else contextlib.nullcontext()
        with torch.inference_mode(False), torch.enable_grad(), group:
            w = w_star.detach().clone().float().requires_grad_(True)
            optimizer = torch.optim.Adam([w], lr=self.lr, betas=(0.9, 0.999))
            for k in range(self.steps):
                if self.compile_mode is not None:  # a new iteration for CUDA-graph trees
                    torch.compiler.cudagraph_mark_step_begin()
                loss = step(on, w, positions[:, k] if positions is not None else None, c)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
        return w.detach()

    def _step_loss(
        self, on: _OnDevice, w: torch.Tensor, positions: torch.Tensor | None, c: torch.Tensor | None
    ) -> torch.Tensor:
        """One step's loss, summed over the batch: render, then the active terms (what ``compile_mode``
        compiles)."""
        images = self._render(on.bundle, w)
        return self._terms(on, w, images, positions, c, in_walk=True)["total"].sum()

    def _step_function(self, on: _OnDevice) -> Callable[..., torch.Tensor]:
        """:meth:`_step_loss`, or with ``compile_mode`` its ``torch.compile`` form (one per device)."""
        if self.compile_mode is None:
            return self._step_loss
        if on.step is None:
            if self._perc_active():
                self._perceptual_on(on)  # built outside the traced region
            mode = None if self.compile_mode == "default" else self.compile_mode
            on.step = torch.compile(self._step_loss, mode=mode)
        return on.step

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
            ``G(w̃)`` ``[B, C, R, R]`` float32, unclamped, rendered with constant noise from the final
            latents (with ``differentiable=True`` its graph reaches ``w̃``), or ``(images, w̃)``.

        Example:
            >>> from latent_transforms import GanBundle, GanConfig
            >>> cfg = GanConfig(resolution=16, channel_base=256, channel_max=32, z_dim=16, w_dim=16)
            >>> t = LatentAugment(GanBundle.random(cfg), alpha_pix=0, alpha_perc=0, alpha_lat=0, seed=0)
            >>> w_star = torch.randn(2, 16, generator=torch.Generator().manual_seed(0))
            >>> out, w = t.augment(torch.zeros(2, 2, 16, 16), w_star=w_star, return_latents=True)
            >>> torch.equal(out, t.render(w)), bool((w != w_star).any())
            (True, True)
        """
        self._check_batch(images)
        positions = self._draw_positions(
            images.shape[0], generator if generator is not None else self.generator
        )
        out, w = self._augment(images, w_star, keys, positions, c)
        self._runtime["last_latents"] = w
        return (out, w) if return_latents else out

    def _check_batch(self, images: Any) -> None:
        """``augment``'s input: finite float ``[B, C, R, R]`` with the GAN's channels and resolution."""
        C, R = self.expected_channels(), self.expected_resolution()
        if not isinstance(images, torch.Tensor) or images.ndim != 4 or not images.is_floating_point():
            got = (
                f"{images.dtype} of shape {tuple(images.shape)}"
                if isinstance(images, torch.Tensor)
                else type(images).__name__
            )
            raise ConfigError(
                f"augment expects float images [B, {C}, {R}, {R}] in [-1, 1], got {got}. Fix: add a batch "
                "dimension (x[None]) or call the transform itself, which converts ranges and dtypes."
            )
        if images.shape[0] == 0 or tuple(images.shape[1:]) != (C, R, R):
            raise ConfigError(
                f"augment expects images [B, {C}, {R}, {R}] with B >= 1 (the GAN's modalities "
                f"{self.modality_names()} and resolution), got {tuple(images.shape)}. Fix: stack the "
                f"modalities as channels in that order and resize to {R} px."
            )
        if not bool(torch.isfinite(images).all()):
            raise ConfigError("augment got NaN or Inf values. Fix: clean the data first (torch.nan_to_num).")

    def _augment(
        self,
        images: torch.Tensor,
        w_star: torch.Tensor | None,
        keys: Sequence[str] | None,
        positions: torch.Tensor | None,
        c: torch.Tensor | None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        on = self._on(images.device)
        if w_star is None:
            w_star = self._lookup(on, images, keys)
        w_star = w_star.to(device=images.device, dtype=torch.float32)
        self._check_latents(on.bundle, w_star, images.shape[0])
        if c is not None:
            c = c.to(images.device).float()
        w_final = self._walk(on, w_star, positions, c)
        if self.differentiable:
            with torch.inference_mode(False), torch.enable_grad():
                w_final = w_final.detach().clone().requires_grad_(True)
                out = self._render(on.bundle, w_final)
        else:
            with torch.no_grad():
                out = self._render(on.bundle, w_final)
        # The one host read of the walk, after every step is queued: a diverged walk fails loudly.
        if not bool(torch.isfinite(w_final.detach()).all() & torch.isfinite(out.detach()).all()):
            raise ConfigError(
                "LatentAugment's walk produced NaN/Inf latents or images. Fix: lower lr or the alpha "
                "weights, or check that the GAN's generator and discriminator give finite outputs."
            )
        return out, w_final

    @staticmethod
    def _check_latents(bundle: GanBundle, w: torch.Tensor, batch: int) -> None:
        G = bundle.generator
        ok = w.shape[0] == batch and (
            (w.ndim == 2 and w.shape[1] == G.w_dim)
            or (w.ndim == 3 and tuple(w.shape[1:]) == (G.num_ws, G.w_dim))
        )
        if not ok:
            raise ConfigError(
                f"expected latents [{batch}, {G.w_dim}] (W) or [{batch}, {G.num_ws}, {G.w_dim}] (W+) for "
                f"this GAN, got {tuple(w.shape)}. Fix: use latents inverted with this GAN."
            )

    # -- latent lookup -----------------------------------------------------------------------------------
    def _lookup(self, on: _OnDevice, images: torch.Tensor, keys: Sequence[str] | None) -> torch.Tensor:
        b = images.shape[0]
        if keys is not None:
            if isinstance(keys, str) or len(keys) != b:
                raise ConfigError(
                    f"keys must be a list of {b} strings (one dataset key per sample), got {keys!r:.200}."
                )
            key_list = [str(k) for k in keys]
            by = "dataset key"
        else:
            on_cpu = images.detach().to(device="cpu", dtype=torch.float32)
            key_list = [image_key(x) for x in on_cpu]
            by = "content key (image_key of the normalised image)"
        entries: list[torch.Tensor | None] = [None] * b
        cache = self._cache.get()
        if cache is not None:
            w, found = cache.get_batch(keys=key_list, missing="mask")
            for i in found.nonzero().flatten().tolist():
                entries[i] = w[i]
        memory: dict[str, torch.Tensor] = self._runtime["memory"]
        for i, key in enumerate(key_list):
            if entries[i] is None and key in memory:
                entries[i] = memory[key]
        missing = [i for i, e in enumerate(entries) if e is None]
        if missing:
            if self.on_missing == "raise":
                where = (
                    f"the latent cache at {cache.folder}"
                    if cache is not None
                    else "no latent cache (cache=None)"
                )
                raise MissingLatentError(
                    f"{len(missing)} of {b} images have no inverted latent in {where} (looked up by {by}). "
                    f"Fix: invert the training images first: latent-transforms invert --gan "
                    f"{self._gan.source or 'GAN'} --data DATA --cache {cache.folder if cache else 'CACHE'}"
                    f"{' --key dataset' if keys is not None else ''}, or pass on_missing='invert' to invert "
                    "them on the fly."
                )
            idx = torch.tensor(missing, device=images.device)
            new = self._invert(on, images.index_select(0, idx), [key_list[i] for i in missing], cache)
            for j, i in enumerate(missing):
                entries[i] = new[j]
        return torch.stack([e.to(images.device) for e in entries if e is not None])

    def _invert(
        self, on: _OnDevice, images: torch.Tensor, keys: list[str], cache: LatentCache | None
    ) -> torch.Tensor:
        projector = self._projector_on(on, cache)
        if not self._runtime["warned"]:
            self._runtime["warned"] = True
            warnings.warn(
                f"LatentAugment: {len(keys)} image(s) have no inverted latent"
                f"{f' in the cache at {cache.folder}' if cache is not None else ' (no cache given)'}; "
                f"inverting them on the fly with a {projector.steps}-step projector, which costs about "
                f"{projector.steps} generator passes per image (this warning is shown once). Invert the "
                "training set ahead instead: latent-transforms invert --gan GAN --data DATA --cache CACHE.",
                RuntimeWarning,
                stacklevel=4,
            )
        with torch.inference_mode(False), torch.enable_grad():
            result = projector.project(images.detach().clone())
        w = result.w.detach().float().cpu()
        stored = False
        if cache is not None and cache.mode == "a":
            fields = cache.fields
            extras = {"psnr": result.psnr.cpu(), "ssim": result.ssim.cpu(), "steps": result.steps.cpu()}
            if fields:
                extras = {k: v for k, v in extras.items() if k in fields}
            if not fields or set(fields) == {"w", *extras}:
                try:
                    cache.put_batch(keys, w, **extras)
                    cache.flush()
                    stored = True
                except ValueError:  # read-only or closed cache, or another field layout
                    stored = False
        if not stored:
            memory: dict[str, torch.Tensor] = self._runtime["memory"]
            for key, wi in zip(keys, w, strict=True):
                memory[key] = wi.clone()
        return w

    def _projector_on(self, on: _OnDevice, cache: LatentCache | None) -> Projector:
        if on.projector is not None:
            return on.projector
        options = dict(FAST_PROJECTOR)
        space = cache.space if cache is not None else None
        settings = cache.settings if cache is not None else {}
        options["space"] = "w+" if space == "W+" else "w"
        options["perceptual"] = settings.get("perceptual", DEFAULT_PERCEPTUAL_NETWORK)
        options["precision"] = self.precision
        given = dict(self.projector_options or {})
        if space is not None and "space" in given and given["space"] != options["space"]:
            raise ConfigError(
                f"projector={{'space': {given['space']!r}}} differs from the cache's space {space!r}; "
                "latents of one cache share one space. Fix: drop the option or use another cache."
            )
        options.update(given)
        options["device"] = on.bundle.device
        on.projector = Projector(on.bundle, **options)
        return on.projector

    # -- RandomTransform protocol ------------------------------------------------------------------------
    def apply_batch(self, x: torch.Tensor, params: dict[str, Any], kind: str) -> torch.Tensor:
        """Augment the chosen samples ``x`` ``[n, C, R, R]`` (in ``[-1, 1]``) with their ``params``
        (``"positions"``; optional ``"keys"`` and ``"c"``); returns ``G(w̃)`` clamped to ``[-1, 1]``."""
        out, w = self._augment(x, None, params.get("keys"), params.get("positions"), params.get("c"))
        self._runtime["last_latents"] = w
        return out.clamp(-1.0, 1.0)

    def expected_channels(self) -> int | None:
        """The GAN's channel count (its modalities)."""
        return self._gan.config.img_channels

    def expected_resolution(self) -> int | None:
        """The GAN's resolution."""
        return self._gan.config.resolution

    def windows(self) -> Sequence[IntensityWindow] | None:
        """The bundle's intensity windows, one per channel."""
        return [m.window for m in self._gan.config.modalities]

    def modality_names(self) -> list[str] | None:
        """The bundle's channel names."""
        return list(self._gan.config.modality_names)

    def repr_params(self) -> dict[str, Any]:
        """Every constructor parameter; the GAN as its source string or a one-line summary."""
        spec = self._perceptual_spec
        perceptual = spec if spec is None or isinstance(spec, str) else Shown(type(spec).__name__)
        task = None if self._task_loss is None else Shown(_callable_name(self._task_loss))
        return {
            "gan": self._gan.describe(),
            "cache": self._cache.describe(),
            "stats": self._stats.describe(),
            "preset": self.preset_name,
            "steps": self.steps,
            "lr": self.lr,
            "alpha_f": self.alpha_f,
            "alpha_pix": self.alpha_pix,
            "alpha_perc": self.alpha_perc,
            "alpha_lat": self.alpha_lat,
            "p": self.p,
            "perceptual": perceptual,
            "task_loss": task,
            "alpha_task": self.alpha_task,
            "differentiable": self.differentiable,
            "on_missing": self.on_missing,
            "projector": self.projector_options,
            "precision": self.precision,
            "compile_mode": self.compile_mode,
            "value_range": self.value_range,
            "device": None if self.device is None else str(self.device),
            "seed": self.seed,
        }
