"""Fidelity of a class-conditional generator per class: FID and improved precision / recall of each class's
samples against the real images of that class, and over all classes.

A conditional generator can be faithful overall yet cover a minority class poorly; per-class numbers show
it (Xue et al. 2021 choose checkpoints per class; Xing et al. 2023 read precision and recall as fidelity
and variety). Each class gets as many samples as it has real images, so the overall numbers compare sets
of the same class mix.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Protocol

import torch

from latent_transforms.errors import ConfigError
from latent_transforms.metrics.fid import fid
from latent_transforms.metrics.precision_recall import precision_recall

__all__ = ["ClassSampler", "class_fidelity"]


class _Embedder(Protocol):
    def embed(self, images: torch.Tensor) -> torch.Tensor: ...


#: ``sample(n, label, seed)`` -> ``[n, C, H, W]`` images of class ``label`` in ``[-1, 1]``.
ClassSampler = Callable[[int, int, int], torch.Tensor]


@torch.no_grad()
def class_fidelity(
    sample: ClassSampler,
    real: torch.Tensor,
    labels: torch.Tensor,
    extractor: _Embedder,
    *,
    k: int = 3,
    seed: int = 0,
    draws: int = 1,
) -> dict[str, Any]:
    """FID, precision, recall and F1 per class and over all classes.

    Args:
        sample: ``sample(n, label, seed) -> [n, C, H, W]`` in ``[-1, 1]``: ``n`` generated images of class
            ``label`` (clamped to ``[-1, 1]`` here).
        real: the real images ``[N, C, H, W]`` in ``[-1, 1]``.
        labels: their classes ``[N]`` (integers).
        extractor: a feature network with ``embed(images) -> [B, M, D]`` (M modalities; the first is used,
            as for single-modality images), e.g. ``feature_network("efficientnet-lite0")`` or the task
            classifier's ``classifier_features(model)``.
        k: the neighbour of the precision / recall radii (3 in Kynkäänniemi et al. 2019). Every class needs
            more than ``k`` real images.
        seed: base seed of the draws: draw ``d`` asks class ``c`` with ``seed + d * max(10, classes) + c``,
            so no two (draw, class) pairs share a seed.
        draws: independent sample draws; every score is their mean (precision and recall of a few hundred
            images move by a few hundredths between draws).

    Returns:
        ``{"fid", "precision", "recall", "f1", "per_class": {"<label>": {"fid", "precision", "recall",
        "f1", "n"}}, "draws", "seconds_per_1000"}``: ``seconds_per_1000`` is the sampling time per 1,000
        images.

    Example:
        >>> from latent_transforms.features import feature_network
        >>> g = torch.Generator().manual_seed(0)
        >>> real = torch.rand(24, 1, 16, 16, generator=g) * 2 - 1
        >>> labels = torch.arange(24) % 2
        >>> same = lambda n, label, seed: real[labels == label]  # a "generator" that copies the data
        >>> out = class_fidelity(same, real, labels, feature_network("random"), k=3, draws=2)
        >>> scores = out["per_class"].get("1")
        >>> scores["precision"], scores["recall"], scores["n"], out["draws"]
        (1.0, 1.0, 12, 2)
    """
    labels = torch.as_tensor(labels).long().flatten()
    if real.ndim != 4 or len(real) != len(labels):
        raise ConfigError(
            f"expected real images [N, C, H, W] and N labels; got {tuple(real.shape)} and "
            f"{len(labels)} labels."
        )
    if draws < 1:
        raise ConfigError(f"draws must be at least 1; got {draws}.")
    classes = sorted(set(labels.tolist()))
    real_features: dict[int, torch.Tensor] = {}
    for label in classes:
        x = real[labels == label]
        if len(x) <= k:
            raise ConfigError(
                f"class {label} has {len(x)} real images; precision / recall with k = {k} need more than {k}."
            )
        real_features[label] = extractor.embed(x)[:, 0]
    stride = max(10, len(classes))
    seconds = 0.0
    runs = []
    for d in range(draws):
        per_class: dict[str, Any] = {}
        all_fake = []
        for label in classes:
            x = real[labels == label]
            start = time.perf_counter()
            fake = sample(len(x), int(label), seed + d * stride + int(label))
            seconds += time.perf_counter() - start
            if fake.shape != x.shape:
                raise ConfigError(
                    f"sample({len(x)}, {label}, ...) gave {tuple(fake.shape)}; expected {tuple(x.shape)} "
                    "like the real images of the class."
                )
            ff = extractor.embed(fake.float().clamp(-1, 1))[:, 0]
            fr = real_features[label]
            per_class[str(label)] = {"fid": fid(fr, ff), **precision_recall(fr, ff, k=k), "n": len(x)}
            all_fake.append(ff)
        fr = torch.cat([real_features[label] for label in classes])
        runs.append({"fid": fid(fr, torch.cat(all_fake)), **precision_recall(fr, torch.cat(all_fake), k=k)})
        runs[-1]["per_class"] = per_class
    return {
        **_mean(runs),
        "per_class": {
            c: {**_mean([run["per_class"][c] for run in runs]), "n": runs[0]["per_class"][c]["n"]}
            for c in runs[0]["per_class"]
        },
        "draws": draws,
        "seconds_per_1000": 1000 * seconds / (draws * len(labels)),
    }


def _mean(runs: list[dict[str, Any]]) -> dict[str, float]:
    """The mean over draws of every score (``fid``, ``precision``, ``recall``, ``f1``)."""
    return {
        key: sum(float(run[key]) for run in runs) / len(runs) for key in ("fid", "precision", "recall", "f1")
    }
