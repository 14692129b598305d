"""The architecture of a GAN bundle: what ``config.json`` describes and the networks are built from."""

from __future__ import annotations

import dataclasses
import json
import math
import re
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


#: The paper's windows (Tronchin et al. 2023, §IV-A): MRI clipped to [0, 1900], CT to [-1000, 2000] HU.
PAPER_MODALITIES: tuple[Modality, ...] = (
    Modality("mri", IntensityWindow(0.0, 1900.0, "")),
    Modality("ct", IntensityWindow(-1000.0, 2000.0, "HU")),
)


@dataclass(frozen=True)
class GanConfig:
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
        if not self.modalities:
            raise ConfigError("a GAN needs at least one modality (image channel); got none.")
        names = [m.name for m in self.modalities]
        if len(set(names)) != len(names):
            raise ConfigError(f"modality names must be unique; got {names}.")
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
    def img_channels(self) -> int:
        """Number of image channels, ``len(modalities)``."""
        return len(self.modalities)

    @property
    def modality_names(self) -> list[str]:
        """Channel names in order, e.g. ``['mri', 'ct']``."""
        return [m.name for m in self.modalities]

    @property
    def windows(self) -> dict[str, IntensityWindow]:
        """``{modality name: IntensityWindow}``."""
        return {m.name: m.window for m in self.modalities}

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
        """Build from :meth:`to_dict` output; unknown keys are refused with their names."""
        data = dict(data)
        version = data.pop("format_version", CONFIG_FORMAT_VERSION)
        if version > CONFIG_FORMAT_VERSION:
            raise ConfigError(
                f"config.json has format_version {version}, newer than this library understands "
                f"({CONFIG_FORMAT_VERSION}); upgrade with `pip install -U latent-transforms`."
            )
        arch = data.pop("architecture", "stylegan2")
        if arch != "stylegan2":
            raise ConfigError(f"architecture {arch!r} is not supported; only 'stylegan2' is.")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"config.json has unknown keys {unknown}; known keys are {sorted(known)}.")
        if "modalities" in data:
            data["modalities"] = tuple(Modality.from_dict(m) for m in data["modalities"])
        return cls(**data)

    def to_json(self, path: str | Path | None = None) -> str:
        """Serialise to JSON text; also write it (atomically) to ``path`` when given."""
        text = json.dumps(self.to_dict(), indent=2, sort_keys=False) + "\n"
        if path is not None:
            atomic_write(path, text)
        return text

    @classmethod
    def from_json(cls, path: str | Path) -> GanConfig:
        """Read a ``config.json`` file."""
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{path} is not valid JSON ({exc}); re-save the bundle.") from exc
        return cls.from_dict(data)

    def replace(self, **changes: Any) -> GanConfig:
        """A copy with some fields changed (``dataclasses.replace``)."""
        return dataclasses.replace(self, **changes)
