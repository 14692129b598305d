"""Synthetic sets drawn once for both utility protocols of a run.

The augmentation and the feature-extraction protocol of one run (one seed) ask the generator for the same
labelled synthetic set (:func:`latent_transforms.tasks.synthetic_set` with the run's seed). For a diffusion
model or LatentAugment on a CPU that set costs far more than the classifier training itself, so
:class:`RememberedDraws` keeps the last run's draws in memory and gives them back instead of drawing again.
"""

from __future__ import annotations

from typing import Any

import torch


class RememberedDraws:
    """The generators' face ``sample(n, labels, seed=...)`` over ``source``, each draw kept until
    :meth:`forget`.

    Args:
        source: a transform with ``sample(n, labels, generator=..., value_range=...)`` (``SG2Sample``,
            ``DiffusionSample``) or an object with ``sample(n, labels, seed=...)``.
        config: the generator's config (its ``c_dim`` says how many classes there are).

    Example:
        >>> class Counting:
        ...     calls = 0
        ...     def sample(self, n, labels=None, *, seed=0):
        ...         Counting.calls += 1
        ...         return torch.full((n, 1, 2, 2), float(seed))
        >>> draws = RememberedDraws(Counting(), config=None)
        >>> labels = torch.tensor([0, 1])
        >>> a, b = draws.sample(2, labels, seed=5), draws.sample(2, labels, seed=5)
        >>> torch.equal(a, b), Counting.calls
        (True, 1)
    """

    def __init__(self, source: Any, config: Any) -> None:
        self.source = source
        self.config = config
        self._kept: dict[tuple[int, int, bytes | None], torch.Tensor] = {}

    def __repr__(self) -> str:
        return f"RememberedDraws({self.source!r}, kept={len(self._kept)})"

    def forget(self) -> None:
        """Drop the kept draws (a new run begins)."""
        self._kept.clear()

    def sample(self, n: int, labels: torch.Tensor | int | None = None, *, seed: int = 0) -> torch.Tensor:
        """``n`` images ``[n, C, R, R]`` in ``[-1, 1]`` on CPU of the classes ``labels``, the same for the
        same arguments."""
        code = None if labels is None else torch.as_tensor(labels).long().cpu().numpy().tobytes()
        key = (int(n), int(seed), code)
        if key not in self._kept:
            with torch.no_grad():
                if hasattr(self.source, "value_range"):  # a transform: its draws come from a CPU generator
                    g = torch.Generator().manual_seed(seed)
                    images = self.source.sample(n, labels, generator=g, value_range="generator")
                else:
                    images = self.source.sample(n, labels, seed=seed)
            self._kept[key] = images.detach().float().cpu()
        return self._kept[key].clone()
