"""LPIPS (Zhang et al., CVPR 2018) with the ``lpips`` package, offline.

LPIPS compares deep features of two images: a backbone (AlexNet, VGG16 or SqueezeNet-1.1, with
ImageNet weights) and small linear heads calibrated on human judgements. The ``lpips`` wheel ships the
linear heads (``lpips/weights/v0.1/<net>.pth``) but not the backbone: ``lpips`` would download the
backbone through torchvision, which cannot happen offline. So :func:`lpips_network` builds
``lpips.LPIPS`` with a random backbone and loads torchvision's ImageNet weights file from the local
torch hub cache, ``torch.hub.get_dir()/checkpoints/`` (``$TORCH_HOME/hub/checkpoints``, by default
``~/.cache/torch/hub/checkpoints``), into it. If the file is not there, the error says which file to
place where and how to get it; nothing is downloaded.

The backbone of ``lpips`` keeps torchvision's ``features`` layers under their original indices, split
into "slices" (for AlexNet ``slice1.0`` is ``features.0``, ``slice2.3`` is ``features.3``, ...), so
``features.<i>.<param>`` of the torchvision file goes to ``<slice>.<i>.<param>``; the classifier
layers of the file are not used.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from latent_transforms.data.windows import IntensityWindow, as_window
from latent_transforms.errors import (
    ConfigError,
    FeatureNetworkUnavailableError,
    MissingDependencyError,
    WeightMismatchError,
)
from latent_transforms.features.torchvision_nets import hub_checkpoint_path

LPIPS_INSTALL = "pip install 'latent-transforms[lpips]'"


@dataclass(frozen=True)
class LpipsBackbone:
    """The torchvision ImageNet weights file behind one ``lpips`` backbone.

    Attributes:
        net: the ``lpips`` name (``"alex"``, ``"vgg"``, ``"squeeze"``).
        constructor: the torchvision function whose weights ``lpips`` uses.
        filename: the file torchvision caches in ``<hub dir>/checkpoints/`` for ``IMAGENET1K_V1``.

    Example:
        >>> LPIPS_BACKBONES["alex"].url()
        'https://download.pytorch.org/models/alexnet-owt-7be5be79.pth'
    """

    net: str
    constructor: str
    filename: str

    def url(self) -> str:
        """Where torchvision downloads the file from."""
        return f"https://download.pytorch.org/models/{self.filename}"


LPIPS_BACKBONES: dict[str, LpipsBackbone] = {
    "alex": LpipsBackbone("alex", "alexnet", "alexnet-owt-7be5be79.pth"),
    "vgg": LpipsBackbone("vgg", "vgg16", "vgg16-397923af.pth"),
    "squeeze": LpipsBackbone("squeeze", "squeezenet1_1", "squeezenet1_1-b8a52dc0.pth"),
}
"""``lpips`` backbone name -> its torchvision weights file (torchvision's ``IMAGENET1K_V1`` weights)."""

_ALIASES = {"alexnet": "alex", "vgg16": "vgg", "squeezenet": "squeeze", "squeezenet1_1": "squeeze"}
_CACHE: dict[tuple[str, str, str], nn.Module] = {}


def _backbone(net: str) -> LpipsBackbone:
    name = _ALIASES.get(net, net) if isinstance(net, str) else net
    if name not in LPIPS_BACKBONES:
        raise ConfigError(
            f"expected an LPIPS backbone name from {sorted(LPIPS_BACKBONES)}, got {net!r}. "
            "Fix: net='alex' (the LPIPS default, used by the evaluation of Tronchin et al. 2023)."
        )
    return LPIPS_BACKBONES[name]


def _import_lpips() -> Any:
    try:
        import lpips
    except ImportError as exc:
        raise MissingDependencyError(
            f"LPIPS needs the optional package lpips, which is not installed ({exc}). Fix: {LPIPS_INSTALL} "
            "(or pip install lpips)."
        ) from exc
    return lpips


def lpips_checkpoint(net: str = "alex") -> Path:
    """The backbone weights file LPIPS ``net`` needs, after checking that it is in the torch hub cache.

    Args:
        net: ``"alex"``, ``"vgg"`` or ``"squeeze"`` (aliases ``"alexnet"``, ``"vgg16"``, ``"squeezenet1_1"``).

    Returns:
        ``torch.hub.get_dir()/checkpoints/<file>``.

    Raises:
        MissingDependencyError: the ``lpips`` package is not installed.
        FeatureNetworkUnavailableError: the file is absent; the message says which file to place where
            and how to get it.

    Example:
        >>> lpips_checkpoint("alex").name  # doctest: +SKIP
        'alexnet-owt-7be5be79.pth'
        >>> LPIPS_BACKBONES["squeeze"].filename
        'squeezenet1_1-b8a52dc0.pth'
    """
    spec = _backbone(net)
    _import_lpips()
    path = hub_checkpoint_path(spec.filename)
    if not path.is_file():
        raise FeatureNetworkUnavailableError(
            f"LPIPS({spec.net!r}) needs torchvision's ImageNet weights file {spec.filename!r} for its "
            f"{spec.constructor} backbone in the torch hub cache, expected at {path}, which does not exist "
            "(nothing is downloaded; the lpips package ships only the linear heads). Fix: on a machine with "
            "internet access run\n"
            '    python -c "import torchvision; '
            f"torchvision.models.{spec.constructor}(weights='IMAGENET1K_V1')\"\n"
            f"(or download {spec.url()}), then copy ~/.cache/torch/hub/checkpoints/{spec.filename} to "
            f"{path.parent}/ here (set TORCH_HOME to use another cache folder)."
        )
    return path


def _load_backbone(model: nn.Module, path: Path, spec: LpipsBackbone) -> None:
    """Copy ``features.<i>.*`` of torchvision's state dict into the ``lpips`` backbone's slices."""
    try:
        state = torch.load(path, weights_only=True, map_location="cpu")
        mapped = {}
        for slice_name, block in model.net.named_children():
            for index, layer in block.named_children():
                for key in layer.state_dict():
                    mapped[f"{slice_name}.{index}.{key}"] = state[f"features.{index}.{key}"]
        model.net.load_state_dict(mapped, strict=True)
    except (RuntimeError, KeyError, ValueError, OSError, AttributeError, TypeError) as exc:
        reason = str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__
        raise WeightMismatchError(
            f"expected torchvision's {spec.constructor} ImageNet state dict in {path}, but it does not fit "
            f"the LPIPS {spec.net!r} backbone: {reason}. Fix: replace the file with the one torchvision "
            f"downloads ({spec.url()})."
        ) from exc


def lpips_network(net: str = "alex", *, device: torch.device | str | None = None) -> nn.Module:
    """``lpips.LPIPS`` (v0.1) with its calibrated linear heads and ImageNet backbone, built offline.

    Builds ``lpips.LPIPS(net=net, pretrained=True, pnet_rand=True, verbose=False)`` (the linear heads
    come from the lpips wheel, the backbone starts random) and loads the backbone's torchvision weights
    from the torch hub cache (:data:`LPIPS_BACKBONES` names the files). The network is in eval mode,
    without gradients, and cached per ``(net, device, weights file)``: later calls return the same
    module (:func:`clear_lpips_cache` forgets them).

    Args:
        net: ``"alex"`` (default, as in LPIPS' paper), ``"vgg"`` or ``"squeeze"``.
        device: where the network lives (``None``: CPU).

    Returns:
        The ``lpips.LPIPS`` module: ``model(a, b)`` maps two ``[N, 3, H, W]`` images in ``[-1, 1]`` to
        ``[N, 1, 1, 1]`` distances.

    Raises:
        MissingDependencyError: ``lpips`` is not installed (``pip install 'latent-transforms[lpips]'``).
        FeatureNetworkUnavailableError: the backbone's weights file is not in the torch hub cache.
        WeightMismatchError: the file is there but does not fit the backbone.

    Example:
        >>> model = lpips_network("alex")  # doctest: +SKIP
        >>> float(model(torch.zeros(1, 3, 64, 64), torch.zeros(1, 3, 64, 64)))  # doctest: +SKIP
        0.0
        >>> sorted(LPIPS_BACKBONES)
        ['alex', 'squeeze', 'vgg']
    """
    spec = _backbone(net)
    path = lpips_checkpoint(spec.net)
    dev = torch.device(device) if device is not None else torch.device("cpu")
    key = (spec.net, str(dev), str(path.resolve()))
    if key in _CACHE:
        return _CACHE[key]
    lpips = _import_lpips()
    with warnings.catch_warnings():  # lpips calls torchvision with the deprecated `pretrained=` argument
        warnings.simplefilter("ignore", UserWarning)
        model = lpips.LPIPS(net=spec.net, pretrained=True, pnet_rand=True, verbose=False)
    _load_backbone(model, path, spec)
    model = model.to(dev).eval().requires_grad_(False)
    _CACHE[key] = model
    return model


def clear_lpips_cache() -> None:
    """Forget the networks :func:`lpips_network` built (e.g. after replacing a weights file).

    Example:
        >>> clear_lpips_cache()
    """
    _CACHE.clear()


def _images(x: Any, name: str) -> torch.Tensor:
    if not isinstance(x, torch.Tensor) or x.ndim not in (3, 4) or 0 in x.shape:
        got = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ConfigError(f"expected {name} as a non-empty tensor [B, C, H, W] or [B, H, W], got {got}.")
    x = x[:, None] if x.ndim == 3 else x
    return x if x.is_floating_point() else x.to(torch.float32)


def lpips_distance(
    pred: torch.Tensor,
    target: torch.Tensor,
    *,
    net: str | nn.Module = "alex",
    window: IntensityWindow | tuple[float, float] | None = None,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """LPIPS distance per image between ``pred`` and ``target`` (0 for identical images, no gradients).

    Every channel is scored as a grey image (repeated to the 3 input channels of the ImageNet backbone)
    and the per-channel distances are averaged: a 2-channel ``[mri, ct]`` image gives the mean of the
    MRI and CT distances, and a 3-channel input is treated as three grey channels, not as RGB.

    Args:
        pred: ``[B, C, H, W]`` or ``[B, H, W]``, in ``[-1, 1]``, or in physical units when ``window`` is
            given. At least 32 x 32 pixels (AlexNet's pooling needs them).
        target: same shape as ``pred``.
        net: ``"alex"``, ``"vgg"``, ``"squeeze"`` (built by :func:`lpips_network`) or a ready module with
            LPIPS' call signature ``module(a, b) -> [N, 1, 1, 1]`` for ``[N, 3, H, W]`` inputs in ``[-1, 1]``.
        window: an :class:`IntensityWindow` or ``(low, high)``: clip ``pred`` and ``target`` to it and map
            it to ``[-1, 1]`` (``window.normalize``) before scoring.
        device: where to compute (``None``: the module's device for a module, else ``pred``'s device).

    Returns:
        ``float64`` tensor ``[B]`` (>= 0, unitless) on the device used.

    Raises:
        ConfigError: shapes differ, or values fall outside ``[-1, 1]`` without a ``window``.
        FeatureNetworkUnavailableError: ``net`` is a name and its weights file is absent.

    Example:
        >>> class L1(torch.nn.Module):  # a stand-in with LPIPS' call signature; real use: net="alex"
        ...     def forward(self, a, b):
        ...         return (a - b).abs().mean(dim=(1, 2, 3), keepdim=True)
        >>> ct = torch.full((2, 1, 32, 32), -1000.0)
        >>> lpips_distance(ct, ct, net=L1(), window=(-1000, 2000)).tolist()
        [0.0, 0.0]
        >>> lpips_distance(ct + 300.0, ct, net=L1(), window=(-1000, 2000)).round(decimals=6).tolist()
        [0.2, 0.2]
    """
    p, t = _images(pred, "pred"), _images(target, "target")
    if p.shape != t.shape:
        raise ConfigError(
            f"expected pred and target of the same shape, got {tuple(pred.shape)} and {tuple(target.shape)}."
        )
    if window is not None:
        w = as_window(window)
        p, t = w.normalize(p), w.normalize(t)
    else:
        lo = min(float(p.min()), float(t.min()))
        hi = max(float(p.max()), float(t.max()))
        if lo < -1.001 or hi > 1.001 or lo != lo or hi != hi:
            raise ConfigError(
                f"expected images in [-1, 1] for LPIPS, got values in [{lo}, {hi}]. Fix: pass "
                "window=(low, high) for images in physical units (e.g. window=(-1000, 2000) for CT in HU)."
            )
    if isinstance(net, nn.Module):
        model = net
        if device is None:
            param = next(iter(model.parameters()), None)
            device = param.device if param is not None else p.device
    elif isinstance(net, str):
        device = device if device is not None else p.device
        model = lpips_network(net, device=device)
    else:
        raise ConfigError(f"expected net as an LPIPS backbone name or module, got {type(net).__name__}.")
    b, c, h, w_ = p.shape
    a = p.to(device=device, dtype=torch.float32).reshape(b * c, 1, h, w_).expand(-1, 3, -1, -1)
    r = t.to(device=device, dtype=torch.float32).reshape(b * c, 1, h, w_).expand(-1, 3, -1, -1)
    with torch.no_grad():
        d = model(a, r)
    return d.reshape(b, c).to(torch.float64).mean(dim=1)
