"""The architecture of a diffusion bundle: what its ``config.json`` describes and the networks are built from.

A :class:`DiffusionConfig` names MONAI's ``DiffusionModelUNet`` (channels per level, attention levels,
residual blocks, attention head width), the noise schedule of MONAI's schedulers (``DDPMScheduler`` for
training and ancestral sampling, ``DDIMScheduler`` for fast sampling), what the network predicts, the
classes of a class-conditional model, and the image channels with their intensity windows, exactly as
:class:`~latent_transforms.GanConfig` does for a StyleGAN2 bundle.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from latent_transforms.checks import check_choice, check_int, check_number
from latent_transforms.errors import ConfigError
from latent_transforms.generative.names import ARCHITECTURE, PREDICTION_TYPES, SCHEDULES
from latent_transforms.networks.config import (
    CONFIG_FORMAT_VERSION,
    PAPER_MODALITIES,
    Channels,
    Modality,
    check_config_keys,
    check_modalities,
    config_json,
    pop_format_version,
    read_config_json,
)

__all__ = [
    "ARCHITECTURE",
    "PREDICTION_TYPES",
    "SCHEDULES",
    "DiffusionConfig",
]


@dataclass(frozen=True)
class DiffusionConfig(Channels):
    """Architecture of a class-conditional DDPM on MONAI's ``DiffusionModelUNet`` and its noise schedule.

    Images are ``[B, C, R, R]`` in ``[-1, 1]`` with ``C = len(modalities)`` and ``R = resolution``; each
    channel maps to physical units through its modality's window, as in a GAN bundle. The UNet has one
    level per entry of ``channels`` (each level but the last halves the resolution), so ``resolution``
    must be divisible by ``2 ** (len(channels) - 1)``.

    Args:
        resolution: image side in pixels (at least 8; divisible by ``2 ** (levels - 1)``).
        modalities: channel names and intensity windows, in channel order.
        c_dim: number of classes (0 = unconditional). A conditional UNet embeds the class and adds it to
            the timestep embedding (MONAI's ``num_class_embeds``).
        null_class: a conditional model gets one more class embedding, index ``c_dim``, meaning "no
            class"; the trainer drops labels to it now and then, so sampling can use classifier-free
            guidance (Ho & Salimans 2022).
        channels: feature maps of each UNet level (each a multiple of ``norm_num_groups``).
        attention_levels: self-attention at each level (same length as ``channels``).
        num_res_blocks: residual blocks per level.
        num_head_channels: channels per attention head (divides the channels of every attention level and
            of the last level: MONAI's middle block always attends).
        norm_num_groups: groups of the UNet's group normalisation.
        timesteps: diffusion steps of training (``T``; DDPM: 1000).
        schedule: MONAI noise schedule, one of :data:`SCHEDULES`.
        beta_start: the first noise variance of the linear schedules (DDPM: 1e-4).
        beta_end: the last noise variance of the linear schedules (DDPM: 0.02).
        prediction_type: what the UNet predicts, one of :data:`PREDICTION_TYPES`.
        clip_sample: clip the predicted clean image to ``[-1, 1]`` at every sampling step.
        training: free-form summary of how the model was trained (data, kimg, FID...), shown in the card.

    Example:
        >>> cfg = DiffusionConfig(resolution=16, c_dim=2, channels=(8, 16), attention_levels=(False, True),
        ...                       num_head_channels=8, norm_num_groups=8)
        >>> cfg.img_channels, cfg.modality_names, cfg.num_class_embeds
        (2, ['mri', 'ct'], 3)
        >>> DiffusionConfig.from_dict(cfg.to_dict()) == cfg
        True
    """

    resolution: int = 32
    modalities: tuple[Modality, ...] = PAPER_MODALITIES
    c_dim: int = 0
    null_class: bool = True
    channels: tuple[int, ...] = (32, 64, 64)
    attention_levels: tuple[bool, ...] = (False, False, True)
    num_res_blocks: int = 1
    num_head_channels: int = 32
    norm_num_groups: int = 16
    timesteps: int = 1000
    schedule: str = "linear_beta"
    beta_start: float = 1e-4
    beta_end: float = 0.02
    prediction_type: str = "epsilon"
    clip_sample: bool = True
    training: dict[str, Any] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "modalities", tuple(self.modalities))
        object.__setattr__(self, "channels", tuple(int(c) for c in self.channels))
        object.__setattr__(self, "attention_levels", tuple(bool(a) for a in self.attention_levels))
        check_int("resolution", self.resolution, low=8)
        check_int("c_dim", self.c_dim, low=0)
        check_int("num_res_blocks", self.num_res_blocks, low=1)
        check_int("num_head_channels", self.num_head_channels, low=1)
        check_int("norm_num_groups", self.norm_num_groups, low=1)
        check_int("timesteps", self.timesteps, low=2)
        check_choice("schedule", self.schedule, SCHEDULES)
        check_choice("prediction_type", self.prediction_type, PREDICTION_TYPES)
        check_number("beta_start", self.beta_start, low=0.0, low_open=True)
        check_number("beta_end", self.beta_end, low=self.beta_start, high=1.0)
        check_modalities(self.modalities, "a diffusion model")
        if not self.channels or any(c < 1 for c in self.channels):
            raise ConfigError(
                f"channels must be positive feature-map counts, one per level; got {self.channels}."
            )
        if len(self.attention_levels) != len(self.channels):
            raise ConfigError(
                f"attention_levels has {len(self.attention_levels)} entries but channels has "
                f"{len(self.channels)}; give one True/False per level, e.g. (False, False, True)."
            )
        bad = [c for c in self.channels if c % self.norm_num_groups]
        if bad:
            raise ConfigError(
                f"every level's channels must be a multiple of norm_num_groups={self.norm_num_groups}; "
                f"{bad} are not. Fix: channels such as (32, 64, 64) with norm_num_groups 16 or 32."
            )
        heads = [c for c, a in zip(self.channels, self.attention_levels, strict=True) if a]
        bad = [c for c in [*heads, self.channels[-1]] if c % self.num_head_channels]
        if bad:
            raise ConfigError(
                f"the attention levels (and the middle block, which always attends) need channels divisible "
                f"by num_head_channels={self.num_head_channels}; {sorted(set(bad))} are not. Fix: e.g. "
                "num_head_channels 32 with channels (32, 64, 64)."
            )
        factor = 2 ** (len(self.channels) - 1)
        if self.resolution % factor:
            raise ConfigError(
                f"resolution {self.resolution} cannot be halved {len(self.channels) - 1} times (one per UNet "
                f"level but the last); use a multiple of {factor} or fewer levels."
            )

    # -- derived -------------------------------------------------------------------------------
    @property
    def num_class_embeds(self) -> int | None:
        """Class embeddings of the UNet: ``None`` unconditional, else ``c_dim`` (+ 1 with ``null_class``)."""
        if self.c_dim == 0:
            return None
        return self.c_dim + (1 if self.null_class else 0)

    @property
    def null_label(self) -> int | None:
        """The class index meaning "no class" (``c_dim``), or ``None`` when the model has none."""
        return self.c_dim if self.c_dim > 0 and self.null_class else None

    # -- serialisation -------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary (the content of ``config.json``), with ``"architecture": "ddpm-unet"``."""
        data: dict[str, Any] = {"format_version": CONFIG_FORMAT_VERSION, "architecture": ARCHITECTURE}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name == "modalities":
                value = [m.to_dict() for m in value]
            elif isinstance(value, tuple):
                value = list(value)
            data[f.name] = value
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DiffusionConfig:
        """Build from :meth:`to_dict` output; unknown keys and other architectures are refused.

        Example:
            >>> DiffusionConfig.from_dict({"architecture": "stylegan2"})  # doctest: +ELLIPSIS
            Traceback (most recent call last):
            ...
            latent_transforms.errors.ConfigError: config.json describes a 'stylegan2' model, not ...
        """
        data = dict(data)
        pop_format_version(data)
        arch = data.pop("architecture", None)
        if arch != ARCHITECTURE:
            hint = " Load a StyleGAN2 bundle with load_gan(...)." if arch == "stylegan2" else ""
            raise ConfigError(
                f"config.json describes a {arch!r} model, not a diffusion bundle ({ARCHITECTURE!r}).{hint}"
            )
        check_config_keys(data, (f.name for f in dataclasses.fields(cls)))
        if "modalities" in data:
            data["modalities"] = tuple(Modality.from_dict(m) for m in data["modalities"])
        for name in ("channels", "attention_levels"):
            if name in data:
                data[name] = tuple(data[name])
        return cls(**data)

    def to_json(self, path: str | Path | None = None) -> str:
        """Serialise to JSON text; also write it (atomically) to ``path`` when given."""
        return config_json(self.to_dict(), path)

    @classmethod
    def from_json(cls, path: str | Path) -> DiffusionConfig:
        """Read a ``config.json`` file."""
        return cls.from_dict(read_config_json(path))

    def replace(self, **changes: Any) -> DiffusionConfig:
        """A copy with some fields changed (``dataclasses.replace``)."""
        return dataclasses.replace(self, **changes)
