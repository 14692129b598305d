"""The task classifier as a feature network: FID, precision/recall and checkpoint choice on task features."""

from __future__ import annotations

import copy

import torch
from torch import nn

from latent_transforms.features.extractor import FeatureExtractor
from latent_transforms.tasks.classifier import ResNetClassifier

__all__ = ["classifier_features"]


class _Embedding(nn.Module):
    def __init__(self, model: ResNetClassifier) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.embed(x)


def classifier_features(
    model: ResNetClassifier, *, name: str = "task-resnet", batch_size: int = 256
) -> FeatureExtractor:
    """A frozen :class:`~latent_transforms.FeatureExtractor` of the classifier's pooled last-stage features.

    Joint mode: the whole ``[B, C, R, R]`` image in ``[-1, 1]`` (what the classifier was trained on) is
    embedded once, at its own size, with dropout off; embeddings ``[B, 1, 8·width]``. The classifier is
    copied, so training it further does not change the extractor.

    Example:
        >>> _ = torch.manual_seed(0)
        >>> fx = classifier_features(ResNetClassifier(1, 2, depth=10, width=4))
        >>> fx.embed(torch.zeros(3, 1, 16, 16)).shape
        torch.Size([3, 1, 32])
    """
    frozen = copy.deepcopy(model).cpu().eval()
    return FeatureExtractor(
        _Embedding(frozen),
        name=name,
        input_size=None,
        mean=(0.5,),
        std=(0.5,),
        joint=True,
        in_channels=model.in_channels,
        batch_size=batch_size,
        probe_shape=(model.in_channels, 32, 32),
    )
