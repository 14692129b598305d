"""The architecture of a translator bundle: what its ``config.json`` describes, the networks' blueprint.

A translator maps images of a *source* modality (e.g. MRI) to a *target* modality (e.g. CT) and back
(CycleGAN, Zhu et al. 2017); a DUIIT translator (Yang & Xie) also carries the task predictor it was
trained with. Each side has its modalities (names and intensity windows, in channel order), so images
go to and from physical units as in a GAN bundle.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from latent_transforms.checks import check_choice, check_int
from latent_transforms.data.windows import IntensityWindow
from latent_transforms.errors import ConfigError
from latent_transforms.files import atomic_write
from latent_transforms.networks.config import PAPER_MODALITIES, Modality

__all__ = ["TASKS", "TranslatorConfig", "default_blocks", "default_disc_layers"]

CONFIG_FORMAT_VERSION = 1
#: What a DUIIT translator's predictor does: ``None`` for a plain CycleGAN.
TASKS = ("regression", "classification")


def default_blocks(resolution: int) -> int:
    """Residual blocks of the generator: Zhu et al. use 6 up to 128 px and 9 from 256 px.

    Example:
        >>> default_blocks(64), default_blocks(256)
        (6, 9)
    """
    return 6 if resolution <= 128 else 9


def default_disc_layers(resolution: int) -> int:
    """Stride-2 layers of the PatchGAN discriminator for a resolution: ``log2(R) - 4``, between 1 and 3.

    Three layers give the 70x70 PatchGAN of Zhu et al. (receptive field ``9 · 2^L - 2`` pixels, see
    :func:`~latent_transforms.translation.networks.patch_receptive_field`). At 128 px a 70 px patch is
    about half the image; keeping that ratio at small sizes gives 2 layers (34 px patches) at 64 px and
    1 layer (16 px) at 32 px; from 128 px on it is the paper's 3.

    Example:
        >>> [default_disc_layers(r) for r in (32, 64, 128, 256)]
        [1, 2, 3, 3]
    """
    return min(3, max(1, int(math.log2(resolution)) - 4))


@dataclass(frozen=True)
class TranslatorConfig:
    """A CycleGAN translator (and, for DUIIT, its predictor): architecture, channels and training summary.

    Images are ``[B, C, R, R]`` in ``[-1, 1]``: ``C = len(source)`` on the source side, ``len(target)`` on
    the target side, ``R = resolution``. The generators are Zhu et al.'s ResNet-block generators
    (``downsamplings`` stride-2 convolutions, ``blocks`` residual blocks, as many fractionally-strided
    convolutions, instance normalisation); the discriminators are PatchGANs with ``disc_layers``
    stride-2 layers.

    Args:
        resolution: image side, a multiple of ``2 ** downsamplings``.
        source: the source modalities (name and window each, channel order).
        target: the target modalities.
        width: channels of the generator's first layer (Zhu et al.: 64).
        blocks: residual blocks (``None``: :func:`default_blocks`).
        downsamplings: stride-2 convolutions before the blocks (Zhu et al.: 2).
        disc_width: channels of the discriminator's first layer (Zhu et al.: 64).
        disc_layers: the discriminator's stride-2 layers (``None``: :func:`default_disc_layers`).
        task: ``None`` (CycleGAN), ``"regression"`` or ``"classification"`` (DUIIT's predictor).
        outputs: regression targets, or classes, of the predictor.
        predictor_depth: ResNet depth of the predictor (10, 18 or 34).
        predictor_width: its first-stage channels.
        label_mean: regression labels are standardised as ``(label - label_mean) / label_std`` before
            the loss; the predictor's outputs are mapped back with the same two numbers.
        label_std: see ``label_mean``.
        training: free-form summary of how the translator was trained (shown on the model card).

    Example:
        >>> cfg = TranslatorConfig(resolution=32, width=8, task="regression")
        >>> cfg.source_names, cfg.target_names, cfg.blocks, cfg.disc_layers
        (['mri'], ['ct'], 6, 1)
        >>> TranslatorConfig.from_dict(cfg.to_dict()) == cfg
        True
    """

    resolution: int = 64
    source: tuple[Modality, ...] = (PAPER_MODALITIES[0],)
    target: tuple[Modality, ...] = (PAPER_MODALITIES[1],)
    width: int = 64
    blocks: int | None = None
    downsamplings: int = 2
    disc_width: int = 64
    disc_layers: int | None = None
    task: str | None = None
    outputs: int = 1
    predictor_depth: int = 18
    predictor_width: int = 16
    label_mean: float = 0.0
    label_std: float = 1.0
    training: dict[str, Any] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        check_int("resolution", self.resolution, low=8)
        check_int("downsamplings", self.downsamplings, low=0, high=6)
        if self.resolution % 2**self.downsamplings:
            raise ConfigError(
                f"resolution {self.resolution} is not a multiple of 2 ** downsamplings = "
                f"{2**self.downsamplings}; the up-sampling path would not give the input size back."
            )
        for name in ("source", "target"):
            mods = tuple(getattr(self, name))
            if not mods or not all(isinstance(m, Modality) for m in mods):
                raise ConfigError(f"{name} must be a non-empty tuple of Modality, got {mods!r}.")
            if len({m.name for m in mods}) != len(mods):
                raise ConfigError(f"{name} modality names must be unique, got {[m.name for m in mods]}.")
            object.__setattr__(self, name, mods)
        check_int("width", self.width, low=1)
        check_int("disc_width", self.disc_width, low=1)
        if self.blocks is None:
            object.__setattr__(self, "blocks", default_blocks(self.resolution))
        check_int("blocks", self.blocks, low=0)
        if self.disc_layers is None:
            object.__setattr__(self, "disc_layers", default_disc_layers(self.resolution))
        check_int("disc_layers", self.disc_layers, low=1, high=int(math.log2(self.resolution)) - 1)
        if self.task is not None:
            check_choice("task", self.task, TASKS)
        check_int("outputs", self.outputs, low=2 if self.task == "classification" else 1)
        if self.predictor_depth not in (10, 18, 34):
            raise ConfigError(f"predictor_depth must be 10, 18 or 34; got {self.predictor_depth!r}.")
        check_int("predictor_width", self.predictor_width, low=1)
        if not (isinstance(self.label_std, (int, float)) and self.label_std > 0):
            raise ConfigError(f"label_std must be > 0, got {self.label_std!r}.")

    # -- channels ------------------------------------------------------------------------------------
    @property
    def source_channels(self) -> int:
        """Channels of a source image."""
        return len(self.source)

    @property
    def target_channels(self) -> int:
        """Channels of a target image."""
        return len(self.target)

    @property
    def source_names(self) -> list[str]:
        """The source modality names in channel order."""
        return [m.name for m in self.source]

    @property
    def target_names(self) -> list[str]:
        """The target modality names in channel order."""
        return [m.name for m in self.target]

    def windows(self, side: str) -> list[IntensityWindow]:
        """The intensity windows of ``side`` (``"source"`` or ``"target"``), one per channel.

        Example:
            >>> TranslatorConfig(resolution=32).windows("target")[0].low
            -1000.0
        """
        check_choice("side", side, ("source", "target"))
        return [m.window for m in getattr(self, side)]

    # -- (de)serialisation ---------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (what ``config.json`` holds)."""
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        data["source"] = [m.to_dict() for m in self.source]
        data["target"] = [m.to_dict() for m in self.target]
        data["training"] = dict(self.training)
        return {"format_version": CONFIG_FORMAT_VERSION, "kind": "translator", **data}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TranslatorConfig:
        """Inverse of :meth:`to_dict`; unknown keys are refused with their names."""
        data = dict(data)
        version = data.pop("format_version", CONFIG_FORMAT_VERSION)
        kind = data.pop("kind", "translator")
        if kind != "translator" or version > CONFIG_FORMAT_VERSION:
            raise ConfigError(
                f"this config.json describes a {kind!r} (format {version}), not a translator this version "
                "of latent-transforms reads. Fix: load it with the matching loader or upgrade."
            )
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown translator config keys {unknown}; known: {sorted(known)}.")
        for side in ("source", "target"):
            if side in data:
                data[side] = tuple(Modality.from_dict(m) for m in data[side])
        return cls(**data)

    def to_json(self, path: str | Path | None = None) -> str:
        """The config as JSON text; written atomically to ``path`` when given."""
        text = json.dumps(self.to_dict(), indent=2) + "\n"
        if path is not None:
            atomic_write(path, text)
        return text

    @classmethod
    def from_json(cls, path: str | Path) -> TranslatorConfig:
        """Read a ``config.json``."""
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise ConfigError(f"cannot read the translator config {path}: {exc}") from exc
        return cls.from_dict(data)

    def replace(self, **changes: Any) -> TranslatorConfig:
        """A copy with ``changes`` applied."""
        return dataclasses.replace(self, **changes)
