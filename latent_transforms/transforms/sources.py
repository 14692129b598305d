"""Lazy sources of the heavy objects the GAN transforms use: the GAN bundle, the latent cache and the
dataset statistics.

A transform may be built from strings (a ``load_gan`` source, a cache folder, a statistics file) and
sent to DataLoader workers that start with ``spawn``: what is pickled is the string, and the object is
loaded in the process that first uses it. :class:`GanSource` also keeps one copy of the bundle per
device, so the same transform can run on CPU in the workers and on CUDA in the main process.

Example:
    >>> from latent_transforms import GanBundle, GanConfig
    >>> cfg = GanConfig(resolution=16, channel_base=256, channel_max=32, z_dim=16, w_dim=16)
    >>> source = GanSource(GanBundle.random(cfg))
    >>> source.bundle("cpu").resolution, source.describe()
    (16, GanBundle(resolution=16, modalities=['mri', 'ct']))
"""

from __future__ import annotations

import copy
import os
import threading
from pathlib import Path
from typing import Any

import torch

from latent_transforms.checks import canonical_device
from latent_transforms.errors import CacheMismatchError, CacheNotFoundError, ConfigError
from latent_transforms.generative.bundle import DiffusionBundle
from latent_transforms.inversion.cache import CACHE_JSON, LatentCache
from latent_transforms.inversion.job import STATS_NAME
from latent_transforms.networks.bundle import CONFIG_NAME, GanBundle, load_gan
from latent_transforms.networks.hub import resolve_source
from latent_transforms.objectives.stats import DatasetStats

__all__ = [
    "CacheSource",
    "GanSource",
    "Shown",
    "StatsSource",
    "check_cache_folder",
    "check_cache_matches",
]


class Shown:
    """A value whose ``repr`` is the given text (for summaries in a transform's ``repr``).

    Example:
        >>> Shown("GanBundle(resolution=16)")
        GanBundle(resolution=16)
    """

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Shown) and other.text == self.text

    def __hash__(self) -> int:
        return hash(self.text)


def bundle_summary(bundle: GanBundle | DiffusionBundle) -> Shown:
    """How a transform's ``repr`` shows a bundle (a GAN or a diffusion bundle): its source string, or a
    one-line summary.

    Example:
        >>> from latent_transforms import GanConfig
        >>> cfg = GanConfig(resolution=16, channel_base=256, channel_max=32, z_dim=16, w_dim=16)
        >>> bundle_summary(GanBundle.random(cfg))
        GanBundle(resolution=16, modalities=['mri', 'ct'])
    """
    if bundle.source is not None:
        return Shown(repr(bundle.source))
    extra = f", c_dim={bundle.config.c_dim}" if bundle.config.c_dim else ""
    name = type(bundle).__name__
    return Shown(f"{name}(resolution={bundle.resolution}, modalities={bundle.modalities}{extra})")


class GanSource:
    """A generator bundle given as an object or as a source string, loaded lazily, with one copy per device.

    Args:
        gan: a bundle of ``bundle_class``, or a source string / path it loads (a bundle folder,
            ``"builtin:<name>"`` or a Hub repo id).
        bundle_class: :class:`GanBundle` (default; loaded like :func:`~latent_transforms.load_gan`) or
            :class:`~latent_transforms.DiffusionBundle` (like :func:`~latent_transforms.load_diffusion`).

    A bundle given as an object is used as it is on its own device and copied (``copy.deepcopy`` then
    ``.to``) for any other device, so the caller's bundle never moves. A source string is loaded on the
    first device asked for; pickling keeps only the string (a DataLoader worker started with ``spawn``
    loads its own copy).

    Example:
        >>> import pickle, tempfile
        >>> from latent_transforms import GanConfig
        >>> cfg = GanConfig(resolution=16, channel_base=256, channel_max=32, z_dim=16, w_dim=16)
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     _ = GanBundle.random(cfg).save_pretrained(folder, w_stats_samples=64)
        ...     source = GanSource(folder)
        ...     source.config.resolution, source.loaded, source.bundle().resolution, source.loaded
        ...     pickle.loads(pickle.dumps(source)).loaded
        (16, False, 16, True)
        False
    """

    def __init__(self, gan: Any, *, bundle_class: type[Any] = GanBundle) -> None:
        self._bundle_class = bundle_class
        if isinstance(gan, bundle_class):
            self._given: Any = gan
            self._source: str | None = None
        elif isinstance(gan, (str, os.PathLike)):
            self._given = None
            self._source = os.fspath(gan)
        else:
            loader = "load_gan" if bundle_class is GanBundle else "load_diffusion"
            raise ConfigError(
                f"expected a {bundle_class.__name__} or a {loader} source (a bundle folder, 'builtin:<name>' "
                f"or a Hub repo id), got {type(gan).__name__}. Fix: pass latent_transforms.{loader}(...) or "
                "its source string."
            )
        self._bundles: dict[str, Any] = {}
        self._config: Any = None
        self._lock = threading.RLock()

    @property
    def source(self) -> str | None:
        """The source string (``None`` for a bundle given as an object without one)."""
        return self._source if self._source is not None else getattr(self._given, "source", None)

    @property
    def loaded(self) -> bool:
        """Whether a bundle is in memory (always true for one given as an object)."""
        return self._given is not None or bool(self._bundles)

    @property
    def config(self) -> Any:
        """The bundle's config (:class:`GanConfig` or :class:`~latent_transforms.DiffusionConfig`); for a
        source not loaded yet, read from its ``config.json`` alone (no weights are loaded)."""
        if self._given is not None:
            return self._given.config
        with self._lock:
            if self._bundles:
                return next(iter(self._bundles.values())).config
            if self._config is None:
                assert self._source is not None
                folder = resolve_source(self._source, what=self._what)
                self._config = self._bundle_class.config_class.from_json(folder / CONFIG_NAME)
            return self._config

    @property
    def _what(self) -> str:
        return "GAN bundle" if self._bundle_class is GanBundle else "diffusion bundle"

    def bundle(self, device: torch.device | str | None = None) -> Any:
        """The bundle on ``device`` (``None``: the given bundle's own device, else CPU), loading or copying
        it on first use."""
        with self._lock:
            if device is None:
                if self._given is not None:
                    return self._given
                if self._bundles:
                    return next(iter(self._bundles.values()))
            dev = canonical_device(device)
            name = str(dev)
            found = self._bundles.get(name)
            if found is not None:
                return found
            if self._given is not None and canonical_device(self._given.device) == dev:
                bundle = self._given
            elif self._given is not None:
                bundle = copy.deepcopy(self._given).to(dev)
            elif self._bundles:
                bundle = copy.deepcopy(next(iter(self._bundles.values()))).to(dev)
            else:
                assert self._source is not None
                bundle = (
                    load_gan(self._source, device=dev)
                    if self._bundle_class is GanBundle
                    else self._bundle_class.from_pretrained(self._source, device=dev)
                )
            self._bundles[name] = bundle
            return bundle

    def fingerprint(self) -> str:
        """The generator's fingerprint (:attr:`GanBundle.fingerprint`; loads the bundle if needed)."""
        return self.bundle().fingerprint

    def describe(self) -> Shown:
        """What ``repr`` shows: the quoted source string, or ``GanBundle(resolution=.., modalities=..)``."""
        if self._source is not None:
            return Shown(repr(self._source))
        assert self._given is not None
        return bundle_summary(self._given)

    def __getstate__(self) -> dict[str, Any]:
        return {"_given": self._given, "_source": self._source, "_bundle_class": self._bundle_class}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._given = state["_given"]
        self._source = state["_source"]
        self._bundle_class = state.get("_bundle_class", GanBundle)
        self._bundles = {}
        self._config = None
        self._lock = threading.RLock()


def check_cache_folder(folder: str | os.PathLike[str]) -> None:
    """Raise :class:`~latent_transforms.errors.CacheNotFoundError` unless ``folder`` holds a latent cache
    (its ``cache.json``); says whether the folder is missing or holds no cache, and what to run. Reads
    nothing else: the cache itself is opened later, lazily.

    Example:
        >>> check_cache_folder("no/such/folder")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        latent_transforms.errors.CacheNotFoundError: cache='no/such/folder': the folder ... does not exist....
    """
    path = Path(os.fspath(folder))
    where = path.expanduser().absolute()
    if (where / CACHE_JSON).is_file():
        return
    if not where.exists():
        what = f"the folder {where} does not exist"
    elif not where.is_dir():
        what = f"{where} is not a folder"
    else:
        what = f"the folder {where} holds no latent cache (no {CACHE_JSON})"
    raise CacheNotFoundError(
        f"cache={os.fspath(folder)!r}: {what}. Fix: invert the training images into it first "
        f"(latent-transforms invert --gan GAN --data DATA --cache {os.fspath(folder)}, which also writes the "
        "dataset statistics), check the path, or pass cache=None to invert every image on the fly."
    )


class CacheSource:
    """A :class:`LatentCache` given as an object, as a folder (checked to hold a cache at once, opened
    read-only with :meth:`LatentCache.open` on first use), or ``None``.

    Example:
        >>> import tempfile, torch
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     LatentCache(folder, fingerprint="ab" * 32).close()
        ...     source = CacheSource(folder)
        ...     source.get().mode, source.folder == LatentCache.open(folder).folder
        ('r', True)
        >>> CacheSource(None).get() is None
        True
    """

    def __init__(self, cache: LatentCache | str | os.PathLike[str] | None) -> None:
        if cache is not None and not isinstance(cache, (LatentCache, str, os.PathLike)):
            raise ConfigError(
                f"cache must be a LatentCache, a cache folder or None, got {type(cache).__name__}. Fix: "
                "pass the folder `latent-transforms invert --cache ...` wrote."
            )
        self._given = cache if isinstance(cache, LatentCache) else None
        self._path = None if cache is None or isinstance(cache, LatentCache) else Path(os.fspath(cache))
        if self._path is not None:
            check_cache_folder(self._path)
        self._opened: LatentCache | None = None
        self._lock = threading.RLock()

    @property
    def folder(self) -> Path | None:
        """The cache folder, or ``None`` without a cache."""
        if self._given is not None:
            return self._given.folder
        return self._path.expanduser().absolute() if self._path is not None else None

    def get(self) -> LatentCache | None:
        """The cache (opened on first use), or ``None``."""
        if self._given is not None:
            return self._given
        if self._path is None:
            return None
        with self._lock:
            if self._opened is None:
                self._opened = LatentCache.open(self._path)
            return self._opened

    def describe(self) -> str | None:
        """What ``repr`` shows: the folder as a string, or ``None``."""
        folder = self.folder
        return None if folder is None else str(folder if self._given is not None else self._path)

    def __getstate__(self) -> dict[str, Any]:
        return {"_given": self._given, "_path": self._path}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._given = state["_given"]
        self._path = state["_path"]
        self._opened = None
        self._lock = threading.RLock()


class StatsSource:
    """:class:`DatasetStats` given as an object, as a file (loaded on first use), or ``None`` (then
    ``<cache folder>/stats.safetensors`` when that file exists, what ``latent-transforms invert`` writes).

    Example:
        >>> source = StatsSource(None)
        >>> source.get(cache_folder=None) is None, source.describe()
        (True, None)
    """

    def __init__(self, stats: DatasetStats | str | os.PathLike[str] | None) -> None:
        if stats is not None and not isinstance(stats, (DatasetStats, str, os.PathLike)):
            raise ConfigError(
                f"stats must be DatasetStats, a statistics file or None, got {type(stats).__name__}. Fix: "
                "pass DatasetStats.load(path) or the path of stats.safetensors."
            )
        self._given = stats if isinstance(stats, DatasetStats) else None
        self._path = None if stats is None or isinstance(stats, DatasetStats) else Path(os.fspath(stats))
        self._loaded: DatasetStats | None = None
        self._lock = threading.RLock()

    def get(self, cache_folder: Path | None) -> DatasetStats | None:
        """The statistics (loaded on first use), or ``None`` when none were given or found."""
        if self._given is not None:
            return self._given
        with self._lock:
            if self._loaded is None:
                if self._path is not None:
                    self._loaded = DatasetStats.load(self._path)
                elif cache_folder is not None and (Path(cache_folder) / STATS_NAME).is_file():
                    self._loaded = DatasetStats.load(Path(cache_folder) / STATS_NAME)
            return self._loaded

    def describe(self) -> str | Shown | None:
        """What ``repr`` shows: the file as a string, a one-line summary, or ``None``."""
        if self._given is not None:
            return Shown(repr(self._given))
        return None if self._path is None else str(self._path)

    def __getstate__(self) -> dict[str, Any]:
        return {"_given": self._given, "_path": self._path}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._given = state["_given"]
        self._path = state["_path"]
        self._loaded = None
        self._lock = threading.RLock()


def check_cache_matches(cache: LatentCache, bundle: GanBundle) -> None:
    """Raise :class:`CacheMismatchError` unless ``cache`` was made with ``bundle``'s generator.

    Example:
        >>> import tempfile
        >>> from latent_transforms import GanConfig
        >>> cfg = GanConfig(resolution=16, channel_base=256, channel_max=32, z_dim=16, w_dim=16)
        >>> bundle = GanBundle.random(cfg)
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     LatentCache(folder, fingerprint=bundle.fingerprint).close()
        ...     check_cache_matches(LatentCache.open(folder), bundle)
    """
    if cache.fingerprint != bundle.fingerprint:
        name = bundle.source or "the GAN bundle given"
        raise CacheMismatchError(
            f"the latent cache at {cache.folder} was made with the generator whose fingerprint is "
            f"{cache.fingerprint[:16]}..., but {name} has fingerprint {bundle.fingerprint[:16]}...: its "
            "latents do not fit this generator. Fix: pass the GAN bundle the cache was inverted with "
            "(compare bundle.fingerprint with LatentCache.open(folder).fingerprint), or invert the images "
            "with this GAN into another folder: latent-transforms invert --gan GAN --data DATA --cache NEW."
        )
