"""Load any generator bundle of the library, a StyleGAN2 or a diffusion bundle, by what its ``config.json``
says it is."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from latent_transforms.errors import ConfigError
from latent_transforms.generative.bundle import CONFIG_NAME, DiffusionBundle
from latent_transforms.generative.config import ARCHITECTURE
from latent_transforms.networks.bundle import GanBundle, load_gan
from latent_transforms.networks.hub import resolve_source

__all__ = ["bundle_architecture", "load_generator"]


def bundle_architecture(source: str | Path, **hub: Any) -> str:
    """The ``architecture`` field of a bundle's ``config.json`` (``"stylegan2"`` when absent: the GAN
    bundles written before the field existed); ``hub``: ``revision``, ``cache_dir``, ``token``,
    ``local_files_only`` for a Hub id.

    Example:
        >>> bundle_architecture("builtin:pelvis-phantom-64")
        'stylegan2'
    """
    folder = resolve_source(source, what="generator bundle", loader="load_generator", **hub)
    try:
        data = json.loads((folder / CONFIG_NAME).read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{folder / CONFIG_NAME} is not valid JSON ({exc}); re-save the bundle.") from exc
    return str(data.get("architecture", "stylegan2"))


def load_generator(
    source: str | Path | GanBundle | DiffusionBundle,
    *,
    device: torch.device | str = "cpu",
    **hub: Any,
) -> GanBundle | DiffusionBundle:
    """A GAN or diffusion bundle from a folder, ``builtin:<name>`` or Hub id (a bundle object is moved to
    ``device`` and returned); both answer ``sample(n, labels=None, seed=...)``.

    Args:
        source: the bundle or where it is.
        device: where to put its networks.
        **hub: ``revision``, ``cache_dir``, ``token``, ``local_files_only`` (as
            :func:`~latent_transforms.load_gan`).

    Example:
        >>> type(load_generator("builtin:pelvis-phantom-64")).__name__
        'GanBundle'
    """
    if isinstance(source, (GanBundle, DiffusionBundle)):
        return source.to(device)
    architecture = bundle_architecture(source, **hub)
    if architecture == ARCHITECTURE:
        return DiffusionBundle.from_pretrained(source, device=device, **hub)
    return load_gan(source, device=device, **hub)
