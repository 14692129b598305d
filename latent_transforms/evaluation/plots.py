"""Figures of an evaluation: the precision/recall scatter (Fig. 7 of Tronchin et al. 2023) and sample grids.

The scatter has one panel per modality: recall (variety, mode coverage) on x, precision (fidelity) on y,
one labelled point per policy; the SG2Sample points are joined in order of ψ, tracing the GAN's own
fidelity/variety trade-off, so a policy above and to the right of that line beats truncation at both.
matplotlib is imported only when a plot is drawn (``pip install 'latent-transforms[plots]'``) and only
its Agg canvas is used: no window, no change to pyplot's global backend.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from latent_transforms.errors import ConfigError
from latent_transforms.files import atomic_write
from latent_transforms.plotting import agg_figure

if TYPE_CHECKING:
    from latent_transforms.evaluation.report import EvaluationReport

__all__ = ["precision_recall_plot", "sample_grid"]

# Marker and colour per family; the paper's Fig. 7 draws SG2 as white triangles, LatentAugment in green.
_STYLE: dict[str, dict[str, Any]] = {
    "SG2Sample": {"marker": "^", "facecolor": "white", "edgecolor": "black"},
    "LatentAugment": {"marker": "o", "facecolor": "tab:green", "edgecolor": "darkgreen"},
    "StandardDA": {"marker": "s", "facecolor": "tab:blue", "edgecolor": "navy"},
    "real": {"marker": "*", "facecolor": "gold", "edgecolor": "black"},
    "directory": {"marker": "D", "facecolor": "tab:purple", "edgecolor": "indigo"},
}


def precision_recall_plot(
    report: EvaluationReport,
    path: str | Path,
    *,
    modalities: Sequence[str] | None = None,
    title: str | None = None,
) -> Path:
    """Draw the precision-vs-recall scatter of a report (one panel per modality) as a PNG.

    Args:
        report: the :class:`~latent_transforms.evaluation.report.EvaluationReport`.
        path: the PNG to write (folders are created).
        modalities: panels to draw (default: the report's modalities).
        title: the figure title (default: the feature network and ``k``).

    Returns:
        ``path``.

    Example:
        >>> import tempfile, os
        >>> from latent_transforms.evaluation.report import EvaluationReport, PolicyResult
        >>> rows = [PolicyResult(f"SG2Sample ψ={p}", "", "sg2sample", "SG2Sample", 9, psi=p,
        ...                      precision={"ct": 0.9 - p / 2}, recall={"ct": p / 2}) for p in (0.3, 1.0)]
        >>> with tempfile.TemporaryDirectory() as d:
        ...     out = precision_recall_plot(EvaluationReport(rows, ["ct"]), f"{d}/pr.png")
        ...     os.path.getsize(out) > 0
        True
    """
    panels = list(modalities) if modalities is not None else list(report.modalities)
    if not panels:
        raise ConfigError("expected at least one modality to plot, got none. Fix: pass modalities=[...].")
    fig = agg_figure((5.2 * len(panels), 5.0), dpi=120)
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    handles: dict[str, Any] = {}  # one legend entry per family, for the whole figure
    for ax, modality in zip(axes, panels, strict=True):
        points = [
            (r, r.recall.get(modality), r.precision.get(modality))
            for r in report.rows
            if r.recall.get(modality) is not None and r.precision.get(modality) is not None
        ]
        sg2 = sorted((r.psi, x, y) for r, x, y in points if r.family == "SG2Sample" and r.psi is not None)
        if len(sg2) > 1:
            ax.plot([x for _, x, _ in sg2], [y for _, _, y in sg2], color="grey", lw=1, ls="--", zorder=1)
        placed: list[tuple[float, float]] = []
        for r, x, y in points:
            style = _STYLE.get(r.family, _STYLE["directory"])
            handle = ax.scatter(
                [x],
                [y],
                s=90,
                marker=style["marker"],
                c=style["facecolor"],
                edgecolors=style["edgecolor"],
                linewidths=1.2,
                zorder=3,
            )
            handles.setdefault(r.family, handle)
            # Labels of points that (nearly) coincide are stacked, away from the nearer horizontal edge.
            near = sum(1 for px, py in placed if abs(px - x) < 0.04 and abs(py - y) < 0.04)
            placed.append((x, y))
            step = 11 if y < 0.5 else -11
            ax.annotate(
                r.policy,
                (x, y),
                xytext=(6, 4 + step * near),
                textcoords="offset points",
                fontsize=8,
                zorder=4,
            )
        values = [v for _, x, y in points for v in (x, y)]
        top = max([1.0, *values]) if values else 1.0
        ax.set_xlim(-0.03, top + 0.03)
        ax.set_ylim(-0.03, top + 0.03)
        ax.set_xlabel("recall (variety)")
        ax.set_ylabel("precision (fidelity)")
        ax.set_title(modality)
        ax.grid(True, alpha=0.3)
    if handles:
        fig.legend(list(handles.values()), list(handles), loc="lower center", ncol=len(handles), fontsize=8)
    s = report.settings
    fig.suptitle(
        title or f"precision vs recall ({s.get('feature_network', '?')} features, k = {s.get('k', '?')})"
    )
    fig.tight_layout(rect=(0.0, 0.07 if handles else 0.0, 1.0, 1.0))
    out = Path(path)
    return atomic_write(out, lambda tmp: fig.savefig(tmp, format=out.suffix[1:] or "png"))


def sample_grid(
    sets: Sequence[tuple[str, torch.Tensor]],
    modalities: Sequence[str],
    path: str | Path,
    *,
    n: int = 8,
    scale: int = 2,
) -> Path:
    """Save a grid of samples: one row per (set, modality), ``n`` images per row, each row labelled.

    Args:
        sets: ``(name, images)`` pairs; ``images`` ``[N, C, H, W]`` in ``[-1, 1]`` with ``C`` the modalities
            (all sets the same ``H, W``).
        modalities: the channel names, used in the row labels.
        path: the PNG to write.
        n: images per row (the first ``n`` of each set; fewer when a set is smaller, padded with white).
        scale: nearest-neighbour magnification.

    Returns:
        ``path``.

    Example:
        >>> import tempfile, os
        >>> with tempfile.TemporaryDirectory() as d:
        ...     sets = [("real", torch.rand(4, 2, 8, 8) * 2 - 1), ("SG2", torch.rand(3, 2, 8, 8) * 2 - 1)]
        ...     os.path.getsize(sample_grid(sets, ["mri", "ct"], f"{d}/g.png", n=4)) > 0
        True
    """
    from latent_transforms.networks.preview import labelled_grid

    if not sets:
        raise ConfigError("expected at least one (name, images) set for the sample grid, got none.")
    rows: list[tuple[str, torch.Tensor]] = []
    for name, images in sets:
        if images.ndim != 4 or images.shape[1] != len(modalities):
            raise ConfigError(
                f"expected images [N, {len(modalities)}, H, W] for {name!r} (one channel per modality "
                f"{list(modalities)}), got {tuple(images.shape)}."
            )
        tiles = (images[:n].detach().float().cpu().clamp(-1, 1) + 1) / 2
        if tiles.shape[0] < n:  # white padding keeps every row the same width
            pad = torch.ones(n - tiles.shape[0], *tiles.shape[1:])
            tiles = torch.cat([tiles, pad])
        label = name.replace("ψ", "psi")  # the grid's bitmap font has no Greek letters
        for c, modality in enumerate(modalities):
            rows.append((f"{label} {modality}", tiles[:, c]))
    return labelled_grid(rows, path, scale=scale)
