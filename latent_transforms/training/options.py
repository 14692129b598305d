"""Hyper-parameters of a StyleGAN2-ADA training run, with the paper's defaults."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any

from latent_transforms.checks import check_choice, check_int, check_number, check_probability
from latent_transforms.errors import ConfigError
from latent_transforms.training.augment import MAGNITUDES

PRECISIONS = ("fp32", "bf16")


def r1_gamma_rule(resolution: int, batch_size: int) -> float:
    """StyleGAN2-ADA's heuristic R1 weight, ``0.0002 · resolution² / batch_size``.

    Example:
        >>> r1_gamma_rule(256, 16)  # the paper's 0.8192
        0.8192
    """
    return round(0.0002 * resolution**2 / batch_size, 10)


@dataclass(frozen=True)
class TrainingOptions:
    """Everything that controls a training run besides the data and the architecture.

    Defaults are those of Tronchin et al. 2023 (§IV-C): batch 16, Adam (0, 0.99) at lr 0.0025 for G and D,
    lazy R1 every 16 D steps with ``γ`` from :func:`r1_gamma_rule` (0.8192 at 256 px, batch 16), EMA generator
    over 10 kimg·batch/32 (5 kimg at batch 16) with a 5 % ramp-up, style mixing 0.9, path-length
    regularisation weight 2 every 4 G steps, ADA on ``scale,rotate,aniso,frac`` with target 0.6.

    Args:
        total_kimg: length of the run in thousands of real images shown to D.
        batch_size: images per step (summed over all ``torchrun`` ranks).
        g_lr: generator learning rate. d_lr: discriminator learning rate.
        betas: Adam betas for both networks.
        r1_gamma: R1 weight; ``None`` = :func:`r1_gamma_rule`.
        r1_interval: lazy R1: one regularisation step every ``r1_interval`` D steps (0 = off).
        pl_weight: path-length regularisation weight (0 = off). pl_interval: its lazy interval.
        pl_batch_shrink: the path-length batch is ``batch_size // pl_batch_shrink``.
        pl_decay: decay of the running mean path length.
        style_mixing: probability of mixing two latents in one batch.
        ema_kimg: half-life of the EMA generator in kimg; ``None`` = ``10 · batch_size / 32``.
        ema_rampup: the EMA half-life is at most ``ema_rampup · kimg so far`` (``None`` = off).
        augment: ADA transform set: ``"blit"`` (xflip,int), ``"geom"`` (scale,rotate,aniso,frac; the
            LatentAugment authors' choice), ``"all"`` (the six geometric), ``"color"`` (brightness,
            contrast, luma flip), ``"bgc"`` (ADA's default: all nine), a comma-separated list, or
            ``"none"``.
        augment_strength: magnitudes of the geometric transforms: ``"latentaugment"`` (the authors':
            rotation ±3°, scale/aniso/fractional-shift std 0.05) or ``"ada"`` (the ADA paper's: any
            angle, 0.2, 0.2, 0.125); see :data:`~latent_transforms.training.augment.MAGNITUDES`.
        augment_p: initial ADA probability. ada_target: target of the ``E[sign(D(real))]`` heuristic
            (``None`` = fixed p). ada_interval: D steps between p updates. ada_kimg: kimg for p to go
            0 → 1.
        precision: ``"fp32"`` or ``"bf16"`` (autocast for the main passes; regularisers stay fp32).
        snapshot_kimg: write a resumable checkpoint (and a sample grid) every this many kimg.
        metric_kimg: score the EMA generator every this many kimg (0 = only at the end).
        metric_samples: generated images per score. metric_network: feature network name
            (``"efficientnet-lite0"`` works offline).
        selection_alpha: EMA smoothing of the checkpoint score, the weight of the previous smoothed value
            (Xue et al. 2021: 0.3; 0 = no smoothing).
        seed: seeds everything (data order, z, noise, augmentation).
        num_workers: DataLoader workers (0 = main process).
        preload: keep the whole training set in memory as a tensor (``"auto"``: when under 2 GiB).
        class_balance: conditional GANs: show every class about as often as the largest one (each image
            repeated ``round(n_largest / n_class)`` times per epoch; the generated labels follow the
            batch's). For imbalanced data, where the minority class is otherwise covered worst. May be
            switched on when a run is resumed.
        keep_snapshots: also write the EMA generator of every snapshot as a bundle to
            ``out/snapshots/kimg-NNNNNN.NNN`` (:func:`~latent_transforms.training.snapshot_bundles` lists
            them), for a checkpoint choice after training (e.g. per class on a validation split). About
            27 MB per snapshot for a 32 px GAN of the classification recipe. May change when a run is resumed.

    Example:
        >>> opts = TrainingOptions(total_kimg=10, batch_size=8)
        >>> opts.resolved_r1_gamma(64), opts.resolved_ema_kimg
        (0.1024, 2.5)
    """

    total_kimg: float = 10_000.0
    batch_size: int = 16
    g_lr: float = 0.0025
    d_lr: float = 0.0025
    betas: tuple[float, float] = (0.0, 0.99)
    r1_gamma: float | None = None
    r1_interval: int = 16
    pl_weight: float = 2.0
    pl_interval: int = 4
    pl_batch_shrink: int = 2
    pl_decay: float = 0.01
    style_mixing: float = 0.9
    ema_kimg: float | None = None
    ema_rampup: float | None = 0.05
    augment: str = "geom"
    augment_strength: str = "latentaugment"
    augment_p: float = 0.0
    ada_target: float | None = 0.6
    ada_interval: int = 4
    ada_kimg: float = 500.0
    precision: str = "fp32"
    snapshot_kimg: float = 50.0
    metric_kimg: float = 50.0
    metric_samples: int = 2_000
    metric_network: str = "efficientnet-lite0"
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
        check_choice("precision", self.precision, PRECISIONS)
        check_number("selection_alpha", self.selection_alpha, low=0.0, high=1.0)
        if self.selection_alpha >= 1.0:
            raise ConfigError(f"selection_alpha must be in [0, 1); got {self.selection_alpha}.")
        check_choice("augment_strength", self.augment_strength, tuple(MAGNITUDES))
        check_probability("style_mixing", self.style_mixing)
        check_probability("augment_p", self.augment_p)
        check_number("snapshot_kimg", self.snapshot_kimg, low=0.0, low_open=True)

    def resolved_r1_gamma(self, resolution: int) -> float:
        """The R1 weight used at ``resolution``: ``r1_gamma`` or the heuristic rule."""
        return self.r1_gamma if self.r1_gamma is not None else r1_gamma_rule(resolution, self.batch_size)

    @property
    def resolved_ema_kimg(self) -> float:
        """The EMA half-life in kimg: ``ema_kimg`` or ``10 · batch_size / 32``."""
        return self.ema_kimg if self.ema_kimg is not None else self.batch_size * 10 / 32

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (stored in checkpoints and in the bundle's training summary)."""
        data = dataclasses.asdict(self)
        data["betas"] = list(self.betas)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainingOptions:
        """Inverse of :meth:`to_dict`; unknown keys are an error naming them."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown training options {unknown}; valid ones are {sorted(known)}.")
        return cls(**data)

    def to_json(self) -> str:
        """Pretty JSON string of :meth:`to_dict`."""
        return json.dumps(self.to_dict(), indent=2)

    def replace(self, **changes: Any) -> TrainingOptions:
        """A copy with ``changes`` applied."""
        return dataclasses.replace(self, **changes)
