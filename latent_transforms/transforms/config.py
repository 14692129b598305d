"""The hyper-parameters of the GAN transforms, one frozen dataclass each.

:class:`LatentAugmentConfig` holds LatentAugment's hyper-parameters (Tronchin et al. 2023),
:class:`SG2SampleConfig` SG2Sample's and :class:`DiffusionSampleConfig` DiffusionSample's. Each field is
declared once, with its default, its check and what the rest of the library needs to know about it (the
paper's symbol, the paper's search grid, whether an evaluation policy spec may set it, its short aliases)
in the field's metadata. Everything that lists the
hyper-parameters derives from these fields: the presets (instances of :class:`LatentAugmentConfig`),
``LatentAugment.config()`` / ``from_config`` / ``repr``, the tuning search spaces
(:mod:`latent_transforms.tuning.spaces`) and the evaluation policy specs
(:mod:`latent_transforms.evaluation.policies`); :func:`field_metadata` reads them.

A config is also a read-only mapping from field names to values, so ``PRESETS["f1"]["p"]``,
``dict(config)`` and ``LatentAugment(bundle, **config)`` work.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

import torch

from latent_transforms.checks import check_choice, check_int, check_number
from latent_transforms.errors import ConfigError
from latent_transforms.generative.networks import SAMPLERS
from latent_transforms.inversion.lookup import ON_MISSING
from latent_transforms.objectives.walk import PATCH_PROTOCOLS, PRECISIONS
from latent_transforms.transforms.base import VALUE_RANGES

__all__ = [
    "NOISE_MODES",
    "PRESETS",
    "DiffusionSampleConfig",
    "LatentAugmentConfig",
    "SG2SampleConfig",
    "field_metadata",
]

#: ``"const"``: the generator's stored noise maps (deterministic); ``"random"``: fresh maps per sample,
#: drawn from the transform's generator; ``"none"``: no noise.
NOISE_MODES = ("const", "random", "none")


def _probability(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= float(value) <= 1.0:
        raise ConfigError(f"{name} must be a probability in [0, 1], got {value!r}.")
    return float(value)


def _weight(name: str, value: Any) -> float:
    return check_number(name, value, low=0.0)


def _positive(name: str, value: Any) -> float:
    return check_number(name, value, low=0.0, low_open=True)


def _label(name: str, value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{name} must be a non-empty string, got {value!r}.")
    return value


def _optional_name(name: str, value: Any) -> str | None:
    if value is not None and not isinstance(value, str):
        raise ConfigError(
            f"{name} must be None or a network name ('efficientnet-lite0', 'vgg16', 'discriminator'), got "
            f"{type(value).__name__} (a module is passed to the transform itself)."
        )
    return value


def _options(name: str, value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise ConfigError(
            f"{name} must be a mapping of Projector options (e.g. {{'steps': 200}}), got "
            f"{type(value).__name__}."
        )
    return dict(value)


def _choice(choices: Sequence[Any]) -> Callable[[str, Any], Any]:
    return lambda name, value: check_choice(name, value, choices)


def _metadata(
    check: Callable[[str, Any], Any],
    *,
    symbol: str | None = None,
    grid: tuple[float | int, ...] | None = None,
    searched: str = "always",
    policy: bool = True,
    aliases: tuple[str, ...] = (),
) -> dict[str, Any]:
    """What the rest of the library reads about a hyper-parameter field (see :func:`field_metadata`)."""
    metadata: dict[str, Any] = {"check": check, "policy": policy, "aliases": aliases}
    if symbol is not None:
        metadata["symbol"] = symbol
    if grid is not None:
        metadata["grid"] = grid
        metadata["searched"] = searched
    return metadata


def _hp(default: Any, check: Callable[[str, Any], Any], **metadata: Any) -> Any:
    """A hyper-parameter field with an immutable default: the default, its check and its metadata."""
    return field(default=default, metadata=_metadata(check, **metadata))


def field_metadata(config: type | object, key: str) -> dict[str, Any]:
    """``{field name: metadata[key]}`` for the fields of a config class that have ``key``, in order.

    Example:
        >>> field_metadata(LatentAugmentConfig, "symbol")["lr"]
        'η'
        >>> list(field_metadata(SG2SampleConfig, "aliases"))[:2]
        ['truncation_psi', 'truncation_cutoff']
    """
    return {f.name: f.metadata[key] for f in fields(config) if key in f.metadata}  # type: ignore[arg-type]


class _ConfigMapping(Mapping[str, Any]):
    """Read-only mapping behaviour and the field checks shared by the config dataclasses."""

    def __post_init__(self) -> None:
        for f in fields(self):  # type: ignore[arg-type]
            check = f.metadata.get("check")
            if check is not None:
                object.__setattr__(self, f.name, check(f.name, getattr(self, f.name)))

    def __getitem__(self, name: str) -> Any:
        if name not in self.names():
            raise KeyError(name)
        return getattr(self, name)

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self.names())

    @classmethod
    def names(cls) -> list[str]:
        """The field names, in order."""
        return [f.name for f in fields(cls)]  # type: ignore[arg-type]

    def replace(self, **changes: Any) -> Any:
        """A copy with ``changes`` (checked like the constructor's arguments)."""
        unknown = sorted(set(changes) - set(self.names()))
        if unknown:
            raise ConfigError(
                f"unknown {type(self).__name__} fields {unknown}; expected some of {self.names()}."
            )
        return dataclasses.replace(self, **changes)  # type: ignore[type-var]

    def to_dict(self) -> dict[str, Any]:
        """The fields as a JSON-able dict."""
        return {name: json.loads(json.dumps(getattr(self, name), default=str)) for name in self.names()}


@dataclass(frozen=True, repr=True)
class LatentAugmentConfig(_ConfigMapping):
    """LatentAugment's hyper-parameters (Tronchin et al. 2023): one frozen, checked value.

    The defaults are the paper's F1-tuned set (``PRESETS["f1"]``); ``PRESETS["mae"]`` is the MAE-tuned set.
    The walk reads ``steps`` ... ``alpha_lat``, ``patch_protocol``, ``alpha_task`` and ``precision``; the
    transform the rest.

    Attributes:
        preset: the preset these values started from (``"f1"`` or ``"mae"``; a label, recorded in
            ``LatentAugment.config()``).
        steps: ``K``, Adam steps (≥ 0).
        lr: ``η``, Adam's learning rate (> 0).
        alpha_f: weight of the fidelity term ``softplus(−D(G(w)))``.
        alpha_pix: weight of the pixel diversity term (subtracted).
        alpha_perc: weight of the perceptual diversity term (subtracted).
        alpha_lat: weight of the latent diversity term (subtracted).
        p: probability that a sample is augmented (the paper's ``p_aug`` is ``1 - p``).
        perceptual: the perceptual network's name (``None``: the statistics' own).
        patch_protocol: which patches the perceptual term compares: ``"same-position"`` (default: a new
            grid position each step, against the real patches at that position) or ``"authors"`` (the
            authors' code: one position per walk inside the centre square of side ``R/√2``, against the
            pool of the real patches at the centre-square positions).
        alpha_task: weight of a task loss (the transform's ``task_loss``).
        differentiable: keep the output's graph to the final latents.
        on_missing: ``"invert"`` or ``"raise"`` for images without a cached latent.
        projector: options of the projector that inverts cache misses.
        precision: ``"fp32"`` or ``"bf16"`` (CUDA autocast for the networks).
        value_range: what float inputs mean (``"physical"``, ``"unit"``, ``"generator"``).

    Field metadata: ``symbol`` (the paper's name, for plots), ``grid`` (the paper's search grid;
    ``searched="downstream"`` for ``p``, tuned only against a downstream task), ``policy`` (an evaluation
    policy spec may set it) and ``check``.

    Example:
        >>> f1 = PRESETS["f1"]
        >>> PRESETS["mae"].alpha_pix, f1["p"]  # attributes, or keys of a mapping
        (3.0, 0.2)
        >>> tuned = PRESETS["f1"].replace(steps=3)
        >>> tuned.steps, tuned.preset, dict(tuned)["lr"]
        (3, 'f1', 0.01)
        >>> LatentAugmentConfig(alpha_pix=-1)
        Traceback (most recent call last):
        ...
        latent_transforms.errors.ConfigError: alpha_pix must be a finite number >= 0; got -1.
    """

    preset: str = _hp("f1", _label, policy=True)
    steps: int = _hp(9, lambda n, v: check_int(n, v, low=0), symbol="K", grid=(3, 6, 9))
    lr: float = _hp(0.01, _positive, symbol="η", grid=(0.001, 0.003, 0.01, 0.03, 0.1))
    alpha_f: float = _hp(0.01, _weight, symbol="α_f", grid=(0.0, 0.01, 0.03, 0.1, 0.3, 1.0))
    alpha_pix: float = _hp(0.1, _weight, symbol="α_pix", grid=(0.0, 0.1, 0.3, 1.0, 3.0, 10.0))
    alpha_perc: float = _hp(10.0, _weight, symbol="α_perc", grid=(0.0, 0.1, 0.3, 1.0, 3.0, 10.0))
    alpha_lat: float = _hp(0.001, _weight, symbol="α_lat", grid=(0.0, 0.001, 0.003, 0.01, 0.03, 0.1))
    # p = 1 - p_aug for the paper's p_aug in {0, 0.1, ..., 0.9}; searched against a downstream task only.
    # Every evaluation policy runs with p = 1, so a spec may not set it.
    p: float = _hp(
        0.2,
        _probability,
        symbol="p",
        grid=tuple(round(1.0 - i / 10, 10) for i in range(10)),
        searched="downstream",
        policy=False,
    )
    perceptual: str | None = _hp(None, _optional_name)
    patch_protocol: str = _hp("same-position", _choice(PATCH_PROTOCOLS))
    # A task loss and a graph to the latents are a training loop's business, not an evaluation's.
    alpha_task: float = _hp(1.0, _weight, policy=False)
    differentiable: bool = _hp(False, lambda n, v: bool(v), policy=False)
    on_missing: str = _hp("invert", _choice(ON_MISSING))
    projector: dict[str, Any] | None = field(
        default=None, hash=False, metadata=_metadata(_options, policy=False)
    )
    precision: str = _hp("fp32", _choice(PRECISIONS))
    value_range: str = _hp("physical", _choice(VALUE_RANGES), policy=False)


#: The paper's two tuned hyper-parameter sets (Tronchin et al. 2023, Table II and §V-D), as
#: :class:`LatentAugmentConfig` instances. ``p`` is the probability of augmenting a sample, ``1 - p_aug``.
PRESETS: dict[str, LatentAugmentConfig] = {
    "f1": LatentAugmentConfig(preset="f1"),
    "mae": LatentAugmentConfig(preset="mae", alpha_pix=3.0, alpha_perc=1.0, alpha_lat=0.1, p=0.3),
}


def _finite(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigError(f"{name} must be a finite number (1 = no truncation), got {value!r}.")
    return float(value)


def _cutoff(name: str, value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigError(f"{name} must be None or an integer >= 0, got {value!r}.")
    return value


def _labels(name: str, value: Any) -> int | tuple[float, ...] | None:
    if isinstance(value, torch.Tensor):
        return tuple(float(v) for v in value.detach().flatten().tolist())
    if value is None or (isinstance(value, int) and not isinstance(value, bool)):
        return value
    if isinstance(value, Sequence) and not isinstance(value, str):
        return tuple(float(v) for v in value)
    raise ConfigError(f"{name} must be None, a class index or a label vector [c_dim], got {value!r}.")


@dataclass(frozen=True, repr=True)
class SG2SampleConfig(_ConfigMapping):
    """SG2Sample's hyper-parameters (the paper's "Standard SG2 DA", Tronchin et al. 2023).

    Attributes:
        truncation_psi: ``ψ``; 1 = no truncation, 0 = every sample is ``G(w_avg)`` (alias ``psi``).
        truncation_cutoff: truncate only the first this many layers of W+ (``None``: all; alias
            ``cutoff``).
        c: labels of a conditional bundle: ``None``, a class index, or a label vector (kept as a tuple).
        noise_mode: ``"const"``, ``"random"`` or ``"none"``.
        p: probability that a sample is replaced (default 0.3: the paper's best ``p_aug = 0.7``).
        precision: ``"fp32"`` or ``"bf16"``.
        value_range: what float inputs mean.

    Example:
        >>> SG2SampleConfig(truncation_psi=0.7, c=torch.tensor([0.0, 1.0])).c
        (0.0, 1.0)
        >>> SG2SampleConfig(noise_mode="fresh")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        latent_transforms.errors.ConfigError: noise_mode must be one of ('const', 'random', 'none'); ...
    """

    truncation_psi: float = _hp(1.0, _finite, symbol="ψ", aliases=("psi",))
    truncation_cutoff: int | None = _hp(None, _cutoff, aliases=("cutoff",))
    c: int | tuple[float, ...] | None = _hp(None, _labels)
    noise_mode: str = _hp("const", _choice(NOISE_MODES))
    p: float = _hp(0.3, _probability, policy=False)
    precision: str = _hp("fp32", _choice(PRECISIONS), policy=False)
    value_range: str = _hp("physical", _choice(VALUE_RANGES), policy=False)


def _class_index(name: str, value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigError(f"{name} must be None or a class index >= 0, got {value!r}.")
    return value


def _any_finite(name: str, value: Any) -> float:
    return check_number(name, value)


@dataclass(frozen=True, repr=True)
class DiffusionSampleConfig(_ConfigMapping):
    """DiffusionSample's hyper-parameters: the diffusion counterpart of :class:`SG2SampleConfig`.

    Attributes:
        steps: DDIM denoising steps (Song et al. 2021; more is slower and closer to DDPM). DDPM always
            runs every training timestep.
        sampler: ``"ddim"`` (default) or ``"ddpm"`` (Ho et al. 2020, ancestral, every timestep).
        eta: DDIM's noise weight (0: deterministic given the starting noise).
        guidance: classifier-free guidance weight (Ho & Salimans 2022; 1 = none; needs a conditional
            bundle trained with a "no class" label).
        c: the class of every sample of a conditional bundle (``None``: drawn uniformly per sample, or the
            call's labels).
        p: probability that a sample is replaced (default 0.3, as :class:`SG2SampleConfig`).
        precision: ``"fp32"`` or ``"bf16"`` (CUDA autocast for the UNet).
        value_range: what float inputs mean.

    Example:
        >>> DiffusionSampleConfig(steps=25).replace(guidance=2.0)  # doctest: +NORMALIZE_WHITESPACE
        DiffusionSampleConfig(steps=25, sampler='ddim', eta=0.0, guidance=2.0, c=None, p=0.3,
                              precision='fp32', value_range='physical')
        >>> DiffusionSampleConfig(sampler="euler")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        latent_transforms.errors.ConfigError: sampler must be one of ('ddim', 'ddpm'); ...
    """

    steps: int = _hp(50, lambda n, v: check_int(n, v, low=1))
    sampler: str = _hp("ddim", _choice(SAMPLERS))
    eta: float = _hp(0.0, _weight, symbol="η")
    guidance: float = _hp(1.0, _any_finite, symbol="w")
    c: int | None = _hp(None, _class_index)
    p: float = _hp(0.3, _probability, policy=False)
    precision: str = _hp("fp32", _choice(PRECISIONS), policy=False)
    value_range: str = _hp("physical", _choice(VALUE_RANGES), policy=False)
