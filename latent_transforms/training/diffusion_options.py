"""Hyper-parameters of a diffusion training run, with defaults sized for a CPU at 32 px."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any

from latent_transforms.checks import check_choice, check_int, check_number, check_probability
from latent_transforms.errors import ConfigError

__all__ = ["DiffusionOptions"]

PRECISIONS = ("fp32", "bf16")
#: Options that may change when a run is resumed (they do not change what was trained so far).
RESUMABLE = frozenset(
    {
        "total_kimg",
        "num_workers",
        "preload",
        "metric_kimg",
        "metric_samples",
        "snapshot_kimg",
        "class_balance",
        "keep_snapshots",
    }
)


@dataclass(frozen=True)
class DiffusionOptions:
    """Everything that controls a diffusion training run besides the data and the architecture.

    The loss is the DDPM one (Ho et al. 2020): the mean squared error between the UNet's prediction for
    ``x_t = sqrt(ᾱ_t) x_0 + sqrt(1 - ᾱ_t) ε`` at a uniformly drawn timestep ``t`` and its target (``ε``, the
    velocity or ``x_0``, after the config's ``prediction_type``). Weights are updated with AdamW after a
    linear learning-rate warm-up and clipped gradients; the bundle holds an exponential moving average
    of them (half-life ``ema_kimg``, as the StyleGAN2 trainer's EMA generator).

    Args:
        total_kimg: length of the run in thousands of training images seen.
        batch_size: images per step (summed over all ``torchrun`` ranks).
        lr: AdamW learning rate (after the warm-up).
        betas: AdamW betas.
        weight_decay: AdamW weight decay.
        warmup_kimg: the learning rate ramps linearly from 0 over this many kimg.
        grad_clip: clip the gradient norm to this (0 = off).
        ema_kimg: half-life of the EMA weights in kimg.
        ema_rampup: the EMA half-life is at most ``ema_rampup · kimg so far`` (``None`` = off).
        label_dropout: a conditional model with a "no class" label sees it instead of the true class with
            this probability (classifier-free guidance; Ho & Salimans 2022 use 0.1-0.2).
        xflip: flip half the training images left-right (off by default: anatomy is not symmetric).
        precision: ``"fp32"`` or ``"bf16"`` (CUDA autocast for the UNet).
        snapshot_kimg: write a resumable checkpoint and a sample grid every this many kimg.
        sample_steps: DDIM steps of the sample grids.
        metric_kimg: score the EMA model by FID every this many kimg (0 = only at the end; needs a scorer).
        metric_samples: generated images per score.
        metric_steps: DDIM steps of the scored samples.
        selection_alpha: EMA smoothing of the score for choosing the bundle (Xue et al. 2021: 0.3).
        seed: seeds everything (weights, data order, noise, timesteps, label dropout).
        num_workers: DataLoader workers (0 = main process).
        preload: keep the training set in memory as a tensor (``"auto"``: when under 2 GiB).
        class_balance: conditional models: show every class about as often as the largest one (each
            image repeated ``round(n_largest / n_class)`` times per epoch). May be switched on at resume.
        keep_snapshots: also write the EMA model of every snapshot as a bundle to
            ``out/snapshots/kimg-NNNNNN.NNN`` (:func:`~latent_transforms.training.snapshot_bundles`). May
            change when a run is resumed.

    Example:
        >>> opts = DiffusionOptions(total_kimg=50, batch_size=16)
        >>> opts.replace(lr=1e-3).lr, DiffusionOptions.from_dict(opts.to_dict()) == opts
        (0.001, True)
    """

    total_kimg: float = 200.0
    batch_size: int = 32
    lr: float = 5e-4
    betas: tuple[float, float] = (0.9, 0.999)
    weight_decay: float = 0.0
    warmup_kimg: float = 2.0
    grad_clip: float = 1.0
    ema_kimg: float = 2.0
    ema_rampup: float | None = 0.05
    label_dropout: float = 0.1
    xflip: bool = False
    precision: str = "fp32"
    snapshot_kimg: float = 5.0
    sample_steps: int = 25
    metric_kimg: float = 20.0
    metric_samples: int = 500
    metric_steps: int = 25
    selection_alpha: float = 0.3
    seed: int = 0
    num_workers: int = 0
    preload: str | bool = "auto"
    class_balance: bool = False
    keep_snapshots: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "betas", tuple(float(b) for b in self.betas))
        check_number("total_kimg", self.total_kimg, low=0.0, low_open=True)
        check_int("batch_size", self.batch_size, low=1)
        check_number("lr", self.lr, low=0.0, low_open=True)
        check_number("weight_decay", self.weight_decay, low=0.0)
        check_number("warmup_kimg", self.warmup_kimg, low=0.0)
        check_number("grad_clip", self.grad_clip, low=0.0)
        check_number("ema_kimg", self.ema_kimg, low=0.0)
        check_probability("label_dropout", self.label_dropout)
        check_choice("precision", self.precision, PRECISIONS)
        check_number("snapshot_kimg", self.snapshot_kimg, low=0.0, low_open=True)
        check_int("sample_steps", self.sample_steps, low=1)
        check_number("metric_kimg", self.metric_kimg, low=0.0)
        check_int("metric_samples", self.metric_samples, low=2)
        check_int("metric_steps", self.metric_steps, low=1)
        check_number("selection_alpha", self.selection_alpha, low=0.0, high=1.0)
        if self.selection_alpha >= 1.0:
            raise ConfigError(f"selection_alpha must be in [0, 1); got {self.selection_alpha}.")
        check_int("num_workers", self.num_workers, low=0)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (stored in checkpoints and in the bundle's training summary)."""
        data = dataclasses.asdict(self)
        data["betas"] = list(self.betas)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DiffusionOptions:
        """Inverse of :meth:`to_dict`; unknown keys are an error naming them."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(
                f"unknown diffusion training options {unknown}; valid ones are {sorted(known)}."
            )
        return cls(**data)

    def to_json(self) -> str:
        """Pretty JSON string of :meth:`to_dict`."""
        return json.dumps(self.to_dict(), indent=2)

    def replace(self, **changes: Any) -> DiffusionOptions:
        """A copy with ``changes`` applied."""
        return dataclasses.replace(self, **changes)
