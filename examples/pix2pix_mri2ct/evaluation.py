"""Score a trained MRI -> CT model on held-out slices: the paper's metrics and the MAE-vs-HU curve.

- :func:`translate` runs the model over a :class:`~.data.SliceSet` and returns synthetic CT (sCT) in the
  CT window's physical units (HU), next to the reference CT.
- :func:`score_translation` gives, per slice, the MAE inside the body (reference CT above the body
  threshold: -500 HU), SSIM, PSNR (peak = the CT window's width) and LPIPS (AlexNet, when its ImageNet
  weights are on disk), with :class:`latent_transforms.PairedImageMetrics`, plus the sums behind the
  MAE-vs-HU curve (Fig. 4) and the sCT of one example slice (Table IV's error maps).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

import latent_transforms as lt

from .data import SliceSet
from .model import Pix2Pix

#: Bin edges of the MAE-vs-HU curve (Fig. 4): 50 HU wide over the paper's CT window [-1000, 2000].
HU_EDGES = tuple(float(x) for x in range(-1000, 2001, 50))
#: Metric directions for the statistics: True where higher is better.
HIGHER_IS_BETTER = {"mae": False, "ssim": True, "psnr": True, "lpips": False}


def curve_edges(window: lt.IntensityWindow, bins: int = 60) -> tuple[float, ...]:
    """Bin edges of the MAE-vs-value curve over ``window``: 60 bins, 50 HU wide for [-1000, 2000] HU.

    Example:
        >>> edges = curve_edges(lt.IntensityWindow(-1000, 2000, "HU"))
        >>> len(edges), edges[:3], edges[-1]
        (61, (-1000.0, -950.0, -900.0), 2000.0)
    """
    step = (window.high - window.low) / bins
    return tuple(round(window.low + i * step, 6) for i in range(bins + 1))


@torch.no_grad()
def translate(
    model: Pix2Pix,
    slices: SliceSet,
    *,
    windows: dict[str, lt.IntensityWindow],
    device: torch.device | str,
    batch_size: int = 64,
) -> tuple[torch.Tensor, torch.Tensor]:
    """sCT of every slice: ``(sct, ct)``, both ``[N, 1, R, R]`` float32 in CT units, on the CPU.

    The MRI is normalised with ``windows["mri"]``; the model's ``[-1, 1]`` output is mapped back with
    ``windows["ct"]``. The reference CT is returned clipped to the same window.
    """
    device = torch.device(device)
    mri, ct = slices.stacked()
    out = []
    for start in range(0, len(mri), batch_size):
        x = windows["mri"].normalize(mri[start : start + batch_size].to(device))
        out.append(windows["ct"].denormalize(model.translate(x)).float().cpu())
    low, high = windows["ct"].low, windows["ct"].high
    return torch.cat(out) if out else torch.empty_like(ct), ct.clamp(low, high)


def hu_error_sums(
    sct: torch.Tensor, ct: torch.Tensor, edges: Sequence[float] = HU_EDGES
) -> tuple[list[float], list[int]]:
    """Sum of ``|sct - ct|`` and pixel count per bin of the reference value ``ct`` (Fig. 4's curve).

    Bins are ``[edges[i], edges[i+1])``, the last one closed. Dividing the sums by the counts (over all
    slices of all seeds) gives the mean absolute error as a function of HU.

    Example:
        >>> ct = torch.tensor([-1000.0, -990.0, 0.0, 2000.0])
        >>> sums, counts = hu_error_sums(ct + 10, ct, edges=(-1000, 0, 2000))
        >>> sums, counts
        ([20.0, 20.0], [2, 2])
    """
    e = torch.tensor(list(edges), dtype=torch.float64)
    x, err = ct.flatten().double(), (sct - ct).abs().flatten().double()
    index = torch.bucketize(x, e, right=True) - 1
    index = torch.where(x == e[-1], torch.full_like(index, len(e) - 2), index)
    keep = (index >= 0) & (index < len(e) - 1)
    sums = torch.zeros(len(e) - 1, dtype=torch.float64).index_add_(0, index[keep], err[keep])
    counts = torch.zeros(len(e) - 1, dtype=torch.long).index_add_(
        0, index[keep], torch.ones_like(index[keep])
    )
    return [round(v, 4) for v in sums.tolist()], counts.tolist()


def example_slice(slices: SliceSet, body_threshold: float) -> int:
    """The test slice shown in the error maps: the one with the largest body area (ties: the first).

    Example:
        >>> ds = SliceSet(lt.PelvisPhantom(1, 5, resolution=16), preload=True)
        >>> 0 <= example_slice(ds, -500.0) < 5
        True
    """
    _, ct = slices.stacked()
    area = (ct > body_threshold).flatten(1).sum(dim=1)
    return int(area.argmax())


def lpips_status(net: str | None) -> str | None:
    """``None`` when LPIPS with ``net`` can run here, else why not (the backbone file is missing...)."""
    if net is None:
        return "LPIPS switched off (--lpips none)"
    try:
        from latent_transforms.metrics import lpips_checkpoint

        lpips_checkpoint(net)
    except lt.LatentTransformsError as error:
        return str(error)
    return None


def score_translation(
    sct: torch.Tensor,
    ct: torch.Tensor,
    *,
    window: lt.IntensityWindow,
    body_threshold: float,
    lpips_net: str | None = "alex",
    device: torch.device | str | None = None,
    edges: Sequence[float] = HU_EDGES,
) -> dict[str, Any]:
    """The paper's four metrics per slice, their means, and the MAE-vs-HU sums.

    Args:
        sct: ``[N, 1, R, R]`` synthetic CT in the window's units.
        ct: ``[N, 1, R, R]`` reference CT, same units.
        window: the CT window (clipping, SSIM/PSNR data range = its width).
        body_threshold: MAE only where the reference exceeds it (-500 HU).
        lpips_net: ``"alex"`` (LPIPS's default), ``"vgg"``, ``"squeeze"``, or ``None`` to skip LPIPS.
        device: where the metrics run.
        edges: HU bins of the curve (scaled to the window for 8-bit data by the caller).

    Returns:
        ``{"mean": {metric: float}, "per_slice": {metric: [float]}, "hu_curve": {"edges", "sums",
        "counts"}}``; ``"lpips"`` is absent when ``lpips_net`` is ``None``.

    Example:
        >>> ct = torch.rand(2, 1, 16, 16, generator=torch.Generator().manual_seed(0)) * 2900 - 1000
        >>> w = lt.IntensityWindow(-1000, 2000, "HU")
        >>> out = score_translation(ct + 20, ct, window=w, body_threshold=-500, lpips_net=None)
        >>> round(out["mean"]["mae"], 3), len(out["per_slice"]["ssim"])
        (20.0, 2)
    """
    names = ("mae", "ssim", "psnr", "lpips") if lpips_net is not None else ("mae", "ssim", "psnr")
    metric = lt.PairedImageMetrics(
        window, metrics=names, body_threshold=body_threshold, lpips_net=lpips_net or "alex", device=device
    )
    for start in range(0, len(sct), 64):
        metric.update(sct[start : start + 64], ct[start : start + 64])
    sums, counts = hu_error_sums(sct, ct, edges)
    return {
        "mean": {k: round(v, 6) for k, v in metric.compute().items()},
        "per_slice": {k: [round(x, 6) for x in v] for k, v in metric.per_slice().items()},
        "hu_curve": {"edges": list(edges), "sums": sums, "counts": counts},
    }
