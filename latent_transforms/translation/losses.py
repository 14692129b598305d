"""The losses of CycleGAN (Zhu et al. 2017) and DUIIT (Yang & Xie).

- Adversarial: the least-squares GAN loss (Mao et al. 2017), which Zhu et al. use instead of the
  log-likelihood: a discriminator pushes its scores of real images to 1 and of generated ones to 0
  (:func:`discriminator_loss`, halved as in Zhu et al. to slow the discriminator down); a generator
  pushes the scores of its images to 1 (:func:`generator_loss`).
- Cycle consistency: ``λ_cyc (‖F(G(y)) − y‖₁ + ‖G(F(x)) − x‖₁)`` with ``λ_cyc = 10`` (:func:`cycle_loss`;
  the mean absolute error per image pixel, as Zhu et al. implement the L1 norm).
- Prediction (DUIIT, Yang & Xie eq. 2): the task loss of the predictor ``P`` on translated source
  images with their source labels plus that on real target images with theirs: the mean squared error
  for regression, cross-entropy for classification (:func:`prediction_loss`). Yang & Xie sum over
  images; the mean per batch used here differs by a constant factor that Adam's scale invariance absorbs.
- DUIIT's objective (eq. 3): ``L_trans + λ · L_pred`` with ``λ = 0.001`` (:func:`joint_objective`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from latent_transforms.checks import check_choice
from latent_transforms.translation.config import TASKS

__all__ = [
    "CYCLE_WEIGHT",
    "PREDICTION_WEIGHT",
    "cycle_loss",
    "discriminator_loss",
    "generator_loss",
    "joint_objective",
    "lsgan_loss",
    "prediction_loss",
    "task_loss",
]

#: ``λ_cyc`` of Zhu et al. and Yang & Xie.
CYCLE_WEIGHT = 10.0
#: ``λ`` of Yang & Xie's eq. 3.
PREDICTION_WEIGHT = 0.001


def lsgan_loss(scores: torch.Tensor, real: bool) -> torch.Tensor:
    """``mean((scores − 1)²)`` for ``real``, else ``mean(scores²)``: the least-squares GAN loss.

    Example:
        >>> scores = torch.tensor([1.0, 0.0])
        >>> lsgan_loss(scores, True).item(), lsgan_loss(scores, False).item()
        (0.5, 0.5)
    """
    target = 1.0 if real else 0.0
    return ((scores - target) ** 2).mean()


def discriminator_loss(real_scores: torch.Tensor, fake_scores: torch.Tensor) -> torch.Tensor:
    """``½ (lsgan(real, 1) + lsgan(fake, 0))``: a discriminator's loss (Zhu et al. halve it).

    Example:
        >>> discriminator_loss(torch.ones(4), torch.zeros(4)).item()
        0.0
        >>> discriminator_loss(torch.zeros(4), torch.ones(4)).item()
        1.0
    """
    return 0.5 * (lsgan_loss(real_scores, True) + lsgan_loss(fake_scores, False))


def generator_loss(fake_scores: torch.Tensor) -> torch.Tensor:
    """``lsgan(fake, 1)``: the adversarial loss of a generator whose images got ``fake_scores``.

    Example:
        >>> generator_loss(torch.full((3,), 0.5)).item()
        0.25
    """
    return lsgan_loss(fake_scores, True)


def cycle_loss(
    source: torch.Tensor,
    source_back: torch.Tensor,
    target: torch.Tensor,
    target_back: torch.Tensor,
    weight: float = CYCLE_WEIGHT,
) -> torch.Tensor:
    """``weight · (mean|F(G(y)) − y| + mean|G(F(x)) − x|)`` (``source`` = ``y``, ``target`` = ``x``).

    Example:
        >>> y, x = torch.zeros(1, 1, 2, 2), torch.zeros(1, 1, 2, 2)
        >>> round(cycle_loss(y, y + 0.1, x, x - 0.2).item(), 4)
        3.0
    """
    return weight * ((source_back - source).abs().mean() + (target_back - target).abs().mean())


def task_loss(task: str, outputs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """The predictor's loss on one set: mean squared error (``"regression"``; ``outputs`` ``[B, K]``, labels
    ``[B]`` or ``[B, K]``) or cross-entropy (``"classification"``; logits ``[B, K]``, labels ``[B]``).

    Example:
        >>> task_loss("regression", torch.tensor([[1.0], [3.0]]), torch.tensor([0.0, 3.0])).item()
        0.5
        >>> round(task_loss("classification", torch.tensor([[0.0, 0.0]]), torch.tensor([1])).item(), 4)
        0.6931
    """
    check_choice("task", task, TASKS)
    if task == "regression":
        target = labels.to(outputs.dtype).reshape(outputs.shape[0], -1)
        return F.mse_loss(outputs, target.expand_as(outputs))
    return F.cross_entropy(outputs, labels.long().reshape(-1))


def prediction_loss(
    task: str,
    translated_outputs: torch.Tensor,
    source_labels: torch.Tensor,
    target_outputs: torch.Tensor,
    target_labels: torch.Tensor,
) -> torch.Tensor:
    """``L_pred`` (Yang & Xie eq. 2): the task loss on ``P(G(y))`` with the source labels plus the task
    loss on ``P(x)`` with the target labels (each a batch mean).

    Example:
        >>> out = torch.tensor([[0.0], [2.0]])
        >>> prediction_loss("regression", out, torch.tensor([1.0, 2.0]), out, torch.tensor([0.0, 2.0])).item()
        0.5
    """
    return task_loss(task, translated_outputs, source_labels) + task_loss(task, target_outputs, target_labels)


def joint_objective(
    translation: torch.Tensor, prediction: torch.Tensor | None, weight: float = PREDICTION_WEIGHT
) -> torch.Tensor:
    """``L_trans + λ · L_pred`` (Yang & Xie eq. 3); ``L_trans`` alone for a plain CycleGAN.

    Example:
        >>> round(joint_objective(torch.tensor(2.0), torch.tensor(100.0)).item(), 4)
        2.1
    """
    return translation if prediction is None else translation + weight * prediction
