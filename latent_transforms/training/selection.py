"""Checkpoint selection by an EMA-smoothed score: the EMA-smoothed FID of Xue et al. 2021 (α = 0.3)."""

from __future__ import annotations

import math
from typing import Any


class SmoothedSelection:
    """Tracks ``s_t = α·score_t + (1 − α)·s_{t−1}`` over checkpoints and remembers the best (lowest).

    Smoothing keeps one lucky evaluation from choosing a checkpoint in an unstable stretch of training.

    Args:
        alpha: weight of the newest score (1 = no smoothing).

    Example:
        >>> sel = SmoothedSelection(alpha=0.3)
        >>> tuple(sel.update(k, s) for k, s in [(10, 50.0), (20, 20.0), (30, 90.0), (40, 10.0)])
        (True, True, False, False)
        >>> sel.best_kimg, round(sel.best_smoothed, 3)  # one lucky score (10.0) after a bad one does not win
        (20, 41.0)
    """

    def __init__(self, alpha: float = 0.3) -> None:
        self.alpha = alpha
        self.smoothed: float | None = None
        self.best_smoothed = math.inf
        self.best_kimg: float | None = None
        self.history: list[dict[str, float]] = []

    def update(self, kimg: float, score: float) -> bool:
        """Record ``score`` at ``kimg``; returns whether this checkpoint is the new best."""
        self.smoothed = (
            score if self.smoothed is None else self.alpha * score + (1 - self.alpha) * self.smoothed
        )
        self.history.append({"kimg": kimg, "score": score, "smoothed": self.smoothed})
        if self.smoothed < self.best_smoothed:
            self.best_smoothed, self.best_kimg = self.smoothed, kimg
            return True
        return False

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume the selection."""
        return {
            "alpha": self.alpha,
            "smoothed": self.smoothed,
            "best_smoothed": self.best_smoothed,
            "best_kimg": self.best_kimg,
            "history": list(self.history),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore from :meth:`state_dict`."""
        self.alpha = float(state["alpha"])
        self.smoothed = state["smoothed"]
        self.best_smoothed = float(state["best_smoothed"])
        self.best_kimg = state["best_kimg"]
        self.history = list(state["history"])

    def __repr__(self) -> str:
        return f"SmoothedSelection(alpha={self.alpha}, best_kimg={self.best_kimg}, n={len(self.history)})"
