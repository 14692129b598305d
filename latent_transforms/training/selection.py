"""Checkpoint selection by an EMA-smoothed score (Xue et al. 2021: FID smoothed with α = 0.3)."""

from __future__ import annotations

import math
from typing import Any


class SmoothedSelection:
    """Tracks ``d_t = α·d_{t−1} + (1 − α)·score_t`` (``d_1 = score_1``) over checkpoints and remembers
    the best (lowest), as Xue et al. 2021 smooth FID for choosing a cGAN checkpoint.

    Smoothing keeps one lucky evaluation from choosing a checkpoint in an unstable stretch of training.
    With the paper's ``α = 0.3`` the newest score weighs 0.7 and the history 0.3.

    Args:
        alpha: weight of the previous smoothed value (0 = no smoothing).

    Example:
        >>> sel = SmoothedSelection(alpha=0.3)
        >>> tuple(sel.update(k, s) for k, s in [(10, 50.0), (20, 20.0), (30, 90.0), (40, 15.0)])
        (True, True, False, False)
        >>> second = sel.history[1]
        >>> round(second["smoothed"], 3)  # 0.3 · 50 + 0.7 · 20
        29.0
        >>> sel.best_kimg, round(sel.best_smoothed, 3)  # one lucky score (15.0) after a bad one does not win
        (20, 29.0)
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
            score if self.smoothed is None else self.alpha * self.smoothed + (1 - self.alpha) * score
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
