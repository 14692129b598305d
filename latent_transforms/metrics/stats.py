"""Statistics tests for comparing augmentation methods: Friedman, Nemenyi (Tronchin et al. 2023, Table III),
Wilcoxon.

Tronchin et al. 2023 (§IV-E, §V-B) score every method on the same test slices, run the Friedman test per
metric and, where it finds a difference (``p < 0.05``), the Nemenyi post-hoc test between every pair of
methods. Their Table III writes, for a method in a row against a method in a column, ``+`` (ranked
significantly better), ``−`` (significantly worse) or ``0`` (no significant difference), and a score: the
number of ``+`` minus the number of ``−`` in the row, from ``-(k - 1)`` to ``+(k - 1)`` for ``k`` methods.
Xing et al. 2023 (§III-D) test the utility of synthetic data, the gain of a model trained with it over one
trained without, with the paired Wilcoxon signed-rank test.

Scores come as a mapping ``{method: [value per block]}`` or an array ``[n_blocks, n_methods]``. A block is
one unit every method was scored on (a test slice or a patient), in the same order for every method:
:meth:`latent_transforms.metrics.paired.PairedImageMetrics.per_slice` gives such lists.

Ranks are computed within each block, in ascending order of value (rank 1 = the smallest value, ties
get their average rank) whatever the metric's direction; ``higher_is_better`` only decides which of two
significantly different methods is the better one.

SciPy and scikit-posthocs are optional: ``pip install 'latent-transforms[stats]'``.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from latent_transforms.errors import ConfigError, MissingDependencyError

STATS_INSTALL = "pip install 'latent-transforms[stats]'"
BETTER = "+"
"""Table III symbol: the row method ranks significantly better than the column method."""
WORSE = "\u2212"
"""Table III symbol (U+2212 minus sign): the row method ranks significantly worse."""
SAME = "0"
"""Table III symbol: no significant difference."""

Scores = Mapping[str, Sequence[float]] | np.ndarray | Sequence[Sequence[float]]


def _scipy_stats() -> Any:
    try:
        import scipy.stats
    except ImportError as exc:
        raise MissingDependencyError(
            f"the statistics tests need SciPy, which is not installed ({exc}). Fix: {STATS_INSTALL}."
        ) from exc
    return scipy.stats


def _posthocs() -> Any:
    try:
        import scikit_posthocs
    except ImportError as exc:
        raise MissingDependencyError(
            f"the Nemenyi test needs scikit-posthocs, which is not installed ({exc}). Fix: {STATS_INSTALL}."
        ) from exc
    return scikit_posthocs


def score_table(scores: Scores, *, min_methods: int = 3) -> tuple[tuple[str, ...], np.ndarray]:
    """``(methods, values [n_blocks, n_methods] float64)`` from a mapping or an array, after checking it.

    Args:
        scores: ``{method: [value per block]}`` (every list as long as the others, blocks in one order)
            or an array ``[n_blocks, n_methods]`` (methods are then named ``method0``, ``method1``, ...).
        min_methods: the fewest methods accepted.

    Raises:
        ConfigError: ragged or empty input, fewer than ``min_methods`` methods, fewer than 2 blocks,
            non-finite values.

    Example:
        >>> methods, values = score_table({"a": [1, 2], "b": [3, 4], "c": [5, 6]})
        >>> methods, values.shape
        (('a', 'b', 'c'), (2, 3))
    """
    if isinstance(scores, Mapping):
        methods = tuple(str(m) for m in scores)
        columns = [list(scores[m]) for m in scores]
        lengths = {m: len(c) for m, c in zip(methods, columns, strict=True)}
        if len(set(lengths.values())) > 1:
            raise ConfigError(
                f"expected the same number of blocks (slices/patients) for every method, got {lengths}. Fix: "
                "score every method on the same blocks, in the same order."
            )
        try:
            values = np.asarray(columns, dtype=np.float64).T
        except (TypeError, ValueError) as exc:
            raise ConfigError(
                f"expected numbers per method and block, got an unreadable table: {exc}."
            ) from exc
        if values.ndim != 2:
            raise ConfigError(
                f"expected one number per method and block, got nested values (array shape {values.T.shape})."
            )
    else:
        try:
            values = np.asarray(scores, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise ConfigError(
                f"expected an array [n_blocks, n_methods] of numbers (rows of equal length), got {exc}. "
                "Fix: pass a rectangular array or a {method: values} mapping."
            ) from exc
        if values.ndim != 2:
            raise ConfigError(
                f"expected an array [n_blocks, n_methods], got shape {values.shape}. Fix: one row per "
                "block, one column per method."
            )
        methods = tuple(f"method{j}" for j in range(values.shape[1]))
    if len(methods) < min_methods:
        hint = " With two methods use wilcoxon(a, b)." if len(methods) == 2 else ""
        raise ConfigError(
            f"expected at least {min_methods} methods, got {len(methods)} ({list(methods)}).{hint}"
        )
    if len(set(methods)) != len(methods):
        raise ConfigError(f"expected distinct method names, got {list(methods)}.")
    if values.shape[0] < 2:
        raise ConfigError(
            f"expected at least 2 blocks (slices/patients) per method, got {values.shape[0]}. "
            "Fix: pass one value per test slice or patient, not the mean."
        )
    if not np.isfinite(values).all():
        raise ConfigError(
            "expected finite scores, got NaN or Inf (e.g. the body MAE of a slice without body, or the PSNR "
            "of identical slices). Fix: drop those blocks for every method before testing."
        )
    return methods, values


def mean_ranks(values: np.ndarray) -> np.ndarray:
    """Mean over blocks of the within-block ranks ``[n_methods]`` (rank 1 = smallest value, ties averaged).

    Example:
        >>> mean_ranks(np.array([[1.0, 2.0, 3.0], [1.0, 3.0, 2.0]])).tolist()
        [1.0, 2.5, 2.5]
    """
    return _scipy_stats().rankdata(values, axis=1, method="average").mean(axis=0)


@dataclass(frozen=True)
class FriedmanResult:
    """The Friedman test of ``k`` methods over ``n`` blocks.

    Attributes:
        statistic: Friedman's chi-square statistic (``nan`` when every block is a complete tie).
        pvalue: its p-value (chi-square with ``k - 1`` degrees of freedom; ``nan`` with the statistic).
        methods: the method names, in the input's order.
        mean_ranks: ``{method: mean within-block rank}`` (rank 1 = smallest value).
        n_blocks: how many blocks were ranked.

    Example:
        >>> r = friedman({"a": [1, 1, 1, 1], "b": [2, 2, 2, 2], "c": [3, 3, 3, 3]})
        >>> r.mean_ranks, round(r.statistic, 6)
        ({'a': 1.0, 'b': 2.0, 'c': 3.0}, 8.0)
    """

    statistic: float
    pvalue: float
    methods: tuple[str, ...]
    mean_ranks: dict[str, float]
    n_blocks: int

    def significant(self, alpha: float = 0.05) -> bool:
        """Whether ``pvalue < alpha`` (``False`` for a ``nan`` p-value)."""
        return bool(self.pvalue < alpha)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (``nan`` becomes ``None``)."""
        return {
            "statistic": _json_float(self.statistic),
            "pvalue": _json_float(self.pvalue),
            "methods": list(self.methods),
            "mean_ranks": dict(self.mean_ranks),
            "n_blocks": self.n_blocks,
        }


def _json_float(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


def friedman(scores: Scores) -> FriedmanResult:
    """Friedman's rank test: do ``k >= 3`` methods scored on the same blocks differ?

    Uses ``scipy.stats.friedmanchisquare`` (with its tie correction).

    Args:
        scores: ``{method: [value per block]}`` or an array ``[n_blocks, n_methods]`` (see the module).

    Returns:
        A :class:`FriedmanResult`.

    Raises:
        ConfigError: ragged input, fewer than 3 methods or 2 blocks, non-finite values.
        MissingDependencyError: SciPy is not installed (``pip install 'latent-transforms[stats]'``).

    Example:
        >>> r = friedman({"a": [1, 2, 3, 4], "b": [2, 3, 4, 5], "c": [3, 4, 5, 6]})
        >>> round(r.pvalue, 4), r.significant(0.05)
        (0.0183, True)
    """
    methods, values = score_table(scores)
    stats = _scipy_stats()
    with warnings.catch_warnings():  # a complete tie divides 0 by 0: the result is nan, said in the docs
        warnings.simplefilter("ignore", RuntimeWarning)
        result = stats.friedmanchisquare(*values.T)
    ranks = mean_ranks(values)
    return FriedmanResult(
        statistic=float(result.statistic),
        pvalue=float(result.pvalue),
        methods=methods,
        mean_ranks={m: float(r) for m, r in zip(methods, ranks, strict=True)},
        n_blocks=int(values.shape[0]),
    )


def _row(cells: Sequence[str]) -> str:
    """One Markdown table row; a ``|`` inside a cell (e.g. in a method name) is escaped."""
    return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"


def _signed(score: int) -> str:
    return f"+{score}" if score > 0 else (f"{WORSE}{-score}" if score < 0 else "0")


@dataclass(frozen=True)
class NemenyiResult:
    """The Nemenyi post-hoc test between every pair of methods, as in Table III of Tronchin et al. 2023.

    Attributes:
        methods: the method names, in the input's order.
        pvalues: ``[k, k]`` array of pairwise p-values (1 on the diagonal).
        mean_ranks: ``{method: mean within-block rank}`` (rank 1 = smallest value).
        directions: ``{row: {column: "+" | "−" | "0"}}``: the row method ranks significantly better
            (``+``), worse (``−``, U+2212) or not significantly differently (``0``) than the column
            method; ``""`` on the diagonal.
        scores: ``{method: number of "+" minus number of "−" in its row}``, in ``[-(k - 1), k - 1]``.
        higher_is_better: the metric's direction.
        alpha: the significance level.

    Example:
        >>> values = {"a": [1, 2, 3, 4, 5, 6], "b": [7, 8, 9, 10, 11, 12], "c": [13, 14, 15, 16, 17, 18]}
        >>> r = nemenyi(values, higher_is_better=True)
        >>> r.directions["c"], r.scores
        ({'a': '+', 'b': '0', 'c': ''}, {'a': -1, 'b': 0, 'c': 1})
    """

    methods: tuple[str, ...]
    pvalues: np.ndarray
    mean_ranks: dict[str, float]
    directions: dict[str, dict[str, str]]
    scores: dict[str, int]
    higher_is_better: bool
    alpha: float

    def to_markdown(self) -> str:
        """A Markdown table: one row per method, its symbol against every method, then its score.

        Example:
            >>> r = nemenyi([[1, 2, 3]] * 8, higher_is_better=False)
            >>> print(r.to_markdown().splitlines()[2])
            | method0 |  | 0 | + | +1 |
        """
        header = ["Method", *self.methods, "Score"]
        lines = [_row(header), "|" + "---|" * len(header)]
        for row in self.methods:
            cells = [row, *(self.directions[row][col] for col in self.methods), _signed(self.scores[row])]
            lines.append(_row(cells))
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "methods": list(self.methods),
            "pvalues": [[float(p) for p in row] for row in self.pvalues],
            "mean_ranks": dict(self.mean_ranks),
            "directions": {r: dict(c) for r, c in self.directions.items()},
            "scores": dict(self.scores),
            "higher_is_better": self.higher_is_better,
            "alpha": self.alpha,
        }


def _check_alpha(alpha: float) -> float:
    if not (isinstance(alpha, (int, float)) and 0.0 < alpha < 1.0):
        raise ConfigError(f"expected a significance level 0 < alpha < 1, got {alpha!r}. Fix: alpha=0.05.")
    return float(alpha)


def _directions(
    methods: Sequence[str], pvalues: np.ndarray, ranks: np.ndarray, higher_is_better: bool, alpha: float
) -> tuple[dict[str, dict[str, str]], dict[str, int]]:
    directions: dict[str, dict[str, str]] = {}
    scores: dict[str, int] = {}
    for i, row in enumerate(methods):
        cells: dict[str, str] = {}
        for j, col in enumerate(methods):
            if i == j:
                cells[col] = ""
            elif pvalues[i, j] < alpha and ranks[i] != ranks[j]:
                row_higher = ranks[i] > ranks[j]
                cells[col] = BETTER if row_higher == higher_is_better else WORSE
            else:
                cells[col] = SAME
        directions[row] = cells
        scores[row] = sum(c == BETTER for c in cells.values()) - sum(c == WORSE for c in cells.values())
    return directions, scores


def nemenyi(scores: Scores, *, higher_is_better: bool, alpha: float = 0.05) -> NemenyiResult:
    """Nemenyi's post-hoc test after Friedman's: which pairs of methods differ, and in which direction.

    P-values come from ``scikit_posthocs.posthoc_nemenyi_friedman`` (studentized range of the mean-rank
    differences). Run it where :func:`friedman` found a difference (:func:`compare_methods` does).

    Args:
        scores: ``{method: [value per block]}`` or an array ``[n_blocks, n_methods]``.
        higher_is_better: ``True`` for SSIM and PSNR, ``False`` for MAE and LPIPS.
        alpha: significance level of the pairwise comparisons.

    Returns:
        A :class:`NemenyiResult` with the p-values, the directions of Table III and the scores.

    Raises:
        ConfigError: invalid input (see :func:`score_table`) or ``alpha``.
        MissingDependencyError: SciPy or scikit-posthocs is not installed.

    Example:
        >>> values = {"x": [3, 3, 3, 3, 3], "y": [2, 2, 2, 2, 2], "z": [1, 1, 1, 1, 1]}
        >>> r = nemenyi(values, higher_is_better=False)
        >>> r.scores, r.directions.get("z")
        ({'x': -1, 'y': 0, 'z': 1}, {'x': '+', 'y': '0', 'z': ''})
    """
    if not isinstance(higher_is_better, bool):
        raise ConfigError(f"expected higher_is_better as True or False, got {higher_is_better!r}.")
    alpha = _check_alpha(alpha)
    methods, values = score_table(scores)
    sp = _posthocs()
    pvalues = np.asarray(sp.posthoc_nemenyi_friedman(values), dtype=np.float64)
    ranks = mean_ranks(values)
    directions, row_scores = _directions(methods, pvalues, ranks, higher_is_better, alpha)
    return NemenyiResult(
        methods=methods,
        pvalues=pvalues,
        mean_ranks={m: float(r) for m, r in zip(methods, ranks, strict=True)},
        directions=directions,
        scores=row_scores,
        higher_is_better=higher_is_better,
        alpha=alpha,
    )


@dataclass(frozen=True)
class MethodComparison:
    """Friedman then Nemenyi for several metrics: the data of Table III of Tronchin et al. 2023.

    Attributes:
        metrics: the metric names, in the input's order.
        methods: the method names, in the order of the first metric.
        higher_is_better: ``{metric: direction}``.
        alpha: the significance level.
        friedman: ``{metric: FriedmanResult}``.
        nemenyi: ``{metric: NemenyiResult}``, or ``None`` for a metric where Friedman's ``p >= alpha``.
        directions: ``{metric: {row: {column: symbol}}}`` (every cell ``"0"`` where Nemenyi did not run).
        scores: ``{metric: {method: score}}``.

    Example:
        >>> slices = {"a": [1, 2, 3, 4, 5, 6], "b": [2, 3, 4, 5, 6, 7], "c": [9, 9, 9, 9, 9, 9]}
        >>> table = compare_methods({"mae": slices}, {"mae": False})
        >>> table.scores["mae"]
        {'a': 1, 'b': 0, 'c': -1}
    """

    metrics: tuple[str, ...]
    methods: tuple[str, ...]
    higher_is_better: dict[str, bool]
    alpha: float
    friedman: dict[str, FriedmanResult]
    nemenyi: dict[str, NemenyiResult | None]
    directions: dict[str, dict[str, dict[str, str]]]
    scores: dict[str, dict[str, int]]

    def to_markdown(self, *, layout: str = "rows", digits: int = 3) -> str:
        """The comparison as a Markdown table.

        Args:
            layout: ``"rows"``, the layout of Table III of Tronchin et al. 2023: per metric a block of rows
                (one per method), columns Metric, Method, one per method, Score; the metric's cell also gives
                the Friedman p-value. ``"columns"``: one row per method, per metric a block of columns (one
                per method, then that metric's score).
            digits: significant digits of the Friedman p-values.

        Example:
            >>> slices = {"a": [1, 2, 3], "b": [4, 5, 6], "c": [7, 8, 9]}
            >>> table = compare_methods({"mae": slices}, {"mae": False})
            >>> print(table.to_markdown().splitlines()[0])
            | Metric | Method | a | b | c | Score |
        """
        if layout == "rows":
            header = ["Metric", "Method", *self.methods, "Score"]
            lines = [_row(header), "|" + "---|" * len(header)]
            for metric in self.metrics:
                arrow = "↑" if self.higher_is_better[metric] else "↓"
                p = self.friedman[metric].pvalue
                label = f"{metric} {arrow} (Friedman p = {p:.{digits}g})"
                for i, row in enumerate(self.methods):
                    cells = [label if i == 0 else "", row]
                    cells += [self.directions[metric][row][col] for col in self.methods]
                    cells.append(_signed(self.scores[metric][row]))
                    lines.append(_row(cells))
            return "\n".join(lines)
        if layout == "columns":
            header = ["Method"]
            for metric in self.metrics:
                header += [f"{metric}: {col}" for col in self.methods] + [f"{metric}: Score"]
            lines = [_row(header), "|" + "---|" * len(header)]
            for row in self.methods:
                cells = [row]
                for metric in self.metrics:
                    cells += [self.directions[metric][row][col] for col in self.methods]
                    cells.append(_signed(self.scores[metric][row]))
                lines.append(_row(cells))
            return "\n".join(lines)
        raise ConfigError(f"expected layout 'rows' or 'columns', got {layout!r}.")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (``json.dumps(..., allow_nan=False)`` accepts it)."""
        return {
            "alpha": self.alpha,
            "methods": list(self.methods),
            "metrics": {
                metric: {
                    "higher_is_better": self.higher_is_better[metric],
                    "friedman": self.friedman[metric].to_dict(),
                    "nemenyi": None if self.nemenyi[metric] is None else self.nemenyi[metric].to_dict(),
                    "directions": {r: dict(c) for r, c in self.directions[metric].items()},
                    "scores": dict(self.scores[metric]),
                }
                for metric in self.metrics
            },
        }

    def __repr__(self) -> str:
        return (
            f"MethodComparison(metrics={list(self.metrics)}, methods={list(self.methods)}, "
            f"alpha={self.alpha}, scores={self.scores})"
        )


def compare_methods(
    per_metric: Mapping[str, Mapping[str, Sequence[float]]],
    higher_is_better: Mapping[str, bool],
    *,
    alpha: float = 0.05,
) -> MethodComparison:
    """The procedure of Tronchin et al. 2023 per metric: Friedman, then Nemenyi where ``p < alpha``.

    Args:
        per_metric: ``{metric: {method: [value per block]}}``; every metric has the same methods, each
            scored on the same blocks in the same order (the number of blocks may differ between metrics).
        higher_is_better: ``{metric: True | False}`` for every metric (SSIM, PSNR: ``True``; MAE, LPIPS:
            ``False``).
        alpha: significance level of both tests.

    Returns:
        A :class:`MethodComparison`; where Friedman finds no difference every cell is ``"0"``.

    Raises:
        ConfigError: no metric, a metric without a direction, different methods between metrics,
            or invalid scores (see :func:`score_table`).
        MissingDependencyError: SciPy or scikit-posthocs is not installed.

    Example:
        >>> a, b, c = [1, 2, 3, 4, 5, 6], [2, 3, 4, 5, 6, 7], [9, 9, 9, 9, 9, 9]
        >>> table = compare_methods({"ssim": {"a": a, "b": b, "c": c}}, {"ssim": True})
        >>> table.directions.get("ssim").get("c")
        {'a': '+', 'b': '0', 'c': ''}
    """
    alpha = _check_alpha(alpha)
    if not isinstance(per_metric, Mapping) or not per_metric:
        raise ConfigError(
            f"expected a non-empty mapping {{metric: {{method: values}}}}, got {per_metric!r}. "
            "Fix: e.g. {'mae': {'Baseline': [...], 'LatentAugment': [...], ...}}."
        )
    metrics = tuple(per_metric)
    missing = [m for m in metrics if m not in higher_is_better]
    if missing:
        raise ConfigError(
            f"expected a direction for every metric, got none for {missing}. "
            "Fix: higher_is_better={'mae': False, 'ssim': True, 'psnr': True, 'lpips': False}."
        )
    methods: tuple[str, ...] | None = None
    friedmans: dict[str, FriedmanResult] = {}
    nemenyis: dict[str, NemenyiResult | None] = {}
    directions: dict[str, dict[str, dict[str, str]]] = {}
    scores: dict[str, dict[str, int]] = {}
    for metric in metrics:
        table = per_metric[metric]
        if not isinstance(table, Mapping):
            raise ConfigError(
                f"expected {{method: values}} for metric {metric!r}, got {type(table).__name__}."
            )
        if methods is None:
            methods = tuple(str(m) for m in table)
        elif set(map(str, table)) != set(methods):
            raise ConfigError(
                f"expected the same methods for every metric, got {sorted(methods)} for {metrics[0]!r} and "
                f"{sorted(map(str, table))} for {metric!r}. Fix: score every method on every metric."
            )
        ordered = {m: table[m] for m in methods}
        direction = higher_is_better[metric]
        if not isinstance(direction, bool):
            raise ConfigError(f"expected True or False for higher_is_better[{metric!r}], got {direction!r}.")
        friedmans[metric] = friedman(ordered)
        if friedmans[metric].significant(alpha):
            result = nemenyi(ordered, higher_is_better=direction, alpha=alpha)
            nemenyis[metric] = result
            directions[metric], scores[metric] = result.directions, result.scores
        else:
            nemenyis[metric] = None
            directions[metric] = {r: {c: "" if r == c else SAME for c in methods} for r in methods}
            scores[metric] = {m: 0 for m in methods}
    assert methods is not None
    return MethodComparison(
        metrics=metrics,
        methods=methods,
        higher_is_better={m: bool(higher_is_better[m]) for m in metrics},
        alpha=alpha,
        friedman=friedmans,
        nemenyi=nemenyis,
        directions=directions,
        scores=scores,
    )


@dataclass(frozen=True)
class WilcoxonResult:
    """The paired Wilcoxon signed-rank test of ``a`` against ``b``.

    Attributes:
        statistic: SciPy's statistic (for ``"two-sided"`` the smaller of the two rank sums).
        pvalue: the p-value for the chosen alternative (``nan`` when every difference is 0).
        median_difference: the median of ``a - b`` in the scores' units.
        n: the number of pairs (zero differences included; SciPy's default ``zero_method="wilcox"``
            leaves them out of the ranking).

    Example:
        >>> r = wilcoxon([0.80, 0.82, 0.79, 0.85, 0.84, 0.81], [0.78, 0.80, 0.79, 0.80, 0.81, 0.80])
        >>> r.n, round(r.median_difference, 3)
        (6, 0.02)
    """

    statistic: float
    pvalue: float
    median_difference: float
    n: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (``nan`` becomes ``None``)."""
        return {
            "statistic": _json_float(self.statistic),
            "pvalue": _json_float(self.pvalue),
            "median_difference": _json_float(self.median_difference),
            "n": self.n,
        }


def wilcoxon(a: Sequence[float], b: Sequence[float], *, alternative: str = "two-sided") -> WilcoxonResult:
    """Paired Wilcoxon signed-rank test (``scipy.stats.wilcoxon``), e.g. for the utility of Xing et al. 2023.

    Xing et al. 2023 measure the data-augmentation utility of synthetic images as the accuracy gained when
    they are added to the training set, and tests it with this test over paired runs (same splits or
    seeds with and without the synthetic data).

    Args:
        a: scores with the treatment (e.g. accuracy per fold or seed with synthetic data).
        b: the paired scores without it, same length and order.
        alternative: ``"two-sided"``, ``"greater"`` (``a`` tends to exceed ``b``) or ``"less"``.

    Returns:
        A :class:`WilcoxonResult`.

    Raises:
        ConfigError: lengths differ, fewer than 2 pairs, non-finite values, unknown ``alternative``.
        MissingDependencyError: SciPy is not installed.

    Example:
        >>> with_synthetic = [0.81, 0.83, 0.80, 0.86, 0.84, 0.82, 0.85, 0.83]
        >>> without = [0.79, 0.80, 0.80, 0.81, 0.82, 0.80, 0.81, 0.82]
        >>> r = wilcoxon(with_synthetic, without, alternative="greater")
        >>> r.pvalue < 0.05
        True
    """
    if alternative not in ("two-sided", "greater", "less"):
        raise ConfigError(
            f"expected alternative 'two-sided', 'greater' or 'less', got {alternative!r}. "
            "Fix: 'greater' tests whether a tends to exceed b."
        )
    try:
        x = np.asarray(a, dtype=np.float64)
        y = np.asarray(b, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"expected two sequences of numbers, got an unreadable input: {exc}.") from exc
    if x.ndim != 1 or y.ndim != 1 or x.shape != y.shape:
        raise ConfigError(
            f"expected two 1-D sequences of paired scores of one length, got shapes {x.shape} and {y.shape}. "
            "Fix: pair every score with the one from the same fold/seed."
        )
    if x.shape[0] < 2:
        raise ConfigError(f"expected at least 2 pairs, got {x.shape[0]}.")
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise ConfigError("expected finite scores, got NaN or Inf. Fix: drop those pairs from both.")
    stats = _scipy_stats()
    with warnings.catch_warnings():  # all-zero differences: nan, said in the docs
        warnings.simplefilter("ignore", RuntimeWarning)
        warnings.simplefilter("ignore", UserWarning)
        result = stats.wilcoxon(x, y, alternative=alternative)
    return WilcoxonResult(
        statistic=float(result.statistic),
        pvalue=float(result.pvalue),
        median_difference=float(np.median(x - y)),
        n=int(x.shape[0]),
    )
