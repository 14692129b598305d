"""The evaluation report: one row per policy in the four column groups of Xing et al. 2023, as Markdown and
JSON.

Column groups (Xing et al. 2023, §II-D and Table I):

- **fidelity**: FID to the held-out reference set (lower is better) and precision (the share of samples
  that fall inside the real data's k-NN manifold; higher is better);
- **variety**: recall (the share of real images whose neighbourhood the samples cover; higher is better)
  and the size of the mean image as a lossless file (a varied set averages to a blurry image, which
  compresses well: smaller is more varied);
- **utility**: the gain of a downstream model trained with the policy over one trained without
  augmentation, with a paired Wilcoxon signed-rank test (only with a user-supplied training function);
- **efficiency**: seconds per 1,000 images and peak accelerator memory (GB; ``None`` on a CPU).

For paired data every fidelity/variety number is computed per modality; the main table shows the mean
over modalities and one sub-table per modality follows.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from latent_transforms.errors import ConfigError
from latent_transforms.files import atomic_write

__all__ = [
    "JSON_NAME",
    "MARKDOWN_NAME",
    "MODALITY_METRICS",
    "EvaluationReport",
    "PolicyResult",
    "UtilityResult",
    "git_commit",
]

MARKDOWN_NAME = "report.md"
JSON_NAME = "results.json"
#: The per-modality metrics of a row (each a ``{modality: value, "mean": value}`` mapping).
MODALITY_METRICS = ("fid", "precision", "recall", "f1", "density", "coverage", "mean_image_kb")
_DASH = "—"


def _fmt(value: float | None, digits: int, *, sign: bool = False) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return _DASH
    return f"{value:+.{digits}f}" if sign else f"{value:.{digits}f}"


def _p(value: float | None) -> str:
    if value is None:
        return _DASH
    text = f"{value:.3g}" if value >= 1e-3 else f"{value:.1e}"
    return text + ("*" if value < 0.05 else "")


def git_commit(folder: str | Path | None = None) -> dict[str, Any] | None:
    """The git commit of the working tree holding ``folder`` (default: this package), or ``None``.

    Returns ``{"commit": sha, "dirty": bool}``; ``None`` when git or the repository is missing (an
    installed package), never an error.

    Example:
        >>> info = git_commit()
        >>> info is None or len(info["commit"]) == 40
        True
    """
    where = Path(folder) if folder is not None else Path(__file__).resolve().parent
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=where, capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=where,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    if len(sha) != 40:
        return None
    return {"commit": sha, "dirty": bool(status)}


def commit_label(folder: str | Path | None = None, *, short: bool = True) -> str:
    """The commit of :func:`git_commit` as one string for a report: ``"1a2b3c4"`` (``short``) or the whole
    sha, ``"+dirty"`` appended with uncommitted changes to tracked files; ``LATENT_TRANSFORMS_COMMIT`` when
    set (a copy of the tree without ``.git``, e.g. on a remote GPU machine); ``"unknown"`` without git.

    Example:
        >>> label = commit_label()
        >>> label == "unknown" or len(label.removesuffix("+dirty")) >= 7
        True
    """
    if os.environ.get("LATENT_TRANSFORMS_COMMIT"):
        return os.environ["LATENT_TRANSFORMS_COMMIT"]
    info = git_commit(folder)
    if info is None:
        return "unknown"
    sha = info["commit"][:7] if short else info["commit"]
    return sha + ("+dirty" if info["dirty"] else "")


@dataclass
class UtilityResult:
    """The downstream utility of one policy against the no-augmentation baseline.

    Attributes:
        gain: the improvement, in the score's units: ``mean(policy) - mean(baseline)`` when higher scores
            are better, ``mean(baseline) - mean(policy)`` when lower ones are; positive = the policy helps.
        pvalue: two-sided Wilcoxon signed-rank p-value on the paired values (``None`` when it cannot be
            computed: fewer than two pairs, or every difference zero; see ``note``).
        statistic: the Wilcoxon statistic (``None`` likewise).
        n: number of pairs.
        paired_by: ``"sample"`` (per-validation-sample scores, pooled over seeds) or ``"seed"`` (one score
            per seed).
        policy_mean: mean score with the policy.
        baseline_mean: mean score without augmentation.
        higher_is_better: the direction of the score.
        seeds: the training seeds.
        note: why no test was made, if it was not.
        policy_runs: the score of each run (seed) with the policy, in ``seeds`` order (per-sample scores:
            their mean per seed).
        baseline_runs: the same without augmentation.

    Example:
        >>> u = UtilityResult(0.02, 0.01, 3.0, 10, "seed", 0.82, 0.80, True, list(range(10)))
        >>> UtilityResult.from_dict(u.to_dict()) == u
        True
    """

    gain: float
    pvalue: float | None
    statistic: float | None
    n: int
    paired_by: str
    policy_mean: float
    baseline_mean: float
    higher_is_better: bool = True
    seeds: list[int] = field(default_factory=list)
    note: str | None = None
    policy_runs: list[float] = field(default_factory=list)
    baseline_runs: list[float] = field(default_factory=list)

    @staticmethod
    def _spread(runs: list[float], mean: float) -> str:
        """``mean`` with `` ± std (k runs)`` when there are several runs (sample standard deviation)."""
        if len(runs) < 2:
            return f"{mean:.4f}"
        centre = sum(runs) / len(runs)
        std = math.sqrt(sum((r - centre) ** 2 for r in runs) / (len(runs) - 1))
        return f"{mean:.4f} ± {std:.4f}"

    @property
    def policy_text(self) -> str:
        """The policy's mean score with the spread over runs, e.g. ``"0.8512 ± 0.0071"``."""
        return self._spread(self.policy_runs, self.policy_mean)

    @property
    def baseline_text(self) -> str:
        """The baseline's mean score with the spread over runs."""
        return self._spread(self.baseline_runs, self.baseline_mean)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> UtilityResult:
        """Inverse of :meth:`to_dict`."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


@dataclass
class PolicyResult:
    """One row of the report: a policy's samples measured against the reference set.

    Attributes:
        policy: the display name.
        spec: the spec it was parsed from.
        kind: the policy kind (``"sg2sample"``, ``"latentaugment"``, ``"standardda"``, ``"real"``,
            ``"directory"``).
        family: the method family, for plots.
        n_samples: samples measured.
        fid: FID per modality and ``"mean"``.
        precision: improved precision (Kynkäänniemi et al.) per modality and ``"mean"``, in ``[0, 1]``.
        recall: improved recall, likewise.
        f1: ``2 P R / (P + R)``, likewise.
        density: density (Naeem et al.), ``>= 0``, likewise.
        coverage: coverage (Naeem et al.), in ``[0, 1]``, likewise.
        mean_image_kb: lossless file size of the mean image in KB, likewise.
        utility: the downstream gain and its test, or ``None``.
        seconds_per_1000: seconds to make 1,000 samples (``None`` for a fixed set).
        peak_memory_gb: peak accelerator memory in GB (``None`` on a CPU or for a fixed set).
        efficiency: the full efficiency measurement (device, batch size, images timed).
        psi: the truncation ψ of an SG2Sample row (joins those points in the scatter plot).
        sampling_seconds: wall time spent making the samples this report measured.

    Example:
        >>> row = PolicyResult("SG2Sample ψ=0.7", "sg2sample:psi=0.7", "sg2sample", "SG2Sample", 300,
        ...                    fid={"mean": 50.0}, precision={"mean": 0.6}, recall={"mean": 0.2})
        >>> PolicyResult.from_dict(row.to_dict()) == row
        True
    """

    policy: str
    spec: str
    kind: str
    family: str
    n_samples: int
    fid: dict[str, float] = field(default_factory=dict)
    precision: dict[str, float] = field(default_factory=dict)
    recall: dict[str, float] = field(default_factory=dict)
    f1: dict[str, float] = field(default_factory=dict)
    density: dict[str, float] = field(default_factory=dict)
    coverage: dict[str, float] = field(default_factory=dict)
    mean_image_kb: dict[str, float] = field(default_factory=dict)
    utility: UtilityResult | None = None
    seconds_per_1000: float | None = None
    peak_memory_gb: float | None = None
    efficiency: dict[str, Any] | None = None
    psi: float | None = None
    sampling_seconds: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict."""
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["utility"] = self.utility.to_dict() if self.utility is not None else None
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PolicyResult:
        """Inverse of :meth:`to_dict`."""
        names = {f.name for f in fields(cls)}
        kwargs = {k: v for k, v in data.items() if k in names}
        if kwargs.get("utility") is not None:
            kwargs["utility"] = UtilityResult.from_dict(kwargs["utility"])
        return cls(**kwargs)


@dataclass
class EvaluationReport:
    """Every policy's row plus the settings that made them; Markdown (the table of Xing et al. 2023) and JSON.

    Attributes:
        rows: one :class:`PolicyResult` per policy, in the order given.
        modalities: the names of the per-modality columns (e.g. ``["mri", "ct"]``, or ``["mri+ct"]`` for
            a joint feature network).
        settings: GAN, data, sizes, feature network name and fingerprint, ``k``, seeds, device, command,
            commit, library version, and ``class_balance``: the classes of the drawn samples over a
            class-conditional generator (``None`` when no row chose them).

    Example:
        >>> row = PolicyResult("real", "real", "real", "real", 10, fid={"ct": 1.0, "mean": 1.0},
        ...                    precision={"ct": 0.7, "mean": 0.7}, recall={"ct": 0.6, "mean": 0.6})
        >>> report = EvaluationReport([row], ["ct"], {"feature_network": "random"})
        >>> EvaluationReport.from_json(report.to_json()) == report
        True
        >>> "| real |" in report.to_markdown()
        True
    """

    rows: list[PolicyResult]
    modalities: list[str]
    settings: dict[str, Any] = field(default_factory=dict)

    def row(self, policy: str) -> PolicyResult:
        """The row of a policy by display name.

        Example:
            >>> EvaluationReport([PolicyResult("a", "real", "real", "real", 1)], []).row("a").n_samples
            1
        """
        for r in self.rows:
            if r.policy == policy:
                return r
        raise ConfigError(
            f"no policy named {policy!r} in this report; it has {[r.policy for r in self.rows]}."
        )

    # -- Markdown ------------------------------------------------------------------------------------
    def _summary_table(self) -> list[str]:
        lines = [
            "| | fidelity | | variety | | utility | | efficiency | | |",
            "|---|---|---|---|---|---|---|---|---|---|",
            "| **policy** | **FID ↓** | **precision ↑** | **recall ↑** | **mean image (KB) ↓** "
            "| **gain** | **p (Wilcoxon)** | **s / 1000 images** | **peak memory (GB)** | **n** |",
        ]
        for r in self.rows:
            u = r.utility
            lines.append(
                f"| {r.policy} | {_fmt(r.fid.get('mean'), 2)} | {_fmt(r.precision.get('mean'), 3)} "
                f"| {_fmt(r.recall.get('mean'), 3)} | {_fmt(r.mean_image_kb.get('mean'), 2)} "
                f"| {_fmt(u.gain if u else None, 4, sign=True)} | {_p(u.pvalue) if u else _DASH} "
                f"| {_fmt(r.seconds_per_1000, 1)} | {_fmt(r.peak_memory_gb, 2)} | {r.n_samples} |"
            )
        return lines

    def summary_markdown(self) -> str:
        """The summary table alone (mean over modalities, the column groups of Xing et al. 2023), as Markdown.

        Example:
            >>> report = EvaluationReport([PolicyResult("x", "real", "real", "real", 3)], ["ct"])
            >>> report.summary_markdown().splitlines()[0].startswith("| | fidelity | | variety |")
            True
        """
        return "\n".join(self._summary_table())

    def _modality_table(self, modality: str) -> list[str]:
        lines = [
            "| policy | FID ↓ | precision ↑ | recall ↑ | F1 ↑ | density | coverage ↑ | mean image (KB) ↓ |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for r in self.rows:
            lines.append(
                f"| {r.policy} | {_fmt(r.fid.get(modality), 2)} | {_fmt(r.precision.get(modality), 3)} "
                f"| {_fmt(r.recall.get(modality), 3)} | {_fmt(r.f1.get(modality), 3)} "
                f"| {_fmt(r.density.get(modality), 3)} | {_fmt(r.coverage.get(modality), 3)} "
                f"| {_fmt(r.mean_image_kb.get(modality), 2)} |"
            )
        return lines

    def _settings_lines(self) -> list[str]:
        s = self.settings
        labels = [
            ("gan", "GAN"),
            ("data", "data"),
            ("reference", "reference set"),
            ("sources", "sources"),
            ("feature_network", "feature network"),
            ("feature_fingerprint", "feature network fingerprint"),
            ("k", "k (nearest neighbour for precision/recall)"),
            ("mean_image_format", "mean-image format"),
            ("seed", "seed"),
            ("device", "device"),
            ("efficiency", "efficiency"),
            ("utility", "utility"),
            ("class_balance", "classes of the drawn samples"),
            ("inversion", "inversion"),
            ("seconds", "wall time (s)"),
            ("command", "command"),
            ("commit", "commit"),
            ("version", "latent-transforms"),
        ]
        lines = []
        for key, label in labels:
            if key not in s or s[key] is None:
                continue
            value = s[key]
            if key == "commit" and isinstance(value, Mapping):
                value = f"{value.get('commit')}" + (
                    " (with uncommitted changes)" if value.get("dirty") else ""
                )
            elif isinstance(value, Mapping):
                value = ", ".join(f"{k}: {v}" for k, v in value.items())
            text = f"`{value}`" if key in ("command", "feature_fingerprint", "commit") else str(value)
            lines.append(f"- {label}: {text}")
        return lines

    def to_markdown(self) -> str:
        """The report as Markdown: settings, the summary table (mean over modalities) in the column groups
        of Xing et al. 2023, one sub-table per modality, and the utility details when there are any.

        Example:
            >>> report = EvaluationReport([PolicyResult("x", "real", "real", "real", 3)], ["mri", "ct"])
            >>> text = report.to_markdown()
            >>> "| | fidelity | | variety |" in text, "### mri" in text
            (True, True)
        """
        lines = ["# Synthetic data evaluation", ""]
        settings = self._settings_lines()
        if settings:
            lines += [*settings, ""]
        lines += [
            "## Summary (mean over modalities)",
            "",
            "Fidelity: FID and precision; variety: recall and the lossless file size of the mean image "
            "(smaller = a blurrier mean = more varied); utility: gain of a downstream model over no "
            "augmentation (* p < 0.05); efficiency: time and peak accelerator memory. ↑/↓: higher/lower is "
            "better. All against the reference set; every number depends on the feature network.",
            "",
            *self._summary_table(),
            "",
        ]
        if self.modalities:
            lines += ["## Per modality", ""]
            for modality in self.modalities:
                lines += [f"### {modality}", "", *self._modality_table(modality), ""]
        with_utility = [r for r in self.rows if r.utility is not None]
        if with_utility:
            lines += [
                "## Utility",
                "",
                "| policy | score with policy (± std over runs) | score without augmentation | gain "
                "| n pairs | paired by | Wilcoxon statistic | p |",
                "|---|---|---|---|---|---|---|---|",
            ]
            for r in with_utility:
                u = r.utility
                assert u is not None
                lines.append(
                    f"| {r.policy} | {u.policy_text} | {u.baseline_text} | {u.gain:+.4f} | {u.n} "
                    f"| {u.paired_by} | {_fmt(u.statistic, 1)} | {_p(u.pvalue)} |"
                )
            notes = [f"- {r.policy}: {r.utility.note}" for r in with_utility if r.utility and r.utility.note]
            lines += ["", *notes] if notes else []
            lines.append("")
        return "\n".join(lines).rstrip() + "\n"

    # -- JSON ----------------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict: ``{"settings", "modalities", "rows"}``."""
        return {
            "settings": json.loads(json.dumps(self.settings, default=str)),
            "modalities": list(self.modalities),
            "rows": [r.to_dict() for r in self.rows],
        }

    def to_json(self) -> str:
        """:meth:`to_dict` as indented JSON text."""
        return json.dumps(self.to_dict(), indent=2) + "\n"

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EvaluationReport:
        """Inverse of :meth:`to_dict`."""
        if not isinstance(data, Mapping) or "rows" not in data:
            raise ConfigError(
                "expected an evaluation report dict with 'rows', 'modalities' and 'settings' (results.json), "
                f"got {type(data).__name__}{' without rows' if isinstance(data, Mapping) else ''}."
            )
        return cls(
            [PolicyResult.from_dict(r) for r in data["rows"]],
            list(data.get("modalities", [])),
            dict(data.get("settings", {})),
        )

    @classmethod
    def from_json(cls, text: str) -> EvaluationReport:
        """Inverse of :meth:`to_json`."""
        return cls.from_dict(json.loads(text))

    def save(self, folder: str | Path) -> dict[str, Path]:
        """Write ``report.md`` and ``results.json`` into ``folder`` (atomically); returns their paths.

        Example:
            >>> import tempfile
            >>> with tempfile.TemporaryDirectory() as d:
            ...     paths = EvaluationReport([], []).save(d)
            ...     EvaluationReport.load(d).rows, sorted(paths)
            ([], ['json', 'markdown'])
        """
        folder = Path(folder)
        paths = {"markdown": folder / MARKDOWN_NAME, "json": folder / JSON_NAME}
        for key, text in (("markdown", self.to_markdown()), ("json", self.to_json())):
            atomic_write(paths[key], text)
        return paths

    @classmethod
    def load(cls, folder: str | Path) -> EvaluationReport:
        """Read ``results.json`` from ``folder`` (or the file itself)."""
        path = Path(folder)
        if path.is_dir():
            path = path / JSON_NAME
        if not path.is_file():
            raise ConfigError(
                f"expected an evaluation report at {path}, found none. Fix: run the evaluation."
            )
        return cls.from_json(path.read_text(encoding="utf-8"))

    def __repr__(self) -> str:
        return (
            f"EvaluationReport(policies={[r.policy for r in self.rows]}, modalities={self.modalities}, "
            f"feature_network={self.settings.get('feature_network')!r})"
        )
