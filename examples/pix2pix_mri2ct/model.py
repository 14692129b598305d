"""Pix2Pix (Isola et al., CVPR 2017) for MRI -> CT translation: U-Net generator, 70x70 PatchGAN, training.

Written from the paper's description ("Image-to-Image Translation with Conditional Adversarial
Networks", section 3 and appendix 6.1) in its default configuration:

* generator: a U-Net with one stride-2 4x4 convolution per halving of the image down to 1x1
  (8 for 256 px), encoder ``C64-C128-C256-C512-C512-C512-C512-C512`` (channels capped at ``8 * ngf``),
  the mirror-image decoder with skip connections by concatenation, dropout 0.5 on the three decoder
  blocks nearest the bottleneck, Tanh output;
* discriminator: the 70x70 PatchGAN ``C64-C128-C256-C512`` followed by a 1-channel convolution, whose
  per-patch logits judge (MRI, CT) pairs;
* training: Adam (lr 2e-4, betas (0.5, 0.999)), the vanilla GAN loss (binary cross-entropy on logits),
  the discriminator loss halved, the generator loss ``GAN + 100 * L1``, a learning rate that is constant
  and then decays linearly to zero, weights drawn from N(0, 0.02).

Images are ``[B, C, R, R]`` tensors in ``[-1, 1]`` (MRI in, CT out; one channel each by default).
Only ``torch`` (and ``safetensors`` for saving) is needed.
"""

from __future__ import annotations

import json
import math
import warnings
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import torch
from torch import nn

from latent_transforms.errors import ConfigError

__all__ = [
    "PatchDiscriminator",
    "Pix2Pix",
    "Pix2PixOptions",
    "UNetGenerator",
    "init_weights",
    "receptive_field",
]

WEIGHTS_NAME = "weights.safetensors"
CONFIG_NAME = "config.json"


def _check_image(x: torch.Tensor, channels: int, resolution: int, what: str) -> None:
    """Raise ``ValueError`` unless ``x`` is ``[B, channels, resolution, resolution]``."""
    if x.ndim != 4 or x.shape[1] != channels or x.shape[2] != resolution or x.shape[3] != resolution:
        raise ValueError(
            f"{what} must be a [B, {channels}, {resolution}, {resolution}] tensor; got {tuple(x.shape)}. "
            f"Fix: resize or crop the images to {resolution} px (or build the network for their size)."
        )


def _save_paths(path: Path) -> tuple[Path, Path]:
    """The (weights, configuration) files of a ``Pix2Pix.save`` path: ``X.safetensors`` or a folder."""
    if path.suffix == ".safetensors":
        return path, path.with_suffix(".json")
    return path / WEIGHTS_NAME, path / CONFIG_NAME


def _count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


# --------------------------------------------------------------------------------------------- generator
class UNetGenerator(nn.Module):
    """The Pix2Pix U-Net generator: ``[B, in, R, R]`` in ``[-1, 1]`` -> ``[B, out, R, R]`` in ``[-1, 1]``.

    ``depth`` stride-2 4x4 convolutions halve the image down to ``R / 2**depth`` px (1x1 with the
    default ``depth = log2(R)``: 8 for 256 px, the paper's network). Encoder channels are
    ``ngf, 2 ngf, 4 ngf, 8 ngf, 8 ngf, ...`` (capped at ``8 ngf``); every encoder convolution except the
    first is preceded by LeakyReLU(0.2), and every one except the first and the innermost is followed by
    BatchNorm. Each decoder block is ReLU, a 4x4 stride-2 transposed convolution and BatchNorm (not on the
    outermost, which ends in Tanh); its output is concatenated with the encoder output of the same size.
    Convolutions followed by BatchNorm have no bias.

    Dropout(0.5) follows the BatchNorm of the decoder blocks nearest the bottleneck, as in the paper's
    ``CD512-CD1024-CD1024-C1024-...`` decoder: at most 3 blocks, only blocks with ``8 ngf`` output
    channels, never the outermost. So a 256 px or 128 px network has 3 such blocks, 64 px 2, 32 px 1 and
    16 px none. (The paper's decoder drops out on the first decoder layer, the one fed by the
    bottleneck; some implementations start one block later.)

    Args:
        in_channels: channels of the input (1 for an MRI slice).
        out_channels: channels of the output (1 for a CT slice).
        resolution: image side ``R`` in pixels, a power of two >= 16.
        ngf: channels of the first encoder layer (64 in the paper).
        depth: number of downsamplings, ``2 <= depth <= log2(R)``; ``None`` (default) takes
            ``log2(R)``, the matching depth.
        dropout: whether the innermost decoder blocks use Dropout(0.5) in training mode.

    Raises:
        ConfigError: if ``resolution``, ``depth``, ``ngf`` or the channel counts are invalid.

    Example:
        >>> import torch
        >>> g = UNetGenerator(resolution=32, ngf=4)
        >>> g.depth, g.dropout_blocks
        (5, 1)
        >>> y = g.eval()(torch.zeros(2, 1, 32, 32))
        >>> tuple(y.shape), bool(y.abs().max() <= 1)
        ((2, 1, 32, 32), True)
    """

    def __init__(
        self,
        in_channels: int = 1,
        out_channels: int = 1,
        *,
        resolution: int = 256,
        ngf: int = 64,
        depth: int | None = None,
        dropout: bool = True,
    ) -> None:
        super().__init__()
        if not isinstance(resolution, int) or resolution < 16 or resolution & (resolution - 1):
            raise ConfigError(
                f"resolution must be a power of two >= 16 (16, 32, 64, 128, 256, ...); got {resolution!r}. "
                "Fix: resize the images to the nearest power of two (e.g. 200 -> 256)."
            )
        max_depth = int(math.log2(resolution))
        if depth is None:
            depth = max_depth
        if not isinstance(depth, int) or not 2 <= depth <= max_depth:
            raise ConfigError(
                f"depth must be an integer between 2 and log2(resolution) = {max_depth}; got {depth!r}. "
                f"Fix: pass depth=None for the matching depth ({max_depth} at {resolution} px)."
            )
        for name, value in (("in_channels", in_channels), ("out_channels", out_channels), ("ngf", ngf)):
            if not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name} must be a positive integer; got {value!r}. Fix: pass e.g. 1 or 64")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.resolution = resolution
        self.ngf = ngf
        self.depth = depth
        self.dropout = bool(dropout)

        # Encoder level k = 1..depth outputs ch[k - 1] channels at resolution / 2**k.
        ch = [ngf * min(2**k, 8) for k in range(depth)]
        self.down = nn.ModuleList()
        for k in range(depth):
            outermost, innermost = k == 0, k == depth - 1
            layers: list[nn.Module] = [] if outermost else [nn.LeakyReLU(0.2)]
            norm = not (outermost or innermost)
            c_in = in_channels if outermost else ch[k - 1]
            layers.append(nn.Conv2d(c_in, ch[k], 4, stride=2, padding=1, bias=not norm))
            if norm:
                layers.append(nn.BatchNorm2d(ch[k]))
            self.down.append(nn.Sequential(*layers))

        # Decoder blocks, innermost first: block i upsamples level depth - i to level depth - i - 1.
        self.up = nn.ModuleList()
        self.dropout_blocks = 0
        for i in range(depth):
            k = depth - 1 - i  # index of the encoder level this block starts from
            c_in = ch[k] if i == 0 else 2 * ch[k]
            layers = [nn.ReLU()]
            if k == 0:  # outermost: to the output image
                layers += [nn.ConvTranspose2d(c_in, out_channels, 4, stride=2, padding=1), nn.Tanh()]
            else:
                c_out = ch[k - 1]
                layers += [
                    nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1, bias=False),
                    nn.BatchNorm2d(c_out),
                ]
                if self.dropout and i < 3 and c_out == 8 * ngf:
                    layers.append(nn.Dropout(0.5))
                    self.dropout_blocks += 1
            self.up.append(nn.Sequential(*layers))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Translate ``x`` (``[B, in, R, R]``, ``[-1, 1]``) into ``[B, out, R, R]`` in ``[-1, 1]``.

        Example:
            >>> import torch
            >>> UNetGenerator(resolution=16, ngf=2).eval()(torch.zeros(1, 1, 16, 16)).shape
            torch.Size([1, 1, 16, 16])
        """
        _check_image(x, self.in_channels, self.resolution, "the generator's input")
        skips: list[torch.Tensor] = []
        h = x
        for block in self.down:
            h = block(h)
            skips.append(h)
        for i, block in enumerate(self.up):
            h = block(h)
            level = self.depth - 2 - i  # the encoder output of the size h now has
            if level >= 0:
                h = torch.cat([h, skips[level]], dim=1)
        return h

    def __repr__(self) -> str:
        return (
            f"UNetGenerator(in_channels={self.in_channels}, out_channels={self.out_channels}, "
            f"resolution={self.resolution}, ngf={self.ngf}, depth={self.depth}, dropout={self.dropout}, "
            f"dropout_blocks={self.dropout_blocks}, parameters={_count(self):,})"
        )


# ----------------------------------------------------------------------------------------- discriminator
def _patch_layers(n_layers: int) -> list[tuple[int, int]]:
    """The ``(kernel, stride)`` of every convolution of a PatchGAN with ``n_layers`` layers."""
    return [(4, 2)] * n_layers + [(4, 1), (4, 1)]


def receptive_field(n_layers: int = 3) -> int:
    """The receptive field (pixels, per side) of one output logit of a ``PatchDiscriminator``.

    Computed from the discriminator's list of (kernel, stride) pairs, from the output back to the input:
    ``rf <- (rf - 1) * stride + kernel``, starting from 1.

    Args:
        n_layers: the discriminator's ``n_layers`` (3 in the paper).

    Returns:
        The side of the square input patch each output logit sees: 70 for ``n_layers=3``.

    Example:
        >>> receptive_field(3), receptive_field(1)
        (70, 16)
    """
    if not isinstance(n_layers, int) or n_layers < 1:
        raise ConfigError(f"n_layers must be a positive integer; got {n_layers!r}. Fix: pass 3 (70x70).")
    rf = 1
    for kernel, stride in reversed(_patch_layers(n_layers)):
        rf = (rf - 1) * stride + kernel
    return rf


class PatchDiscriminator(nn.Module):
    """The Pix2Pix PatchGAN discriminator: per-patch real/fake logits of (condition, image) pairs.

    ``n_layers`` stride-2 4x4 convolutions (the first without normalisation), one stride-1 4x4
    convolution and a 1-channel stride-1 4x4 convolution, all with padding 1; LeakyReLU(0.2) and
    BatchNorm in between; channels ``ndf, 2 ndf, 4 ndf, 8 ndf`` (capped at ``8 ndf``). With
    ``n_layers=3`` this is the paper's 70x70 PatchGAN ``C64-C128-C256-C512``: each output logit sees a
    70x70 patch (``receptive_field``).

    Args:
        in_channels: channels of the input: the condition (MRI) and the target or generated image (CT)
            concatenated on the channel axis, so 2 for single-channel slices.
        ndf: channels of the first layer (64 in the paper).
        n_layers: number of stride-2 convolutions (3 in the paper).

    Raises:
        ConfigError: if a parameter is not a positive integer.

    Example:
        >>> import torch
        >>> d = PatchDiscriminator(ndf=4)
        >>> d.receptive_field
        70
        >>> d(torch.zeros(2, 2, 64, 64)).shape  # raw logits, one per overlapping 70x70 patch
        torch.Size([2, 1, 6, 6])
    """

    def __init__(self, in_channels: int = 2, *, ndf: int = 64, n_layers: int = 3) -> None:
        super().__init__()
        for name, value in (("in_channels", in_channels), ("ndf", ndf), ("n_layers", n_layers)):
            if not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name} must be a positive integer; got {value!r}. Fix: pass e.g. 2 or 64")
        self.in_channels = in_channels
        self.ndf = ndf
        self.n_layers = n_layers
        specs = _patch_layers(n_layers)
        layers: list[nn.Module] = []
        c_in = in_channels
        for i, (kernel, stride) in enumerate(specs):
            last = i == len(specs) - 1
            c_out = 1 if last else ndf * min(2**i, 8)
            norm = i > 0 and not last
            layers.append(nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=1, bias=not norm))
            if norm:
                layers.append(nn.BatchNorm2d(c_out))
            if not last:
                layers.append(nn.LeakyReLU(0.2))
            c_in = c_out
        self.model = nn.Sequential(*layers)

    @property
    def receptive_field(self) -> int:
        """Side in pixels of the input patch each output logit sees (70 for ``n_layers=3``).

        Example:
            >>> PatchDiscriminator(ndf=2, n_layers=2).receptive_field
            34
        """
        return receptive_field(self.n_layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``[B, 1, h, w]`` (unbounded; > 0 means "real") of ``x``, ``[B, in_channels, H, W]``.

        ``H`` and ``W`` must be at least 32 px for ``n_layers=3`` (the output is ``H / 8 - 2`` wide).

        Example:
            >>> import torch
            >>> PatchDiscriminator(ndf=2)(torch.zeros(1, 2, 32, 32)).shape
            torch.Size([1, 1, 2, 2])
        """
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(
                f"the discriminator's input must be [B, {self.in_channels}, H, W] (condition and image "
                f"concatenated on channels); got {tuple(x.shape)}. Fix: torch.cat([mri, ct], dim=1)."
            )
        return self.model(x)

    def __repr__(self) -> str:
        return (
            f"PatchDiscriminator(in_channels={self.in_channels}, ndf={self.ndf}, n_layers={self.n_layers}, "
            f"receptive_field={self.receptive_field}, parameters={_count(self):,})"
        )


# -------------------------------------------------------------------------------------- initialisation
@torch.no_grad()
def init_weights(module: nn.Module, std: float = 0.02, *, generator: torch.Generator) -> nn.Module:
    """Initialise ``module`` in place as in Pix2Pix: conv weights ~ N(0, std), BatchNorm weights ~ N(1, std).

    Convolution and transposed-convolution weights are drawn from N(0, std), BatchNorm scales from
    N(1, std); all biases (and BatchNorm shifts) are set to 0. The numbers are drawn on the CPU from
    ``generator`` in the order of ``module.modules()`` and then copied to the parameters' device, so a
    seed gives the same weights on every device.

    Args:
        module: the network to initialise (any ``nn.Module``; other layers are left as they are).
        std: standard deviation of the draws (0.02 in the paper).
        generator: a CPU ``torch.Generator``, the only source of randomness.

    Returns:
        ``module`` itself.

    Example:
        >>> import torch
        >>> net = init_weights(nn.Conv2d(1, 8, 4), generator=torch.Generator().manual_seed(0))
        >>> round(net.weight.std().item(), 2), net.bias.abs().max().item()
        (0.02, 0.0)
    """
    if std <= 0:
        raise ConfigError(f"std must be positive; got {std}. Fix: pass 0.02 (the paper's value).")

    def draw(param: torch.Tensor, mean: float) -> None:
        values = torch.randn(param.shape, generator=generator, dtype=torch.float32) * std + mean
        param.copy_(values.to(device=param.device, dtype=param.dtype))

    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            draw(m.weight, 0.0)
            if m.bias is not None:
                m.bias.zero_()
        elif isinstance(m, nn.BatchNorm2d):
            if m.weight is not None:
                draw(m.weight, 1.0)
            if m.bias is not None:
                m.bias.zero_()
    return module


# --------------------------------------------------------------------------------------------- options
@dataclass
class Pix2PixOptions:
    """Training options of Pix2Pix; the defaults are the paper's (except the epoch counts).

    Args:
        epochs: total number of epochs, including the decay ones.
        epochs_decay: the last ``epochs_decay`` epochs decay the learning rate linearly towards 0
            (``epochs=40, epochs_decay=20``: 20 epochs at ``lr``, then 20 decaying ones).
        batch_size: images per step (the paper used 1 to 10; read by the training loop).
        lr: Adam learning rate of both networks.
        beta1: Adam's first-moment decay.
        beta2: Adam's second-moment decay.
        lambda_l1: weight of the L1 term of the generator loss (100 in the paper).
        ngf: generator width (channels of its first layer).
        ndf: discriminator width.
        d_layers: the discriminator's number of stride-2 layers (3: 70x70 PatchGAN).
        dropout: whether the generator uses dropout in its innermost decoder blocks.

    Raises:
        ConfigError: if a value is out of range.

    Example:
        >>> opts = Pix2PixOptions(epochs=4, epochs_decay=2)
        >>> Pix2PixOptions.from_dict(opts.to_dict()) == opts
        True
    """

    epochs: int = 40
    epochs_decay: int = 20
    batch_size: int = 16
    lr: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    lambda_l1: float = 100.0
    ngf: int = 64
    ndf: int = 64
    d_layers: int = 3
    dropout: bool = True

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "ngf", "ndf", "d_layers"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name} must be a positive integer; got {value!r}. Fix: pass e.g. 1 or 64")
        if isinstance(self.epochs_decay, bool) or not isinstance(self.epochs_decay, int):
            raise ConfigError(f"epochs_decay must be an integer; got {self.epochs_decay!r}.")
        if not 0 <= self.epochs_decay <= self.epochs:
            raise ConfigError(
                f"epochs_decay must be between 0 and epochs={self.epochs}; got {self.epochs_decay}. "
                "Fix: epochs counts all epochs, the decaying ones included (e.g. epochs=40, epochs_decay=20)."
            )
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise ConfigError(f"lr must be a positive number; got {self.lr!r}. Fix: pass 2e-4.")
        for name in ("beta1", "beta2"):
            value = getattr(self, name)
            if not 0.0 <= value < 1.0:
                raise ConfigError(f"{name} must be in [0, 1); got {value!r}. Fix: pass 0.5 and 0.999.")
        if not (math.isfinite(self.lambda_l1) and self.lambda_l1 >= 0):
            raise ConfigError(f"lambda_l1 must be >= 0; got {self.lambda_l1!r}. Fix: pass 100.")
        if not isinstance(self.dropout, bool):
            raise ConfigError(f"dropout must be True or False; got {self.dropout!r}.")

    def lr_factor(self, epoch: int) -> float:
        """Multiplier of ``lr`` during epoch ``epoch`` (0-based): 1, then linearly down towards 0.

        ``1 - max(0, epoch + 1 - (epochs - epochs_decay)) / (epochs_decay + 1)``, clipped at 0: the
        last epoch (``epochs - 1``) still trains at ``lr / (epochs_decay + 1)``.

        Example:
            >>> opts = Pix2PixOptions(epochs=4, epochs_decay=2)
            >>> [round(opts.lr_factor(e), 3) for e in range(4)]
            [1.0, 1.0, 0.667, 0.333]
        """
        constant = self.epochs - self.epochs_decay
        return max(0.0, 1.0 - max(0, epoch + 1 - constant) / (self.epochs_decay + 1))

    def to_dict(self) -> dict[str, Any]:
        """The options as a JSON-serialisable dict.

        Example:
            >>> Pix2PixOptions().to_dict()["lambda_l1"]
            100.0
        """
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Pix2PixOptions:
        """Options from a dict made by ``to_dict`` (missing keys take the defaults).

        Raises:
            ConfigError: for an unknown key or an invalid value.

        Example:
            >>> Pix2PixOptions.from_dict({"epochs": 2, "epochs_decay": 1}).epochs
            2
        """
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(
                f"unknown Pix2Pix option(s) {unknown}; expected some of {sorted(known)}. "
                "Fix: remove or rename them."
            )
        return cls(**data)


# ------------------------------------------------------------------------------------------------ model
class Pix2Pix(nn.Module):
    """Pix2Pix for MRI -> CT: a ``UNetGenerator``, a ``PatchDiscriminator``, their optimisers and schedule.

    Both networks are initialised with ``init_weights`` from ``seed`` (the generator first). Each
    network has its own Adam optimiser (``lr``, ``(beta1, beta2)``) and a ``LambdaLR`` scheduler
    applying ``options.lr_factor`` per epoch: call ``train_step`` for every batch and ``end_epoch``
    after every epoch. The device follows ``.to(device)``; move the model before the first step (the
    optimiser state is created on the parameters' device at the first step and is not moved later).

    ``train_step`` returns the losses as detached 0-dim tensors on the model's device rather than
    Python floats, so a step does not wait for the accelerator; call ``float()`` (``.item()``) on them
    when logging.

    ``translate`` runs the generator in eval mode: BatchNorm uses its running statistics and dropout is
    off, so a translation is deterministic. (The paper keeps dropout, and batch statistics, at test
    time as its source of randomness; this is a deliberate deterministic choice.)

    Args:
        resolution: image side in pixels, a power of two >= 16; the generator has the matching depth.
        options: training options (network widths, losses, optimiser, schedule); default
            ``Pix2PixOptions()``.
        in_channels: channels of the condition (MRI).
        out_channels: channels of the target (CT).
        seed: seed of the weight initialisation.

    Raises:
        ConfigError: for an invalid resolution or options, or a resolution too small for the
            discriminator (``d_layers=3`` needs 32 px or more; use ``d_layers=2`` at 16 px).

    Example:
        >>> import torch
        >>> model = Pix2Pix(32, Pix2PixOptions(ngf=4, ndf=4, epochs=2, epochs_decay=1))
        >>> mri = torch.rand(2, 1, 32, 32) * 2 - 1
        >>> ct = torch.rand(2, 1, 32, 32) * 2 - 1
        >>> losses = model.train_step(mri, ct)
        >>> sorted(losses), model.current_lr
        (['d_loss', 'g_gan', 'g_l1'], 0.0002)
        >>> model.end_epoch()
        >>> round(model.current_lr, 7)
        0.0001
        >>> model.translate(mri).shape
        torch.Size([2, 1, 32, 32])
    """

    def __init__(
        self,
        resolution: int,
        options: Pix2PixOptions | None = None,
        *,
        in_channels: int = 1,
        out_channels: int = 1,
        seed: int = 0,
    ) -> None:
        super().__init__()
        options = Pix2PixOptions() if options is None else options
        if not isinstance(options, Pix2PixOptions):
            raise ConfigError(f"options must be a Pix2PixOptions; got {type(options).__name__}.")
        self.resolution = resolution
        self.options = options
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.seed = int(seed)
        side = resolution // 2**options.d_layers - 2 if isinstance(resolution, int) else 0
        if isinstance(resolution, int) and resolution >= 16 and side < 1:
            needed = 2 ** math.ceil(math.log2(3 * 2**options.d_layers))
            raise ConfigError(
                f"a PatchGAN with d_layers={options.d_layers} needs images of at least {needed} px; "
                f"got resolution={resolution}. "
                "Fix: lower options.d_layers (2 for 16 px) or use larger images."
            )
        self.generator = UNetGenerator(
            in_channels, out_channels, resolution=resolution, ngf=options.ngf, dropout=options.dropout
        )
        self.discriminator = PatchDiscriminator(
            in_channels + out_channels, ndf=options.ndf, n_layers=options.d_layers
        )
        rng = torch.Generator().manual_seed(self.seed)
        init_weights(self.generator, generator=rng)
        init_weights(self.discriminator, generator=rng)
        betas = (options.beta1, options.beta2)
        self.optimizer_g = torch.optim.Adam(self.generator.parameters(), lr=options.lr, betas=betas)
        self.optimizer_d = torch.optim.Adam(self.discriminator.parameters(), lr=options.lr, betas=betas)
        self.scheduler_g = torch.optim.lr_scheduler.LambdaLR(self.optimizer_g, options.lr_factor)
        self.scheduler_d = torch.optim.lr_scheduler.LambdaLR(self.optimizer_d, options.lr_factor)
        self.epoch = 0
        self._gan_loss = nn.BCEWithLogitsLoss()

    @property
    def current_lr(self) -> float:
        """The learning rate (of both networks) for the current epoch.

        Example:
            >>> Pix2Pix(16, Pix2PixOptions(ngf=2, ndf=2, d_layers=2)).current_lr
            0.0002
        """
        return float(self.optimizer_g.param_groups[0]["lr"])

    def _adversarial(self, logits: torch.Tensor, real: bool) -> torch.Tensor:
        target = torch.ones_like(logits) if real else torch.zeros_like(logits)
        return self._gan_loss(logits, target)

    def train_step(self, mri: torch.Tensor, ct: torch.Tensor) -> dict[str, torch.Tensor]:
        """One Pix2Pix update of the discriminator, then of the generator, on a batch.

        The discriminator learns (mri, ct) as real and (mri, G(mri)) as fake (binary cross-entropy on
        its logits, the sum halved); then the generator minimises the GAN loss of (mri, G(mri))
        labelled real plus ``lambda_l1`` times the mean absolute error to ``ct``.

        Args:
            mri: condition ``[B, in_channels, R, R]`` in ``[-1, 1]`` on the model's device.
            ct: target ``[B, out_channels, R, R]`` in ``[-1, 1]``, same batch and device.

        Returns:
            Detached 0-dim tensors on the model's device (no host synchronisation): ``"d_loss"`` (the
            halved discriminator loss), ``"g_gan"`` (the generator's adversarial loss) and ``"g_l1"``
            (the unweighted mean absolute error, in ``[-1, 1]`` units: 0 to 2). ``float()`` them to log.

        Example:
            >>> import torch
            >>> model = Pix2Pix(16, Pix2PixOptions(ngf=2, ndf=2, d_layers=2))
            >>> x = torch.zeros(2, 1, 16, 16)
            >>> {k: v.shape for k, v in model.train_step(x, x).items()}["g_l1"]
            torch.Size([])
        """
        _check_image(mri, self.in_channels, self.resolution, "mri")
        _check_image(ct, self.out_channels, self.resolution, "ct")
        if mri.shape[0] != ct.shape[0]:
            raise ValueError(
                f"mri and ct must hold the same number of images; got {mri.shape[0]} and {ct.shape[0]}. "
                "Fix: pass paired batches."
            )
        self.train()
        fake = self.generator(mri)

        # Discriminator: real pairs -> 1, generated pairs -> 0.
        self.discriminator.requires_grad_(True)
        self.optimizer_d.zero_grad(set_to_none=True)
        loss_fake = self._adversarial(self.discriminator(torch.cat([mri, fake.detach()], 1)), real=False)
        loss_real = self._adversarial(self.discriminator(torch.cat([mri, ct], 1)), real=True)
        d_loss = 0.5 * (loss_fake + loss_real)
        d_loss.backward()
        self.optimizer_d.step()

        # Generator: fool the (just updated) discriminator and stay close to the target.
        self.discriminator.requires_grad_(False)
        self.optimizer_g.zero_grad(set_to_none=True)
        g_gan = self._adversarial(self.discriminator(torch.cat([mri, fake], 1)), real=True)
        g_l1 = torch.nn.functional.l1_loss(fake, ct)
        (g_gan + self.options.lambda_l1 * g_l1).backward()
        self.optimizer_g.step()
        self.discriminator.requires_grad_(True)
        return {"d_loss": d_loss.detach(), "g_gan": g_gan.detach(), "g_l1": g_l1.detach()}

    def end_epoch(self) -> None:
        """Close an epoch: step both learning-rate schedulers (call once after each epoch's steps).

        Example:
            >>> model = Pix2Pix(16, Pix2PixOptions(ngf=2, ndf=2, d_layers=2, epochs=3, epochs_decay=2))
            >>> model.end_epoch()
            >>> model.epoch, round(model.current_lr, 7)
            (1, 0.0001333)
        """
        with warnings.catch_warnings():
            # An epoch without steps (e.g. a smoke run) is harmless for an epoch-indexed schedule.
            warnings.filterwarnings("ignore", message="Detected call of `lr_scheduler.step\\(\\)` before")
            self.scheduler_g.step()
            self.scheduler_d.step()
        self.epoch += 1

    @torch.no_grad()
    def translate(self, mri: torch.Tensor) -> torch.Tensor:
        """Synthetic CT ``[B, out_channels, R, R]`` in ``[-1, 1]`` from ``mri`` (``[B, in_channels, R, R]``).

        Runs the generator in eval mode (BatchNorm running statistics, no dropout: deterministic) under
        ``torch.no_grad``; the generator's previous mode is restored afterwards.

        Example:
            >>> import torch
            >>> model = Pix2Pix(16, Pix2PixOptions(ngf=2, ndf=2, d_layers=2))
            >>> x = torch.zeros(1, 1, 16, 16)
            >>> torch.equal(model.translate(x), model.translate(x))
            True
        """
        was_training = self.generator.training
        self.generator.eval()
        try:
            return self.generator(mri)
        finally:
            self.generator.train(was_training)

    def config(self) -> dict[str, Any]:
        """What ``save`` writes to ``config.json``: resolution, channels, seed, epoch and options.

        Example:
            >>> Pix2Pix(16, Pix2PixOptions(ngf=2, ndf=2, d_layers=2)).config()["resolution"]
            16
        """
        return {
            "model": "pix2pix",
            "resolution": self.resolution,
            "in_channels": self.in_channels,
            "out_channels": self.out_channels,
            "seed": self.seed,
            "epoch": self.epoch,
            "options": self.options.to_dict(),
        }

    def save(self, path: str | Path) -> Path:
        """Save the weights (safetensors) and the configuration (JSON) at ``path``.

        Two layouts: a ``path`` ending in ``.safetensors`` writes the weights there and the configuration
        next to it with the suffix ``.json`` (``run/pix2pix.safetensors`` + ``run/pix2pix.json``); any
        other ``path`` is a folder that receives ``weights.safetensors`` and ``config.json``. The weights
        are the state dict of both networks (BatchNorm running statistics included); the configuration
        is ``config()``. Optimiser states are not saved.

        Returns:
            ``path``, which ``Pix2Pix.load`` accepts.

        Example:
            >>> import tempfile, torch
            >>> from pathlib import Path
            >>> model = Pix2Pix(16, Pix2PixOptions(ngf=2, ndf=2, d_layers=2))
            >>> with tempfile.TemporaryDirectory() as tmp:
            ...     again = Pix2Pix.load(model.save(Path(tmp) / "pix2pix.safetensors"))
            ...     sorted(p.name for p in Path(tmp).iterdir())
            ['pix2pix.json', 'pix2pix.safetensors']
            >>> x = torch.zeros(1, 1, 16, 16)
            >>> torch.equal(model.translate(x), again.translate(x))
            True
        """
        from safetensors.torch import save_file

        path = Path(path)
        weights, config = _save_paths(path)
        weights.parent.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().cpu().contiguous() for k, v in self.state_dict().items()}
        save_file(state, str(weights))
        config.write_text(json.dumps(self.config(), indent=2) + "\n")
        return path

    @classmethod
    def load(cls, path: str | Path, map_location: str | torch.device | None = None) -> Pix2Pix:
        """A model saved by ``save`` (a ``.safetensors`` file or a folder), on ``map_location`` (or CPU).

        The epoch counter and learning-rate schedule are restored; the optimisers start afresh.

        Raises:
            FileNotFoundError: if the weights or the configuration file is missing.
            ConfigError: if the configuration is not a Pix2Pix configuration.

        Example:
            >>> import tempfile
            >>> with tempfile.TemporaryDirectory() as tmp:
            ...     Pix2Pix.load(Pix2Pix(16, Pix2PixOptions(ngf=2, ndf=2, d_layers=2)).save(tmp)).resolution
            16
        """
        from safetensors.torch import load_file

        weights, config_file = _save_paths(Path(path))
        for file in (config_file, weights):
            if not file.is_file():
                raise FileNotFoundError(
                    f"{file} does not exist; expected what Pix2Pix.save wrote: X.safetensors with X.json "
                    f"beside it, or a folder with {WEIGHTS_NAME} and {CONFIG_NAME}. Fix: pass that path."
                )
        config = json.loads(config_file.read_text())
        if config.get("model") != "pix2pix":
            raise ConfigError(
                f"{config_file} describes {config.get('model')!r}, not a Pix2Pix model. "
                "Fix: pass a path written by Pix2Pix.save."
            )
        model = cls(
            int(config["resolution"]),
            Pix2PixOptions.from_dict(config["options"]),
            in_channels=int(config["in_channels"]),
            out_channels=int(config["out_channels"]),
            seed=int(config.get("seed", 0)),
        )
        model.load_state_dict(load_file(str(weights)))
        epoch = int(config.get("epoch", 0))
        for scheduler in (model.scheduler_g, model.scheduler_d):
            scheduler.last_epoch = epoch
            for group, base in zip(scheduler.optimizer.param_groups, scheduler.base_lrs, strict=True):
                group["lr"] = base * model.options.lr_factor(epoch)
            scheduler._last_lr = [group["lr"] for group in scheduler.optimizer.param_groups]
        model.epoch = epoch
        if map_location is not None:
            model.to(map_location)
        return model

    def __repr__(self) -> str:
        return (
            f"Pix2Pix(resolution={self.resolution}, in_channels={self.in_channels}, "
            f"out_channels={self.out_channels}, seed={self.seed}, epoch={self.epoch}, "
            f"generator_parameters={_count(self.generator):,}, "
            f"discriminator_parameters={_count(self.discriminator):,}, options={self.options})"
        )
