"""matplotlib, imported only when a figure is drawn (``pip install 'latent-transforms[plots]'``).

Only the Agg canvas is used: no window, and pyplot's global backend and figure list are left alone, so
figures can be drawn from a training loop or a DataLoader worker.
"""

from __future__ import annotations

from typing import Any

from latent_transforms.errors import MissingDependencyError

__all__ = ["agg_figure"]


def agg_figure(figsize: tuple[float, float], dpi: int = 110) -> Any:
    """A new matplotlib ``Figure`` on an Agg canvas (``fig.savefig(path)`` writes a PNG).

    Raises:
        MissingDependencyError: matplotlib is not installed (the message names the pip extra).

    Example:
        >>> fig = agg_figure((2.0, 2.0))
        >>> ax = fig.subplots()
        >>> type(fig).__name__
        'Figure'
    """
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise MissingDependencyError(
            "plots need matplotlib. Fix: pip install 'latent-transforms[plots]' (or matplotlib)."
        ) from exc
    fig = Figure(figsize=figsize, dpi=dpi)
    FigureCanvasAgg(fig)
    return fig
