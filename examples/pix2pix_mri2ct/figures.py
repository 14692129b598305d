"""The benchmark's figures: MAE against HU (Fig. 4), the ``p`` sweep (Fig. 6), sCT error maps (Table IV).

Each function takes plain numbers (what ``results.json`` holds) and writes one PNG with matplotlib
(``pip install matplotlib``, part of ``latent-transforms[all]``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch


def _pyplot() -> Any:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as error:  # pragma: no cover - matplotlib is in the [all] extra
        raise ImportError("the figures need matplotlib: pip install 'latent-transforms[all]'") from error
    return plt


def plot_mae_vs_hu(
    curves: Mapping[str, tuple[Sequence[float], Sequence[float]]],
    path: str | Path,
    *,
    units: str = "HU",
    body_threshold: float | None = -500.0,
) -> Path:
    """Fig. 4: mean absolute error of the sCT as a function of the reference CT value, one line per policy.

    Args:
        curves: ``{label: (bin centres, MAE per bin)}`` (NaN where a bin holds no pixel).
        path: the PNG to write.
        units: the CT unit (axis labels).
        body_threshold: drawn as a dashed line (values below it are outside the body); soft tissue
            (-350..350 HU) is shaded when ``units`` is HU.

    Example:
        >>> import tempfile
        >>> d = tempfile.mkdtemp()
        >>> plot_mae_vs_hu({"Baseline": ([0.0, 50.0], [10.0, 12.0])}, f"{d}/fig4.png").name
        'fig4.png'
    """
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4))
    if units == "HU":
        ax.axvspan(-350, 350, color="0.92", label="soft tissue (-350..350 HU)")
    if body_threshold is not None:
        ax.axvline(
            body_threshold, color="0.4", ls="--", lw=1, label=f"body threshold ({body_threshold:g} {units})"
        )
    for label, (centres, mae) in curves.items():
        ax.plot(list(centres), list(mae), lw=1.6, label=label)
    ax.set_xlabel(f"reference CT [{units}]")
    ax.set_ylabel(f"MAE [{units}]")
    ax.set_title("MAE of the sCT against the reference CT value (test patients)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=130)
    plt.close(fig)
    return path


def interval_minima(points: Sequence[tuple[float, float]], width: float = 0.2) -> list[tuple[float, float]]:
    """The lowest ``(x, y)`` in each interval ``[k·width, (k+1)·width)`` of ``x`` in ``[0, 1]`` (1 joins the
    last interval): Fig. 6's red stars, what a search would have picked in each range of ``p_aug``.

    Example:
        >>> interval_minima([(0.0, 5.0), (0.1, 4.0), (0.5, 6.0), (1.0, 3.0)])
        [(0.1, 4.0), (0.5, 6.0), (1.0, 3.0)]
    """
    last = round(1 / width) - 1
    best: dict[int, tuple[float, float]] = {}
    for x, y in points:
        k = min(int(x / width + 1e-9), last)
        if k not in best or y < best[k][1]:
            best[k] = (x, y)
    return [best[k] for k in sorted(best)]


def plot_p_sweep(
    points: Sequence[tuple[float, float]],
    path: str | Path,
    *,
    label: str,
    units: str = "HU",
    width: float = 0.2,
) -> Path:
    """Fig. 6: validation MAE against ``p_aug = 1 - p``; a red star marks the minimum of each interval.

    Args:
        points: ``(p, validation MAE)`` per run (``p`` = probability of augmenting a sample).
        path: the PNG to write.
        label: the swept policy.
        units: MAE unit.
        width: interval width on the ``p_aug`` axis (the paper: 0.2).

    Example:
        >>> import tempfile
        >>> d = tempfile.mkdtemp()
        >>> plot_p_sweep([(0.1, 40.0), (0.5, 42.0)], f"{d}/fig6.png", label="LatentAugment").name
        'fig6.png'
    """
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    p_aug = [round(1.0 - p, 6) for p, _ in points]
    mae = [m for _, m in points]
    ax.scatter(p_aug, mae, marker="x", color="0.5", label="runs")
    stars = interval_minima(list(zip(p_aug, mae, strict=True)), width)
    ax.scatter(
        [x for x, _ in stars],
        [y for _, y in stars],
        marker="*",
        s=160,
        color="red",
        label="minimum per interval",
    )
    for k in range(1, round(1 / width)):
        ax.axvline(k * width, color="0.85", lw=0.8)
    ax.set_xlim(-0.05, 1.0)
    ax.set_xlabel("p_aug = 1 - p (share of real images kept)")
    ax.set_ylabel(f"validation MAE [{units}]")
    ax.set_title(f"{label}: validation MAE against p_aug")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=130)
    plt.close(fig)
    return path


def plot_error_maps(
    mri: torch.Tensor,
    ct: torch.Tensor,
    sct: Mapping[str, torch.Tensor],
    path: str | Path,
    *,
    units: str = "HU",
    title: str = "",
) -> Path:
    """Table IV: the reference MRI and CT, then per policy its sCT and ``|CT - sCT|`` scaled to [0, 1].

    The error maps share one scale (0: no error, 1: the largest error of any policy on this slice), so
    they compare across policies.

    Args:
        mri: ``[1, R, R]`` (or ``[R, R]``) the input MRI.
        ct: the reference CT, same shape, CT units.
        sct: ``{label: sCT}`` of the same slice.
        path: the PNG to write.
        units: CT unit (colour bar).
        title: figure title.

    Example:
        >>> import tempfile
        >>> d = tempfile.mkdtemp()
        >>> x = torch.zeros(1, 8, 8)
        >>> plot_error_maps(x, x, {"Baseline": x + 1}, f"{d}/maps.png").name
        'maps.png'
    """
    plt = _pyplot()
    mri, ct = mri.squeeze().float().cpu().numpy(), ct.squeeze().float().cpu().numpy()
    synthetic = {k: v.squeeze().float().cpu().numpy() for k, v in sct.items()}
    errors = {k: abs(ct - v) for k, v in synthetic.items()}
    top = max((float(e.max()) for e in errors.values()), default=1.0) or 1.0
    cols = 1 + len(sct)
    fig, axes = plt.subplots(2, cols, figsize=(2.2 * cols, 4.6), squeeze=False)
    axes[0][0].imshow(ct, cmap="gray")
    axes[0][0].set_title("CT (reference)", fontsize=8)
    axes[1][0].imshow(mri, cmap="gray")
    axes[1][0].set_title("MRI (input)", fontsize=8)
    image = None
    for j, (label, value) in enumerate(synthetic.items(), start=1):
        axes[0][j].imshow(value, cmap="gray", vmin=float(ct.min()), vmax=float(ct.max()))
        axes[0][j].set_title(f"sCT: {label}", fontsize=7)
        image = axes[1][j].imshow(errors[label] / top, cmap="inferno", vmin=0, vmax=1)
        axes[1][j].set_title(f"|CT - sCT|, max {float(errors[label].max()):.0f} {units}", fontsize=7)
    for ax in (a for row in axes for a in row):
        ax.set_xticks([])
        ax.set_yticks([])
    if image is not None:
        every = [ax for row in axes for ax in row]  # shrinks every panel alike, not only the last column
        fig.colorbar(image, ax=every, shrink=0.6, label=f"error / {top:.0f} {units}")
    if title:
        fig.suptitle(title, fontsize=9)
    path = Path(path)
    fig.savefig(path, dpi=130, bbox_inches="tight")
    plt.close(fig)
    return path
