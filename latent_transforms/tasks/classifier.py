"""The task network: a torchvision ResNet adapted to small images, with dropout for MC-dropout.

The classifier of the classification experiments (Xue et al. 2021 used a ResNet-34), the feature network
of :class:`~latent_transforms.SelectiveFilter` and of the checkpoint choice by FID on task features.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torchvision.models.resnet import BasicBlock

from latent_transforms.checks import check_int, check_probability
from latent_transforms.errors import ConfigError

__all__ = ["DEPTHS", "ClassifierWithFeatures", "ResNetClassifier"]

#: Blocks per stage of the torchvision ResNets built from ``BasicBlock``.
DEPTHS: dict[int, tuple[int, int, int, int]] = {10: (1, 1, 1, 1), 18: (2, 2, 2, 2), 34: (3, 4, 6, 3)}


class ResNetClassifier(nn.Module):
    """A ResNet for 28-64 px images: torchvision's ``BasicBlock`` stages behind a 3x3 stem, no max-pool.

    ImageNet ResNets shrink the input 4x before the first stage (7x7 stride-2 stem and a max-pool), which
    leaves a 28 px image 7 px wide; small-image ResNets (CIFAR's) use a 3x3 stride-1 stem instead, as
    here. Stage ``s`` has ``width · 2^s`` channels and halves the resolution (except the first). Dropout
    (rate ``dropout``) sits before the last stage, where Xue et al. 2021 put it for MC-dropout, and a
    second one before the linear classifier. No pretrained weights (``weights=None``): it is trained on
    the task's own images.

    Input ``[B, in_channels, H, W]`` in ``[-1, 1]``; :meth:`forward` gives logits ``[B, num_classes]``,
    :meth:`forward_features` also the feature map after every stage (the ``(logits, [maps])`` protocol
    of :class:`~latent_transforms.SelectiveFilter`'s feature network), :meth:`embed` the pooled
    penultimate features ``[B, 8·width]`` (FID / precision-recall on task features).

    Args:
        in_channels: image channels (one per modality).
        num_classes: classifier outputs.
        depth: 10, 18 or 34 (torchvision's ResNet-10/18/34 stage layout).
        width: channels of the first stage (64 in torchvision; 16-32 train in minutes on a CPU).
        dropout: dropout rate for MC-dropout (0.5 in Xue et al. 2021).

    Example:
        >>> _ = torch.manual_seed(0)
        >>> net = ResNetClassifier(in_channels=1, num_classes=2, depth=10, width=8).eval()
        >>> logits, maps = net.forward_features(torch.zeros(3, 1, 32, 32))
        >>> tuple(logits.shape), [tuple(m.shape[1:]) for m in maps]
        ((3, 2), [(8, 32, 32), (16, 16, 16), (32, 8, 8), (64, 4, 4)])
        >>> net.embed(torch.zeros(3, 1, 32, 32)).shape
        torch.Size([3, 64])
        >>> net
        ResNetClassifier(in_channels=1, num_classes=2, depth=10, width=8, dropout=0.5)
    """

    def __init__(
        self,
        in_channels: int = 1,
        num_classes: int = 2,
        *,
        depth: int = 18,
        width: int = 32,
        dropout: float = 0.5,
    ) -> None:
        super().__init__()
        if depth not in DEPTHS:
            raise ConfigError(f"depth must be one of {sorted(DEPTHS)}; got {depth!r}.")
        self.in_channels = check_int("in_channels", in_channels, low=1)
        self.num_classes = check_int("num_classes", num_classes, low=2)
        self.depth = depth
        self.width = check_int("width", width, low=1)
        self.dropout_rate = check_probability("dropout", dropout)
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, width, 3, stride=1, padding=1, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(inplace=True),
        )
        stages: list[nn.Module] = []
        channels = width
        for index, blocks in enumerate(DEPTHS[depth]):
            out = width * 2**index
            stride = 1 if index == 0 else 2
            stages.append(self._stage(channels, out, blocks, stride))
            channels = out
        self.stages = nn.ModuleList(stages)
        self.dropout = nn.Dropout2d(dropout)
        self.head_dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(channels, num_classes)
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
        for module in self.modules():  # zero-init the last BN of each block (torchvision's option)
            if isinstance(module, BasicBlock):
                nn.init.zeros_(module.bn2.weight)

    @staticmethod
    def _stage(channels: int, out: int, blocks: int, stride: int) -> nn.Sequential:
        downsample = None
        if stride != 1 or channels != out:
            downsample = nn.Sequential(
                nn.Conv2d(channels, out, 1, stride=stride, bias=False), nn.BatchNorm2d(out)
            )
        layers = [BasicBlock(channels, out, stride, downsample)]
        layers += [BasicBlock(out, out) for _ in range(blocks - 1)]
        return nn.Sequential(*layers)

    def forward_features(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """``(logits [B, num_classes], [map after each stage])``."""
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ConfigError(
                f"expected images [B, {self.in_channels}, H, W], got {tuple(x.shape)}. Fix: pass the "
                "channels the classifier was built for."
            )
        h = self.stem(x)
        maps: list[torch.Tensor] = []
        for index, stage in enumerate(self.stages):
            if index == len(self.stages) - 1:
                h = self.dropout(h)
            h = stage(h)
            maps.append(h)
        pooled = h.mean(dim=(2, 3))
        return self.fc(self.head_dropout(pooled)), maps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``[B, num_classes]``."""
        return self.forward_features(x)[0]

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled last-stage features ``[B, 8·width]`` (dropout as the module's mode says)."""
        return self.forward_features(x)[1][-1].mean(dim=(2, 3))

    def with_features(self) -> ClassifierWithFeatures:
        """This network answering ``(logits, [maps])`` when called: the ``feature_net`` protocol of
        :class:`~latent_transforms.SelectiveFilter` (the same module, not a copy).

        Example:
            >>> net = ResNetClassifier(1, 2, depth=10, width=4).eval()
            >>> logits, maps = net.with_features()(torch.zeros(2, 1, 8, 8))
            >>> tuple(logits.shape), len(maps)
            ((2, 2), 4)
        """
        return ClassifierWithFeatures(self)

    def __repr__(self) -> str:
        return (
            f"ResNetClassifier(in_channels={self.in_channels}, num_classes={self.num_classes}, "
            f"depth={self.depth}, width={self.width}, dropout={self.dropout_rate})"
        )

    def config(self) -> dict[str, int | float]:
        """The constructor arguments (to rebuild the network for saved weights)."""
        return {
            "in_channels": self.in_channels,
            "num_classes": self.num_classes,
            "depth": self.depth,
            "width": self.width,
            "dropout": self.dropout_rate,
        }


class ClassifierWithFeatures(nn.Module):
    """Wraps a :class:`ResNetClassifier` so that calling it gives ``(logits, [map after each stage])``."""

    def __init__(self, model: ResNetClassifier) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        return self.model.forward_features(x)

    def __repr__(self) -> str:
        return f"{self.model!r}.with_features()"


def stage_channels(width: int, stages: Sequence[int] = (0, 1, 2, 3)) -> list[int]:
    """Channels of the given stages for a first-stage ``width``.

    Example:
        >>> stage_channels(16)
        [16, 32, 64, 128]
    """
    return [width * 2**s for s in stages]
