"""The user's task: the classifier the experiments train and the library uses to judge synthetic data.

:class:`ResNetClassifier` (a torchvision ResNet for small images with MC-dropout), its seeded trainer
:func:`train_classifier`, the scores :func:`classification_metrics` (accuracy, balanced accuracy, AUC,
sensitivity, specificity) and :func:`classifier_features` (the classifier as a feature network for FID,
precision/recall and :class:`~latent_transforms.SelectiveFilter`); :class:`ResNetRegressor` is the same
network with a regression head, for a continuous label.
"""

from latent_transforms.tasks.classifier import DEPTHS, ResNetClassifier
from latent_transforms.tasks.features import classifier_features
from latent_transforms.tasks.metrics import CLASSIFICATION_METRICS, binary_auc, classification_metrics
from latent_transforms.tasks.regressor import ResNetRegressor
from latent_transforms.tasks.training import (
    BatchAugment,
    ClassifierOptions,
    TrainedClassifier,
    as_image_labels,
    evaluate_classifier,
    predict_proba,
    train_classifier,
)

__all__ = [
    "CLASSIFICATION_METRICS",
    "DEPTHS",
    "BatchAugment",
    "ClassifierOptions",
    "ResNetClassifier",
    "ResNetRegressor",
    "TrainedClassifier",
    "as_image_labels",
    "binary_auc",
    "classification_metrics",
    "classifier_features",
    "evaluate_classifier",
    "predict_proba",
    "train_classifier",
]
