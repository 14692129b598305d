"""A translator given as an object or as a :func:`load_translator` source, loaded lazily, one copy per device.

What a transform pickles (for ``spawn``-ed DataLoader workers) is the source string when it was given
one; the bundle is loaded in the process that first uses it.
"""

from __future__ import annotations

import copy
import os
import threading
from typing import Any

import torch

from latent_transforms.checks import canonical_device
from latent_transforms.errors import ConfigError
from latent_transforms.networks.hub import resolve_source
from latent_transforms.translation.bundle import BUNDLE_KIND, CONFIG_NAME, TranslatorBundle, load_translator
from latent_transforms.translation.config import TranslatorConfig

__all__ = ["TranslatorSource"]


class TranslatorSource:
    """A :class:`TranslatorBundle`, or a source string / path for :func:`load_translator`, loaded lazily.

    A bundle given as an object is used on its own device and copied for any other; a source string is
    loaded on the first device asked for, and :attr:`config` reads only its ``config.json``. Pickling
    keeps the object or the string, never the per-device copies.

    Example:
        >>> import pickle, tempfile
        >>> cfg = TranslatorConfig(resolution=16, width=4, blocks=1)
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     _ = TranslatorBundle.random(cfg).save_pretrained(folder)
        ...     source = TranslatorSource(folder)
        ...     source.config.resolution, source.loaded, source.bundle("cpu").resolution, source.loaded
        ...     pickle.loads(pickle.dumps(source)).loaded
        (16, False, 16, True)
        False
    """

    def __init__(self, translator: TranslatorBundle | str | os.PathLike[str]) -> None:
        if isinstance(translator, TranslatorBundle):
            self._given: TranslatorBundle | None = translator
            self._source: str | None = None
        elif isinstance(translator, (str, os.PathLike)):
            self._given, self._source = None, os.fspath(translator)
        else:
            raise ConfigError(
                f"translator must be a TranslatorBundle or a load_translator source (a bundle folder, "
                f"'builtin:<name>' or a Hub repo id), got {type(translator).__name__}."
            )
        self._reset()

    def _reset(self) -> None:
        self._bundles: dict[str, TranslatorBundle] = {}
        self._config: TranslatorConfig | None = None
        self._lock = threading.RLock()

    @property
    def loaded(self) -> bool:
        """Whether a bundle is in memory."""
        return self._given is not None or bool(self._bundles)

    @property
    def config(self) -> TranslatorConfig:
        """The translator's config (for a source not loaded yet, from its ``config.json`` alone)."""
        if self._given is not None:
            return self._given.config
        with self._lock:
            if self._bundles:
                return next(iter(self._bundles.values())).config
            if self._config is None:
                assert self._source is not None
                self._config = TranslatorConfig.from_json(
                    resolve_source(self._source, what=BUNDLE_KIND, loader="load_translator") / CONFIG_NAME
                )
            return self._config

    def bundle(self, device: torch.device | str | None = None) -> TranslatorBundle:
        """The bundle on ``device`` (``None``: the given bundle's own, else the CPU)."""
        with self._lock:
            if device is None and self._given is not None:
                return self._given
            dev = canonical_device(device)
            found = self._bundles.get(str(dev))
            if found is not None:
                return found
            if self._given is not None:
                same = canonical_device(self._given.device) == dev
                bundle = self._given if same else copy.deepcopy(self._given).to(dev)
            elif self._bundles:
                bundle = copy.deepcopy(next(iter(self._bundles.values()))).to(dev)
            else:
                assert self._source is not None
                bundle = load_translator(self._source, device=dev)
            self._bundles[str(dev)] = bundle
            return bundle

    def describe(self) -> str:
        """What a ``repr`` shows: the quoted source string, or the bundle's one-line summary."""
        if self._source is not None:
            return repr(self._source)
        assert self._given is not None
        return repr(self._given.source) if self._given.source is not None else repr(self._given)

    def __getstate__(self) -> dict[str, Any]:
        return {"_given": self._given, "_source": self._source}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._given, self._source = state["_given"], state["_source"]
        self._reset()
