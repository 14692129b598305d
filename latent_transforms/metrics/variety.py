"""Variety as the compressed file size of a set's mean image (Xing et al. 2023, §II-D, after ImageNet's use of
it).

Average many images pixel by pixel: if they differ a lot (varied shapes and positions) the mean is a
smooth blur, which compresses to a small file; if they are alike (a generator that collapsed onto a few
modes) the mean keeps sharp edges and fine detail, and the file is large. So a **smaller** size means
**more variety**. Xing et al. ("The Beauty or the Beast", 2023) used the lossless JPEG size of the
mean image and found their StyleGAN2 sets' mean images two to three times the size of the real sets'
(mode collapse). The argument needs textured images, as medical images are: for flat, textureless
shapes (a uniform disc on a uniform ground) the mean of identical images is two grey levels with a sharp
edge, which PNG stores in very few bytes, and a varied set's smooth blur costs more, so there the score
runs the other way.

Here the mean image of each modality (one grey image per channel) is written as PNG, which is lossless,
with a fixed compression level, so the number depends only on the pixels. ``format="jpeg"`` writes a
baseline JPEG at quality 100 instead: that is **not** lossless (torchvision and Pillow cannot write
lossless JPEG, the format Xing et al. 2023 used), so its sizes are not their numbers either. Sizes are in
kB of 1000 bytes. Compare values only between sets of the same resolution, modality and format: the size
also grows with the image size and the anatomy's own detail, so the real set's value is the reference.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import torch

from latent_transforms.checks import check_image_batch
from latent_transforms.errors import ConfigError
from latent_transforms.metrics.fid import modality_names

#: zlib level :func:`torchvision.io.encode_png` uses here (torchvision's default); fixed so sizes compare.
PNG_COMPRESSION_LEVEL = 6
#: JPEG quality for ``format="jpeg"`` (the highest; still lossy).
JPEG_QUALITY = 100
#: Bytes per kB in the reported sizes (SI kilobytes).
BYTES_PER_KB = 1000
#: The formats :func:`mean_image_size` can write.
FORMATS: tuple[str, ...] = ("png", "jpeg")


def _check_format(format: str) -> str:
    if format not in FORMATS:
        raise ConfigError(
            f"expected format 'png' (lossless) or 'jpeg' (quality 100, lossy), got {format!r}. "
            "Fix: pass format='png'."
        )
    return format


def mean_to_uint8(mean: torch.Tensor) -> torch.Tensor:
    """Map a mean image in ``[-1, 1]`` (any shape) to ``uint8`` on the CPU: ``round((x + 1) * 127.5)``.

    Values outside ``[-1, 1]`` are clamped to 0 and 255.

    Example:
        >>> mean_to_uint8(torch.tensor([-1.0, 0.0, 1.0, 3.0])).tolist()
        [0, 128, 255, 255]
    """
    return (
        ((mean.detach().to(device="cpu", dtype=torch.float64) + 1.0) * 127.5)
        .round()
        .clamp(0, 255)
        .to(torch.uint8)
    )


def encoded_size(image: torch.Tensor, format: str = "png") -> int:
    """Size in bytes of a ``uint8`` grey image ``[H, W]`` (or ``[1, H, W]``) encoded as PNG or JPEG.

    PNG: :func:`torchvision.io.encode_png` at :data:`PNG_COMPRESSION_LEVEL` (lossless). JPEG:
    :func:`torchvision.io.encode_jpeg` at quality :data:`JPEG_QUALITY` (lossy).

    Example:
        >>> flat = torch.zeros(64, 64, dtype=torch.uint8)
        >>> g = torch.Generator().manual_seed(0)
        >>> noisy = torch.randint(0, 256, (64, 64), dtype=torch.uint8, generator=g)
        >>> encoded_size(flat) < encoded_size(noisy)
        True
    """
    _check_format(format)
    if image.dtype != torch.uint8 or image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[0] != 1):
        raise ConfigError(
            f"expected a uint8 grey image [H, W] or [1, H, W], got {image.dtype} {tuple(image.shape)}. "
            "Fix: encode one channel at a time (mean_to_uint8 makes uint8 from [-1, 1])."
        )
    from torchvision.io import encode_jpeg, encode_png

    image = image.detach().cpu().reshape(1, *image.shape[-2:]).contiguous()
    with warnings.catch_warnings():  # torchvision >= 0.29 flags its image codecs as moving to TorchCodec
        warnings.filterwarnings(
            "ignore", message=".*encoding capabilities of TorchVision", category=DeprecationWarning
        )
        if format == "png":
            return len(encode_png(image, compression_level=PNG_COMPRESSION_LEVEL))
        return len(encode_jpeg(image, quality=JPEG_QUALITY))


class MeanImageSize:
    """Streaming variety score: the compressed size of each modality's mean image, in kB (1000 bytes).

    :meth:`update` adds batches ``[B, C, H, W]`` in ``[-1, 1]`` to a float64 running sum (on the CPU);
    :meth:`compute` divides by the count, maps the mean to ``uint8`` (:func:`mean_to_uint8`) and encodes
    each channel as its own grey image (:func:`encoded_size`). Smaller means more variety (Xing et al. 2023).

    Args:
        modalities: names of the ``C`` image channels in the result (default ``channel0``, ...).
        format: ``"png"`` (lossless, the default) or ``"jpeg"`` (quality 100, lossy).

    Example:
        >>> metric = MeanImageSize(modalities=["mri", "ct"])
        >>> g = torch.Generator().manual_seed(0)
        >>> for _ in range(3):
        ...     metric.update(torch.rand(4, 2, 32, 32, generator=g) * 2 - 1)
        >>> result = metric.compute()
        >>> sorted(result), metric.n
        (['ct', 'mean', 'mri'], 12)
    """

    def __init__(self, modalities: Sequence[str] | None = None, format: str = "png") -> None:
        self.modalities = list(modalities) if modalities is not None else None
        self.format = _check_format(format)
        self.n = 0
        self._sum: torch.Tensor | None = None

    def update(self, images: torch.Tensor) -> None:
        """Add images ``[B, C, H, W]`` in ``[-1, 1]`` (any float dtype and device) to the running sum."""
        check_image_batch(images, finite=False, allow_empty=True)
        if self._sum is not None and tuple(images.shape[1:]) != tuple(self._sum.shape):
            raise ConfigError(
                f"expected images [B, {', '.join(map(str, self._sum.shape))}] like before, got "
                f"{tuple(images.shape)}. Fix: one metric per resolution and set of modalities (or reset())."
            )
        if images.shape[0] == 0:
            return
        check_image_batch(images)  # NaN / Inf
        batch_sum = images.detach().to(torch.float64).sum(dim=0).cpu()
        self._sum = batch_sum if self._sum is None else self._sum + batch_sum
        self.n += images.shape[0]

    def mean_image(self) -> torch.Tensor:
        """The mean image so far ``[C, H, W]`` (float64, CPU, in the images' range)."""
        if self._sum is None:
            raise ConfigError("expected images before compute(), got none. Fix: call update(images) first.")
        return self._sum / self.n

    def compute(self) -> dict[str, float]:
        """``{modality: size in kB, ..., "mean": mean over modalities}``; smaller means more variety."""
        mean = mean_to_uint8(self.mean_image())
        names = modality_names(mean.shape[0], self.modalities, joint=False)
        result = {name: encoded_size(mean[c], self.format) / BYTES_PER_KB for c, name in enumerate(names)}
        result["mean"] = sum(result.values()) / len(names)
        return result

    def reset(self) -> None:
        """Forget every image added so far."""
        self.n = 0
        self._sum = None

    def __repr__(self) -> str:
        return f"MeanImageSize(modalities={self.modalities}, format={self.format!r}, n={self.n})"


def mean_image_size(
    images: torch.Tensor, *, modalities: Sequence[str] | None = None, format: str = "png"
) -> dict[str, float]:
    """Variety score of a set of images: each modality's mean image, compressed, in kB (1000 bytes).

    The mean over the ``N`` images is taken per channel in float64, mapped from ``[-1, 1]`` to ``uint8``
    (:func:`mean_to_uint8`, clamped) and written as a grey PNG (lossless, zlib level
    :data:`PNG_COMPRESSION_LEVEL`) or, with ``format="jpeg"``, a quality-100 JPEG (lossy: Xing et al. 2023
    used lossless JPEG, which torchvision and Pillow cannot write). A varied set averages to a blur and
    compresses well, so a **smaller size means more variety**; a generator that repeats itself leaves sharp
    structure in the mean and a larger file (Xing et al. 2023, §II-D). Compare sets of one resolution and
    modality, against the real set's value. Same as :class:`MeanImageSize` fed the whole set.

    Args:
        images: ``[N, C, H, W]`` float in ``[-1, 1]``, ``N >= 1`` (any device).
        modalities: names of the ``C`` channels (default ``channel0``, ...).
        format: ``"png"`` or ``"jpeg"``.

    Returns:
        ``{modality: kB, ..., "mean": average over modalities}``.

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> one = torch.rand(1, 1, 64, 64, generator=g) * 2 - 1  # a single image: no averaging at all
        >>> many = torch.rand(64, 1, 64, 64, generator=g) * 2 - 1  # 64 independent noise images
        >>> mean_image_size(many)["channel0"] < mean_image_size(one)["channel0"]
        True
    """
    metric = MeanImageSize(modalities, format)
    metric.update(images)
    return metric.compute()
