"""Search spaces over LatentAugment's hyper-parameters: data (JSON-able) that maps an Optuna trial to
``LatentAugment`` keyword arguments.

Two spaces (Tronchin et al. 2023, and the categorical grids of the authors' search), derived from the
fields of :class:`~latent_transforms.LatentAugmentConfig` (their ``grid`` and ``symbol`` metadata):

- ``"paper"``: categorical grids, exactly the paper's: ``α_perc, α_pix ∈ {0, .1, .3, 1, 3, 10}``,
  ``α_lat ∈ {0, .001, .003, .01, .03, .1}``, ``α_f ∈ {0, .01, .03, .1, .3, 1}``, ``K ∈ {3, 6, 9}``,
  ``η ∈ {.001, .003, .01, .03, .1}``.
- ``"continuous"``: the same ranges as continuous distributions: ``K`` an integer in ``[3, 9]``, ``η``
  log-uniform in ``[0.001, 0.1]``, and each weight log-uniform from a *floor* up to the grid's largest
  value, where every value below the grid's smallest non-zero value means 0 (the term is off). The floor is
  set so that the share of the log range meaning 0 is 1/6, the share 0 has in the paper's grids (one value
  of six): ``floor = low · (low / high)^(1/5)``. One number per weight (no conditional on/off parameter),
  so TPE and the importance analyses see every weight in every trial.

The probability ``p`` of augmenting a sample is searched only for the downstream objective (the F1
objective samples with ``p = 1``): the paper's ``p_aug ∈ [0, 1)`` in 10 steps, i.e. ``p = 1 - p_aug ∈
{1.0, 0.9, ..., 0.1}`` in ``"paper"`` and uniform in ``[0.1, 1]`` in ``"continuous"``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from latent_transforms.errors import ConfigError
from latent_transforms.transforms.config import LatentAugmentConfig, field_metadata

__all__ = [
    "PAPER_GRIDS",
    "PARAM_LABELS",
    "P_VALUES",
    "SPACES",
    "SearchSpace",
    "search_space",
]

_GRIDS: dict[str, tuple[float | int, ...]] = field_metadata(LatentAugmentConfig, "grid")
_SEARCHED: dict[str, str] = field_metadata(LatentAugmentConfig, "searched")
#: The paper's categorical grids, in ``LatentAugment`` argument names (``steps`` = K, ``lr`` = η): the
#: ``grid`` of every :class:`~latent_transforms.LatentAugmentConfig` field searched by every objective.
PAPER_GRIDS: dict[str, tuple[float | int, ...]] = {
    name: grid for name, grid in _GRIDS.items() if _SEARCHED[name] == "always"
}
#: ``p = 1 - p_aug`` for the paper's ``p_aug ∈ {0, 0.1, ..., 0.9}``: ``(1.0, 0.9, ..., 0.1)`` (the grid of
#: the ``p`` field, searched only against a downstream task).
P_VALUES: tuple[float, ...] = tuple(float(v) for v in _GRIDS["p"])
# The integer hyper-parameters (``steps``): a categorical grid gives them back as ints.
_INTEGERS = frozenset(name for name, grid in _GRIDS.items() if all(isinstance(v, int) for v in grid))
#: The names of the search spaces :func:`search_space` knows.
SPACES = ("paper", "continuous")
#: How plots and tables name each parameter (the paper's symbols, the fields' ``symbol`` metadata).
PARAM_LABELS: dict[str, str] = field_metadata(LatentAugmentConfig, "symbol")
_TYPES = ("categorical", "int", "float")
# The share of a weight's log range that means "off" in the continuous space: 1 value of 6 in the grids.
_ZERO_SHARE_STEPS = 5


def _floor(low: float, high: float) -> float:
    """Bottom of the log range whose part below ``low`` is 1/6 of it (rounded to 4 significant digits)."""
    value = low * (low / high) ** (1.0 / _ZERO_SHARE_STEPS)
    return float(f"{value:.4g}")


def _continuous_params() -> dict[str, dict[str, Any]]:
    """Each paper grid as a range: integers as an integer range, a grid without 0 log-uniform, a grid
    with 0 (a weight that may be off) log-uniform from :func:`_floor` with ``zero_below``."""
    params: dict[str, dict[str, Any]] = {}
    for name, grid in PAPER_GRIDS.items():
        if name in _INTEGERS:
            params[name] = {"type": "int", "low": min(grid), "high": max(grid)}
            continue
        low, high = float(min(v for v in grid if v > 0)), float(max(grid))
        if 0 in grid:
            params[name] = {
                "type": "float",
                "low": _floor(low, high),
                "high": high,
                "log": True,
                "zero_below": low,
            }
        else:
            params[name] = {"type": "float", "low": low, "high": high, "log": True}
    return params


def _check_spec(name: str, spec: Mapping[str, Any]) -> dict[str, Any]:
    kind = spec.get("type")
    if kind not in _TYPES:
        raise ConfigError(
            f"parameter {name!r}: expected type one of {_TYPES}, got {kind!r}. Fix: e.g. "
            "{'type': 'categorical', 'choices': [3, 6, 9]}."
        )
    out: dict[str, Any] = {"type": kind}
    if kind == "categorical":
        choices = spec.get("choices")
        if not isinstance(choices, (list, tuple)) or not choices:
            raise ConfigError(f"parameter {name!r}: expected a non-empty list of choices, got {choices!r}.")
        out["choices"] = list(choices)
        return out
    low, high = spec.get("low"), spec.get("high")
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (low, high)):
        raise ConfigError(f"parameter {name!r}: expected numbers low and high, got {low!r} and {high!r}.")
    assert isinstance(low, (int, float)) and isinstance(high, (int, float))
    if not low <= high:
        raise ConfigError(f"parameter {name!r}: expected low <= high, got low={low}, high={high}.")
    if kind == "int":
        out.update(low=int(low), high=int(high), step=int(spec.get("step", 1)))
        return out
    log = bool(spec.get("log", False))
    if log and low <= 0:
        raise ConfigError(f"parameter {name!r}: a log-scaled range needs low > 0, got {low}.")
    zero_below = spec.get("zero_below")
    if zero_below is not None and not low <= float(zero_below) <= high:
        raise ConfigError(
            f"parameter {name!r}: expected low <= zero_below <= high, got {low}, {zero_below}, {high}."
        )
    out.update(low=float(low), high=float(high), log=log)
    if zero_below is not None:
        out["zero_below"] = float(zero_below)
    return out


@dataclass
class SearchSpace:
    """A search space: ``params`` maps each ``LatentAugment`` argument name to a distribution (JSON data).

    A distribution is one of ``{"type": "categorical", "choices": [...]}``, ``{"type": "int", "low",
    "high", "step"}`` or ``{"type": "float", "low", "high", "log", "zero_below"}``, where a float drawn
    below ``zero_below`` means 0 (the term is off). :meth:`suggest` asks an Optuna trial for one value of
    each (the trial's parameter names are the argument names) and returns the ``LatentAugment`` keyword
    arguments; :meth:`to_dict` / :meth:`from_dict` round-trip through JSON.

    Args:
        name: a short name (``"paper"``, ``"continuous"`` or yours).
        params: the distributions, in the order they are suggested.

    Example:
        >>> space = search_space("paper")
        >>> space.names
        ['steps', 'lr', 'alpha_f', 'alpha_pix', 'alpha_perc', 'alpha_lat']
        >>> space.params["steps"]
        {'type': 'categorical', 'choices': [3, 6, 9]}
        >>> space.size
        19440
        >>> SearchSpace.from_dict(space.to_dict()) == space
        True
    """

    name: str
    params: dict[str, dict[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.params, Mapping) or not self.params:
            raise ConfigError(f"a search space needs at least one parameter, got {self.params!r}.")
        self.params = {str(k): _check_spec(str(k), v) for k, v in self.params.items()}

    @property
    def names(self) -> list[str]:
        """The parameter names, in order."""
        return list(self.params)

    @property
    def size(self) -> int | None:
        """The number of distinct settings when every parameter is categorical, else ``None``."""
        if any(spec["type"] != "categorical" for spec in self.params.values()):
            return None
        return math.prod(len(spec["choices"]) for spec in self.params.values())

    def to_dict(self) -> dict[str, Any]:
        """``{"name": ..., "params": {...}}``, JSON-able."""
        return {"name": self.name, "params": {k: dict(v) for k, v in self.params.items()}}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SearchSpace:
        """The inverse of :meth:`to_dict`."""
        if not isinstance(data, Mapping) or "params" not in data:
            raise ConfigError(f"expected {{'name': ..., 'params': {{...}}}}, got {data!r:.200}.")
        return cls(str(data.get("name", "custom")), dict(data["params"]))

    def with_p(self) -> SearchSpace:
        """This space plus the augmentation probability ``p`` (paper: ``P_VALUES``; else ``[0.1, 1]``).

        Example:
            >>> tuple(search_space("paper").with_p().params["p"].get("choices"))[:3]
            (1.0, 0.9, 0.8)
        """
        if "p" in self.params:
            return self
        categorical = all(spec["type"] == "categorical" for spec in self.params.values())
        p_spec: dict[str, Any] = (
            {"type": "categorical", "choices": list(P_VALUES)}
            if categorical
            else {"type": "float", "low": min(P_VALUES), "high": max(P_VALUES), "log": False}
        )
        return SearchSpace(self.name, {**self.params, "p": p_spec})

    def value(self, name: str, raw: Any) -> float | int | str:
        """The ``LatentAugment`` argument for a trial's raw value of ``name`` (0 below ``zero_below``; a
        categorical choice that is not a number, such as ``patch_protocol="authors"``, as it is).

        Example:
            >>> space = SearchSpace("mine", {"patch_protocol": {"type": "categorical",
            ...                                                 "choices": ["same-position", "authors"]}})
            >>> space.value("patch_protocol", "authors")
            'authors'
        """
        spec = self.params[name]
        if spec["type"] == "categorical" and isinstance(raw, str):
            return raw
        if spec["type"] == "float" and "zero_below" in spec and float(raw) < spec["zero_below"]:
            return 0.0
        if spec["type"] == "int" or isinstance(raw, bool):
            return int(raw)
        return int(raw) if name in _INTEGERS else float(raw)

    def suggest(self, trial: Any) -> dict[str, float | int | str]:
        """Ask an Optuna trial for every parameter; returns the ``LatentAugment`` keyword arguments.

        Args:
            trial: an ``optuna.trial.Trial`` (anything with ``suggest_categorical``, ``suggest_int`` and
                ``suggest_float``).

        Returns:
            ``{name: value}`` in :attr:`names` order: ``steps`` an int, text choices as they are, the
            rest floats.

        Example:
            >>> import optuna
            >>> study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
            >>> space = search_space("continuous")
            >>> params = space.suggest(study.ask())
            >>> list(params) == space.names, space.contains(params)
            (True, True)
        """
        out: dict[str, float | int | str] = {}
        for name, spec in self.params.items():
            if spec["type"] == "categorical":
                raw = trial.suggest_categorical(name, spec["choices"])
            elif spec["type"] == "int":
                raw = trial.suggest_int(name, spec["low"], spec["high"], step=spec["step"])
            else:
                raw = trial.suggest_float(name, spec["low"], spec["high"], log=spec["log"])
            out[name] = self.value(name, raw)
        return out

    def contains(self, values: Mapping[str, Any]) -> bool:
        """Whether ``values`` (``LatentAugment`` arguments, as :meth:`suggest` returns) lie in the space.

        Example:
            >>> space = search_space("paper")
            >>> ok = {"steps": 9, "lr": 0.01, "alpha_f": 0.01, "alpha_pix": 0.1, "alpha_perc": 10.0,
            ...       "alpha_lat": 0.001}
            >>> space.contains(ok), space.contains({**ok, "steps": 4})
            (True, False)
        """
        if set(values) != set(self.params):
            return False
        for name, spec in self.params.items():
            v = values[name]
            if spec["type"] == "categorical":
                if v not in spec["choices"]:
                    return False
            elif spec["type"] == "int":
                if int(v) != v or not spec["low"] <= v <= spec["high"]:
                    return False
            else:
                low = spec.get("zero_below", spec["low"])
                if not (v == 0.0 and "zero_below" in spec) and not low <= float(v) <= spec["high"]:
                    return False
        return True

    def __repr__(self) -> str:
        return f"SearchSpace(name={self.name!r}, params={self.names})"


def search_space(name: str = "paper", *, include_p: bool = False) -> SearchSpace:
    """One of the built-in search spaces, ``"paper"`` or ``"continuous"`` (see the module docstring).

    Args:
        name: ``"paper"`` (the paper's categorical grids) or ``"continuous"``.
        include_p: also search ``p`` (the downstream objective): :meth:`SearchSpace.with_p`.

    Example:
        >>> search_space("continuous").params["alpha_perc"]
        {'type': 'float', 'low': 0.03981, 'high': 10.0, 'log': True, 'zero_below': 0.1}
        >>> search_space("paper", include_p=True).names[-1]
        'p'
    """
    if name == "paper":
        space = SearchSpace(
            "paper", {k: {"type": "categorical", "choices": list(v)} for k, v in PAPER_GRIDS.items()}
        )
    elif name == "continuous":
        space = SearchSpace("continuous", _continuous_params())
    else:
        raise ConfigError(f"search space must be one of {SPACES}, got {name!r}. Fix: --space paper.")
    return space.with_p() if include_p else space
