"""Networks layer: StyleGAN2 generator/discriminator, their config, GAN bundles and the converter.

Names are imported from their modules on first use (PEP 562), so importing one module of this
package (e.g. its command line) does not import the others.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from latent_transforms.networks.bundle import GanBundle, load_gan
    from latent_transforms.networks.config import PAPER_MODALITIES, GanConfig, Modality
    from latent_transforms.networks.convert import convert_stylegan2_pickle, read_snapshot
    from latent_transforms.networks.discriminator import Discriminator
    from latent_transforms.networks.generator import Generator
    from latent_transforms.networks.mapping import MappingNetwork
    from latent_transforms.networks.modconv import modulated_conv2d
    from latent_transforms.networks.synthesis import SynthesisNetwork

#: Where each name lives; :func:`__getattr__` imports it from there on first access.
_SOURCES: dict[str, str] = {
    "Discriminator": "latent_transforms.networks.discriminator",
    "GanBundle": "latent_transforms.networks.bundle",
    "GanConfig": "latent_transforms.networks.config",
    "Generator": "latent_transforms.networks.generator",
    "MappingNetwork": "latent_transforms.networks.mapping",
    "Modality": "latent_transforms.networks.config",
    "PAPER_MODALITIES": "latent_transforms.networks.config",
    "SynthesisNetwork": "latent_transforms.networks.synthesis",
    "convert_stylegan2_pickle": "latent_transforms.networks.convert",
    "load_gan": "latent_transforms.networks.bundle",
    "modulated_conv2d": "latent_transforms.networks.modconv",
    "read_snapshot": "latent_transforms.networks.convert",
}


def __getattr__(name: str) -> Any:
    source = _SOURCES.get(name)
    if source is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(source), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_SOURCES})


__all__ = [
    "PAPER_MODALITIES",
    "Discriminator",
    "GanBundle",
    "GanConfig",
    "Generator",
    "MappingNetwork",
    "Modality",
    "SynthesisNetwork",
    "convert_stylegan2_pickle",
    "load_gan",
    "modulated_conv2d",
    "read_snapshot",
]
