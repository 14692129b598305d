"""The user's task: the classifier the experiments train and the library uses to judge synthetic data.

:class:`ResNetClassifier` (a torchvision ResNet for small images with MC-dropout), its seeded trainer
:func:`train_classifier`, the scores :func:`classification_metrics` (accuracy, balanced accuracy, AUC,
sensitivity, specificity), :func:`classifier_features` (the classifier as a feature network for FID,
precision/recall and :class:`~latent_transforms.SelectiveFilter`) and the utility protocols of Xing et al.
2023 (:func:`augmentation_utility`, :func:`extraction_utility`, :func:`classifier_utility` for
``evaluate``) with :func:`sampling_efficiency`. :class:`ResNetRegressor` is the same network with a
regression head, for a continuous label. :func:`save_classifier` / :func:`load_classifier` keep a trained
network as safetensors weights beside its constructor arguments.
"""

from latent_transforms.tasks.classifier import DEPTHS, ResNetClassifier
from latent_transforms.tasks.features import classifier_features
from latent_transforms.tasks.metrics import CLASSIFICATION_METRICS, binary_auc, classification_metrics
from latent_transforms.tasks.regressor import ResNetRegressor
from latent_transforms.tasks.saving import (
    classifier_config_path,
    load_classifier,
    network_from_config,
    save_classifier,
)
from latent_transforms.tasks.synthetic import sampling_efficiency, stratified_fraction, synthetic_set
from latent_transforms.tasks.training import (
    BatchAugment,
    ClassifierOptions,
    TrainedClassifier,
    as_image_labels,
    evaluate_classifier,
    predict_proba,
    train_classifier,
)
from latent_transforms.tasks.utility import (
    PROTOCOLS,
    UtilityComparison,
    augmentation_utility,
    classifier_utility,
    extraction_utility,
    finetune_last_layer,
)

__all__ = [
    "CLASSIFICATION_METRICS",
    "DEPTHS",
    "PROTOCOLS",
    "BatchAugment",
    "ClassifierOptions",
    "ResNetClassifier",
    "ResNetRegressor",
    "TrainedClassifier",
    "UtilityComparison",
    "as_image_labels",
    "augmentation_utility",
    "binary_auc",
    "classification_metrics",
    "classifier_config_path",
    "classifier_features",
    "classifier_utility",
    "evaluate_classifier",
    "extraction_utility",
    "finetune_last_layer",
    "load_classifier",
    "network_from_config",
    "predict_proba",
    "sampling_efficiency",
    "save_classifier",
    "stratified_fraction",
    "synthetic_set",
    "train_classifier",
]
