"""The task network for a continuous label: the small-image ResNet of the classifier with a regression head.

Yang & Xie predict a continuous label (physiological age, scored by mean squared error) from CT; the
cross-modal translator of :mod:`latent_transforms.translation` can train such a predictor jointly with the
translation, and the cross-modal experiment scores it.
"""

from __future__ import annotations

import torch
from torch import nn

from latent_transforms.checks import check_int
from latent_transforms.tasks.classifier import ResNetClassifier

__all__ = ["ResNetRegressor"]


class ResNetRegressor(ResNetClassifier):
    """:class:`~latent_transforms.tasks.ResNetClassifier`'s network with ``outputs`` linear outputs.

    The same 3x3 stem, ``BasicBlock`` stages and pooled features; the last linear layer gives
    ``outputs`` real values instead of class logits. Train it with the mean squared error on
    standardised targets (zero mean, unit variance) and map the predictions back.

    Input ``[B, in_channels, H, W]`` in ``[-1, 1]``; :meth:`forward` gives ``[B, outputs]``,
    :meth:`predict` ``[B]`` for a single output; :meth:`embed` and :meth:`forward_features` are the
    classifier's.

    Args:
        in_channels: image channels.
        outputs: regression targets per image.
        depth: 10, 18 or 34.
        width: channels of the first stage.
        dropout: dropout rate before the last stage and before the head (0 by default: regression
            needs no MC-dropout).

    Example:
        >>> _ = torch.manual_seed(0)
        >>> net = ResNetRegressor(in_channels=1, depth=10, width=4).eval()
        >>> net(torch.zeros(3, 1, 16, 16)).shape, net.predict(torch.zeros(3, 1, 16, 16)).shape
        (torch.Size([3, 1]), torch.Size([3]))
        >>> net
        ResNetRegressor(in_channels=1, outputs=1, depth=10, width=4, dropout=0.0)
    """

    def __init__(
        self,
        in_channels: int = 1,
        outputs: int = 1,
        *,
        depth: int = 18,
        width: int = 32,
        dropout: float = 0.0,
    ) -> None:
        super().__init__(in_channels, 2, depth=depth, width=width, dropout=dropout)
        self.num_outputs = check_int("outputs", outputs, low=1)
        self.fc = nn.Linear(self.fc.in_features, self.num_outputs)
        self.num_classes = self.num_outputs  # the width of forward's output, as for the classifier

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """``[B]`` for one output, else ``[B, outputs]`` (the module's mode is kept)."""
        out = self(x)
        return out[:, 0] if self.num_outputs == 1 else out

    def __repr__(self) -> str:
        return (
            f"ResNetRegressor(in_channels={self.in_channels}, outputs={self.num_outputs}, "
            f"depth={self.depth}, width={self.width}, dropout={self.dropout_rate})"
        )

    def config(self) -> dict[str, int | float]:
        """The constructor arguments (to rebuild the network for saved weights).

        Example:
            >>> ResNetRegressor(1, depth=10, width=4).config()["outputs"]
            1
        """
        return {
            "in_channels": self.in_channels,
            "outputs": self.num_outputs,
            "depth": self.depth,
            "width": self.width,
            "dropout": self.dropout_rate,
        }
