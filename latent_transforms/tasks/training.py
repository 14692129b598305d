"""Training and scoring the task classifier: seeded, with optional online augmentation and extra
(synthetic) training images, the best epoch chosen on a validation split.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from latent_transforms.checks import check_choice, check_int, check_number, default_device
from latent_transforms.errors import ConfigError
from latent_transforms.tasks.classifier import ResNetClassifier
from latent_transforms.tasks.metrics import classification_metrics

__all__ = [
    "BatchAugment",
    "ClassifierOptions",
    "TrainedClassifier",
    "as_image_labels",
    "evaluate_classifier",
    "predict_proba",
    "train_classifier",
]

BatchAugment = Callable[[torch.Tensor, torch.Tensor, torch.Generator], torch.Tensor]
"""``(images [B, C, R, R] in [-1, 1], labels [B], generator) -> images``: an online augmentation of a
training batch (same shape; the labels are the images' classes and must stay valid for the output)."""

SELECTIONS = ("val_auc", "val_accuracy", "val_loss", "last")


@dataclass(frozen=True)
class ClassifierOptions:
    """How the task classifier is trained.

    Args:
        epochs: passes over the (real + extra) training images.
        batch_size: images per step.
        lr: AdamW learning rate (cosine decay to 0 over the run, one warm-up epoch).
        weight_decay: AdamW weight decay.
        label_smoothing: cross-entropy label smoothing.
        select: the epoch kept: ``"val_auc"`` (default), ``"val_accuracy"``, ``"val_loss"`` (on the
            validation images) or ``"last"``.
        depth: the :class:`~latent_transforms.tasks.ResNetClassifier`'s depth (10, 18 or 34).
        width: its first stage's channels.
        dropout: its dropout rate (MC-dropout).
        seed: seeds the weights, the batch order, dropout and the augmentation generator.

    Example:
        >>> ClassifierOptions(epochs=3).replace(width=8).width
        8
    """

    epochs: int = 20
    batch_size: int = 128
    lr: float = 2e-3
    weight_decay: float = 5e-4
    label_smoothing: float = 0.0
    select: str = "val_auc"
    depth: int = 18
    width: int = 16
    dropout: float = 0.5
    seed: int = 0

    def __post_init__(self) -> None:
        check_int("epochs", self.epochs, low=1)
        check_int("batch_size", self.batch_size, low=1)
        check_number("lr", self.lr, low=0, low_open=True)
        check_number("weight_decay", self.weight_decay, low=0)
        check_number("label_smoothing", self.label_smoothing, low=0, high=1)
        check_choice("select", self.select, SELECTIONS)

    def replace(self, **changes: Any) -> ClassifierOptions:
        """A copy with ``changes`` applied."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return dataclasses.asdict(self)


@dataclass
class TrainedClassifier:
    """A trained classifier (in eval mode, on the CPU) and its training history.

    Attributes:
        model: the network at the selected epoch.
        best_epoch: that epoch (1-based).
        history: one dict per epoch: ``epoch``, ``loss`` and, with validation images, the
            :func:`~latent_transforms.tasks.classification_metrics` keys prefixed ``val_`` and ``val_loss``.
    """

    model: ResNetClassifier
    best_epoch: int
    history: list[dict[str, float]] = field(default_factory=list)


def as_image_labels(data: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """``(images [N, C, R, R] float32 in [-1, 1], labels [N] int64)`` from a labelled dataset.

    Accepts a ``(images, labels)`` pair (images already in ``[-1, 1]``), a
    :class:`~latent_transforms.data.LabelledImages` (normalised through its window), a
    ``torch.utils.data.Subset`` of one, or any dataset of ``{"image", "label"}`` items with a ``window``
    reachable as ``dataset.window`` (or images already in ``[-1, 1]``).

    Example:
        >>> import numpy as np
        >>> from latent_transforms.data import LabelledImages
        >>> x, y = as_image_labels(LabelledImages(np.full((2, 4, 4), 255, np.uint8), [0, 1]))
        >>> tuple(x.shape), x.max().item(), y.tolist()
        ((2, 1, 4, 4), 1.0, [0, 1])
    """
    if isinstance(data, tuple) and len(data) == 2:
        images, labels = data
        return torch.as_tensor(images).float(), torch.as_tensor(labels).reshape(-1).long()
    base, indices = data, None
    if isinstance(data, torch.utils.data.Subset):
        base, indices = data.dataset, list(data.indices)
    if hasattr(base, "images_tensor") and hasattr(base, "labels"):
        images, labels = base.images_tensor(), base.labels
        if indices is not None:
            images, labels = images[indices], labels[indices]
        return images, labels.long()
    window = getattr(base, "window", None)
    items = [data[i] for i in range(len(data))]
    if not items:
        raise ConfigError("the dataset is empty.")
    images = torch.stack([torch.as_tensor(it["image"]).float() for it in items])
    if window is not None:
        images = window.normalize(images)
    return images, torch.tensor([int(it["label"]) for it in items])


@torch.no_grad()
def predict_proba(
    model: nn.Module, images: torch.Tensor, *, batch_size: int = 256, device: torch.device | str | None = None
) -> torch.Tensor:
    """Softmax probabilities ``[N, K]`` (CPU float32) of ``model`` in eval mode on ``images`` in ``[-1, 1]``.

    Example:
        >>> _ = torch.manual_seed(0)
        >>> net = ResNetClassifier(1, 3, depth=10, width=4)
        >>> predict_proba(net, torch.zeros(5, 1, 16, 16)).sum(dim=1).round().tolist()
        [1.0, 1.0, 1.0, 1.0, 1.0]
    """
    dev = torch.device(device) if device is not None else next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        out = [
            F.softmax(model(images[i : i + batch_size].to(dev)).float(), dim=1).cpu()
            for i in range(0, len(images), batch_size)
        ]
    finally:
        model.train(was_training)
    return torch.cat(out)


def evaluate_classifier(model: nn.Module, data: Any, *, batch_size: int = 256) -> dict[str, float]:
    """:func:`~latent_transforms.tasks.classification_metrics` of ``model`` on a labelled dataset.

    Example:
        >>> _ = torch.manual_seed(0)
        >>> net = ResNetClassifier(1, 2, depth=10, width=4)
        >>> sorted(evaluate_classifier(net, (torch.zeros(4, 1, 8, 8), torch.tensor([0, 1, 0, 1]))))
        ['accuracy', 'auc', 'balanced_accuracy', 'sensitivity', 'specificity']
    """
    images, labels = as_image_labels(data)
    return classification_metrics(labels, predict_proba(model, images, batch_size=batch_size))


def _score(history_entry: dict[str, float], select: str) -> float:
    if select == "val_loss":
        return -history_entry["val_loss"]
    value = history_entry[select]
    return value if not math.isnan(value) else -math.inf


def train_classifier(
    train: Any,
    *,
    val: Any = None,
    extra: tuple[torch.Tensor, torch.Tensor] | None = None,
    options: ClassifierOptions | None = None,
    augment: BatchAugment | None = None,
    model: ResNetClassifier | None = None,
    device: torch.device | str | None = None,
    progress: bool = True,
    description: str = "classifier",
) -> TrainedClassifier:
    """Train a :class:`~latent_transforms.tasks.ResNetClassifier` with cross-entropy and AdamW.

    Args:
        train: the real training images (anything :func:`as_image_labels` takes).
        val: validation images for choosing the epoch (``None``: the last epoch is kept).
        extra: more training images ``(images [M, C, R, R] in [-1, 1], labels [M])`` (e.g. selected
            synthetic samples), mixed into every epoch with the real ones; not augmented online.
        options: :class:`ClassifierOptions`.
        augment: an online augmentation applied to the real images of each batch (see
            :data:`BatchAugment`), called with a generator seeded from ``options.seed``.
        model: a network to train (default: a new one from ``options``).
        device: where to train (default: CUDA when available).
        progress: show a tqdm bar over epochs.
        description: the bar's label.

    Returns:
        :class:`TrainedClassifier`: the model (CPU, eval mode) of the selected epoch and the history.

    Same ``options.seed``, data and augmentation: the same model, on the CPU.

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> x = torch.rand(32, 1, 16, 16, generator=g) * 2 - 1
        >>> y = (x.mean(dim=(1, 2, 3)) > 0).long()
        >>> result = train_classifier((x, y), val=(x, y), progress=False,
        ...                           options=ClassifierOptions(epochs=2, batch_size=8, depth=10, width=4))
        >>> result.best_epoch in (1, 2), sorted(result.history[0])[:3]
        (True, ['epoch', 'loss', 'val_accuracy'])
    """
    opts = options or ClassifierOptions()
    dev = default_device(device)
    x, y = as_image_labels(train)
    if extra is not None:
        ex, ey = torch.as_tensor(extra[0]).float(), torch.as_tensor(extra[1]).reshape(-1).long()
        if ex.shape[1:] != x.shape[1:]:
            raise ConfigError(f"extra images are {tuple(ex.shape[1:])}, the real ones {tuple(x.shape[1:])}.")
    else:
        ex, ey = x[:0], y[:0]
    num_classes = int(max(int(y.max()), int(ey.max()) if len(ey) else 0)) + 1
    num_classes = max(num_classes, 2)
    val_xy = as_image_labels(val) if val is not None else None
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(opts.seed)
        net = (
            model
            if model is not None
            else ResNetClassifier(
                x.shape[1], num_classes, depth=opts.depth, width=opts.width, dropout=opts.dropout
            )
        )
    net = net.to(dev)
    optimizer = torch.optim.AdamW(net.parameters(), lr=opts.lr, weight_decay=opts.weight_decay)
    n_real, n_all = len(x), len(x) + len(ex)
    steps_per_epoch = max(math.ceil(n_all / opts.batch_size), 1)
    total = steps_per_epoch * opts.epochs
    warmup = steps_per_epoch

    def lr_at(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return 0.5 * (1.0 + math.cos(math.pi * (step - warmup) / max(total - warmup, 1)))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_at)
    order_gen = torch.Generator().manual_seed(opts.seed)
    augment_gen = torch.Generator().manual_seed(opts.seed + 1)
    all_x, all_y = torch.cat([x, ex]), torch.cat([y, ey])
    history: list[dict[str, float]] = []
    best_state, best_epoch, best_score = None, 0, -math.inf
    with torch.random.fork_rng(devices=[dev] if dev.type == "cuda" else []):
        torch.manual_seed(opts.seed + 2)  # dropout draws
        bar = tqdm(range(1, opts.epochs + 1), desc=description, disable=not progress, leave=False)
        for epoch in bar:
            net.train()
            perm = torch.randperm(n_all, generator=order_gen)
            loss_sum, seen = 0.0, 0
            for start in range(0, n_all, opts.batch_size):
                idx = perm[start : start + opts.batch_size]
                bx, by = all_x[idx], all_y[idx]
                if augment is not None:
                    real = idx < n_real
                    if bool(real.any()):
                        bx = bx.clone()
                        bx[real] = augment(bx[real], by[real], augment_gen).to(bx.dtype)
                bx, by = bx.to(dev), by.to(dev)
                loss = F.cross_entropy(net(bx), by, label_smoothing=opts.label_smoothing)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                scheduler.step()
                loss_sum += float(loss.detach()) * len(idx)
                seen += len(idx)
            entry: dict[str, float] = {"epoch": epoch, "loss": loss_sum / seen}
            if val_xy is not None:
                probs = predict_proba(net, val_xy[0])
                entry["val_loss"] = float(F.nll_loss(probs.clamp_min(1e-12).log(), val_xy[1]))
                entry.update({f"val_{k}": v for k, v in classification_metrics(val_xy[1], probs).items()})
            history.append(entry)
            select = opts.select if val_xy is not None else "last"
            score = float(epoch) if select == "last" else _score(entry, select)
            if score >= best_score:
                best_score, best_epoch = score, epoch
                best_state = copy.deepcopy(net.state_dict())
            bar.set_postfix(
                {k: f"{v:.3f}" for k, v in entry.items() if k in ("loss", "val_auc")}, refresh=False
            )
    assert best_state is not None
    net.load_state_dict(best_state)
    return TrainedClassifier(net.cpu().eval(), best_epoch, history)
