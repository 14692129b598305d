"""The FID-against-kimg curve of a training run, drawn from its ``log.jsonl``.

Both trainers (StyleGAN2-ADA and the diffusion model) append one JSON record per checkpoint to
``OUT/log.jsonl``; the scored ones carry ``score/fid`` and ``score/smoothed`` (the checkpoint choice of
Xue et al. 2021). :func:`plot_fid_curve` draws them, and marks the checkpoint that became the bundle.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

from latent_transforms.errors import ConfigError
from latent_transforms.files import atomic_write
from latent_transforms.plotting import agg_figure

__all__ = ["can_plot", "plot_fid_curve", "read_log", "scored_records"]


def read_log(path: str | Path) -> list[dict[str, Any]]:
    """The records of a training run's ``log.jsonl`` (``path`` is the file or the run folder), in order.

    Example:
        >>> import tempfile, pathlib
        >>> with tempfile.TemporaryDirectory() as d:
        ...     _ = (pathlib.Path(d) / "log.jsonl").write_text('{"kimg": 1.0}\\n{"kimg": 2.0}\\n')
        ...     [r["kimg"] for r in read_log(d)]
        [1.0, 2.0]
    """
    path = Path(path)
    if path.is_dir():
        path = path / "log.jsonl"
    if not path.is_file():
        raise FileNotFoundError(
            f"no training log at {path}. Fix: pass the --out folder of a `latent-transforms train` or "
            "`train-diffusion` run (it holds log.jsonl)."
        )
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def scored_records(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The records that carry a FID (``score/fid``), each kimg once (the last record of a kimg wins: a
    resumed run may log a checkpoint again)."""
    by_kimg = {float(r["kimg"]): r for r in records if "score/fid" in r}
    return [by_kimg[k] for k in sorted(by_kimg)]


def plot_fid_curve(log: str | Path, path: str | Path, *, title: str | None = None) -> Path:
    """Draw FID against kimg (and its smoothed value, when logged) into a PNG; the checkpoint with the
    lowest smoothed FID, the one the trainers keep as the bundle, is marked with a star.

    Args:
        log: a run's ``log.jsonl``, or its ``--out`` folder.
        path: the PNG to write (folders are created).
        title: the figure's title (default: the run folder's name).

    Returns:
        ``path``.

    Raises:
        ConfigError: the log holds no scored checkpoint yet.
        MissingDependencyError: matplotlib is not installed (``pip install 'latent-transforms[plots]'``).

    Example:
        >>> import tempfile, pathlib
        >>> lines = [{"kimg": k, "score/fid": f, "score/smoothed": f} for k, f in ((5, 80.0), (10, 40.0))]
        >>> with tempfile.TemporaryDirectory() as d:
        ...     _ = (pathlib.Path(d) / "log.jsonl").write_text("\\n".join(map(json.dumps, lines)))
        ...     plot_fid_curve(d, f"{d}/fid-curve.png").is_file()
        True
    """
    log = Path(log)
    scored = scored_records(read_log(log))
    if not scored:
        raise ConfigError(
            f"{log} has no scored checkpoint yet. Fix: train past --metric-kimg (the GAN trainer scores "
            "every --metric-kimg too), or give the run a feature network (not --metric-network none)."
        )
    kimg = [float(r["kimg"]) for r in scored]
    fids = [float(r["score/fid"]) for r in scored]
    fig = agg_figure((6.0, 4.0))
    ax = fig.subplots()
    ax.plot(kimg, fids, "o-", label="FID")
    if all("score/smoothed" in r for r in scored):
        smoothed = [float(r["score/smoothed"]) for r in scored]
        ax.plot(kimg, smoothed, "s--", label="smoothed (Xue et al. 2021)")
        best = min(range(len(smoothed)), key=smoothed.__getitem__)
        ax.plot([kimg[best]], [fids[best]], "*", markersize=16, label=f"kept: {kimg[best]:g} kimg")
    ax.set_xlabel("kimg (thousands of training images)")
    ax.set_ylabel("FID")
    run = log.parent if log.suffix == ".jsonl" else log
    ax.set_title(title if title is not None else run.name)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write(path, lambda tmp: fig.savefig(tmp, format="png"))


def can_plot() -> bool:
    """Whether matplotlib (the ``plots`` extra) is installed."""
    return importlib.util.find_spec("matplotlib") is not None
