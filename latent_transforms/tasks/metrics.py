"""Classification scores from predicted probabilities: accuracy, balanced accuracy, AUC, sensitivity,
specificity.

AUC is the Mann-Whitney form (the probability that a random positive scores above a random negative,
ties counting one half), which equals the area under the ROC curve exactly; with more than two classes it
is the one-vs-rest macro average. Computed with torch alone, so the core install needs no scikit-learn
(the tests check it against ``sklearn.metrics``).
"""

from __future__ import annotations

from typing import Any

import torch

from latent_transforms.errors import ConfigError

__all__ = ["CLASSIFICATION_METRICS", "binary_auc", "classification_metrics"]

#: The keys :func:`classification_metrics` returns.
CLASSIFICATION_METRICS = ("accuracy", "balanced_accuracy", "auc", "sensitivity", "specificity")


def _average_ranks(x: torch.Tensor) -> torch.Tensor:
    """1-based ranks of ``x`` [N], ties sharing their mean rank."""
    order = torch.argsort(x, stable=True)
    sorted_x = x[order]
    ranks = torch.empty_like(x, dtype=torch.float64)
    n = len(x)
    # run starts/ends of equal values
    change = torch.ones(n, dtype=torch.bool)
    change[1:] = sorted_x[1:] != sorted_x[:-1]
    starts = change.nonzero().flatten()
    ends = torch.cat([starts[1:], torch.tensor([n])])
    mean_rank = (starts + ends + 1).double() / 2.0  # mean of (start+1 .. end)
    run = torch.repeat_interleave(mean_rank, ends - starts)
    ranks[order] = run
    return ranks


def binary_auc(labels: Any, scores: Any) -> float:
    """Area under the ROC curve for binary ``labels`` (1 = positive) and ``scores`` (higher = positive).

    Returns NaN when only one class is present.

    Example:
        >>> binary_auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
        0.75
    """
    y = torch.as_tensor(labels).reshape(-1).long()
    s = torch.as_tensor(scores, dtype=torch.float64).reshape(-1)
    n_pos = int((y == 1).sum())
    n_neg = len(y) - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = _average_ranks(s)
    u = float(ranks[y == 1].sum()) - n_pos * (n_pos + 1) / 2.0
    return u / (n_pos * n_neg)


def classification_metrics(labels: Any, probs: Any) -> dict[str, float]:
    """Scores of predicted class probabilities ``probs`` ``[N, K]`` against ``labels`` ``[N]``.

    ``accuracy`` (argmax), ``balanced_accuracy`` (mean per-class recall), ``auc`` (binary: class 1
    against class 0; ``K > 2``: one-vs-rest macro average), ``sensitivity`` and ``specificity`` (binary:
    the recall of class 1 and of class 0; ``K > 2``: the macro averages of per-class recall and
    specificity).

    Example:
        >>> probs = torch.tensor([[0.9, 0.1], [0.6, 0.4], [0.3, 0.7], [0.2, 0.8]])
        >>> m = classification_metrics([0, 1, 1, 1], probs)
        >>> m["accuracy"], m["sensitivity"], m["specificity"], round(m["auc"], 3)
        (0.75, 0.6666666666666666, 1.0, 1.0)
    """
    y = torch.as_tensor(labels).reshape(-1).long().cpu()
    p = torch.as_tensor(probs, dtype=torch.float64).cpu()
    if p.ndim != 2 or len(p) != len(y) or len(y) == 0:
        raise ConfigError(
            f"expected probabilities [N, K] and labels [N] with N >= 1, got {tuple(p.shape)} and "
            f"{tuple(y.shape)}."
        )
    k = p.shape[1]
    pred = p.argmax(dim=1)
    recalls, specificities = [], []
    for c in range(k):
        pos, neg = y == c, y != c
        if pos.any():
            recalls.append(float((pred[pos] == c).double().mean()))
        if neg.any():
            specificities.append(float((pred[neg] != c).double().mean()))
    result = {
        "accuracy": float((pred == y).double().mean()),
        "balanced_accuracy": sum(recalls) / len(recalls),
    }
    if k == 2:
        result["auc"] = binary_auc(y, p[:, 1])
        result["sensitivity"] = float((pred[y == 1] == 1).double().mean()) if (y == 1).any() else float("nan")
        result["specificity"] = float((pred[y == 0] == 0).double().mean()) if (y == 0).any() else float("nan")
    else:
        aucs = [binary_auc((y == c).long(), p[:, c]) for c in range(k)]
        aucs = [a for a in aucs if a == a]
        result["auc"] = sum(aucs) / len(aucs) if aucs else float("nan")
        result["sensitivity"] = result["balanced_accuracy"]
        result["specificity"] = sum(specificities) / len(specificities)
    return {key: result[key] for key in CLASSIFICATION_METRICS}
