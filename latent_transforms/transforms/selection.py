"""What :class:`~latent_transforms.SelectiveFilter` returns, and its lower-half rule (Xue et al. 2021).

Algorithm 1 keeps the scores strictly below the median, which for ``n`` distinct scores is the
``floor(n / 2)`` lowest; :func:`lower_half` keeps exactly those per class, ties broken by the position
in the pool (a stable sort, deterministic on every device).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

__all__ = ["SelectionResult", "half_round_up", "lower_half"]


@dataclass
class SelectionResult:
    """What :meth:`SelectiveFilter.select` returns for a pool of ``B`` samples, ``M`` of them kept.

    Everything is on the pool's device.

    Attributes:
        images: the kept samples ``[M, C, H, W]``, ``pool[indices]`` (the pool's dtype and values).
        indices: ``[M]`` long, positions of the kept samples in the pool, ascending.
        labels: ``[M]``, the kept samples' labels (``None`` for an unlabelled pool).
        uncertainty: ``[B]`` float32, the stage-1 score of every pool sample (lower is more confident):
            mean MC entropy (nats) or MC variance, see :attr:`uncertainty_kind`.
        distance: ``[B]`` float32, the eq. 3 feature distance of every pool sample to its class centroid
            (in ``[0, 4 L]`` for ``L`` feature layers). Computed for all samples from the same passes,
            but only the stage-1 survivors compete at stage 2.
        stage1: ``[B]`` bool, the samples kept by the uncertainty stage.
        kept: ``[B]`` bool, the samples kept by both stages (``kept`` implies ``stage1``).
        uncertainty_kind: ``"entropy"`` or ``"variance"``.

    Example:
        >>> r = SelectionResult(torch.zeros(1, 1, 2, 2), torch.tensor([1]), None, torch.zeros(4),
        ...                     torch.zeros(4), torch.tensor([False, True, True, False]),
        ...                     torch.tensor([False, True, False, False]), "variance")
        >>> len(r)
        1
    """

    images: torch.Tensor
    indices: torch.Tensor
    labels: torch.Tensor | None
    uncertainty: torch.Tensor
    distance: torch.Tensor
    stage1: torch.Tensor
    kept: torch.Tensor
    uncertainty_kind: str

    def __len__(self) -> int:
        return int(self.indices.numel())


def half_round_up(x: float) -> int:
    """``x`` rounded half up (``2.5 -> 3``), robust to float error.

    Example:
        >>> half_round_up(2.5), half_round_up(0.4999999999)
        (3, 1)
    """
    return math.floor(x + 0.5 + 1e-9)


def lower_half(scores: torch.Tensor, candidates: torch.Tensor, groups: torch.Tensor | None) -> torch.Tensor:
    """Bool mask of the ``floor(n / 2)`` lowest ``scores`` among ``candidates`` in each group (stable: ties
    go to the earlier position), the selection rule of Xue et al. 2021's Algorithm 1.

    Example:
        >>> lower_half(torch.tensor([3.0, 1.0, 2.0, 0.0]), torch.ones(4, dtype=torch.bool), None).tolist()
        [False, True, False, True]
    """
    out = torch.zeros_like(candidates)
    group_values = [None] if groups is None else torch.unique(groups[candidates]).tolist()
    for value in group_values:
        members = candidates if value is None else candidates & (groups == value)
        idx = members.nonzero().flatten()  # ascending pool positions
        order = torch.sort(scores[idx], stable=True).indices
        out[idx[order[: idx.numel() // 2]]] = True
    return out
