"""Sampling a diffusion UNet with MONAI's schedulers: DDIM (a few steps) or DDPM (every training step),
optionally with classifier-free guidance.

:func:`denoise` runs the reverse process from given starting noise ``x_T``: at each timestep ``t`` of the
scheduler the UNet predicts the noise (or velocity, or clean image) of ``x_t`` for the given classes, and
the scheduler's ``step`` gives ``x_{t-1}``. With ``guidance = w != 1`` the prediction is
``uncond + w · (cond − uncond)``, ``uncond`` being the prediction for the "no class" label (Ho & Salimans
2022); ``w = 1`` is plain conditional sampling, ``w = 0`` ignores the classes.
"""

from __future__ import annotations

import torch
from torch import nn
from tqdm.auto import tqdm

from latent_transforms.checks import check_choice, check_int, check_number
from latent_transforms.errors import ConfigError
from latent_transforms.generative.config import DiffusionConfig
from latent_transforms.generative.networks import SAMPLERS, build_scheduler

__all__ = ["DEFAULT_STEPS", "denoise", "resolve_steps"]

#: DDIM steps when none are given (Song et al. 2021 report near-DDPM quality from 50 steps).
DEFAULT_STEPS = 50
PRECISIONS = ("fp32", "bf16")


def resolve_steps(config: DiffusionConfig, sampler: str, steps: int | None) -> int:
    """The number of denoising steps: ``steps`` (DDIM; default :data:`DEFAULT_STEPS`, at most the training
    timesteps), or every training timestep for DDPM.

    MONAI's ``DDPMScheduler.step`` takes ``t - 1`` as the previous timestep, so DDPM cannot skip steps;
    asking it for fewer is refused with the fix.

    Example:
        >>> cfg = DiffusionConfig()
        >>> resolve_steps(cfg, "ddim", None), resolve_steps(cfg, "ddim", 20), resolve_steps(cfg, "ddpm", None)
        (50, 20, 1000)
    """
    check_choice("sampler", sampler, SAMPLERS)
    if sampler == "ddpm":
        if steps is not None and steps != config.timesteps:
            raise ConfigError(
                f"sampler='ddpm' steps through all {config.timesteps} training timesteps (MONAI's DDPM "
                f"step assumes consecutive ones), so steps={steps} cannot be honoured. Fix: steps=None, or "
                "sampler='ddim' for fewer steps."
            )
        return config.timesteps
    if steps is None:
        return min(DEFAULT_STEPS, config.timesteps)
    return check_int("steps", steps, low=1, high=config.timesteps)


@torch.no_grad()
def denoise(
    unet: nn.Module,
    config: DiffusionConfig,
    noise: torch.Tensor,
    *,
    labels: torch.Tensor | None = None,
    steps: int | None = None,
    sampler: str = "ddim",
    eta: float = 0.0,
    guidance: float = 1.0,
    generator: torch.Generator | None = None,
    precision: str = "fp32",
    progress: bool = False,
) -> torch.Tensor:
    """Run the reverse diffusion from ``noise`` = ``x_T`` and return the clean images.

    Args:
        unet: the ``DiffusionModelUNet`` (eval mode), on ``noise``'s device.
        config: its :class:`DiffusionConfig` (schedule, timesteps, prediction type, classes).
        noise: ``x_T`` ``[B, C, R, R]``, standard normal, on the device to run on.
        labels: ``[B]`` int64 class indices on that device (a conditional model; ``None``: the "no class"
            label, which needs ``config.null_class``).
        steps: denoising steps (see :func:`resolve_steps`).
        sampler: ``"ddim"`` or ``"ddpm"``.
        eta: DDIM's noise weight (0 = deterministic; 1 = DDPM-like).
        guidance: classifier-free guidance weight (1 = plain conditional sampling).
        generator: ``torch.Generator`` on the device, for the noise of stochastic steps (DDPM, or DDIM with
            ``eta > 0``).
        precision: ``"fp32"`` or ``"bf16"`` (CUDA autocast for the UNet).
        progress: a tqdm bar over the steps.

    Returns:
        ``[B, C, R, R]`` float32 in ``[-1, 1]``.

    Example:
        >>> from latent_transforms.generative.networks import build_unet
        >>> cfg = DiffusionConfig(resolution=8, c_dim=2, channels=(8, 8), attention_levels=(False, False),
        ...                       num_head_channels=8, norm_num_groups=8, timesteps=20)
        >>> unet = build_unet(cfg).eval()
        >>> x = denoise(unet, cfg, torch.randn(3, 2, 8, 8), labels=torch.tensor([0, 1, 1]), steps=4)
        >>> x.shape, bool(x.abs().max() <= 1)
        (torch.Size([3, 2, 8, 8]), True)
    """
    n_steps = resolve_steps(config, sampler, steps)
    check_number("eta", eta, low=0.0)
    check_number("guidance", guidance)
    check_choice("precision", precision, PRECISIONS)
    batch = noise.shape[0]
    device = noise.device
    if config.c_dim > 0 and labels is None and config.null_label is None:
        raise ConfigError(
            "this conditional model has no 'no class' embedding (null_class=False), so it needs labels. "
            "Fix: pass labels, one class index per image."
        )
    if config.c_dim == 0 and guidance != 1.0:
        raise ConfigError(
            f"guidance={guidance} needs a class-conditional model; this one is unconditional. Fix: "
            "guidance=1."
        )
    if guidance != 1.0 and config.null_label is None:
        raise ConfigError(
            f"guidance={guidance} needs a model trained with a 'no class' label (null_class=True). Fix: "
            "guidance=1."
        )
    cond: torch.Tensor | None = None
    null: torch.Tensor | None = None
    if config.c_dim > 0:
        if config.null_label is not None:
            null = torch.full((batch,), config.null_label, dtype=torch.long, device=device)
        cond = labels.to(device=device, dtype=torch.long) if labels is not None else null
    guided = cond is not None and null is not None and guidance != 1.0 and labels is not None
    scheduler = build_scheduler(config, sampler)
    scheduler.set_timesteps(n_steps, device=device)
    autocast = precision == "bf16" and device.type == "cuda"
    x = noise.float()
    for t in tqdm(
        scheduler.timesteps.tolist(), desc=f"{sampler} sampling", disable=not progress, leave=False
    ):
        timesteps = torch.full((batch,), int(t), dtype=torch.long, device=device)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=autocast):
            if guided:
                assert cond is not None and null is not None
                both = unet(
                    torch.cat([x, x]), torch.cat([timesteps, timesteps]), class_labels=torch.cat([cond, null])
                )
                c_out, u_out = both.float().chunk(2)
                out = u_out + guidance * (c_out - u_out)
            else:
                out = unet(x, timesteps, class_labels=cond).float()
        if sampler == "ddim":
            x, _ = scheduler.step(out, int(t), x, eta=eta, generator=generator)
        else:
            x, _ = scheduler.step(out, int(t), x, generator=generator)
    return x.float().clamp(-1.0, 1.0)
