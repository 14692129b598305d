"""Per-slice image-quality metrics between a predicted image and its reference, in physical units.

These are the downstream metrics of Tronchin et al. 2023 (§IV-E, Table II): the MAE inside the body (air below
-500 HU excluded), SSIM, PSNR and LPIPS between a synthetic CT (e.g. a Pix2Pix MRI-to-CT output) and
the real CT of the same slice.

Conventions shared by every function here:

- Images are ``[B, H, W]`` or ``[B, 1, H, W]`` float tensors (one modality; score several modalities one
  at a time), on any device; ``pred`` and ``target`` have the same shape and device.
- Values are in the physical units of the modality (HU for CT, 0..255 for 8-bit PNG slices).
- Results are per-slice ``float64`` tensors ``[B]`` on the inputs' device (SSIM is computed in
  ``float32`` and returned as ``float64``).
- ``data_range`` is a number (the images are used as given) or an intensity window (an
  :class:`~latent_transforms.data.windows.IntensityWindow` or ``(low, high)``): then both images are
  first clipped to the window and ``data_range`` is its width, ``high - low`` (3000 HU for the paper's
  CT window ``[-1000, 2000]``).

:class:`PairedImageMetrics` collects all four metrics over many batches, keeping every per-slice value
for the statistics tests of :mod:`latent_transforms.metrics.stats`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from latent_transforms import image_quality
from latent_transforms.data.items import BODY_THRESHOLD_HU
from latent_transforms.data.windows import WindowLike, as_window
from latent_transforms.errors import ConfigError
from latent_transforms.metrics.lpips import lpips_checkpoint, lpips_distance

PAIRED_METRICS: tuple[str, ...] = ("mae", "ssim", "psnr", "lpips")
"""The metric names :class:`PairedImageMetrics` knows, in the order of Table II of Tronchin et al. 2023."""


def _slices(x: Any, name: str) -> torch.Tensor:
    """``[B, H, W]`` view of a ``[B, H, W]`` or ``[B, 1, H, W]`` float tensor, after checking it."""
    if not isinstance(x, torch.Tensor):
        raise ConfigError(
            f"expected {name} as a torch.Tensor [B, H, W] or [B, 1, H, W], got {type(x).__name__}."
        )
    shape = tuple(x.shape)
    if x.ndim == 4 and x.shape[1] == 1:
        x = x[:, 0]
    if x.ndim != 3:
        raise ConfigError(
            f"expected {name} of shape [B, H, W] or [B, 1, H, W] (one modality), got {shape}. Fix: score one "
            "modality at a time, e.g. images[:, c] for channel c."
        )
    if x.shape[0] == 0 or x.shape[1] == 0 or x.shape[2] == 0:
        raise ConfigError(f"expected at least one non-empty slice in {name}, got shape {shape}.")
    if not x.is_floating_point():
        x = x.to(torch.float32)
    return x


def _pair(pred: Any, target: Any) -> tuple[torch.Tensor, torch.Tensor]:
    p, t = _slices(pred, "pred"), _slices(target, "target")
    if p.shape != t.shape:
        raise ConfigError(
            f"expected pred and target of the same shape, got {tuple(pred.shape)} and {tuple(target.shape)}. "
            "Fix: pair every predicted slice with its reference slice."
        )
    if p.device != t.device:
        raise ConfigError(
            f"expected pred and target on one device, got {p.device} and {t.device}. Fix: move both, e.g. "
            "pred.to(target.device)."
        )
    if not (bool(torch.isfinite(p).all()) and bool(torch.isfinite(t).all())):
        raise ConfigError("expected finite values in pred and target, got NaN or Inf. Fix: check the images.")
    return p, t


def _range(data_range: float | WindowLike, p: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """``(pred, target, width, low)``: clipped to the window if one is given, else as given (low = 0)."""
    if isinstance(data_range, (int, float)) and not isinstance(data_range, bool):
        if not (math.isfinite(data_range) and data_range > 0):
            raise ConfigError(
                f"expected data_range > 0 (the value range in physical units), got {data_range}. Fix: pass "
                "the window width, e.g. 3000.0 for CT in [-1000, 2000] HU, or the window itself."
            )
        return p, t, float(data_range), 0.0  # type: ignore[return-value]
    window = as_window(data_range)  # type: ignore[arg-type]
    return (
        p.clamp(window.low, window.high),
        t.clamp(window.low, window.high),
        window.width,
        window.low,
    )  # type: ignore[return-value]


def mae(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Mean absolute error per slice, optionally only where ``mask`` is set.

    Args:
        pred: predicted slices ``[B, H, W]`` or ``[B, 1, H, W]`` in physical units.
        target: reference slices, same shape, units and device.
        mask: ``None`` (every pixel) or a bool / {0, 1} tensor of the same shape: the pixels to average.

    Returns:
        ``float64`` tensor ``[B]`` in the images' units; ``nan`` for a slice whose mask is empty.

    Example:
        >>> pred = torch.tensor([[[0.0, 10.0], [20.0, 30.0]]])
        >>> mae(pred, torch.zeros(1, 2, 2)).tolist()
        [15.0]
        >>> mae(pred, torch.zeros(1, 2, 2), mask=torch.tensor([[[False, True], [True, False]]])).tolist()
        [15.0]
    """
    p, t = _pair(pred, target)
    diff = (p.to(torch.float64) - t.to(torch.float64)).abs()
    if mask is None:
        return diff.mean(dim=(1, 2))
    m = mask[:, 0] if isinstance(mask, torch.Tensor) and mask.ndim == 4 and mask.shape[1] == 1 else mask
    if not isinstance(m, torch.Tensor) or m.shape != p.shape:
        got = tuple(mask.shape) if isinstance(mask, torch.Tensor) else type(mask).__name__
        raise ConfigError(
            f"expected a mask of the images' shape {tuple(pred.shape)}, got {got}. "
            "Fix: pass one mask per slice."
        )
    weight = (m.to(device=p.device) != 0).to(torch.float64)
    # 0 / 0 = nan: a slice with an empty mask has no MAE.
    return (diff * weight).sum(dim=(1, 2)) / weight.sum(dim=(1, 2))


def body_mae(pred: torch.Tensor, target: torch.Tensor, threshold: float = BODY_THRESHOLD_HU) -> torch.Tensor:
    """MAE inside the body of the reference slice: the pixels where ``target > threshold``.

    Tronchin et al. 2023 report the MAE "within the body, excluding air with HU values below -500". The mask
    comes from the reference (``target``) only, so every method is scored on the same pixels.

    Args:
        pred: predicted slices ``[B, H, W]`` or ``[B, 1, H, W]`` in physical units (HU for CT).
        target: reference slices, same shape, units and device.
        threshold: body threshold in the images' units (``-500`` HU; for 8-bit slices windowed from CT,
            the same HU value mapped through that window, e.g. ``42.5`` for ``[-1000, 2000]`` HU to 0..255).

    Returns:
        ``float64`` tensor ``[B]`` in the images' units. A slice whose reference has no pixel above
        ``threshold`` (no body) gives ``nan``: drop such slices, or use :func:`mae` for the whole image.

    Example:
        >>> target = torch.tensor([[[-1000.0, 0.0], [100.0, -900.0]]])
        >>> pred = torch.tensor([[[-500.0, 10.0], [70.0, -1000.0]]])
        >>> body_mae(pred, target).tolist()  # only the two pixels above -500 HU: (10 + 30) / 2
        [20.0]
    """
    p, t = _pair(pred, target)
    return mae(p, t, mask=t > threshold)


def psnr(pred: torch.Tensor, target: torch.Tensor, data_range: float | WindowLike) -> torch.Tensor:
    """Peak signal-to-noise ratio per slice, ``10 log10(data_range^2 / MSE)``, in dB.

    Args:
        pred: predicted slices ``[B, H, W]`` or ``[B, 1, H, W]`` in physical units.
        target: reference slices, same shape, units and device.
        data_range: the peak value range in the images' units, or a window ``(low, high)`` /
            :class:`IntensityWindow`: both images are then clipped to it first and ``data_range`` is its
            width (the paper's CT window ``[-1000, 2000]`` HU gives 3000).

    Returns:
        ``float64`` tensor ``[B]`` in dB; ``inf`` for identical slices.

    Example:
        >>> target = torch.zeros(1, 4, 4)
        >>> psnr(target + 10.0, target, data_range=1000.0).tolist()  # 10 log10(1000^2 / 10^2)
        [40.0]
    """
    p, t = _pair(pred, target)
    p, t, width, _ = _range(data_range, p, t)
    p64, t64 = p[:, None].to(torch.float64), t[:, None].to(torch.float64)
    return image_quality.psnr(p64, t64, data_range=width)[:, 0]


def ssim(
    pred: torch.Tensor,
    target: torch.Tensor,
    data_range: float | WindowLike,
    *,
    kernel_size: int = 11,
    sigma: float = 1.5,
) -> torch.Tensor:
    """Structural similarity per slice (Wang et al. 2004): the library's one SSIM,
    :func:`latent_transforms.image_quality.ssim`, equal to MONAI's ``compute_ssim_and_cs``.

    A Gaussian window (``kernel_size``, ``sigma``), ``k1 = 0.01``, ``k2 = 0.03``; the SSIM map is
    computed where the window fits entirely inside the image (no padding) and averaged per slice.

    SSIM's luminance term depends on the offset of the values (it is scale- but not shift-invariant):
    with a number as ``data_range`` the values are used as given, with a window they are clipped to it
    and shifted to ``[0, width]`` (``x - low``), the usual convention that intensities lie in
    ``[0, data_range]``. :class:`PairedImageMetrics` passes the window.

    Args:
        pred: predicted slices ``[B, H, W]`` or ``[B, 1, H, W]`` in physical units, at least
            ``kernel_size`` pixels on each side.
        target: reference slices, same shape, units and device.
        data_range: the value range in the images' units, or a window ``(low, high)`` /
            :class:`IntensityWindow` (see above).
        kernel_size: side of the Gaussian window in pixels (odd).
        sigma: standard deviation of the Gaussian window in pixels.

    Returns:
        ``float64`` tensor ``[B]`` with values in ``[-1, 1]`` (1 for identical slices), computed in
        ``float32``.

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> ct = torch.rand(2, 16, 16, generator=g) * 3000 - 1000
        >>> ssim(ct, ct, (-1000, 2000)).tolist()
        [1.0, 1.0]
        >>> bool((ssim(ct.flip(0), ct, (-1000, 2000)) < 0.5).all())
        True
    """
    p, t = _pair(pred, target)
    if kernel_size < 1 or kernel_size % 2 == 0 or not sigma > 0:
        raise ConfigError(
            f"expected an odd kernel_size >= 1 and sigma > 0, got kernel_size={kernel_size}, sigma={sigma}. "
            "Fix: use the defaults (11, 1.5)."
        )
    if min(p.shape[1:]) < kernel_size:
        raise ConfigError(
            f"expected slices of at least {kernel_size} x {kernel_size} pixels for an SSIM window of "
            f"{kernel_size}, got {tuple(p.shape[1:])}. Fix: pass a smaller kernel_size or larger slices."
        )
    p, t, width, low = _range(data_range, p, t)
    if low:
        p, t = p - low, t - low
    value = image_quality.ssim(p[:, None], t[:, None], data_range=width, window_size=kernel_size, sigma=sigma)
    return value[:, 0].to(torch.float64)


class PairedImageMetrics:
    """Streaming MAE in the body, SSIM, PSNR and LPIPS over predicted/reference slice pairs.

    Every :meth:`update` clips both images to ``window`` (so ``data_range`` is the window width) and
    stores one value per slice and metric; :meth:`compute` averages them and :meth:`per_slice` returns
    them all, e.g. for :func:`latent_transforms.metrics.stats.compare_methods` (one block per slice, in
    the order of the updates: feed every method the slices in the same order).

    Units follow the window: ``"mae"`` is in the window's units (HU for a CT window), ``"psnr"`` in dB
    with peak = window width, ``"ssim"`` and ``"lpips"`` have no unit. ``body_threshold`` is in the
    window's units too and must lie inside it. For 8-bit PNG slices (window ``(0, 255)``) that came
    from CT windowed to ``[a, b]`` HU, the paper's -500 HU becomes ``(-500 - a) / (b - a) * 255``
    (42.5 for ``[-1000, 2000]``); MAE and PSNR are then in grey levels, not HU.

    Args:
        window: the modality's :class:`~latent_transforms.data.windows.IntensityWindow` or ``(low,
            high)`` in physical units.
        metrics: a subset of ``("mae", "ssim", "psnr", "lpips")``.
        body_threshold: ``"mae"`` averages only where the reference exceeds it (Tronchin et al. 2023: -500
            HU); ``None`` averages the whole image.
        lpips_net: ``"alex"``, ``"vgg"``, ``"squeeze"`` (ImageNet backbone weights must be in the torch
            hub cache, see :mod:`latent_transforms.metrics.lpips`) or a ready LPIPS module.
        device: where to compute (``None``: the device of the images given to :meth:`update`).

    Raises:
        FeatureNetworkUnavailableError: ``"lpips"`` is requested and its backbone weights file is absent
            (checked at construction, before any image is scored).

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> ct = torch.rand(3, 1, 16, 16, generator=g) * 3000 - 1000
        >>> metric = PairedImageMetrics((-1000, 2000), metrics=("mae", "psnr", "ssim"))
        >>> _ = metric.update(ct + 30.0, ct)
        >>> result = metric.compute()
        >>> sorted(result), round(result["mae"], 6) <= 30.0, len(metric.per_slice()["ssim"])
        (['mae', 'psnr', 'ssim'], True, 3)
    """

    def __init__(
        self,
        window: WindowLike,
        *,
        metrics: Sequence[str] = PAIRED_METRICS,
        body_threshold: float | None = BODY_THRESHOLD_HU,
        lpips_net: str | nn.Module = "alex",
        device: torch.device | str | None = None,
    ) -> None:
        self.window = as_window(window)
        names = (metrics,) if isinstance(metrics, str) else tuple(metrics)
        unknown = [m for m in names if m not in PAIRED_METRICS]
        if not names or unknown or len(set(names)) != len(names):
            raise ConfigError(
                f"expected distinct metric names from {PAIRED_METRICS}, got {metrics!r}. "
                "Fix: e.g. metrics=('mae', 'ssim', 'psnr')."
            )
        self.metrics = names
        if body_threshold is not None and not (self.window.low <= body_threshold < self.window.high):
            raise ConfigError(
                f"expected body_threshold inside the window [{self.window.low}, {self.window.high}) (in the "
                f"window's units), got {body_threshold}. Fix: for 8-bit slices windowed from CT [a, b] HU "
                "pass (-500 - a) / (b - a) * 255 (42.5 for [-1000, 2000]); body_threshold=None scores whole "
                "images."
            )
        self.body_threshold = body_threshold
        self.lpips_net = lpips_net
        self.device = torch.device(device) if device is not None else None
        if "lpips" in names and isinstance(lpips_net, str):
            lpips_checkpoint(lpips_net)  # fail now, not after the first batch
        self._values: dict[str, list[float]] = {m: [] for m in names}

    def update(self, pred: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
        """Score a batch of slice pairs and store the values.

        Args:
            pred: predicted slices ``[B, H, W]`` or ``[B, 1, H, W]`` in the window's physical units.
            target: reference slices, same shape and units.

        Returns:
            ``{metric: float64 tensor [B]}`` for this batch (also appended to :meth:`per_slice`).
        """
        if self.device is not None:
            pred, target = pred.to(self.device), target.to(self.device)
        p, t = _pair(pred, target)
        w = self.window
        p, t = p.clamp(w.low, w.high), t.clamp(w.low, w.high)
        batch: dict[str, torch.Tensor] = {}
        for name in self.metrics:
            if name == "mae":
                batch[name] = (
                    mae(p, t) if self.body_threshold is None else body_mae(p, t, self.body_threshold)
                )
            elif name == "psnr":
                batch[name] = psnr(p, t, w)
            elif name == "ssim":
                batch[name] = ssim(p, t, w)
            else:
                batch[name] = lpips_distance(p, t, net=self.lpips_net, window=w, device=self.device)
        for name, values in batch.items():
            self._values[name].extend(values.detach().cpu().tolist())
        return batch

    @property
    def n_slices(self) -> int:
        """How many slice pairs have been scored since the last :meth:`reset`."""
        return len(self._values[self.metrics[0]])

    def per_slice(self) -> dict[str, list[float]]:
        """Every stored value: ``{metric: [one float per slice, in update order]}``.

        A slice with no body (``"mae"`` with a threshold) holds ``nan``, so that the lists of different
        methods stay aligned slice by slice; drop those slices before the statistics tests.
        """
        return {name: list(values) for name, values in self._values.items()}

    def compute(self) -> dict[str, float]:
        """``{metric: mean over the stored slices}``; slices without a body are left out of ``"mae"``.

        Raises:
            ConfigError: nothing has been scored yet.
        """
        if self.n_slices == 0:
            raise ConfigError(
                "expected scored slices before compute(), got none. Fix: call update(pred, target)."
            )
        result = {}
        for name, values in self._values.items():
            finite = [v for v in values if not math.isnan(v)]
            result[name] = math.fsum(finite) / len(finite) if finite else math.nan
        return result

    def reset(self) -> None:
        """Forget every stored value (the settings stay)."""
        self._values = {m: [] for m in self.metrics}

    def __repr__(self) -> str:
        net = self.lpips_net if isinstance(self.lpips_net, str) else type(self.lpips_net).__name__
        unit = f" {self.window.unit}" if self.window.unit else ""
        return (
            f"PairedImageMetrics(window=[{self.window.low}, {self.window.high}]{unit}, "
            f"metrics={self.metrics}, body_threshold={self.body_threshold}, lpips_net={net!r}, "
            f"device={self.device}, "
            f"slices={self.n_slices})"
        )
