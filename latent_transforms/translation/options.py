"""How a translator is trained: Zhu et al.'s CycleGAN settings and Yang & Xie's DUIIT weights, as defaults."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from latent_transforms.checks import check_int, check_number
from latent_transforms.errors import ConfigError
from latent_transforms.translation.losses import CYCLE_WEIGHT, PREDICTION_WEIGHT
from latent_transforms.translation.pool import POOL_SIZE

__all__ = ["TranslatorOptions"]


@dataclass(frozen=True)
class TranslatorOptions:
    """The training settings of a CycleGAN / DUIIT translator.

    Defaults are the papers': Adam with ``lr = 0.0002`` and ``β = (0.5, 0.999)`` for generators and
    discriminators, constant for the first half of the epochs then decaying linearly to zero (Zhu et al.:
    100 + 100 epochs), batch size 1, image pool of 50, ``λ_cyc = 10``; DUIIT's ``λ = 0.001`` and the
    predictor's ``lr = 0.001`` with the same decay (Yang & Xie, §4.2).

    Args:
        epochs: passes over the training data; an epoch is ``epoch_size`` image pairs.
        decay_from: the epoch (0-based) at which the learning rates start their linear decay to zero
            at the end (``None``: ``epochs // 2``, the second half).
        batch_size: image pairs per step.
        epoch_size: pairs per epoch (``None``: the larger set's size, as Zhu et al.'s unaligned data).
        lr: Adam's learning rate for the generators and the discriminators.
        beta1: Adam's first-moment decay.
        beta2: Adam's second-moment decay.
        cycle_weight: ``λ_cyc``.
        identity_weight: Zhu et al.'s optional identity loss, as a fraction of ``λ_cyc`` (0: off, as in
            Yang & Xie's eq. 1; only when both sides have the same channels).
        prediction_weight: DUIIT's ``λ`` (ignored without a predictor).
        predictor_lr: Adam learning rate of the predictor (``β`` as above).
        pool_size: the discriminators' image pools (0: none).
        checkpoint_every: also write the training state every this many steps (it is always written at
            the end of each epoch).
        seed: the networks' initial weights, the data order and the pools' draws.

    Example:
        >>> TranslatorOptions(epochs=10).decay_start, TranslatorOptions(epochs=10, decay_from=8).decay_start
        (5, 8)
        >>> tuple(round(TranslatorOptions(epochs=4).lr_factor(e), 2) for e in range(4))
        (1.0, 1.0, 0.67, 0.33)
    """

    epochs: int = 200
    decay_from: int | None = None
    batch_size: int = 1
    epoch_size: int | None = None
    lr: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    cycle_weight: float = CYCLE_WEIGHT
    identity_weight: float = 0.0
    prediction_weight: float = PREDICTION_WEIGHT
    predictor_lr: float = 1e-3
    pool_size: int = POOL_SIZE
    checkpoint_every: int = 500
    seed: int = 0

    def __post_init__(self) -> None:
        check_int("epochs", self.epochs, low=1)
        if self.decay_from is not None:
            check_int("decay_from", self.decay_from, low=0, high=self.epochs)
        check_int("batch_size", self.batch_size, low=1)
        if self.epoch_size is not None:
            check_int("epoch_size", self.epoch_size, low=1)
        check_number("lr", self.lr, low=0, low_open=True)
        check_number("predictor_lr", self.predictor_lr, low=0, low_open=True)
        check_number("beta1", self.beta1, low=0, high=1)
        check_number("beta2", self.beta2, low=0, high=1)
        for name in ("cycle_weight", "identity_weight", "prediction_weight"):
            check_number(name, getattr(self, name), low=0)
        check_int("pool_size", self.pool_size, low=0)
        check_int("checkpoint_every", self.checkpoint_every, low=1)
        check_int("seed", self.seed, low=0)

    @property
    def decay_start(self) -> int:
        """The first epoch of the linear decay."""
        return self.epochs // 2 if self.decay_from is None else self.decay_from

    def lr_factor(self, epoch: int) -> float:
        """The learning-rate multiplier of ``epoch`` (0-based): 1 before :attr:`decay_start`, then falling
        linearly so that the epoch after the last would reach 0 (Zhu et al.'s ``linear`` policy)."""
        span = self.epochs - self.decay_start
        if epoch < self.decay_start or span <= 0:
            return 1.0
        return 1.0 - (epoch - self.decay_start + 1) / (span + 1)

    def replace(self, **changes: Any) -> TranslatorOptions:
        """A copy with ``changes`` applied."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TranslatorOptions:
        """Inverse of :meth:`to_dict`."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown translator options {unknown}; known: {sorted(known)}.")
        return cls(**data)
