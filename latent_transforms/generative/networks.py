"""MONAI's diffusion networks and schedulers, built from a :class:`DiffusionConfig`.

The UNet is ``monai.networks.nets.DiffusionModelUNet`` and the schedulers are
``monai.networks.schedulers.DDPMScheduler`` (training noise and ancestral sampling) and ``DDIMScheduler``
(fast deterministic sampling); nothing here re-implements them. MONAI's generative networks need
``einops``: both come with ``pip install 'latent-transforms[generative]'``, and a missing one is named in
a :class:`~latent_transforms.errors.MissingDependencyError` with that command.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from latent_transforms.checks import check_choice
from latent_transforms.errors import MissingDependencyError
from latent_transforms.generative.config import DiffusionConfig

__all__ = ["GENERATIVE_INSTALL", "SAMPLERS", "build_scheduler", "build_unet", "require_generative"]

GENERATIVE_INSTALL = "pip install 'latent-transforms[generative]'  (or: pip install monai einops)"
#: ``"ddim"``: Song et al. 2021, a few deterministic steps (``eta = 0``); ``"ddpm"``: Ho et al. 2020,
#: ancestral sampling through every training timestep.
SAMPLERS = ("ddim", "ddpm")


def require_generative(what: str = "the diffusion model") -> None:
    """Raise :class:`MissingDependencyError` with the install command unless MONAI and einops import.

    Example:
        >>> require_generative()  # MONAI and einops are installed here
    """
    for module in ("monai", "einops"):
        try:
            __import__(module)
        except ImportError as exc:
            raise MissingDependencyError(
                f"{what} needs {module!r} (MONAI's generative networks), which is not installed ({exc}). "
                f"Fix: {GENERATIVE_INSTALL}."
            ) from exc


def build_unet(config: DiffusionConfig) -> nn.Module:
    """A randomly initialised ``monai.networks.nets.DiffusionModelUNet`` for ``config``.

    2D, ``config.img_channels`` in and out, class-conditional through ``num_class_embeds`` when
    ``config.c_dim > 0``. Its forward is ``unet(x [B, C, R, R], timesteps [B] long, class_labels=[B] long)``
    and returns the prediction (noise, velocity or image) ``[B, C, R, R]``. MONAI initialises the last
    convolution to zero, so a fresh UNet predicts zeros.

    Example:
        >>> import torch
        >>> cfg = DiffusionConfig(resolution=8, modalities=DiffusionConfig().modalities[:1], channels=(8, 8),
        ...                       attention_levels=(False, True), num_head_channels=8, norm_num_groups=8)
        >>> unet = build_unet(cfg)
        >>> unet(torch.zeros(2, 1, 8, 8), torch.tensor([0, 999])).shape
        torch.Size([2, 1, 8, 8])
    """
    require_generative()
    from monai.networks.nets import DiffusionModelUNet

    return DiffusionModelUNet(
        spatial_dims=2,
        in_channels=config.img_channels,
        out_channels=config.img_channels,
        num_res_blocks=config.num_res_blocks,
        channels=config.channels,
        attention_levels=config.attention_levels,
        norm_num_groups=config.norm_num_groups,
        num_head_channels=config.num_head_channels,
        num_class_embeds=config.num_class_embeds,
    )


def build_scheduler(config: DiffusionConfig, sampler: str = "ddpm") -> Any:
    """MONAI's ``DDPMScheduler`` (``sampler="ddpm"``: training noise, ancestral sampling) or
    ``DDIMScheduler`` (``"ddim"``) with the config's schedule, timesteps and prediction type.

    Example:
        >>> scheduler = build_scheduler(DiffusionConfig(), "ddim")
        >>> type(scheduler).__name__, scheduler.num_train_timesteps
        ('DDIMScheduler', 1000)
    """
    check_choice("sampler", sampler, SAMPLERS)
    require_generative()
    from monai.networks.schedulers import DDIMScheduler, DDPMScheduler

    schedule_args: dict[str, Any] = {}
    if config.schedule != "cosine":
        schedule_args = {"beta_start": config.beta_start, "beta_end": config.beta_end}
    common = {
        "num_train_timesteps": config.timesteps,
        "schedule": config.schedule,
        "prediction_type": config.prediction_type,
        "clip_sample": config.clip_sample,
        **schedule_args,
    }
    if sampler == "ddim":
        return DDIMScheduler(**common)
    return DDPMScheduler(**common)
