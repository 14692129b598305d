"""Policy specs for ``latent-transforms evaluate``: the strings a user types, parsed and built.

A spec is ``NAME`` or ``NAME:key=value,key=value``; ``--synthetic`` may be given many times:

- ``sg2sample:psi=0.7``: random GAN samples with truncation ψ (``cutoff``, ``noise_mode`` also taken);
- ``diffusion:bundle=PATH,steps=50``: random samples of a diffusion bundle (a folder, ``builtin:<name>`` or
  Hub id; default: the evaluation's own generator when it is a diffusion bundle), DDIM with ``steps``
  steps (``sampler=ddpm``, ``eta``, ``guidance``, ``c`` also taken);
- ``latentaugment:preset=f1`` / ``latentaugment:preset=mae``: LatentAugment with the paper's F1- or
  MAE-tuned set, plus any constructor overrides (``steps=3,alpha_f=0.1,perceptual=discriminator``);
- ``latentaugment:config=best_config.json``: a JSON file written from ``LatentAugment.config()``;
- ``standardda``: flip, rotation, translation and elastic deformation (``rotate=5,elastic=none``, ...);
- ``real``: the training images themselves, the no-augmentation reference row;
- ``dir:PATH`` (or just ``PATH`` of an existing folder): a fixed set of synthetic images, as written by
  ``latent-transforms augment``.

Every spec takes ``name=...`` for its display name. Every policy is evaluated with ``p = 1`` (all samples
augmented) and ``value_range="generator"`` (images in ``[-1, 1]``); a spec that sets ``p`` or
``value_range`` is refused.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from latent_transforms.errors import ConfigError
from latent_transforms.transforms.config import (
    PRESETS,
    DiffusionSampleConfig,
    LatentAugmentConfig,
    SG2SampleConfig,
    field_metadata,
)
from latent_transforms.transforms.standard_da import StandardDA

if TYPE_CHECKING:
    from latent_transforms.generative.bundle import DiffusionBundle
    from latent_transforms.inversion.cache import LatentCache
    from latent_transforms.networks.bundle import GanBundle
    from latent_transforms.objectives.stats import DatasetStats
    from latent_transforms.transforms.base import RandomTransform

__all__ = [
    "POLICY_KINDS",
    "PolicySpec",
    "load_sample_folder",
    "parse_policies",
    "parse_policy",
]

#: The policy kinds a spec can name, with the names (and aliases) that select them.
POLICY_KINDS: dict[str, tuple[str, ...]] = {
    "sg2sample": ("sg2sample", "sg2", "standard-sg2", "stylegan2"),
    "diffusion": ("diffusion", "diffusionsample", "diffusion-sample"),
    "latentaugment": ("latentaugment", "latent-augment", "la"),
    "standardda": ("standardda", "standard-da", "standard"),
    "real": ("real", "none", "no-augmentation"),
    "directory": ("dir", "folder"),
}
_ALIASES = {alias: kind for kind, aliases in POLICY_KINDS.items() for alias in aliases}
# The `latent-transforms augment --policy` names, so one vocabulary works for both commands.
_ALIASES["latent-augment-mae"] = "latentaugment"


def _spec_keys(config_class: type) -> dict[str, str]:
    """``{option name or alias: constructor argument}`` for the config fields a spec may set (their
    ``policy`` metadata; ``p`` and ``value_range`` are fixed for every policy)."""
    keys: dict[str, str] = {}
    for name, allowed in field_metadata(config_class, "policy").items():
        if allowed:
            keys[name] = name
            keys.update(dict.fromkeys(field_metadata(config_class, "aliases")[name], name))
    return keys


def _constructor_options(cls: type) -> tuple[str, ...]:
    """A transform's keyword arguments a spec may set: all but ``p``, ``seed`` and ``device``."""
    names = inspect.signature(cls.__init__).parameters
    return tuple(n for n in names if n not in ("self", "p", "seed", "device"))


_SG2_KEYS = _spec_keys(SG2SampleConfig)
_DIFFUSION_KEYS = ("bundle", *_spec_keys(DiffusionSampleConfig))
_LA_KEYS = ("config", *_spec_keys(LatentAugmentConfig))
_SDA_KEYS = _constructor_options(StandardDA)
_FORCED = ("p", "prob", "value_range")


def _value(text: str) -> Any:
    """A spec value: ``none``/``true``/``false``, an int, a float, or the string itself."""
    low = text.strip().lower()
    if low in ("none", "null", "off"):
        return None
    if low in ("true", "yes", "on"):
        return True
    if low == "false" or low == "no":
        return False
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text.strip()


def _psi_text(value: float) -> str:
    """ψ as typed in papers: at least one decimal (``1.0``, ``0.7``, ``0.25``)."""
    text = f"{value:g}"
    return text if "." in text or "e" in text else f"{value:.1f}"


def _number(value: Any) -> str:
    """A compact display of an option value (``0.7``, ``3``, ``f1``)."""
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


@dataclass
class PolicySpec:
    """One parsed ``--synthetic`` spec: what to build and how to call it in the report.

    Attributes:
        spec: the text the user typed.
        kind: ``"sg2sample"``, ``"diffusion"``, ``"latentaugment"``, ``"standardda"``, ``"real"`` or
            ``"directory"``.
        options: the ``key=value`` options (transform constructor arguments, in their own names).
        name: the display name (report rows, plot labels).
        path: the folder of a ``"directory"`` spec (``None`` otherwise).

    Example:
        >>> s = parse_policy("sg2sample:psi=0.7")
        >>> s.kind, s.options, s.name, s.family
        ('sg2sample', {'truncation_psi': 0.7}, 'SG2Sample ψ=0.7', 'SG2Sample')
        >>> s.needs_sources, parse_policy("latentaugment:preset=mae").needs_latents
        (False, True)
    """

    spec: str
    kind: str
    options: dict[str, Any] = field(default_factory=dict)
    name: str = ""
    path: Path | None = None

    @property
    def family(self) -> str:
        """The method family, for grouping in plots: ``SG2Sample``, ``Diffusion``, ``LatentAugment``,
        ``StandardDA``, ``real`` or ``directory``."""
        return {
            "sg2sample": "SG2Sample",
            "diffusion": "Diffusion",
            "latentaugment": "LatentAugment",
            "standardda": "StandardDA",
        }.get(self.kind, self.kind)

    @property
    def needs_sources(self) -> bool:
        """Whether the policy transforms real source images (LatentAugment, StandardDA)."""
        return self.kind in ("latentaugment", "standardda")

    @property
    def needs_latents(self) -> bool:
        """Whether the sources' inverted latents are needed (LatentAugment)."""
        return self.kind == "latentaugment"

    @property
    def is_fixed_set(self) -> bool:
        """Whether the samples are a fixed set of images (``real``, a folder) rather than a transform."""
        return self.kind in ("real", "directory")

    @property
    def psi(self) -> float | None:
        """The truncation ψ of an SG2Sample spec (1.0 when not given), else ``None``."""
        if self.kind != "sg2sample":
            return None
        return float(self.options.get("truncation_psi", 1.0))

    def build(
        self,
        bundle: GanBundle | DiffusionBundle,
        *,
        cache: LatentCache | str | Path | None = None,
        stats: DatasetStats | str | Path | None = None,
        seed: int = 0,
        device: torch.device | str | None = None,
    ) -> RandomTransform | None:
        """The transform, with ``p = 1`` and ``value_range="generator"``; ``None`` for a fixed set.

        Args:
            bundle: the evaluation's generator: the GAN bundle (a diffusion bundle serves ``diffusion``
                specs without ``bundle=``, ``standardda`` and the fixed sets).
            cache: the sources' latent cache (LatentAugment).
            stats: the sources' :class:`~latent_transforms.DatasetStats` (LatentAugment; default: the
                cache folder's ``stats.safetensors``).
            seed: seed of the transform's generator.
            device: where the transform runs.

        Example:
            >>> from latent_transforms import GanBundle, GanConfig
            >>> bundle = GanBundle.random(GanConfig(resolution=16, channel_base=256, channel_max=32))
            >>> parse_policy("sg2sample:psi=0.3").build(bundle).truncation_psi
            0.3
            >>> parse_policy("standardda:rotate=5").build(bundle)  # doctest: +NORMALIZE_WHITESPACE
            StandardDA(p=1.0, flip=True, rotate=5.0, translate=0.05, elastic=(63, 32.0), elastic_alpha=2.0,
                       fill='min', seed=0, device=None)
            >>> parse_policy("real").build(bundle) is None
            True
        """
        from latent_transforms.networks.bundle import GanBundle

        if self.kind in ("sg2sample", "latentaugment") and not isinstance(bundle, GanBundle):
            raise ConfigError(
                f"policy spec {self.spec!r} needs a GAN bundle, but the evaluation's generator is a "
                f"{type(bundle).__name__}. Fix: --gan a StyleGAN2 bundle, and the diffusion bundle as "
                "--synthetic diffusion:bundle=PATH."
            )
        if self.kind == "sg2sample":
            from latent_transforms.transforms.sg2sample import SG2Sample

            return SG2Sample(bundle, **self.options, p=1.0, seed=seed, value_range="generator", device=device)
        if self.kind == "diffusion":
            return self._build_diffusion(bundle, seed=seed, device=device)
        if self.kind == "standardda":
            from latent_transforms.transforms.standard_da import StandardDA

            return StandardDA(**self.options, p=1.0, seed=seed, device=device)
        if self.kind == "latentaugment":
            from latent_transforms.transforms.latent_augment import LatentAugment

            options = dict(self.options)
            options.setdefault("on_missing", "raise")  # sources are inverted ahead: a miss is a bug
            fixed = {"p": 1.0, "value_range": "generator", "seed": seed, "device": device}
            config = options.pop("config", None)
            if config is not None:
                return LatentAugment.from_config(config, bundle, cache, stats, **options, **fixed)
            return LatentAugment(bundle, cache, stats, **options, **fixed)
        return None

    def _build_diffusion(
        self, bundle: GanBundle | DiffusionBundle, *, seed: int, device: torch.device | str | None
    ) -> RandomTransform:
        """The ``DiffusionSample`` of a ``diffusion`` spec, checked against the evaluation's channels."""
        from latent_transforms.generative.bundle import DiffusionBundle, load_diffusion
        from latent_transforms.transforms.diffusion_sample import DiffusionSample

        options = dict(self.options)
        source = options.pop("bundle", None)
        if source is not None:
            diffusion = load_diffusion(source, device=device if device is not None else "cpu")
        elif isinstance(bundle, DiffusionBundle):
            diffusion = bundle
        else:
            raise ConfigError(
                f"policy spec {self.spec!r} names no diffusion bundle and the evaluation's generator is a "
                "GAN. Fix: diffusion:bundle=PATH (a folder, builtin:<name> or Hub id)."
            )
        wanted = (list(bundle.modalities), bundle.resolution)
        if (list(diffusion.modalities), diffusion.resolution) != wanted:
            raise ConfigError(
                f"policy spec {self.spec!r}: the diffusion bundle makes {diffusion.modalities} at "
                f"{diffusion.resolution} px, the evaluation measures {wanted[0]} at {wanted[1]} px. Fix: a "
                "diffusion bundle trained on the same channels and resolution."
            )
        return DiffusionSample(diffusion, **options, p=1.0, seed=seed, value_range="generator", device=device)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able description (spec, kind, options, name, path).

        Example:
            >>> parse_policy("latentaugment:preset=f1,steps=3").to_dict()["options"]
            {'preset': 'f1', 'steps': 3}
        """
        return {
            "spec": self.spec,
            "kind": self.kind,
            "options": json.loads(json.dumps(self.options, default=str)),
            "name": self.name,
            "path": str(self.path) if self.path is not None else None,
        }


def _split_options(text: str, spec: str) -> dict[str, Any]:
    options: dict[str, Any] = {}
    for part in [p for p in text.split(",") if p.strip()]:
        if "=" not in part:
            raise ConfigError(
                f"policy spec {spec!r}: expected key=value options after ':', got {part!r}. "
                "Fix: write e.g. 'sg2sample:psi=0.7' or 'latentaugment:preset=f1,steps=3'."
            )
        key, value = part.split("=", 1)
        key = key.strip().lower().replace("-", "_")
        if key in options:
            raise ConfigError(f"policy spec {spec!r}: option {key!r} is given twice. Fix: give it once.")
        options[key] = value.strip()
    return options


def _unknown(spec: str, kind: str, keys: Sequence[str], known: Sequence[str]) -> None:
    forced = [k for k in keys if k in _FORCED]
    if forced:
        raise ConfigError(
            f"policy spec {spec!r}: {forced} cannot be set; every policy is evaluated with p = 1 (all "
            "samples augmented) and value_range='generator'. Fix: drop the option."
        )
    unknown = [k for k in keys if k not in known]
    if unknown:
        raise ConfigError(
            f"policy spec {spec!r}: unknown option(s) {unknown} for {kind}; expected some of "
            f"{sorted(set(known))}. Fix: use one of those names."
        )


def _elastic(value: Any, spec: str) -> Any:
    if value is None or value is False or value == 0:
        return None
    text = str(value)
    try:
        kernel, sigma = text.split("/")
        return (int(kernel), float(sigma))
    except ValueError:
        raise ConfigError(
            f"policy spec {spec!r}: elastic takes KERNEL/SIGMA in pixels at 256 px (e.g. 63/32) or none, "
            f"got {text!r}. Fix: write elastic=63/32 or elastic=none."
        ) from None


def parse_policy(spec: str) -> PolicySpec:
    """Parse one ``--synthetic`` spec (see the module docstring for the grammar).

    Raises:
        ConfigError: an unknown policy name or option, a ``p``/``value_range`` option, a missing folder or
            config file, or a malformed ``key=value``.

    Example:
        >>> parse_policy("latentaugment:preset=mae").name
        'LatentAugment (MAE)'
        >>> parse_policy("latentaugment:preset=f1,steps=3,alpha_f=0.1").name
        'LatentAugment (F1, steps=3, alpha_f=0.1)'
        >>> parse_policy("standardda:elastic=none").options
        {'elastic': None}
        >>> parse_policy("real").name, parse_policy("sg2sample:psi=1,name=SG2 full").name
        ('real (training images)', 'SG2 full')
        >>> parse_policy("latentaugment:p=0.5")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        latent_transforms.errors.ConfigError: policy spec 'latentaugment:p=0.5': ['p'] cannot be set; ...
    """
    if not isinstance(spec, str) or not spec.strip():
        raise ConfigError(
            f"expected a policy spec such as 'sg2sample:psi=0.7', got {spec!r}. Fix: see "
            "latent-transforms evaluate --help."
        )
    text = spec.strip()
    head, _, rest = text.partition(":")
    kind = _ALIASES.get(head.strip().lower())
    if kind is None or kind == "directory":
        folder = Path(rest if kind == "directory" else text).expanduser()
        if kind == "directory" or folder.is_dir():
            if not folder.is_dir():
                raise ConfigError(
                    f"policy spec {spec!r}: {str(folder)!r} is not a folder. Fix: give the folder "
                    "'latent-transforms augment --out' wrote."
                )
            return PolicySpec(text, "directory", {}, folder.name or str(folder), folder)
        names = sorted(k for k in POLICY_KINDS if k != "directory")
        raise ConfigError(
            f"unknown policy {head!r} in spec {spec!r}; expected one of {names}, dir:PATH or an existing "
            "folder of synthetic images. Fix: e.g. --synthetic sg2sample:psi=0.7."
        )
    raw = _split_options(rest, spec)
    name = raw.pop("name", None)
    options: dict[str, Any] = {}
    label = ""
    if kind == "diffusion":
        _unknown(spec, kind, list(raw), list(_DIFFUSION_KEYS))
        options = {k: _value(v) for k, v in raw.items()}
        if "bundle" in raw:
            options["bundle"] = raw["bundle"]  # a path or repo id, never a number
        if "sampler" in options:
            options["sampler"] = str(raw["sampler"]).lower()
        sampler = str(options.get("sampler", "ddim"))
        steps = options.get("steps", DiffusionSampleConfig.steps)
        where = Path(str(options["bundle"])).name if "bundle" in options else "the evaluation's bundle"
        extra = [f"{k}={_number(v)}" for k, v in options.items() if k not in ("bundle", "steps", "sampler")]
        label = f"Diffusion ({', '.join([where, 'DDPM' if sampler == 'ddpm' else f'DDIM {steps}', *extra])})"
    elif kind == "sg2sample":
        _unknown(spec, kind, list(raw), list(_SG2_KEYS))
        for key, value in raw.items():
            options[_SG2_KEYS[key]] = _value(value)
        if isinstance(options.get("noise_mode"), (int, float)):
            options["noise_mode"] = str(raw["noise_mode"])
        psi = options.get("truncation_psi", 1.0)
        if isinstance(psi, bool) or not isinstance(psi, (int, float)):
            raise ConfigError(f"policy spec {spec!r}: psi must be a number in [0, 1], got {psi!r}.")
        options.setdefault("truncation_psi", float(psi))
        options["truncation_psi"] = float(options["truncation_psi"])
        extra = [f"{k}={_number(v)}" for k, v in options.items() if k != "truncation_psi"]
        label = f"SG2Sample ψ={_psi_text(options['truncation_psi'])}" + (
            f" ({', '.join(extra)})" if extra else ""
        )
    elif kind == "latentaugment":
        _unknown(spec, kind, list(raw), _LA_KEYS)
        options = {k: _value(v) for k, v in raw.items()}
        if head.strip().lower() == "latent-augment-mae":
            options.setdefault("preset", "mae")
        if "config" in options:
            if "preset" in options:
                raise ConfigError(
                    f"policy spec {spec!r}: give preset= or config=, not both (the config holds its preset)."
                )
            options["config"] = str(raw["config"])
            path = Path(options["config"]).expanduser()
            if not path.is_file():
                raise ConfigError(
                    f"policy spec {spec!r}: no LatentAugment config file at {str(path)!r}. Fix: write one "
                    "with json.dump(transform.config(), open('best_config.json', 'w'))."
                )
            options["config"] = str(path)
            base = path.name
        else:
            preset = str(options.get("preset", "f1")).lower()
            if preset not in PRESETS:
                raise ConfigError(
                    f"policy spec {spec!r}: preset must be one of {sorted(PRESETS)}, got {preset!r}."
                )
            options["preset"] = preset
            base = preset.upper()
        extra = [f"{k}={_number(v)}" for k, v in options.items() if k not in ("preset", "config")]
        label = f"LatentAugment ({', '.join([base, *extra])})"
    elif kind == "standardda":
        _unknown(spec, kind, list(raw), _SDA_KEYS)
        options = {k: _value(v) for k, v in raw.items()}
        if "elastic" in options:
            options["elastic"] = _elastic(options["elastic"], spec)
        extra = [f"{k}={_number(v)}" for k, v in raw.items()]
        label = "StandardDA" + (f" ({', '.join(extra)})" if extra else "")
    else:  # real
        _unknown(spec, kind, list(raw), [])
        label = "real (training images)"
    return PolicySpec(text, kind, options, str(name) if name else label)


def parse_policies(specs: Sequence[str | PolicySpec]) -> list[PolicySpec]:
    """Parse several specs (parsed ones pass through); display names must be unique.

    Example:
        >>> tuple(p.name for p in parse_policies(["sg2sample:psi=0.3", "sg2sample:psi=1.0"]))
        ('SG2Sample ψ=0.3', 'SG2Sample ψ=1.0')
    """
    if isinstance(specs, str):
        specs = [specs]
    if not specs:
        raise ConfigError(
            "expected at least one policy spec, got none. Fix: --synthetic sg2sample:psi=0.7 "
            "--synthetic latentaugment:preset=f1."
        )
    parsed = [s if isinstance(s, PolicySpec) else parse_policy(s) for s in specs]
    seen: dict[str, str] = {}
    for p in parsed:
        if p.name in seen:
            raise ConfigError(
                f"policy specs {seen[p.name]!r} and {p.spec!r} have the same display name {p.name!r}. "
                "Fix: drop the duplicate or add name=... to one of them."
            )
        seen[p.name] = p.spec
    return parsed


def load_sample_folder(
    folder: str | Path,
    bundle: GanBundle,
    *,
    n: int | None = None,
) -> torch.Tensor:
    """Read a folder of synthetic paired slices (``latent-transforms augment`` output) as images.

    The folder holds one sub-folder per modality of the bundle (NPZ/NPY in physical units, or 8-bit PNG);
    values are mapped to ``[-1, 1]`` with the bundle's intensity windows (``[0, 255]`` for 8-bit PNG) and
    resized to the bundle's resolution.

    Args:
        folder: the folder.
        bundle: the GAN bundle (modalities, windows, resolution).
        n: take ``n`` images spread evenly over the folder (default: all).

    Returns:
        ``[N, C, R, R]`` float32 in ``[-1, 1]`` on CPU.

    Example:
        >>> import tempfile
        >>> from latent_transforms import GanBundle, GanConfig
        >>> from latent_transforms.data import PelvisPhantom
        >>> from latent_transforms.export import augment_dataset
        >>> bundle = GanBundle.random(GanConfig(resolution=16, channel_base=256, channel_max=32))
        >>> with tempfile.TemporaryDirectory() as d:
        ...     _ = augment_dataset(bundle, PelvisPhantom(1, 3, resolution=16), lambda x: x, d, n=3,
        ...                         progress=False)
        ...     load_sample_folder(d, bundle).shape
        torch.Size([3, 2, 16, 16])
    """
    from latent_transforms.data.items import stack_modalities
    from latent_transforms.data.slice_folder import PairedSliceFolder
    from latent_transforms.evaluation.real_data import evenly_spread

    root = Path(folder)
    if not root.is_dir():
        raise ConfigError(f"expected a folder of synthetic slices, got {str(root)!r}. Fix: check the path.")
    dataset = PairedSliceFolder(root, modalities=tuple(bundle.modalities), resolution=bundle.resolution)
    if len(dataset) == 0:
        raise ConfigError(f"the folder {str(root)!r} holds no slices.")
    manifest_windows: Mapping[str, Any] = {}
    manifest = root / "augment.json"
    if manifest.is_file():
        manifest_windows = json.loads(manifest.read_text(encoding="utf-8")).get("windows", {}) or {}
    from latent_transforms.data.windows import IntensityWindow

    windows = []
    for m in bundle.config.modalities:
        if dataset.windows is not None:
            windows.append(dataset.windows[m.name])
        elif m.name in manifest_windows:
            windows.append(IntensityWindow.from_dict(manifest_windows[m.name]))
        else:
            windows.append(m.window)
    picks = evenly_spread(len(dataset), n if n is not None else len(dataset))
    images = [stack_modalities(dataset[i], bundle.modalities, windows) for i in picks]
    return torch.stack(images).float().clamp(-1.0, 1.0)
