"""The feature network side of :class:`~latent_transforms.SelectiveFilter`: Monte Carlo dropout (run a
network with only its dropout layers active), the ``feature_net`` protocol's outputs, and a minimal
network that follows it.

MC dropout (Gal & Ghahramani 2016) is how Xue et al. 2021 score the uncertainty of a synthetic sample:
several passes with dropout on, every other module in eval mode.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn

from latent_transforms.errors import ConfigError

__all__ = [
    "DROPOUT_TYPES",
    "FeatureOutput",
    "TinyDropoutNet",
    "dropout_layers",
    "mc_dropout",
    "network_dtype",
    "parse_feature_output",
    "pool_features",
]

#: ``(logits [B, n_classes] or None, feature maps)``: what :func:`parse_feature_output` returns.
FeatureOutput = tuple[torch.Tensor | None, list[torch.Tensor]]

#: The dropout layers :func:`mc_dropout` switches on.
DROPOUT_TYPES = (
    nn.Dropout,
    nn.Dropout1d,
    nn.Dropout2d,
    nn.Dropout3d,
    nn.AlphaDropout,
    nn.FeatureAlphaDropout,
)


def dropout_layers(module: nn.Module) -> list[nn.Module]:
    """The dropout layers (:data:`DROPOUT_TYPES`) among ``module``'s submodules, itself included.

    Example:
        >>> len(dropout_layers(nn.Sequential(nn.Linear(2, 2), nn.Dropout(0.5))))
        1
    """
    return [m for m in module.modules() if isinstance(m, DROPOUT_TYPES)]


@contextlib.contextmanager
def mc_dropout(module: nn.Module, active: bool = True) -> Iterator[nn.Module]:
    """Run ``module`` for Monte Carlo dropout: every submodule in eval mode (BatchNorm uses its running
    statistics) except the dropout layers, which are in train mode (they drop). ``active=False`` puts
    the dropout layers in eval mode too (a deterministic pass, e.g. for the class centroids). Each
    submodule's own ``training`` flag is restored on exit, even after an exception.

    Dropout layers are ``nn.Dropout``, ``nn.Dropout1d/2d/3d``, ``nn.AlphaDropout`` and
    ``nn.FeatureAlphaDropout``. The flags are set directly, so a module whose ``train()`` refuses to
    leave eval mode (:class:`~latent_transforms.features.extractor.FrozenNetwork`) still gets MC dropout.

    Example:
        >>> net = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2), nn.Dropout(0.5)).train()
        >>> with mc_dropout(net):
        ...     tuple(m.training for m in net)
        (False, False, True)
        >>> tuple(m.training for m in net)
        (True, True, True)
    """
    saved = [(m, m.training) for m in module.modules()]
    try:
        for m, _ in saved:
            m.training = active and isinstance(m, DROPOUT_TYPES)
        yield module
    finally:
        for m, flag in saved:
            m.training = flag


class TinyDropoutNet(nn.Module):
    """A minimal network that follows :class:`SelectiveFilter`'s ``feature_net`` protocol (examples, tests).

    Two conv blocks and a linear classifier, with ``nn.Dropout(p)`` before the last block as in the
    paper's ResNet34. ``forward(x)`` with ``x`` ``[B, in_channels, H, W]`` (any range; any ``H, W >= 2``)
    returns ``(logits [B, n_classes], [f1 [B, width, H, W], f2 [B, width, ceil(H/2), ceil(W/2)]])``, or
    only the list of the two feature maps when ``classifier=False``. Weights come from torch's global RNG
    (``torch.manual_seed`` first for repeatable ones).

    Args:
        in_channels: channels of the images (paired modalities: one per modality).
        n_classes: outputs of the classifier.
        width: channels of both feature maps.
        p: dropout rate.
        classifier: return ``(logits, features)``; ``False``: only ``features``.

    Example:
        >>> _ = torch.manual_seed(0)
        >>> logits, feats = TinyDropoutNet(in_channels=2, n_classes=3).eval()(torch.zeros(4, 2, 8, 8))
        >>> tuple(logits.shape), [tuple(f.shape) for f in feats]
        ((4, 3), [(4, 8, 8, 8), (4, 8, 4, 4)])
    """

    def __init__(
        self,
        in_channels: int = 1,
        n_classes: int = 2,
        width: int = 8,
        p: float = 0.5,
        classifier: bool = True,
    ) -> None:
        super().__init__()
        self.block1 = nn.Sequential(nn.Conv2d(in_channels, width, 3, padding=1), nn.ReLU())
        self.dropout = nn.Dropout(p)
        self.block2 = nn.Sequential(nn.Conv2d(width, width, 3, stride=2, padding=1), nn.ReLU())
        self.classifier = nn.Linear(width, n_classes) if classifier else None

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]] | list[torch.Tensor]:
        """``(logits, [f1, f2])``, or ``[f1, f2]`` without a classifier (shapes in the class docstring)."""
        f1 = self.block1(x)
        f2 = self.block2(self.dropout(f1))
        if self.classifier is None:
            return [f1, f2]
        return self.classifier(f2.mean(dim=(2, 3))), [f1, f2]


def parse_feature_output(output: Any, name: str) -> FeatureOutput:
    """Read a ``feature_net`` output: ``(logits, [feature maps])``, one tensor, or a list of maps.

    Feature maps come back as float32 ``[B, C_l, H_l, W_l]`` or ``[B, C_l]``; ``name`` (the network's) is
    in the errors.

    Example:
        >>> logits, feats = parse_feature_output(torch.zeros(2, 4, 3, 3), "Net")
        >>> logits is None, [tuple(f.shape) for f in feats]
        (True, [(2, 4, 3, 3)])
    """
    if (
        isinstance(output, (tuple, list))
        and len(output) == 2
        and isinstance(output[0], torch.Tensor)
        and isinstance(output[1], (tuple, list))
    ):
        logits, feats = output[0], list(output[1])
        if logits.ndim != 2:
            raise ConfigError(
                f"{name} returned logits of shape {tuple(logits.shape)}; expected [B, n_classes]. "
                "Fix: return (logits [B, n_classes], [feature maps]) or only the list of feature maps."
            )
    elif isinstance(output, torch.Tensor):
        logits, feats = None, [output]
    elif isinstance(output, (tuple, list)) and all(isinstance(o, torch.Tensor) for o in output):
        logits, feats = None, list(output)
    else:
        raise ConfigError(
            f"{name} returned {type(output).__name__}; SelectiveFilter expects (logits [B, n_classes], "
            "[feature maps [B, C_l, H_l, W_l] or [B, C_l]]) or only the list of feature maps. "
            "Fix: wrap the network so its forward returns one of these (see TinyDropoutNet)."
        )
    if not feats or any(f.ndim not in (2, 4) for f in feats):
        raise ConfigError(
            f"{name} returned feature maps of shapes {[tuple(f.shape) for f in feats]}; expected a "
            "non-empty list of [B, C_l, H_l, W_l] maps or [B, C_l] vectors."
        )
    return logits, [f.float() for f in feats]


def network_dtype(net: nn.Module) -> torch.dtype:
    """The dtype of ``net``'s first floating-point parameter (float32 without one).

    Example:
        >>> network_dtype(nn.Linear(2, 2).double())
        torch.float64
    """
    for tensor in net.parameters():
        if tensor.is_floating_point():
            return tensor.dtype
    return torch.float32


def pool_features(f: torch.Tensor) -> torch.Tensor:
    """A feature map ``[B, C, H, W]`` averaged over its positions (``[B, C]``); vectors pass through.

    Example:
        >>> pool_features(torch.ones(2, 3, 4, 4)).shape
        torch.Size([2, 3])
    """
    return f.flatten(2).mean(dim=2) if f.ndim == 4 else f
