"""Patient-level splits: the slices of one patient always land in the same split.

Slices of one patient are strongly correlated, so splitting slices at random leaks the test set into
training. These helpers split *patients* and then keep every slice of each patient together.

The protocol a dataset follows to be split (both paired datasets of this package do):

- ``patients``: sorted list of the unique patient ids (``str``);
- ``patient_of(index: int) -> str``: the patient of item ``index``, without reading the item;
- optionally ``indices_of(patient: str) -> list[int]`` (a faster path).

A dataset may instead expose ``patients_per_item``: one patient id per item.
"""

from __future__ import annotations

import hashlib
import logging
import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Protocol, TypeVar, runtime_checkable

from torch.utils.data import Dataset, Subset

from latent_transforms.errors import ConfigError

logger = logging.getLogger(__name__)

T_co = TypeVar("T_co", covariant=True)
DEFAULT_NAMES = ("train", "val", "test")


@runtime_checkable
class PatientIndexed(Protocol):
    """A dataset whose items belong to patients: what :func:`subset_by_patients` needs.

    Example:
        >>> class Toy:
        ...     patients = ["a", "b"]
        ...     def patient_of(self, index: int) -> str:
        ...         return "ab"[index // 2]
        ...     def __len__(self) -> int:
        ...         return 4
        >>> isinstance(Toy(), PatientIndexed)
        True
    """

    @property
    def patients(self) -> list[str]:
        """Sorted unique patient ids."""
        ...

    def patient_of(self, index: int) -> str:
        """The patient of item ``index``."""
        ...

    def __len__(self) -> int:
        """Number of items."""
        ...


def split_sizes(count: int, fractions: Sequence[float]) -> list[int]:
    """Split ``count`` items by ``fractions``: largest remainder, >= 1 per non-zero fraction if possible.

    Sizes are ``floor(f * count)`` plus one for the largest remainders until they sum to ``count``
    (ties go to the earlier split). Then, while ``count`` allows, a split with a non-zero fraction but no
    item takes one from the largest split.

    Args:
        count: number of items (``>= 0``).
        fractions: non-negative, finite, summing to 1 (within 1e-6).

    Returns:
        One size per fraction; they sum to ``count``.

    Example:
        >>> split_sizes(10, (0.7, 0.2, 0.1))
        [7, 2, 1]
        >>> split_sizes(4, (0.7, 0.2, 0.1))  # 2.8, 0.8, 0.4 -> [3, 1, 0] -> test gets one
        [2, 1, 1]
        >>> split_sizes(2, (0.7, 0.2, 0.1))
        [1, 1, 0]
    """
    fractions = _check_fractions(fractions)
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        raise ConfigError(f"count must be an int >= 0; got {count!r}.")
    total = math.fsum(fractions)
    quotas = [count * f / total for f in fractions]
    sizes = [math.floor(q) for q in quotas]
    order = sorted(range(len(quotas)), key=lambda i: (-(quotas[i] - sizes[i]), i))
    for i in order[: count - sum(sizes)]:
        sizes[i] += 1
    nonzero = [i for i, f in enumerate(fractions) if f > 0]
    if count >= len(nonzero):
        for i in nonzero:
            if sizes[i] == 0:
                donor = max(range(len(sizes)), key=lambda j: (sizes[j], -j))
                sizes[donor] -= 1
                sizes[i] += 1
    return sizes


def _check_fractions(fractions: Sequence[float]) -> list[float]:
    values = list(fractions)
    ok = bool(values) and all(
        isinstance(f, int | float) and not isinstance(f, bool) and math.isfinite(f) and f >= 0 for f in values
    )
    if not ok or abs(math.fsum(values) - 1.0) > 1e-6:
        raise ConfigError(
            f"fractions must be non-negative finite numbers summing to 1; got {fractions!r}. "
            "Example: fractions=(0.7, 0.2, 0.1)."
        )
    return [float(f) for f in values]


def _patient_ids(patients_or_dataset: Any) -> list[str]:
    if hasattr(patients_or_dataset, "patients") and not isinstance(patients_or_dataset, str):
        ids = list(patients_or_dataset.patients)
    elif hasattr(patients_or_dataset, "patients_per_item"):
        ids = list(patients_or_dataset.patients_per_item)
    elif isinstance(patients_or_dataset, Iterable) and not isinstance(patients_or_dataset, str):
        ids = list(patients_or_dataset)
    else:
        raise ConfigError(
            "expected a dataset with a `patients` list or an iterable of patient ids; got "
            f"{type(patients_or_dataset).__name__}. Example: patient_split(['p1', 'p2', 'p3'])."
        )
    bad = [p for p in ids if not isinstance(p, str)]
    if bad:
        raise ConfigError(
            f"patient ids must be str; got {bad[:3]} ({type(bad[0]).__name__}). "
            "Convert them, e.g. [str(p) for p in ids]."
        )
    return sorted(set(ids))


def _rank(patient: str, seed: int) -> tuple[str, str]:
    return hashlib.sha256(f"{seed}\x00{patient}".encode()).hexdigest(), patient


def patient_split(
    patients_or_dataset: Iterable[str] | PatientIndexed,
    fractions: Sequence[float] = (0.7, 0.2, 0.1),
    seed: int = 0,
    names: Sequence[str] | None = None,
) -> dict[str, list[str]]:
    """Split patients at random (seeded) into named groups, e.g. train/val/test.

    Patients are de-duplicated and ordered by a SHA-256 hash of ``(seed, id)``, then cut into consecutive
    groups of :func:`split_sizes`. The result therefore depends only on the *set* of ids and the seed: not
    on the input order, nor on the Python, NumPy or PyTorch version or the machine.

    Args:
        patients_or_dataset: patient ids (``str``; duplicates allowed), or a dataset with ``patients``.
        fractions: share of patients per group; non-negative, summing to 1.
        seed: any int; the same seed gives the same split.
        names: one name per fraction; ``None`` = ``("train", "val", "test")[:len(fractions)]``.

    Returns:
        ``{name: sorted patient ids}`` in ``names`` order; every patient is in exactly one group, sizes
        sum to the number of patients and each non-zero fraction gets at least one patient when there are
        enough.

    Example:
        >>> split = patient_split([f"p{i:02d}" for i in range(10)], seed=0)
        >>> {name: len(ids) for name, ids in split.items()}
        {'train': 7, 'val': 2, 'test': 1}
        >>> split == patient_split(reversed([f"p{i:02d}" for i in range(10)]), seed=0)
        True
        >>> patient_split(["a", "b", "c", "d"], fractions=(0.5, 0.5))
        {'train': ['c', 'd'], 'val': ['a', 'b']}
    """
    fractions = _check_fractions(fractions)
    if names is None:
        if len(fractions) > len(DEFAULT_NAMES):
            raise ConfigError(
                f"{len(fractions)} fractions but only {len(DEFAULT_NAMES)} default names {DEFAULT_NAMES}; "
                "pass names=, one per fraction."
            )
        names = DEFAULT_NAMES[: len(fractions)]
    names = list(names)
    if len(names) != len(fractions) or len(set(names)) != len(names):
        raise ConfigError(
            f"names must be distinct, one per fraction; got names={names} for {len(fractions)} fractions. "
            "Example: fractions=(0.8, 0.2), names=('train', 'val')."
        )
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ConfigError(f"seed must be an int; got {seed!r}. Example: seed=0.")
    ids = _patient_ids(patients_or_dataset)
    shuffled = sorted(ids, key=lambda p: _rank(p, seed))
    result: dict[str, list[str]] = {}
    start = 0
    for name, size in zip(names, split_sizes(len(shuffled), fractions), strict=True):
        result[name] = sorted(shuffled[start : start + size])
        start += size
    return result


def _lookup(dataset: Any) -> Callable[[int], str]:
    if callable(getattr(dataset, "patient_of", None)):
        return dataset.patient_of
    per_item = getattr(dataset, "patients_per_item", None)
    if per_item is not None:
        return lambda index: per_item[index]
    raise ConfigError(
        f"expected a dataset with patient_of(index) -> str (or a patients_per_item list); got "
        f"{type(dataset).__name__}, which has neither. Add patient_of to it "
        "(see latent_transforms.data.splits)."
    )


class PatientSubset(Subset[T_co]):
    """The items of some patients of a dataset (a :class:`torch.utils.data.Subset`), in dataset order.

    It follows the patient protocol itself (``patients``, ``patient_of``, ``indices_of``), so it can be
    split again. ``indices`` are positions in the parent dataset.

    Args:
        dataset: a dataset with ``patient_of(index)`` (or ``patients_per_item``).
        patients: the ids to keep; each must belong to the dataset.

    Example:
        >>> class Toy(Dataset):
        ...     patients_per_item = ["a", "a", "b", "c", "c"]
        ...     def __len__(self): return 5
        ...     def __getitem__(self, i): return {"patient": self.patients_per_item[i], "index": i}
        >>> subset = PatientSubset(Toy(), ["c", "a"])
        >>> subset.indices, subset.patients, subset[2]
        ([0, 1, 3, 4], ['a', 'c'], {'patient': 'c', 'index': 3})
    """

    def __init__(self, dataset: Dataset[T_co], patients: Iterable[str]) -> None:
        wanted = sorted(set([patients] if isinstance(patients, str) else patients))
        lookup = _lookup(dataset)
        known = getattr(dataset, "patients", None)
        if known is not None:
            unknown = sorted(set(wanted) - set(known))
            if unknown:
                raise ConfigError(
                    f"expected patients of the dataset, but {unknown[:5]} ({len(unknown)} in all) are not "
                    f"among its {len(known)}, e.g. {list(known)[:5]}. Take the ids from dataset.patients "
                    "(e.g. through patient_split(dataset))."
                )
        indices_of = getattr(dataset, "indices_of", None)
        if callable(indices_of) and known is not None:
            indices = sorted(i for p in wanted for i in indices_of(p))
        else:
            keep = set(wanted)
            indices = [i for i in range(len(dataset)) if lookup(i) in keep]  # type: ignore[arg-type]
            if known is None:
                unknown = sorted(keep - {lookup(i) for i in indices})
                if unknown:
                    raise ConfigError(
                        f"expected patients of the dataset, but no item belongs to {unknown[:5]}. "
                        "Check the ids (dataset items' 'patient')."
                    )
        super().__init__(dataset, indices)
        self._wanted = wanted
        self._lookup = lookup

    @property
    def patients(self) -> list[str]:
        """Sorted ids of the patients kept."""
        return list(self._wanted)

    def patient_of(self, index: int) -> str:
        """The patient of item ``index`` of the subset."""
        return self._lookup(self.indices[index])

    def indices_of(self, patient: str) -> list[int]:
        """Positions in the subset of ``patient``'s items."""
        if patient not in self._wanted:
            raise ConfigError(
                f"expected one of this subset's patients {self._wanted[:5]}, got {patient!r}. "
                "Use subset.patients for the full list."
            )
        return [i for i, parent in enumerate(self.indices) if self._lookup(parent) == patient]

    def __repr__(self) -> str:
        shown = repr(self._wanted)
        if len(self._wanted) > 6:
            shown = f"[{', '.join(map(repr, self._wanted[:5]))}, ... ({len(self._wanted)} in all)]"
        return f"{type(self).__name__}({self.dataset!r}, patients={shown}, slices={len(self.indices)})"


def subset_by_patients(dataset: Dataset[T_co], patients: Iterable[str]) -> PatientSubset[T_co]:
    """Keep only the items of ``patients`` (see :class:`PatientSubset`).

    Example:
        >>> class Toy(Dataset):
        ...     patients = ["a", "b"]
        ...     def patient_of(self, i): return "ab"[i % 2]
        ...     def __len__(self): return 6
        ...     def __getitem__(self, i): return i
        >>> list(subset_by_patients(Toy(), ["b"]))
        [1, 3, 5]
    """
    return PatientSubset(dataset, patients)


def split_dataset(
    dataset: Dataset[T_co],
    fractions: Sequence[float] = (0.7, 0.2, 0.1),
    seed: int = 0,
    names: Sequence[str] | None = None,
) -> dict[str, PatientSubset[T_co]]:
    """:func:`patient_split` of the dataset's patients, then one :class:`PatientSubset` per group.

    Args:
        dataset: follows the patient protocol (``patients`` and ``patient_of``).
        fractions: share of *patients* (not slices) per group, summing to 1.
        seed: the split's seed.
        names: group names; ``None`` = ``("train", "val", "test")[:len(fractions)]``.

    Returns:
        ``{name: PatientSubset}``; no patient is in two subsets.

    Example:
        >>> class Toy(Dataset):
        ...     patients = [f"p{i}" for i in range(10)]
        ...     def patient_of(self, i): return f"p{i // 3}"
        ...     def __len__(self): return 30
        ...     def __getitem__(self, i): return i
        >>> parts = split_dataset(Toy(), seed=1)
        >>> {name: len(subset) for name, subset in parts.items()}
        {'train': 21, 'val': 6, 'test': 3}
    """
    source: Any = dataset
    if not (hasattr(dataset, "patients") or hasattr(dataset, "patients_per_item")):
        lookup = _lookup(dataset)
        source = [lookup(i) for i in range(len(dataset))]  # type: ignore[arg-type]
    groups = patient_split(source, fractions, seed, names)
    warn_single_patient(groups, fractions)
    return {name: PatientSubset(dataset, ids) for name, ids in groups.items()}


def warn_single_patient(groups: dict[str, list[str]], fractions: Sequence[float] = ()) -> list[str]:
    """Log a warning for each held-out group (every group after the first) that holds one patient.

    Its slices are then not independent samples: a statistics table over them (a Wilcoxon test per
    slice, a mean with a confidence interval) tests one patient, not a population. Returns the names of
    those groups.

    Example:
        >>> warn_single_patient({"train": ["a", "b"], "val": ["c", "d"], "test": ["e"]})
        ['test']
    """
    single = [name for name, ids in list(groups.items())[1:] if len(ids) == 1]
    total = sum(len(ids) for ids in groups.values())
    split = ",".join(f"{f:g}" for f in fractions) if fractions else "the split"
    for name in single:
        logger.warning(
            "the split %s of %d patients leaves one patient in %r: statistics over its slices (e.g. a "
            "Wilcoxon test per slice) test one patient, not a population. Use more patients or a larger "
            "%s fraction.",
            split,
            total,
            name,
            name,
        )
    return single
