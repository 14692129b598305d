"""Networks layer: StyleGAN2 generator/discriminator, their config, GAN bundles and the converter.

Names are imported from their modules on first use (PEP 562), so importing one module of this
package (e.g. its command line) does not import the others.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from latent_transforms.lazy import lazy_exports

if TYPE_CHECKING:
    from latent_transforms.networks.bundle import (
        GanBundle as GanBundle,
        load_gan as load_gan,
    )
    from latent_transforms.networks.config import (
        PAPER_MODALITIES as PAPER_MODALITIES,
        GanConfig as GanConfig,
        Modality as Modality,
    )
    from latent_transforms.networks.convert import (
        convert_stylegan2_pickle as convert_stylegan2_pickle,
        read_snapshot as read_snapshot,
    )
    from latent_transforms.networks.discriminator import (
        Discriminator as Discriminator,
    )
    from latent_transforms.networks.generator import (
        Generator as Generator,
    )
    from latent_transforms.networks.hub_bundle import (
        HubBundle as HubBundle,
    )
    from latent_transforms.networks.mapping import (
        MappingNetwork as MappingNetwork,
    )
    from latent_transforms.networks.modconv import (
        modulated_conv2d as modulated_conv2d,
    )
    from latent_transforms.networks.preview import (
        labelled_grid as labelled_grid,
        sample_grid as sample_grid,
    )
    from latent_transforms.networks.synthesis import (
        SynthesisNetwork as SynthesisNetwork,
    )

#: Where each public name lives; imported from there on first access.
_SOURCES: dict[str, str] = {
    "Discriminator": "latent_transforms.networks.discriminator",
    "GanBundle": "latent_transforms.networks.bundle",
    "GanConfig": "latent_transforms.networks.config",
    "Generator": "latent_transforms.networks.generator",
    "HubBundle": "latent_transforms.networks.hub_bundle",
    "MappingNetwork": "latent_transforms.networks.mapping",
    "Modality": "latent_transforms.networks.config",
    "PAPER_MODALITIES": "latent_transforms.networks.config",
    "SynthesisNetwork": "latent_transforms.networks.synthesis",
    "convert_stylegan2_pickle": "latent_transforms.networks.convert",
    "load_gan": "latent_transforms.networks.bundle",
    "modulated_conv2d": "latent_transforms.networks.modconv",
    "read_snapshot": "latent_transforms.networks.convert",
    "labelled_grid": "latent_transforms.networks.preview",
    "sample_grid": "latent_transforms.networks.preview",
}

__getattr__, __dir__ = lazy_exports(__name__, _SOURCES, globals())
__all__ = [*_SOURCES]
