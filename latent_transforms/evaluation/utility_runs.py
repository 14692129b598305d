"""Finished utility runs kept on disk, so that a killed evaluation goes on where it stopped.

:func:`~latent_transforms.evaluation.run.measure_utility` trains the user's model once per seed without
augmentation and once per (policy, seed); on a CPU each run can take minutes. Given a folder, every
finished run is written there at once, atomically, as one small JSON file
(``baseline-seed0.json``, ``sg2sample-0-5-1a2b3c4d-seed0.json``, ...) holding its scores and the *key* of
everything that determined it: the utility function, the direction of the score, the policy's name and
spec, the seed and the evaluation's settings. A later call with the same key reads the scores back instead
of training again. A file whose key differs in anything, or that cannot be read, is trained again and
overwritten: stored runs of other settings are never mixed in.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from latent_transforms.evaluation.policies import PolicySpec
from latent_transforms.files import atomic_write

_log = logging.getLogger(__name__)

__all__ = ["UTILITY_RUNS", "UtilityRunStore", "function_identity", "policy_identity", "run_key"]

#: The folder of stored runs inside an evaluation's output folder.
UTILITY_RUNS = "utility-runs"
#: The version of the file layout; files of another version are trained again.
FORMAT = 1


def function_identity(fn: object) -> str | None:
    """What names a utility function in the key of its runs: ``"module:qualified.name"``.

    A function given as an object is known by its name only: a change to its code, or to what it closes
    over, is not seen (retrain after editing it). A lambda, or a callable without a name of its own (an
    instance of a class with ``__call__``, a ``functools.partial``), has no name that tells two of them
    apart: ``None``, and its runs are not stored.

    Example:
        >>> import math
        >>> function_identity(math.fsum), function_identity(lambda policy, seed: 0.5)
        ('math:fsum', None)
    """
    qualname = getattr(fn, "__qualname__", None)
    module = getattr(fn, "__module__", None)
    if not isinstance(qualname, str) or "<lambda>" in qualname:
        return None
    return f"{module}:{qualname}"


def policy_identity(policy: object) -> Any:
    """What identifies a policy in the key of its runs: the spec it was built from.

    An object with a parsed ``spec`` (an :class:`~latent_transforms.evaluation.run.EvaluatedPolicy`) gives
    its spec's :meth:`~latent_transforms.evaluation.policies.PolicySpec.to_dict`; a string or number gives
    itself; anything else its ``repr`` (a ``repr`` that holds a memory address never matches again, so such
    runs are trained again each time).

    Example:
        >>> from latent_transforms.evaluation.policies import parse_policy
        >>> policy_identity(parse_policy("sg2sample:psi=0.7"))["spec"], policy_identity("my policy")
        ('sg2sample:psi=0.7', 'my policy')
    """
    spec = policy if isinstance(policy, PolicySpec) else getattr(policy, "spec", None)
    if isinstance(spec, PolicySpec):
        return spec.to_dict()
    if policy is None or isinstance(policy, str | int | float | bool):
        return policy
    return repr(policy)


def run_key(
    utility: str,
    *,
    higher_is_better: bool,
    settings: Mapping[str, Any] | None,
    name: str | None,
    policy: object,
    seed: int,
) -> dict[str, Any]:
    """The key of one run (JSON values only); ``name=None`` is the run without augmentation.

    Example:
        >>> key = run_key("my_task:f", higher_is_better=True, settings={"n": 2}, name="x", policy="x", seed=1)
        >>> sorted(key.items())  # doctest: +NORMALIZE_WHITESPACE
        [('higher_is_better', True), ('policy', 'x'), ('seed', 1), ('settings', {'n': 2}), ('spec', 'x'),
         ('utility', 'my_task:f')]
    """
    key = {
        "utility": utility,
        "higher_is_better": bool(higher_is_better),
        "settings": dict(settings or {}),
        "policy": name,
        "spec": None if name is None else policy_identity(policy),
        "seed": int(seed),
    }
    return json.loads(json.dumps(key, default=str))  # type: ignore[no-any-return]


def _file_name(name: str | None, seed: int) -> str:
    if name is None:
        return f"baseline-seed{seed}.json"
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:40] or "policy"
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]  # two names with one slug stay apart
    return f"{slug}-{digest}-seed{seed}.json"


def _valid_scores(data: Mapping[str, Any]) -> tuple[bool, list[float]] | None:
    per_sample, scores = data.get("per_sample"), data.get("scores")
    if not isinstance(per_sample, bool) or not isinstance(scores, list) or not scores:
        return None
    if not per_sample and len(scores) != 1:
        return None
    if not all(isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in scores):
        return None
    return per_sample, [float(v) for v in scores]


class UtilityRunStore:
    """A folder of finished utility runs, one JSON file per (policy, seed), read back when the key matches.

    Args:
        folder: where the runs are (made on the first save).
        reuse: read stored runs back; ``False`` trains every run again and overwrites its file.

    Example:
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as d:
        ...     store = UtilityRunStore(d)
        ...     key = run_key("m:f", higher_is_better=True, settings=None, name="x", policy="x", seed=0)
        ...     _ = store.save(key, False, [0.75])
        ...     store.load(key), store.load({**key, "seed": 1}), UtilityRunStore(d, reuse=False).load(key)
        ((False, [0.75]), None, None)
    """

    def __init__(self, folder: str | Path, *, reuse: bool = True) -> None:
        self.folder = Path(folder)
        self.reuse = bool(reuse)

    def __repr__(self) -> str:
        return f"UtilityRunStore(folder={str(self.folder)!r}, reuse={self.reuse})"

    def path(self, key: Mapping[str, Any]) -> Path:
        """The file of the run with this key (one per policy name and seed)."""
        return self.folder / _file_name(key["policy"], key["seed"])

    def load(self, key: Mapping[str, Any]) -> tuple[bool, list[float]] | None:
        """``(per_sample, scores)`` of the stored run with exactly this key; ``None`` when there is none
        (no file, another key, an unreadable file, or ``reuse=False``)."""
        path = self.path(key)
        if not self.reuse or not path.is_file():
            return None
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            _log.warning("%s cannot be read; the run is trained again", path)
            return None
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            _log.warning("%s is not a stored utility run; the run is trained again", path)
            return None
        if data.get("key") != key:
            _log.info("%s was made with other settings; the run is trained again", path)
            return None
        scores = _valid_scores(data)
        if scores is None:
            _log.warning("%s holds no valid scores; the run is trained again", path)
        return scores

    def save(self, key: Mapping[str, Any], per_sample: bool, scores: list[float]) -> Path:
        """Write one finished run (atomically); returns its file."""
        text = json.dumps(
            {"format": FORMAT, "key": dict(key), "per_sample": bool(per_sample), "scores": list(scores)},
            indent=1,
        )
        return atomic_write(self.path(key), text + "\n")
