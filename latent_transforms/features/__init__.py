"""Features layer: frozen feature networks for metrics and perceptual losses, offline-aware.

Every metric takes a :class:`FeatureExtractor`; :func:`feature_network` builds one by name, as
:func:`perceptual_network` builds a :class:`PerceptualNetwork` for the losses. Both look the name up in one
registry (:func:`register_feature_network`, :func:`list_feature_networks`). The default,
``"efficientnet-lite0"``, has real ImageNet weights that ship in a package and so works offline;
``"inception-v3"`` and ``"vgg16"`` use weights already in the local torch hub cache; ``"discriminator"``
uses the GAN's own discriminator; ``"random"`` is for tests.
"""

from latent_transforms.features.efficientnet_lite import (
    EfficientNetLite0,
    convert_lite0_state_dict,
    efficientnet_lite0,
    lite0_weights_path,
)
from latent_transforms.features.extractor import FeatureExtractor, pool_features
from latent_transforms.features.perceptual import (
    DEFAULT_PERCEPTUAL_NETWORK,
    PERCEPTUAL_NETWORKS,
    PerceptualNetwork,
    RandomPerceptualNet,
    perceptual_distance,
    perceptual_network,
)
from latent_transforms.features.registry import (
    DEFAULT_FEATURE_NETWORK,
    FEATURE_NETWORK_KINDS,
    FEATURE_NETWORKS,
    DiscriminatorFeatures,
    RandomFeatureNet,
    canonical_feature_network_name,
    create_feature_network,
    feature_network,
    list_feature_networks,
    register_feature_network,
)
from latent_transforms.features.torchvision_nets import (
    TORCHVISION_NETWORKS,
    TorchvisionNetwork,
    hub_checkpoint_path,
    load_torchvision_network,
)

__all__ = [
    "DEFAULT_FEATURE_NETWORK",
    "DEFAULT_PERCEPTUAL_NETWORK",
    "FEATURE_NETWORKS",
    "FEATURE_NETWORK_KINDS",
    "PERCEPTUAL_NETWORKS",
    "TORCHVISION_NETWORKS",
    "DiscriminatorFeatures",
    "EfficientNetLite0",
    "FeatureExtractor",
    "PerceptualNetwork",
    "RandomFeatureNet",
    "RandomPerceptualNet",
    "TorchvisionNetwork",
    "canonical_feature_network_name",
    "convert_lite0_state_dict",
    "create_feature_network",
    "efficientnet_lite0",
    "feature_network",
    "hub_checkpoint_path",
    "list_feature_networks",
    "lite0_weights_path",
    "load_torchvision_network",
    "perceptual_distance",
    "perceptual_network",
    "pool_features",
    "register_feature_network",
]
