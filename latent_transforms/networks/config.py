"""The architecture of a GAN bundle: what ``config.json`` describes and the networks are built from."""

from __future__ import annotations

import dataclasses
import json
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from latent_transforms.data.windows import IntensityWindow
from latent_transforms.errors import ConfigError
from latent_transforms.files import atomic_write

CONFIG_FORMAT_VERSION = 1
_NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_\-]*$")


@dataclass(frozen=True)
class Modality:
    """One image channel of a paired GAN: its name and the window that maps it to ``[-1, 1]``.

    Example:
        >>> Modality("ct", IntensityWindow(-1000, 2000, "HU"))
        Modality(name='ct', window=IntensityWindow(low=-1000, high=2000, unit='HU'))
    """

    name: str
    window: IntensityWindow = field(default_factory=lambda: IntensityWindow(-1.0, 1.0))

    def __post_init__(self) -> None:
        if not _NAME_RE.match(self.name):
            raise ConfigError(
                f"modality name {self.name!r} is not a valid identifier: use letters, digits, '_' or '-', "
                "starting with a letter (e.g. 'mri', 'ct')."
            )

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "window": self.window.to_dict()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Modality:
        return cls(str(data["name"]), IntensityWindow.from_dict(data.get("window", {"low": -1, "high": 1})))


#: The JSON type each ``config.json`` key takes and an example value, for the errors of ``from_dict``.
_JSON_TYPES: dict[str, tuple[str, str]] = {
    **{
        key: ("int", example)
        for key, example in [
            ("resolution", "64"),
            ("z_dim", "512"),
            ("w_dim", "512"),
            ("c_dim", "0"),
            ("mapping_layers", "2"),
            ("channel_base", "16384"),
            ("channel_max", "512"),
            ("d_mapping_layers", "8"),
            ("mbstd_group_size", "4"),
            ("mbstd_channels", "1"),
        ]
    },
    "d_channel_base": ("int|null", "null"),
    "d_channel_max": ("int|null", "null"),
    "mapping_lr_multiplier": ("number", "0.01"),
    "w_avg_beta": ("number", "0.995"),
    "conv_clamp": ("number|null", "256.0"),
    "training": ("object", '{"kimg": 60}'),
    "modalities": ("array", '[{"name": "mri", "window": {"low": 0, "high": 1900}}]'),
}
_TYPE_WORDS = {
    "int": "an integer",
    "int|null": "an integer or null",
    "number": "a number",
    "number|null": "a number or null",
    "object": "a JSON object",
    "array": "a JSON array",
}


def _json_kind(value: Any) -> str:
    """How a JSON value reads in an error message: ``the string 'x'``, ``a list``, ``true``..."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "the boolean " + ("true" if value else "false")
    if isinstance(value, str):
        return f"the string {value!r:.60}"
    if isinstance(value, int | float):
        return f"the number {value!r}"
    if isinstance(value, list | tuple):
        return f"an array ({len(value)} items)"
    if isinstance(value, dict):
        return "an object"
    return f"a {type(value).__name__}"


def _matches(kind: str, value: Any) -> bool:
    if value is None:
        return kind.endswith("|null")
    base = kind.split("|")[0]
    if isinstance(value, bool):
        return False
    if base == "int":
        return isinstance(value, int)
    if base == "number":
        return isinstance(value, int | float) and math.isfinite(value)
    if base == "object":
        return isinstance(value, dict)
    return isinstance(value, list | tuple)


def _check_json_type(key: str, value: Any) -> None:
    """Raise :class:`ConfigError` naming ``key``, the expected type and an example unless ``value`` fits."""
    kind, example = _JSON_TYPES[key]
    if not _matches(kind, value):
        raise ConfigError(
            f"config.json key {key!r} must be {_TYPE_WORDS[kind]} (e.g. {example}), got {_json_kind(value)}. "
            "Fix that value in config.json (the bundle's saved file is the reference)."
        )


def _modality_from_json(index: int, data: Any) -> Modality:
    """One entry of ``config.json``'s ``modalities``, checked: ``{"name": str, "window": {low, high}}``."""
    where = f"config.json modalities[{index}]"
    example = '{"name": "ct", "window": {"low": -1000, "high": 2000, "unit": "HU"}}'
    if not isinstance(data, dict) or not isinstance(data.get("name"), str):
        raise ConfigError(
            f"{where} must be an object with a string 'name' (e.g. {example}), got {_json_kind(data)}"
            + (f" with name {_json_kind(data.get('name'))}" if isinstance(data, dict) else "")
            + "."
        )
    window = data.get("window", {"low": -1, "high": 1})
    ok = (
        isinstance(window, dict)
        and all(_matches("number", window.get(k)) for k in ("low", "high"))
        and isinstance(window.get("unit", ""), str)
    )
    if not ok:
        shown = json.dumps(window, default=str)[:80] if isinstance(window, dict) else _json_kind(window)
        raise ConfigError(
            f"{where} ({data['name']!r}) has window {shown}; expected an object with numbers 'low' and "
            f"'high' and an optional string 'unit' (e.g. {example})."
        )
    return Modality.from_dict(data)


def check_modalities(modalities: tuple[Modality, ...], what: str) -> None:
    """Refuse a config without channels, or with two of one name; ``what`` names the model in the error.

    Example:
        >>> check_modalities((Modality("ct"), Modality("ct")), "a GAN")
        Traceback (most recent call last):
        ...
        latent_transforms.errors.ConfigError: modality names must be unique; got ['ct', 'ct'].
    """
    if not modalities:
        raise ConfigError(f"{what} needs at least one modality (image channel); got none.")
    names = [m.name for m in modalities]
    if len(set(names)) != len(names):
        raise ConfigError(f"modality names must be unique; got {names}.")


def pop_format_version(data: dict[str, Any]) -> int:
    """Remove ``format_version`` from ``data`` (a ``config.json`` read as a dict) and check that this
    library reads it (an integer, at most :data:`CONFIG_FORMAT_VERSION`; absent: the current one).

    Example:
        >>> data = {"format_version": 1, "resolution": 64}
        >>> pop_format_version(data), data
        (1, {'resolution': 64})
    """
    version = data.pop("format_version", CONFIG_FORMAT_VERSION)
    if not _matches("int", version):
        raise ConfigError(
            f"config.json key 'format_version' must be an integer (e.g. {CONFIG_FORMAT_VERSION}), got "
            f"{_json_kind(version)}. Fix that value in config.json."
        )
    if version > CONFIG_FORMAT_VERSION:
        raise ConfigError(
            f"config.json has format_version {version}, newer than this library understands "
            f"({CONFIG_FORMAT_VERSION}); upgrade with `pip install -U latent-transforms`."
        )
    return int(version)


def check_config_keys(data: dict[str, Any], known: Iterable[str]) -> None:
    """Refuse keys of ``data`` that are not ``known`` (the config's fields), listing both.

    Example:
        >>> check_config_keys({"resolution": 64, "depth": 3}, ["resolution"])  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        latent_transforms.errors.ConfigError: config.json has unknown keys ['depth']; known keys are ...
    """
    names = set(known)
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(f"config.json has unknown keys {unknown}; known keys are {sorted(names)}.")


def config_json(data: dict[str, Any], path: str | Path | None = None) -> str:
    """``data`` as the text of a ``config.json`` (indented, ending in a newline); also written
    (atomically) to ``path`` when given.

    Example:
        >>> config_json({"resolution": 64})
        '{\\n  "resolution": 64\\n}\\n'
    """
    text = json.dumps(data, indent=2) + "\n"
    if path is not None:
        atomic_write(path, text)
    return text


def read_config_json(path: str | Path) -> Any:
    """The JSON value in the file at ``path``; text that is not JSON is a :class:`ConfigError`.

    Example:
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as d:
        ...     _ = config_json({"resolution": 64}, f"{d}/config.json")
        ...     read_config_json(f"{d}/config.json")
        {'resolution': 64}
    """
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path} is not valid JSON ({exc}); re-save the bundle.") from exc


class Channels:
    """What a bundle config derives from its ``modalities`` (its image channels, in order); the base of
    :class:`GanConfig` and :class:`~latent_transforms.DiffusionConfig`.

    Example:
        >>> GanConfig(resolution=16, channel_base=128, channel_max=16).windows["ct"].unit
        'HU'
    """

    modalities: tuple[Modality, ...]

    @property
    def img_channels(self) -> int:
        """Number of image channels, ``len(modalities)``."""
        return len(self.modalities)

    @property
    def modality_names(self) -> list[str]:
        """Channel names in order, e.g. ``['image']`` or ``['mri', 'ct']``."""
        return [m.name for m in self.modalities]

    @property
    def windows(self) -> dict[str, IntensityWindow]:
        """``{modality name: IntensityWindow}``."""
        return {m.name: m.window for m in self.modalities}


#: The paper's windows (Tronchin et al. 2023, §IV-A): MRI clipped to [0, 1900], CT to [-1000, 2000] HU.
PAPER_MODALITIES: tuple[Modality, ...] = (
    Modality("mri", IntensityWindow(0.0, 1900.0, "")),
    Modality("ct", IntensityWindow(-1000.0, 2000.0, "HU")),
)


@dataclass(frozen=True)
class GanConfig(Channels):
    """Architecture of a StyleGAN2 generator/discriminator pair and the meaning of its channels.

    Images are ``[B, C, R, R]`` in ``[-1, 1]`` with ``C = len(modalities)`` and ``R = resolution``.
    The number of feature maps at resolution ``r`` is ``min(channel_base // r, channel_max)``, as in
    StyleGAN2. Defaults follow Tronchin et al. 2023, §IV-C (mapping depth 2, ``channel_base`` 16384) at
    256 px with the paper's MRI/CT windows.

    Args:
        resolution: output size, a power of two in ``[16, 1024]``.
        modalities: channel names and windows, in channel order.
        z_dim: size of the latent z.
        w_dim: size of the intermediate latent w.
        c_dim: number of classes for conditioning (0 = unconditional).
        mapping_layers: depth of the mapping network.
        mapping_lr_multiplier: equalised-lr multiplier of the mapping layers (StyleGAN2: 0.01).
        w_avg_beta: decay of the tracked ``w_avg`` during training.
        channel_base: generator feature maps at resolution r are ``min(channel_base // r, channel_max)``.
        channel_max: cap on the generator's feature maps.
        d_channel_base: the discriminator's ``channel_base`` (``None`` = the generator's).
        d_channel_max: the discriminator's ``channel_max`` (``None`` = the generator's).
        d_mapping_layers: depth of the discriminator's label-embedding network (conditional only).
        conv_clamp: clamp activations to ``±conv_clamp`` (``None`` = no clamp; StyleGAN2-ADA uses 256).
        mbstd_group_size: group size of the discriminator's minibatch-standard-deviation layer.
        mbstd_channels: channels that layer appends (0 = no minibatch std).
        training: free-form summary of how the GAN was trained (data, kimg, FID...), shown in the card.

    Example:
        >>> cfg = GanConfig(resolution=32, channel_base=512, channel_max=64, z_dim=32, w_dim=32)
        >>> cfg.img_channels, cfg.num_ws, cfg.channels_at(32)
        (2, 8, 16)
    """

    resolution: int = 256
    modalities: tuple[Modality, ...] = PAPER_MODALITIES
    z_dim: int = 512
    w_dim: int = 512
    c_dim: int = 0
    mapping_layers: int = 2
    mapping_lr_multiplier: float = 0.01
    w_avg_beta: float = 0.995
    channel_base: int = 16384
    channel_max: int = 512
    d_channel_base: int | None = None
    d_channel_max: int | None = None
    d_mapping_layers: int = 8
    conv_clamp: float | None = 256.0
    mbstd_group_size: int = 4
    mbstd_channels: int = 1
    training: dict[str, Any] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "modalities", tuple(self.modalities))
        log2 = math.log2(self.resolution) if self.resolution > 0 else -1
        if not (log2 == int(log2) and 16 <= self.resolution <= 1024):
            raise ConfigError(
                f"resolution must be a power of two between 16 and 1024; got {self.resolution}. "
                "Resize your images (e.g. 512 -> 256) or pick the nearest power of two."
            )
        check_modalities(self.modalities, "a GAN")
        for name in ("z_dim", "w_dim", "mapping_layers", "channel_base", "channel_max", "d_mapping_layers"):
            if int(getattr(self, name)) < 1:
                raise ConfigError(f"{name} must be a positive integer; got {getattr(self, name)}.")
        if self.c_dim < 0:
            raise ConfigError(f"c_dim must be 0 (unconditional) or the number of classes; got {self.c_dim}.")
        if self.mbstd_group_size < 1 or self.mbstd_channels < 0:
            raise ConfigError("mbstd_group_size must be >= 1 and mbstd_channels >= 0.")
        if self.conv_clamp is not None and self.conv_clamp <= 0:
            raise ConfigError(f"conv_clamp must be positive or None; got {self.conv_clamp}.")
        for res in self.block_resolutions:
            if self.channels_at(res) < 1 or self.d_channels_at(res) < 1:
                raise ConfigError(
                    f"channel_base={self.channel_base} gives 0 feature maps at {res} px; "
                    f"use channel_base >= {self.resolution}."
                )

    # -- derived architecture ------------------------------------------------------------------
    @property
    def block_resolutions(self) -> list[int]:
        """Synthesis block resolutions ``[4, 8, ..., resolution]``."""
        return [2**i for i in range(2, int(math.log2(self.resolution)) + 1)]

    @property
    def num_ws(self) -> int:
        """Number of per-layer latents the synthesis network consumes (W+ has this many rows)."""
        return 2 * (len(self.block_resolutions) - 1) + 1 + 1

    def channels_at(self, res: int) -> int:
        """Generator feature maps at resolution ``res``."""
        return min(self.channel_base // res, self.channel_max)

    def d_channels_at(self, res: int) -> int:
        """Discriminator feature maps at resolution ``res``."""
        base = self.d_channel_base if self.d_channel_base is not None else self.channel_base
        cmax = self.d_channel_max if self.d_channel_max is not None else self.channel_max
        return min(base // res, cmax)

    # -- serialisation -------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary (the content of ``config.json``)."""
        data: dict[str, Any] = {"format_version": CONFIG_FORMAT_VERSION, "architecture": "stylegan2"}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            data[f.name] = [m.to_dict() for m in value] if f.name == "modalities" else value
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GanConfig:
        """Build from :meth:`to_dict` output; unknown keys, missing ``resolution`` and values of the wrong
        JSON type are refused with a :class:`~latent_transforms.errors.ConfigError` naming the key.

        Example:
            >>> GanConfig.from_dict({"resolution": "sixty-four"})
            Traceback (most recent call last):
            ...
            latent_transforms.errors.ConfigError: config.json key 'resolution' must be an integer (e.g. 64), \
got the string 'sixty-four'. Fix that value in config.json (the bundle's saved file is the reference).
        """
        if not isinstance(data, dict):
            raise ConfigError(
                f'config.json must hold a JSON object ({{"resolution": 64, ...}}), got {_json_kind(data)}. '
                "Fix: re-save the bundle (GanBundle.save_pretrained) or restore its config.json."
            )
        data = dict(data)
        pop_format_version(data)
        arch = data.pop("architecture", "stylegan2")
        if arch != "stylegan2":
            raise ConfigError(f"architecture {arch!r} is not supported; only 'stylegan2' is.")
        check_config_keys(data, (f.name for f in dataclasses.fields(cls)))
        if "resolution" not in data:
            raise ConfigError(
                "config.json has no key 'resolution' (the side of the generated images in pixels, a power "
                'of two such as 64 or 256). Fix: add "resolution": <side> to config.json; it must match '
                "the weights (the error on loading names the first tensor that differs otherwise)."
            )
        for key, value in data.items():
            _check_json_type(key, value)
        if "modalities" in data:
            data["modalities"] = tuple(_modality_from_json(i, m) for i, m in enumerate(data["modalities"]))
        return cls(**data)

    def to_json(self, path: str | Path | None = None) -> str:
        """Serialise to JSON text; also write it (atomically) to ``path`` when given."""
        return config_json(self.to_dict(), path)

    @classmethod
    def from_json(cls, path: str | Path) -> GanConfig:
        """Read a ``config.json`` file."""
        return cls.from_dict(read_config_json(path))

    def replace(self, **changes: Any) -> GanConfig:
        """A copy with some fields changed (``dataclasses.replace``)."""
        return dataclasses.replace(self, **changes)
