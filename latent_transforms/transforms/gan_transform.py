"""What the GAN transforms share: the lazy GAN source, its channels and windows, a frozen config of
hyper-parameters, per-device objects and pickling without the model.

:class:`GanTransform` is the base of :class:`~latent_transforms.LatentAugment`,
:class:`~latent_transforms.SG2Sample` and :class:`~latent_transforms.DiffusionSample` (whose generator is a
diffusion bundle: ``bundle_class``). A subclass names its config dataclass in ``config_class``; every
field of it (but ``p`` and ``value_range``, which the base transform owns) becomes a read-only attribute
of the transform, and ``repr`` shows the fields in order between the GAN and ``device`` / ``seed``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import fields
from typing import Any, ClassVar, TypeVar

import torch

from latent_transforms.checks import canonical_device
from latent_transforms.data.windows import IntensityWindow
from latent_transforms.networks.bundle import GanBundle
from latent_transforms.transforms.base import RandomTransform
from latent_transforms.transforms.sources import GanSource

__all__ = ["GanTransform", "insert_after"]

T = TypeVar("T")
#: Config fields the base :class:`RandomTransform` owns as attributes (``p`` may change: MONAI's ``prob``).
_BASE_FIELDS = ("p", "value_range")


def _field_property(name: str) -> property:
    def get(self: GanTransform) -> Any:
        return getattr(self._hyperparameters, name)

    return property(get, doc=f"The ``{name}`` hyper-parameter (read-only; see ``hyperparameters``).")


class GanTransform(RandomTransform):
    """Base of the transforms that run a GAN bundle: input and output in the bundle's channels,
    resolution and intensity windows; the work in the generator's range ``[-1, 1]``.

    It holds the GAN as a :class:`~latent_transforms.transforms.sources.GanSource` (a bundle, or a
    ``load_gan`` source loaded lazily in the process that first uses it; pickles as the string), the
    hyper-parameters as a frozen ``config_class`` instance (:attr:`hyperparameters`), and runtime
    objects (per-device copies, locks) that are rebuilt after unpickling and never pickled.

    Subclass hooks: ``config_class`` (a config dataclass from :mod:`latent_transforms.transforms.config`),
    ``bundle_class`` (the generator bundle it runs: :class:`GanBundle` by default),
    :meth:`new_runtime` (extra runtime entries), :meth:`repr_value` (how ``repr`` shows a field).

    Example:
        >>> from latent_transforms import GanBundle, GanConfig, SG2Sample
        >>> cfg = GanConfig(resolution=16, channel_base=256, channel_max=32, z_dim=16, w_dim=16)
        >>> t = SG2Sample(GanBundle.random(cfg), truncation_psi=0.5)
        >>> isinstance(t, GanTransform), t.expected_channels(), t.modality_names(), t.truncation_psi
        (True, 2, ['mri', 'ct'], 0.5)
    """

    needs_generator_range: ClassVar[bool] = True
    #: The frozen dataclass of the subclass's hyper-parameters.
    config_class: ClassVar[type[Mapping[str, Any]] | None] = None
    #: The bundle class of the generator (its objects, or source strings it loads).
    bundle_class: ClassVar[type[Any]] = GanBundle

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        config_class = cls.__dict__.get("config_class")
        if config_class is None:
            return
        for f in fields(config_class):  # type: ignore[arg-type]
            if f.name in _BASE_FIELDS or hasattr(cls, f.name):
                continue
            setattr(cls, f.name, _field_property(f.name))

    def __init__(
        self,
        gan: Any,
        hyperparameters: Mapping[str, Any],
        *,
        seed: int | None = None,
        device: torch.device | str | None = None,
    ) -> None:
        super().__init__(
            p=hyperparameters["p"], seed=seed, value_range=hyperparameters["value_range"], device=device
        )
        # Heavy objects stay out of nn.Module's registry (empty state_dict, clean repr).
        object.__setattr__(self, "_gan", GanSource(gan, bundle_class=self.bundle_class))
        object.__setattr__(self, "_hyperparameters", hyperparameters)
        self._reset_runtime()

    # -- the config --------------------------------------------------------------------------------
    @property
    def hyperparameters(self) -> Any:
        """The hyper-parameters as the frozen ``config_class`` instance (with the current ``p``)."""
        config = self._hyperparameters
        if config["p"] != self.p:
            config = config.replace(p=self.p)  # type: ignore[attr-defined]
        return config

    # -- the GAN -----------------------------------------------------------------------------------
    @property
    def bundle(self) -> GanBundle:
        """The GAN bundle (loaded on first access when given as a source string)."""
        return self._gan.bundle()

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

    # -- runtime objects ---------------------------------------------------------------------------
    def new_runtime(self) -> dict[str, Any]:
        """The runtime entries (rebuilt after unpickling): ``"devices"`` and ``"lock"``; extend it."""
        return {"devices": {}, "lock": threading.RLock()}

    def _reset_runtime(self) -> None:
        object.__setattr__(self, "_runtime", self.new_runtime())

    def per_device(self, device: torch.device | str | None, build: Callable[[torch.device], T]) -> T:
        """The object ``build(device)`` made once per device (``"cuda"`` and ``"cuda:0"`` are one)."""
        dev = canonical_device(device)
        with self._runtime["lock"]:
            found = self._runtime["devices"].get(str(dev))
            if found is None:
                found = build(dev)
                self._runtime["devices"][str(dev)] = found
            return found

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        state["_runtime"] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        self._reset_runtime()

    # -- display -----------------------------------------------------------------------------------
    def repr_value(self, name: str, value: Any) -> Any:
        """How ``repr`` shows the config field ``name`` (default: the value itself)."""
        return value

    def repr_sources(self) -> dict[str, Any]:
        """What ``repr`` shows after the GAN and before the hyper-parameters (default: nothing)."""
        return {}

    def repr_params(self) -> dict[str, Any]:
        """The GAN (its source string or a one-line summary), the sources, every hyper-parameter in the
        config's order, ``device`` and ``seed``."""
        config = self.hyperparameters
        params: dict[str, Any] = {"gan": self._gan.describe(), **self.repr_sources()}
        for name in config:
            params[name] = self.repr_value(name, config[name])
        params["device"] = None if self.device is None else str(self.device)
        params["seed"] = self.seed
        return params


def insert_after(params: dict[str, Any], key: str, extra: Mapping[str, Any]) -> dict[str, Any]:
    """``params`` with ``extra`` inserted right after ``key`` (for ``repr`` orders).

    Example:
        >>> insert_after({"a": 1, "c": 3}, "a", {"b": 2})
        {'a': 1, 'b': 2, 'c': 3}
    """
    out: dict[str, Any] = {}
    for k, v in params.items():
        out[k] = v
        if k == key:
            out.update(extra)
    return out
