"""``FeatureExtractor``: a frozen image-embedding network behind one interface for metrics and losses.

Images in this library are ``[B, C, H, W]`` in ``[-1, 1]`` with one channel per modality (MRI, CT, ...).
ImageNet networks see RGB photographs, so by default each modality is embedded on its own, as a grey
image repeated to 3 channels; a network trained on the multi-channel images themselves (the GAN's
discriminator) sees them jointly instead.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from latent_transforms.checks import check_image_batch
from latent_transforms.errors import ConfigError
from latent_transforms.networks.weights import fingerprint as weights_fingerprint


def pool_features(output: torch.Tensor | Sequence[torch.Tensor]) -> torch.Tensor:
    """Turn a network's output into one vector per sample ``[B, D]``.

    ``[B, D]`` is kept, ``[B, D, h, w]`` maps are global-average pooled, and a list of those is pooled
    and concatenated along ``D`` (in list order).

    Example:
        >>> pool_features([torch.ones(2, 3, 4, 4), torch.zeros(2, 5)]).shape
        torch.Size([2, 8])
    """
    if isinstance(output, torch.Tensor):
        if output.ndim == 2:
            return output
        if output.ndim == 4:
            return output.mean(dim=(2, 3))
        raise ConfigError(
            f"expected a feature network output [B, D] or [B, D, h, w] (or a list of those), got a tensor "
            f"of shape {tuple(output.shape)}. Fix: wrap the network so it returns one of these."
        )
    if isinstance(output, (list, tuple)) and output:
        return torch.cat([pool_features(o) for o in output], dim=1)
    raise ConfigError(
        f"expected a feature network output [B, D] or [B, D, h, w] (or a non-empty list of those), got "
        f"{type(output).__name__}. Fix: wrap the network so it returns one of these."
    )


class FrozenNetwork(nn.Module):
    """A frozen backbone plus its input convention: what :class:`FeatureExtractor` and
    :class:`~latent_transforms.features.perceptual.PerceptualNetwork` share.

    Per-modality mode feeds each channel of ``[B, C, H, W]`` images in ``[-1, 1]`` on its own, repeated to
    ``in_channels``; joint mode feeds the whole image. Either way the input is resized to ``input_size``
    (bilinear, antialiased; ``None`` keeps the size), mapped to ``[0, 1]`` and normalised with
    ``(x - mean) / std``. The backbone is frozen and stays in eval mode.

    Example:
        >>> net = FrozenNetwork(nn.Conv2d(3, 4, 1), name="c", input_size=None)
        >>> net.network_inputs(torch.zeros(2, 2, 8, 8)).shape, net.mode
        (torch.Size([4, 3, 8, 8]), 'per-modality')
    """

    def __init__(
        self,
        backbone: nn.Module,
        *,
        name: str,
        input_size: int | None,
        mean: Sequence[float] = (0.5, 0.5, 0.5),
        std: Sequence[float] = (0.5, 0.5, 0.5),
        joint: bool = False,
        in_channels: int = 3,
    ) -> None:
        super().__init__()
        if input_size is not None and input_size < 1:
            raise ConfigError(
                f"expected input_size >= 1 or None, got {input_size}. Fix: pass None or a size."
            )
        if len(mean) != len(std) or not mean or any(s <= 0 for s in std):
            raise ConfigError(
                f"expected mean and std of the same length with std > 0, got mean={tuple(mean)}, "
                f"std={tuple(std)}. Fix: pass one value per input channel (or one for all)."
            )
        self.backbone = backbone.eval().requires_grad_(False)
        self.name = name
        self.input_size = input_size
        self.mean = tuple(float(m) for m in mean)
        self.std = tuple(float(s) for s in std)
        self.joint = joint
        self.in_channels = in_channels

    def train(self, mode: bool = True) -> FrozenNetwork:
        """Stay in eval mode whatever ``mode`` says (BatchNorm statistics and dropout stay fixed)."""
        return super().train(False)

    @property
    def device(self) -> torch.device:
        """Device of the network's weights (CPU for a network without any)."""
        for tensor in self.backbone.parameters():
            return tensor.device
        for tensor in self.backbone.buffers():
            return tensor.device
        return torch.device("cpu")

    @property
    def mode(self) -> str:
        """``"joint"`` or ``"per-modality"``."""
        return "joint" if self.joint else "per-modality"

    def output_channels(self, image_channels: int) -> int:
        """``C'`` for images with ``image_channels`` channels: that number, or 1 in joint mode.

        Example:
            >>> FrozenNetwork(nn.Conv2d(3, 4, 1), name="c", input_size=None).output_channels(2)
            2
        """
        return 1 if self.joint else image_channels

    def _digest(self, config: dict[str, object]) -> str:
        """SHA-256 (hex) of ``config`` (JSON) and the backbone's weights."""
        digest = hashlib.sha256(json.dumps(config, sort_keys=True).encode())
        digest.update(weights_fingerprint(self.backbone).encode())
        return digest.hexdigest()

    def network_inputs(self, images: torch.Tensor) -> torch.Tensor:
        """``[B, C, H, W] -> [B*C, in_channels, S, S]`` (per modality) or ``[B, C, S, S]`` (joint).

        ``S`` is ``input_size``, or the images' own size when that is ``None``.
        """
        b, c, h, w = images.shape
        x = images.to(device=self.device, dtype=torch.float32)
        if not self.joint:
            x = x.reshape(b * c, 1, h, w)
        if self.input_size is not None and (h, w) != (self.input_size, self.input_size):
            size = (self.input_size, self.input_size)
            x = F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=True)
        if not self.joint:
            x = x.expand(-1, self.in_channels, -1, -1)
        n = x.shape[1]
        mean_t = torch.tensor(self.mean, dtype=x.dtype, device=x.device)
        std_t = torch.tensor(self.std, dtype=x.dtype, device=x.device)
        if mean_t.numel() == 1:
            mean_t, std_t = mean_t.expand(n), std_t.expand(n)
        if mean_t.numel() != n:
            raise ConfigError(
                f"expected {mean_t.numel()} channels going into {self.name!r} (one per normalisation value), "
                f"got images of shape {tuple(images.shape)}. Fix: pass images with the channels this "
                "network was built for."
            )
        return ((x + 1.0) * 0.5 - mean_t.view(1, n, 1, 1)) / std_t.view(1, n, 1, 1)


class FeatureExtractor(FrozenNetwork):
    """A frozen feature network: images ``[B, C, H, W]`` in ``[-1, 1]`` -> embeddings ``[B, C', D]``.

    Per-modality mode (``joint=False``, ImageNet networks): every channel ``c`` is embedded on its own:
    resized bilinearly (antialiased) to ``input_size``, repeated to ``in_channels`` (3) channels, mapped
    from ``[-1, 1]`` to ``[0, 1]`` and normalised with ``(x - mean) / std``; so ``C' = C``. Joint mode
    (``joint=True``, e.g. the GAN's discriminator): the whole multi-channel image is resized and
    normalised the same way and embedded once; ``C' = 1``. Values outside ``[-1, 1]`` pass unclamped.

    The network is frozen (``requires_grad_(False)``) and stays in eval mode even when a parent module
    calls ``.train()``. :meth:`embed` runs under ``torch.no_grad`` in chunks of ``batch_size`` network
    inputs to bound memory; calling the module (``extractor(images)``) is the same computation, in one
    piece and differentiable with respect to the images (for perceptual losses).

    :attr:`name` says which network this is and :attr:`fingerprint` (SHA-256 of the weights and the
    preprocessing) which exact one: store them next to any number computed from the features.

    Args:
        backbone: maps ``[N, in_channels, input_size, input_size]`` to ``[N, D]``, ``[N, D, h, w]`` or a
            list of those (pooled and concatenated, see :func:`pool_features`).
        name: a short name for reports (``"efficientnet-lite0"``).
        input_size: side the images are resized to; ``None`` keeps the size they come in.
        mean: per-channel mean in ``[0, 1]`` pixel units (ImageNet: ``(0.485, 0.456, 0.406)``), or one
            value for all channels; with the default ``std`` the default 0.5 feeds ``[-1, 1]`` unchanged.
        std: per-channel standard deviation in ``[0, 1]`` pixel units (ImageNet: ``(0.229, 0.224,
            0.225)``), or one value for all channels.
        joint: embed all channels together (``C' = 1``) instead of each on its own.
        in_channels: channels the backbone takes in per-modality mode (grey images are repeated).
        batch_size: network inputs per chunk in :meth:`embed` (in per-modality mode each channel of each
            image counts as one).
        dim: the embedding size ``D``; measured with one dummy input when not given.
        probe_shape: the dummy input's ``[C, H, W]`` when ``dim`` is measured (default: ``in_channels``
            and ``input_size`` or 64).

    Example:
        >>> backbone = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU())
        >>> fx = FeatureExtractor(backbone, name="tiny", input_size=32)
        >>> fx.embed(torch.rand(4, 2, 64, 64) * 2 - 1).shape
        torch.Size([4, 2, 8])
        >>> fx  # doctest: +ELLIPSIS
        FeatureExtractor(name='tiny', dim=8, input_size=32, mode='per-modality', batch_size=32,
        fingerprint='...')
    """

    def __init__(
        self,
        backbone: nn.Module,
        *,
        name: str,
        input_size: int | None,
        mean: Sequence[float] = (0.5, 0.5, 0.5),
        std: Sequence[float] = (0.5, 0.5, 0.5),
        joint: bool = False,
        in_channels: int = 3,
        batch_size: int = 32,
        dim: int | None = None,
        probe_shape: Sequence[int] | None = None,
    ) -> None:
        if batch_size < 1:
            raise ConfigError(f"expected batch_size >= 1, got {batch_size}. Fix: pass a positive batch_size.")
        super().__init__(
            backbone,
            name=name,
            input_size=input_size,
            mean=mean,
            std=std,
            joint=joint,
            in_channels=in_channels,
        )
        self.batch_size = batch_size
        if dim is None:
            if probe_shape is None:
                side = input_size or 64
                probe_shape = (in_channels, side, side)
            with torch.no_grad():
                probe = torch.zeros(2, *probe_shape, device=self.device)
                dim = pool_features(self.backbone(probe)).shape[1]
        self.dim = int(dim)

    @functools.cached_property
    def fingerprint(self) -> str:
        """SHA-256 (hex) of the name, the preprocessing and the network weights.

        Two extractors with the same fingerprint give the same features; computed once (the network is
        frozen).
        """
        config = {
            "name": self.name,
            "input_size": self.input_size,
            "mean": self.mean,
            "std": self.std,
            "joint": self.joint,
            "in_channels": self.in_channels,
            "dim": self.dim,
        }
        return self._digest(config)

    # -- computation ---------------------------------------------------------------------------
    def _check(self, images: torch.Tensor) -> None:
        check_image_batch(images, finite=False, allow_empty=True)

    def _features(self, x: torch.Tensor) -> torch.Tensor:
        feats = pool_features(self.backbone(x))
        if feats.shape[1] != self.dim:
            raise ConfigError(f"{self.name!r} returned {feats.shape[1]} features, expected {self.dim}.")
        return feats.float()

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Embeddings ``[B, C', D]`` in one piece, differentiable with respect to ``images``."""
        self._check(images)
        b = images.shape[0]
        return self._features(self.network_inputs(images)).reshape(b, -1, self.dim)

    def embed(self, images: torch.Tensor) -> torch.Tensor:
        """Embeddings ``[B, C', D]`` (float32, on :attr:`device`) without gradients, in chunks.

        ``C'`` is the number of channels (one embedding per modality) or 1 in joint mode.
        """
        self._check(images)
        b, c = images.shape[:2]
        per_image = 1 if self.joint else c
        step = max(1, self.batch_size // per_image)
        out = []
        with torch.no_grad():
            for start in range(0, b, step):
                chunk = images[start : start + step]
                out.append(self._features(self.network_inputs(chunk)).reshape(chunk.shape[0], -1, self.dim))
        if not out:
            return torch.zeros(0, self.output_channels(c), self.dim, device=self.device)
        return torch.cat(out)

    def __repr__(self) -> str:
        return (
            f"FeatureExtractor(name={self.name!r}, dim={self.dim}, input_size={self.input_size}, "
            f"mode={self.mode!r}, batch_size={self.batch_size}, fingerprint={self.fingerprint[:12]!r})"
        )
