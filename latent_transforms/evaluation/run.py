"""``evaluate_policies``: measure several augmentation policies side by side (the frame of Xing et al. 2023).

For every policy its samples (``p = 1``: every one augmented) are generated once, seeded, and reused by
every metric; the reference set's features are computed once. Per modality: FID and precision / recall /
F1 / density / coverage (k-NN manifolds, ``k`` = 3) against the held-out reference set, and the mean-image
file size; per policy: the time per 1,000 images and the peak accelerator memory (the peak RSS on a CPU, in
``results.json``), and, when a training function is given (or the built-in task classifier,
``utility="classifier"``), the downstream utility against no augmentation with a Wilcoxon signed-rank test.
The generator is a GAN bundle or a diffusion bundle (``diffusion`` specs sample either).

Over a class-conditional generator and labelled data, the drawn samples (``sg2sample``, ``diffusion``)
follow the training split's class balance (the classes of :func:`~latent_transforms.tasks.resampled_labels`
with the evaluation's seed, the rule the utility protocols draw their synthetic sets by), the mix of the
``real`` row's training images, and a transform of sources (``latentaugment``) keeps each source's class.

Outputs (with ``out``): ``report.md``, ``results.json``, ``precision_recall.png`` (Fig. 7 of Tronchin et al.
2023), ``samples.png`` (rows: the reference set, then each policy, per modality) and, when LatentAugment is
evaluated and no cache is given, ``cache/`` (the sources' latents, reused by later runs).
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import math
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from tqdm.auto import tqdm

from latent_transforms.checks import default_device
from latent_transforms.errors import ConfigError
from latent_transforms.evaluation.policies import PolicySpec, load_sample_folder, parse_policies
from latent_transforms.evaluation.real_data import (
    DEFAULT_DATA,
    RealData,
    evenly_spread,
    open_real_data,
    prepare_latents,
    prepare_training_latents,
)
from latent_transforms.evaluation.report import EvaluationReport, PolicyResult, UtilityResult, git_commit
from latent_transforms.evaluation.sampling import (
    apply_with_labels,
    augment_all,
    class_count,
    generate_samples,
)

if TYPE_CHECKING:
    from latent_transforms.features.extractor import FeatureExtractor
    from latent_transforms.features.perceptual import PerceptualNetwork
    from latent_transforms.generative.bundle import DiffusionBundle
    from latent_transforms.networks.bundle import GanBundle
    from latent_transforms.transforms.base import RandomTransform

_log = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_GAN",
    "PR_PLOT_NAME",
    "SAMPLES_NAME",
    "EvaluatedPolicy",
    "default_efficiency_images",
    "evaluate_policies",
    "load_utility",
    "measure_utility",
]

#: The bundle evaluated by default: the one that ships with the package.
DEFAULT_GAN = "builtin:pelvis-phantom-64"
PR_PLOT_NAME = "precision_recall.png"
SAMPLES_NAME = "samples.png"
#: Images timed per policy when not told: 1,000 (the unit of Xing et al. 2023) on CUDA, fewer on a CPU.
EFFICIENCY_IMAGES = {"cuda": 1000, "cpu": 64}

TrainAndScore = Callable[[Any, int], Any]


@dataclass
class EvaluatedPolicy:
    """What a utility function receives for one policy (``None`` stands for no augmentation).

    Attributes:
        name: the display name.
        spec: the parsed :class:`~latent_transforms.evaluation.policies.PolicySpec`.
        transform: the transform (``p = 1``, ``value_range="generator"``, images in ``[-1, 1]``); set
            your own ``p`` with ``transform.p = ...`` for training; ``None`` for a fixed folder of images.
        samples: the samples the report measured, ``[N, C, R, R]`` float32 in ``[-1, 1]`` on CPU (e.g. to
            add to a training set as they are).

    Example:
        >>> from latent_transforms.evaluation.policies import parse_policy
        >>> EvaluatedPolicy("real", parse_policy("real"), None, torch.zeros(2, 2, 8, 8)).kind
        'real'
    """

    name: str
    spec: PolicySpec
    transform: RandomTransform | None
    samples: torch.Tensor

    @property
    def kind(self) -> str:
        """The policy kind (``"sg2sample"``, ``"latentaugment"``, ...)."""
        return self.spec.kind

    def __repr__(self) -> str:
        return f"EvaluatedPolicy(name={self.name!r}, kind={self.kind!r}, samples={tuple(self.samples.shape)})"


def default_efficiency_images(device: torch.device | str) -> int:
    """Images timed per policy when not given: 1,000 on CUDA, 64 on a CPU (CPU figures serve ratios).

    Example:
        >>> default_efficiency_images("cpu"), default_efficiency_images("cuda:0")
        (64, 1000)
    """
    return EFFICIENCY_IMAGES["cuda" if torch.device(device).type == "cuda" else "cpu"]


# -- utility -----------------------------------------------------------------------------------------
def load_utility(
    spec: str,
    *,
    option: str = "--utility",
    signature: str = "train_and_score(policy_or_None, seed) -> float or per-sample scores",
) -> TrainAndScore:
    """Load a function of yours from ``"package.module:function"`` or ``"path/file.py:function"``.

    Used for ``evaluate --utility`` (a ``train_and_score`` function) and ``tune --downstream`` (a
    validation metric of a transform). A file is imported under a name of its own in ``sys.modules``.

    Args:
        spec: ``"package.module:function"`` or ``"path/file.py:function"`` (``~`` expanded).
        option: the command-line option named in error messages.
        signature: what the function should look like, named in error messages (its name, before ``(``,
            is the example's).

    Returns:
        The function.

    Raises:
        ConfigError: no ``:``, no such file or module, or no callable of that name.

    Example:
        >>> load_utility("math:fsum")([0.5, 0.25])
        0.75
    """
    example = signature.split("(", 1)[0]
    if not isinstance(spec, str) or ":" not in spec:
        raise ConfigError(
            f"expected {option} MODULE:FUNCTION or PATH.py:FUNCTION, got {spec!r}. Fix: e.g. "
            f"{option} my_task.py:{example}."
        )
    where, _, name = spec.rpartition(":")
    path = Path(where).expanduser()
    if where.endswith(".py") or path.is_file():
        if not path.is_file():
            raise ConfigError(f"{option} {spec!r}: no file {str(path)!r}. Fix: check the path.")
        module_name = f"_latent_transforms_utility_{abs(hash(str(path.resolve())))}"
        loader_spec = importlib.util.spec_from_file_location(module_name, path)
        if loader_spec is None or loader_spec.loader is None:
            raise ConfigError(f"{option} {spec!r}: cannot import {str(path)!r} as Python.")
        module = importlib.util.module_from_spec(loader_spec)
        sys.modules[module_name] = module
        loader_spec.loader.exec_module(module)
    else:
        try:
            module = importlib.import_module(where)
        except ImportError as exc:
            raise ConfigError(
                f"{option} {spec!r}: cannot import module {where!r} ({exc}). Fix: put it on PYTHONPATH or "
                "give the file path, e.g. path/to/task.py:function."
            ) from exc
    fn = getattr(module, name, None)
    if not callable(fn):
        raise ConfigError(f"{option} {spec!r}: {where!r} has no callable {name!r}. Fix: define {signature}.")
    return fn  # type: ignore[no-any-return]


def _scores(value: Any, who: str, seed: int) -> tuple[bool, list[float]]:
    """(is_per_sample, values) of what a utility function returned."""
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().double()
        value = value.item() if value.ndim == 0 else value.flatten().tolist()
    elif hasattr(value, "tolist") and not isinstance(value, (list, tuple)):  # NumPy scalars and arrays
        value = value.tolist()
    if isinstance(value, bool):
        raise ConfigError(f"the utility function returned a bool for {who} (seed {seed}); expected a score.")
    if isinstance(value, (int, float)):
        values, per_sample = [float(value)], False
    elif isinstance(value, (list, tuple)) and value:
        try:
            values, per_sample = [float(v) for v in value], True
        except (TypeError, ValueError) as exc:
            raise ConfigError(
                f"the utility function returned a sequence with a non-number for {who} (seed {seed}): {exc}."
            ) from exc
    else:
        raise ConfigError(
            f"the utility function returned {type(value).__name__} for {who} (seed {seed}); expected a float "
            "(one score per seed) or a non-empty sequence of per-validation-sample scores."
        )
    if not all(math.isfinite(v) for v in values):
        raise ConfigError(f"the utility function returned NaN or Inf for {who} (seed {seed}).")
    return per_sample, values


def measure_utility(
    train_and_score: TrainAndScore,
    policies: Sequence[tuple[str, Any]],
    seeds: Sequence[int] = (0,),
    *,
    higher_is_better: bool = True,
    progress: bool = False,
    store: str | Path | None = None,
    reuse: bool = True,
    utility: str | None = None,
    settings: Mapping[str, Any] | None = None,
) -> dict[str, UtilityResult]:
    """Downstream gain of each policy over no augmentation, with a paired Wilcoxon signed-rank test.

    ``train_and_score(policy, seed)`` trains the user's model with ``policy`` (``None``: no augmentation)
    and returns either one score (then the pairs are the seeds) or one score per validation sample in a
    fixed order (then the pairs are the samples, pooled over the seeds). The baseline is trained once per
    seed and shared by every policy.

    With ``store``, each finished run is written there at once (one JSON file, see
    :mod:`latent_transforms.evaluation.utility_runs`) and a later call reads it back instead of training
    again, so a killed study goes on where it stopped. A run is reused only when its whole key matches:
    ``utility``, ``higher_is_better``, the policy's name and spec, the seed and ``settings``; any other
    stored run is trained again and overwritten.

    Args:
        train_and_score: the user's function.
        policies: ``(name, policy)`` pairs; ``policy`` is passed as it is.
        seeds: training seeds.
        higher_is_better: the direction of the score (``False``: e.g. an MAE).
        progress: show a progress bar (reused runs advance it and are counted in its postfix).
        store: folder of finished runs (``None``: keep nothing).
        reuse: read finished runs back from ``store``; ``False`` trains every run again and overwrites them.
        utility: what names ``train_and_score`` in the key (e.g. its ``"module:function"`` spec); default
            its module and qualified name. A function is known by that name only: after editing it, pass
            ``reuse=False`` or another ``store``. A lambda or a callable object without a name has no
            default, and its runs are not stored.
        settings: JSON-able settings that shape the runs beside the policy and the seed (the data, the
            generator, ...); a run stored with other settings is trained again.

    Returns:
        ``{name: UtilityResult}``; ``gain`` is positive when the policy improves the score.

    Example:
        >>> def train_and_score(policy, seed):
        ...     return [0.5 + 0.1 * (policy is not None) + 0.01 * i for i in range(5)]
        >>> r = measure_utility(train_and_score, [("x", "some policy")], seeds=[0, 1])["x"]
        >>> round(r.gain, 6), r.n, r.paired_by
        (0.1, 10, 'sample')

        Kept in a folder, the runs are trained once; a second call reads them back:

        >>> import tempfile
        >>> calls = []
        >>> def logged(policy, seed):
        ...     calls.append(seed)
        ...     return train_and_score(policy, seed)
        >>> with tempfile.TemporaryDirectory() as runs:
        ...     first = measure_utility(logged, [("x", "some policy")], seeds=[0, 1], store=runs)
        ...     again = measure_utility(logged, [("x", "some policy")], seeds=[0, 1], store=runs)
        >>> len(calls), again == first
        (4, True)
    """
    if not seeds:
        raise ConfigError("expected at least one utility seed, got none. Fix: --utility-seeds 0,1,2.")
    from latent_transforms.evaluation.utility_runs import UtilityRunStore, function_identity, run_key

    identity = utility if utility is not None else function_identity(train_and_score)
    runs = UtilityRunStore(store, reuse=reuse) if store is not None and identity is not None else None
    if store is not None and runs is None:
        _log.warning(
            "utility runs are not stored in %s: %r has no name to key them by. Fix: a named function, or "
            "utility='module:function'.",
            store,
            train_and_score,
        )
    total = len(seeds) * (1 + len(policies))
    bar = tqdm(total=total, desc="utility (training)", unit="run", disable=not progress)
    reused = 0

    def run(name: str | None, policy: Any, s: int) -> tuple[bool, list[float]]:
        """One training run's scores: read back from the store when it holds this run, else trained."""
        nonlocal reused
        key = None
        if runs is not None:
            assert identity is not None
            key = run_key(
                identity,
                higher_is_better=higher_is_better,
                settings=settings,
                name=name,
                policy=policy,
                seed=s,
            )
            stored = runs.load(key)
            if stored is not None:
                reused += 1
                bar.set_postfix(reused=reused)
                bar.update(1)
                return stored
        scores = _scores(train_and_score(policy, s), "no augmentation" if name is None else name, s)
        if runs is not None and key is not None:
            runs.save(key, *scores)
        bar.update(1)
        return scores

    try:
        results = _paired_results(run, policies, seeds, higher_is_better)
    finally:
        bar.close()
    if reused and progress:
        _log.info("utility: reused %d of %d finished runs from %s", reused, total, store)
    return results


def _paired_results(
    run: Callable[[str | None, Any, int], tuple[bool, list[float]]],
    policies: Sequence[tuple[str, Any]],
    seeds: Sequence[int],
    higher_is_better: bool,
) -> dict[str, UtilityResult]:
    """The baseline per seed, then each policy per seed (``run`` gives the scores), and their tests."""
    from latent_transforms.metrics.stats import wilcoxon

    baseline: dict[int, tuple[bool, list[float]]] = {s: run(None, None, s) for s in seeds}
    results: dict[str, UtilityResult] = {}
    for name, policy in policies:
        a: list[float] = []
        b: list[float] = []
        a_runs: list[float] = []
        b_runs: list[float] = []
        kinds = set()
        for s in seeds:
            per_sample, values = run(name, policy, s)
            base_kind, base_values = baseline[s]
            kinds.update((per_sample, base_kind))
            if per_sample != base_kind or len(values) != len(base_values):
                raise ConfigError(
                    f"the utility function returned {len(values)} score(s) for {name!r} and "
                    f"{len(base_values)} without augmentation (seed {s}); expected the same kind and number "
                    "(one per seed, or one per validation sample in a fixed order)."
                )
            a_runs.append(sum(values) / len(values))
            b_runs.append(sum(base_values) / len(base_values))
            if per_sample:
                a.extend(values)
                b.extend(base_values)
            else:
                a.append(values[0])
                b.append(base_values[0])
        paired_by = "sample" if kinds == {True} else "seed"
        policy_mean, baseline_mean = sum(a) / len(a), sum(b) / len(b)
        gain = policy_mean - baseline_mean if higher_is_better else baseline_mean - policy_mean
        statistic = pvalue = None
        note = None
        if len(a) < 2:
            note = f"one pair only ({paired_by}); give more --utility-seeds for a test"
        elif all(x == y for x, y in zip(a, b, strict=True)):
            note = "every paired difference is zero; no test"
        else:
            test = wilcoxon(a, b, alternative="two-sided")
            statistic, pvalue = test.statistic, test.pvalue
            if not math.isfinite(pvalue):
                statistic = pvalue = None
                note = "the test is undefined for these pairs"
        results[name] = UtilityResult(
            gain=gain,
            pvalue=pvalue,
            statistic=statistic,
            n=len(a),
            paired_by=paired_by,
            policy_mean=policy_mean,
            baseline_mean=baseline_mean,
            higher_is_better=higher_is_better,
            seeds=[int(s) for s in seeds],
            note=note,
            policy_runs=a_runs,
            baseline_runs=b_runs,
        )
    return results


# -- orchestration -----------------------------------------------------------------------------------
def _batch_maker(
    transform: RandomTransform,
    sources: torch.Tensor | None,
    seed: int,
    device: torch.device,
    source_keys: Sequence[str] | None = None,
    source_labels: torch.Tensor | None = None,
) -> Callable[[int], torch.Tensor]:
    """``b -> b samples`` of ``transform`` on ``device`` (what the efficiency measurement times);
    ``source_keys``: the sources' dataset keys for a cache keyed by them; ``source_labels``: the sources'
    classes (LatentAugment over a conditional GAN needs them). Drawn samples take random classes."""
    from latent_transforms.evaluation.sampling import SAMPLING_TRANSFORMS

    g = torch.Generator().manual_seed(seed)
    if isinstance(transform, SAMPLING_TRANSFORMS):

        def sample(b: int) -> torch.Tensor:
            with torch.no_grad():
                return transform.sample(b, generator=g, value_range="generator", device=device)

        return sample
    assert sources is not None
    order: list[int] = []

    def augment(b: int) -> torch.Tensor:
        nonlocal order
        while len(order) < b:
            order.extend(torch.randperm(len(sources), generator=g).tolist())
        picks, order = order[:b], order[b:]
        keys = [source_keys[i] for i in picks] if source_keys is not None else None
        labels = source_labels[picks] if source_labels is not None else None
        return augment_all(transform, sources[picks], keys=keys, labels=labels, generator=g)

    return augment


class _ClassBalance:
    """The classes of the drawn samples of an evaluation: the training split's class balance, drawn once
    (:func:`~latent_transforms.tasks.resampled_labels`, the evaluation's seed) when a policy's generator
    can choose classes and the data has labels; what the report records of it."""

    def __init__(self, real: RealData, n: int, seed: int) -> None:
        self.real, self.n, self.seed = real, n, seed
        self._labels: torch.Tensor | None = None
        self._train: torch.Tensor | None = None
        self.rule: str | None = None  # "train" or "uniform" once a conditional sampler ran

    def labels(self, transform: Any) -> torch.Tensor | None:
        """``[n]`` int64 classes for a sampling ``transform`` (``None``: it cannot choose, or no labels)."""
        if class_count(transform) == 0:
            return None
        if self.rule is None:
            self._train = self.real.training_labels()
            if self._train is not None:
                from latent_transforms.tasks.synthetic import resampled_labels

                self._labels = resampled_labels(self._train, self.n, self.seed)
            self.rule = "train" if self._labels is not None else "uniform"
        if self._train is not None and int(self._train.max()) >= class_count(transform):
            raise ConfigError(
                f"the data has {int(self._train.max()) + 1} classes but the generator of "
                f"{type(transform).__name__} {class_count(transform)}. Fix: evaluate the generator on the "
                "data it was trained on."
            )
        return self._labels

    def settings(self) -> dict[str, Any] | None:
        """What the report records: ``None`` when no sampler chose classes, else the rule and, for the
        training balance, the per-class counts of the train split and of the drawn classes."""
        if self.rule is None:
            return None
        if self.rule == "uniform":
            return {"from": "uniform (the data has no labels)"}
        assert self._train is not None and self._labels is not None
        classes = int(self._train.max()) + 1
        return {
            "from": "train split",
            "train_counts": torch.bincount(self._train, minlength=classes).tolist(),
            "sample_counts": torch.bincount(self._labels, minlength=classes).tolist(),
        }


def _embed(extractor: FeatureExtractor, images: torch.Tensor, chunk: int = 256) -> torch.Tensor:
    """Features ``[N, C', D]`` on CPU, moving ``chunk`` images at a time to the extractor's device."""
    out = [
        extractor.embed(images[i : i + chunk].to(extractor.device)).cpu()
        for i in range(0, len(images), chunk)
    ]
    return torch.cat(out)


def _modality_metrics(
    real: torch.Tensor, fake: torch.Tensor, names: Sequence[str], k: int, device: torch.device
) -> dict[str, dict[str, float]]:
    """FID and the five manifold metrics per embedding channel, plus their means."""
    from latent_transforms.metrics.fid import fid
    from latent_transforms.metrics.precision_recall import manifold_metrics

    out: dict[str, dict[str, float]] = {
        m: {} for m in ("fid", "precision", "recall", "f1", "density", "coverage")
    }
    for c, name in enumerate(names):
        out["fid"][name] = float(fid(real[:, c], fake[:, c]))
        for key, value in manifold_metrics(real[:, c], fake[:, c], k, device=device).items():
            out[key][name] = float(value)
    for values in out.values():
        values["mean"] = sum(values[n] for n in names) / len(names)
    return out


def _gan_name(gan: str | GanBundle | DiffusionBundle) -> str:
    return gan if isinstance(gan, str) else repr(gan)


#: ``utility="classifier"`` / ``"classifier:PROTOCOL"``: the built-in task-classifier utility.
BUILTIN_UTILITY = "classifier"


def _builtin_utility(spec: str, real: RealData, device: torch.device, progress: bool) -> TrainAndScore:
    """The task classifier's test score (:func:`~latent_transforms.tasks.classifier_utility`) on the
    labelled splits of the real data: trained on ``train``, the epoch chosen on ``val``, scored on
    ``test``."""
    from latent_transforms.tasks.utility import PROTOCOLS, classifier_utility

    protocol = _utility_protocol(spec)
    if protocol not in PROTOCOLS:
        raise ConfigError(f"--utility {spec!r}: the protocol must be one of {PROTOCOLS}, got {protocol!r}.")
    train, val, test = (real.splits.get(k) for k in ("train", "val", "test"))
    first = train[0] if train is not None and len(train) else {}
    if "image" not in first or "label" not in first or test is None or not len(test):
        raise ConfigError(
            f"--utility {spec!r} trains the task classifier, which needs labelled real data with a test "
            "split (--real medmnist:FILE.npz or a folder of class folders). Fix: give such data, or your "
            "own --utility MODULE:FUNCTION."
        )
    return classifier_utility(
        train,
        test,
        protocol=protocol,
        val=val if val is not None and len(val) else None,
        apply=apply_with_labels,  # LatentAugment over a conditional GAN gets each image's class
        device=device,
        progress=progress,
    )


def _utility_protocol(spec: str) -> str:
    """The protocol of a built-in utility spec (``"classifier"``: the augmentation protocol)."""
    return spec.partition(":")[2] or "augmentation"


def _check_builtin_utility(spec: str, specs: Sequence[PolicySpec]) -> None:
    """Refuse, before any work, policies the built-in utility's protocol cannot train with."""
    if _utility_protocol(spec) != "feature-extraction":
        return
    transforming = [s.spec for s in specs if s.needs_sources]
    if transforming:
        raise ConfigError(
            f"--utility {spec!r}: feature-extraction utility pretrains on synthetic images only; "
            f"{transforming} transform real images. Fix: --utility classifier (the augmentation protocol, "
            "which augments the real training images online), or evaluate them without this utility."
        )


def _training_latents(
    real: RealData,
    bundle: GanBundle,
    folder: Path,
    steps: int,
    seed: int,
    device: torch.device,
    progress: bool,
) -> dict[str, Any]:
    """Invert every training image the task classifier trains on into the LatentAugment cache (its online
    augmentation may pick any of them), skipping those already there."""
    from latent_transforms.tasks.training import as_image_labels

    images, _ = as_image_labels(real.splits["train"])
    return prepare_training_latents(
        bundle, images, folder, steps=steps, seed=seed, device=device, progress=progress
    )


def evaluate_policies(
    policies: Sequence[str | PolicySpec],
    *,
    gan: str | GanBundle | DiffusionBundle = DEFAULT_GAN,
    data: str | Path = DEFAULT_DATA,
    out: str | Path | None = None,
    n_samples: int = 1000,
    n_real: int | None = None,
    n_sources: int = 128,
    reference_split: str = "val",
    split_fractions: Sequence[float] = (0.7, 0.2, 0.1),
    split_seed: int = 0,
    feature_network: str | FeatureExtractor = "efficientnet-lite0",
    k: int = 3,
    batch_size: int = 16,
    seed: int = 0,
    device: torch.device | str | None = None,
    cache: str | Path | None = None,
    inversion_steps: int = 150,
    perceptual: str | PerceptualNetwork = "efficientnet-lite0",
    efficiency_images: int | None = None,
    mean_image_format: str = "png",
    utility: TrainAndScore | str | None = None,
    utility_seeds: Sequence[int] = (0,),
    lower_is_better: bool = False,
    reuse_utility: bool = True,
    grid_images: int = 8,
    command: str | None = None,
    progress: bool = True,
    dataset_options: Mapping[str, Any] | None = None,
) -> EvaluationReport:
    """Evaluate augmentation policies against held-out real data: the table of Xing et al. 2023, plots,
    samples.

    Over a class-conditional generator and labelled ``data`` (items with a ``"label"``), the classes of
    the drawn samples (``sg2sample``, ``diffusion`` rows not fixed to a class ``c``) follow the training
    split's class balance (:func:`~latent_transforms.tasks.resampled_labels`, with ``seed``), the mix of
    the ``real`` row's training images, and ``latentaugment`` keeps each source's class (its
    conditional discriminator is told it); the report's ``settings["class_balance"]`` records the
    per-class counts (``None``: no row chose classes). The efficiency timing draws random classes.

    Args:
        policies: specs (``"sg2sample:psi=0.7"``, ``"latentaugment:preset=f1"``, ``"standardda"``,
            ``"real"``, a folder; see :mod:`latent_transforms.evaluation.policies`) or parsed specs.
        gan: the generator: a GAN bundle, a diffusion bundle, or where one is (:func:`~latent_transforms.
            generative.load_generator`; default the built-in phantom GAN). Its channels, windows and
            resolution are the evaluation's; ``sg2sample`` and ``latentaugment`` specs need a GAN.
        data: the real data: paired slices (an ``open_paired_dataset`` spec; default: the built-in bundle's
            phantom) or labelled images (``medmnist:FILE.npz``, a folder of class folders).
        out: folder for ``report.md``, ``results.json``, the plots and the latent cache (``None``: write
            nothing, and LatentAugment needs ``cache``).
        n_samples: samples per policy (the ``real`` row takes up to this many training slices).
        n_real: reference slices spread over the reference split (default: all of them).
        n_sources: training slices that StandardDA and LatentAugment transform.
        reference_split: ``"val"`` (held-out patients, default), ``"test"``, ``"train"`` or ``"all"``.
        split_fractions: train / val / test patient fractions.
        split_seed: seed of the patient split.
        feature_network: name for :func:`~latent_transforms.features.feature_network` or an extractor.
        k: the neighbour that sets the k-NN radii of precision / recall / density / coverage.
        batch_size: images per call of a policy.
        seed: seed of every policy's draws (the same for all policies: SG2Sample rows with different ψ
            truncate the same latents).
        device: where everything runs (default: CUDA when available, else CPU).
        cache: the sources' latent cache folder (default ``out/cache``), made if needed and reused; a
            complete cache of ``latent-transforms invert`` on the same data is reused whether it is keyed
            by content (the default) or by dataset key (``--key dataset``).
        inversion_steps: projector steps per source image when the cache lacks it.
        perceptual: network of LatentAugment's perceptual statistics (and term).
        efficiency_images: images timed per policy (default :func:`default_efficiency_images`; 0: skip).
        mean_image_format: ``"png"`` or ``"jpeg"`` for the mean-image size.
        utility: ``train_and_score(policy_or_None, seed)`` or its ``"module:function"`` /
            ``"file.py:function"`` spec (see :func:`measure_utility`); receives an
            :class:`EvaluatedPolicy`. ``"classifier"`` (or ``"classifier:feature-extraction"``) is the
            built-in task classifier on labelled ``data``
            (:func:`~latent_transforms.tasks.classifier_utility`: the augmentation or feature-extraction
            utility of Xing et al. 2023, scored on the test split).
        utility_seeds: seeds the utility function is run with.
        lower_is_better: the utility score is better when lower (e.g. MAE).
        reuse_utility: with ``out``, every finished utility run is kept in ``out/utility-runs/`` and an
            evaluation run again with the same settings reuses it (a killed one trains only the runs it had
            not finished); ``False`` trains them all again and overwrites them. A run is reused only when
            the utility, its direction, the policy's spec, the seed and the settings that shape the samples
            or the training (generator fingerprint, data, splits, ``n_samples``, ``seed``, ...) match.
        grid_images: images per row of ``samples.png``.
        command: the command line, recorded in the report.
        progress: progress bars, and messages through ``logging`` (logger
            ``latent_transforms.evaluation.run``, level INFO).
        dataset_options: more arguments of ``open_paired_dataset`` for ``data`` (``modalities``,
            ``patient_pattern``, ``mask_threshold``; see :func:`open_real_data`).

    Returns:
        The :class:`~latent_transforms.evaluation.report.EvaluationReport` (also saved when ``out`` is
        given).

    Example:
        >>> from latent_transforms import GanBundle, GanConfig
        >>> bundle = GanBundle.random(GanConfig(resolution=16, channel_base=256, channel_max=32))
        >>> report = evaluate_policies(["sg2sample:psi=0.5", "real"], gan=bundle, data="phantom:patients=10,"
        ...     "slices=4", n_samples=6, feature_network="random", efficiency_images=0, progress=False)
        >>> [r.policy for r in report.rows], report.modalities
        (['SG2Sample ψ=0.5', 'real (training images)'], ['mri', 'ct'])
    """
    from latent_transforms.features.registry import feature_network as build_extractor
    from latent_transforms.generative.load import load_generator
    from latent_transforms.metrics.fid import modality_names
    from latent_transforms.metrics.variety import mean_image_size
    from latent_transforms.networks.bundle import GanBundle

    started = time.perf_counter()
    if isinstance(n_samples, bool) or not isinstance(n_samples, int) or n_samples <= k:
        raise ConfigError(
            f"expected n_samples > k = {k} (precision/recall need more samples than neighbours), got "
            f"{n_samples!r}. Fix: a few hundred samples per policy make the numbers mean something."
        )
    specs_list = parse_policies(policies)
    dev = default_device(device)
    torch.manual_seed(seed)
    bundle = load_generator(gan, device=dev)
    gan_only = [s.spec for s in specs_list if s.kind in ("sg2sample", "latentaugment")]
    if gan_only and not isinstance(bundle, GanBundle):
        raise ConfigError(
            f"policy specs {gan_only} need a GAN bundle, but --gan is a {type(bundle).__name__}. Fix: --gan "
            "a StyleGAN2 bundle and the diffusion bundle as --synthetic diffusion:bundle=PATH."
        )
    folder = Path(out) if out is not None else None
    builtin_utility = isinstance(utility, str) and utility.partition(":")[0] == BUILTIN_UTILITY
    train_and_score = load_utility(utility) if isinstance(utility, str) and not builtin_utility else utility

    def say(text: str) -> None:
        if progress:
            _log.info("%s", text)

    real: RealData = open_real_data(
        bundle,
        data,
        reference_split=reference_split,
        n_real=n_real,
        n_sources=n_sources,
        fractions=split_fractions,
        split_seed=split_seed,
        dataset_options=dataset_options,
    )
    say(
        f"reference: {len(real.reference)} {reference_split} slices of {data}; sources: "
        f"{len(real.sources)} training slices"
    )
    if builtin_utility:
        assert isinstance(utility, str)
        train_and_score = _builtin_utility(utility, real, dev, progress)
        _check_builtin_utility(utility, specs_list)
    inversion: dict[str, Any] | None = None
    cache_folder: Path | None = None
    if any(s.needs_latents for s in specs_list):
        if cache is None and folder is None:
            raise ConfigError(
                "LatentAugment needs the sources' latents in a cache folder; got neither out nor cache. "
                "Fix: pass out=FOLDER (the cache goes to FOLDER/cache) or cache=FOLDER."
            )
        cache_folder = Path(cache) if cache is not None else Path(folder) / "cache"  # type: ignore[arg-type]
        say(f"latents of the {len(real.sources)} sources: {cache_folder}")
        inversion = prepare_latents(
            bundle,
            real,
            cache_folder,
            steps=inversion_steps,
            perceptual=perceptual,
            seed=seed,
            device=dev,
            progress=progress,
        )
        say(
            f"  reused the cache (keyed by {inversion['keys']})"
            if inversion["reused"]
            else f"  inverted {inversion['inverted']} images in {inversion['seconds']:.0f} s"
        )
        if builtin_utility and any(s.kind == "latentaugment" for s in specs_list):
            # the task classifier's online augmentation may pick any training image, not only a source
            say(
                f"the classifier utility augments every training image with LatentAugment: inverting the "
                f"{len(real.splits['train'])} images of the train split that {cache_folder} lacks "
                f"({inversion_steps} projector steps each; reused by later runs)"
            )
            training = _training_latents(real, bundle, cache_folder, inversion_steps, seed, dev, progress)
            inversion["training_split"] = training
            say(f"  inverted {training['inverted']} of {training['images']} in {training['seconds']:.0f} s")
    # a cache keyed by dataset key (latent-transforms invert --key dataset) is looked up by those keys
    source_keys = real.source_keys if inversion is not None and inversion["keys"] == "dataset" else None

    extractor = build_extractor(feature_network, bundle=bundle, device=dev)
    ref_feats = _embed(extractor, real.reference)
    names = modality_names(ref_feats.shape[1], bundle.modalities)
    n_eff = default_efficiency_images(dev) if efficiency_images is None else int(efficiency_images)
    sources_dev = real.sources.to(dev)

    rows: list[PolicyResult] = []

    def spread(images: torch.Tensor) -> torch.Tensor:  # grid rows show the whole set, not its start
        return images[evenly_spread(len(images), max(1, grid_images))]

    grid_sets: list[tuple[str, torch.Tensor]] = [("reference", spread(real.reference))]
    evaluated: list[tuple[str, EvaluatedPolicy]] = []
    balance = _ClassBalance(real, n_samples, seed)
    for spec in tqdm(specs_list, desc="policies", unit="policy", disable=not progress):
        say(f"{spec.name}: {n_samples} samples")
        transform = spec.build(bundle, cache=cache_folder, seed=seed, device=dev)
        source_labels = real.source_labels if spec.needs_sources else None
        if (
            spec.needs_latents
            and class_count(transform) > 0
            and source_labels is None
            and float(getattr(transform, "alpha_f", 0.0)) > 0
        ):
            raise ConfigError(
                f"{spec.name}: the GAN is class-conditional, and LatentAugment's fidelity term tells its "
                f"discriminator each source's class, but {data!r} has no labels. Fix: labelled data "
                "(medmnist:FILE.npz, a folder of class folders), or alpha_f=0 in the spec."
            )
        t0 = time.perf_counter()
        if spec.kind == "real":
            samples, _ = real.training_images(bundle, n_samples)
        elif spec.kind == "directory":
            assert spec.path is not None
            samples = load_sample_folder(spec.path, bundle, n=n_samples)
        else:
            assert transform is not None
            samples = generate_samples(
                transform,
                n_samples,
                sources=sources_dev if spec.needs_sources else None,
                source_keys=source_keys if spec.needs_sources and spec.needs_latents else None,
                labels=None if spec.needs_sources else balance.labels(transform),
                source_labels=source_labels,
                batch_size=batch_size,
                seed=seed,
                device=dev,
                progress=progress,
            )
        sampling_seconds = time.perf_counter() - t0
        if len(samples) <= k:
            raise ConfigError(
                f"{spec.name}: {len(samples)} samples, but precision/recall with k = {k} need more than {k}. "
                "Fix: give more images (or a smaller k)."
            )
        feats = _embed(extractor, samples)
        metrics = _modality_metrics(ref_feats, feats, names, k, dev)
        kb = mean_image_size(samples, modalities=list(bundle.modalities), format=mean_image_format)
        efficiency = None
        if transform is not None and n_eff > 0:
            from latent_transforms.metrics.efficiency import measure_efficiency

            maker = _batch_maker(
                transform,
                sources_dev if spec.needs_sources else None,
                seed + 1,
                dev,
                source_keys if spec.needs_latents else None,
                source_labels,
            )
            efficiency = measure_efficiency(
                maker, batch_size=batch_size, n_images=n_eff, device=dev, warmup=1, progress=False, rss=True
            ).to_dict()
        rows.append(
            PolicyResult(
                policy=spec.name,
                spec=spec.spec,
                kind=spec.kind,
                family=spec.family,
                n_samples=len(samples),
                **metrics,
                mean_image_kb={key: float(v) for key, v in kb.items()},
                seconds_per_1000=efficiency["seconds_per_1000"] if efficiency else None,
                peak_memory_gb=efficiency["peak_memory_gb"] if efficiency else None,
                efficiency=efficiency,
                psi=spec.psi,
                sampling_seconds=round(sampling_seconds, 3),
            )
        )
        grid_sets.append((spec.name, spread(samples)))
        if train_and_score is not None and spec.kind != "real":
            evaluated.append((spec.name, EvaluatedPolicy(spec.name, spec, transform, samples)))
        say(
            f"  FID {metrics['fid']['mean']:.2f}  precision {metrics['precision']['mean']:.3f}  "
            f"recall {metrics['recall']['mean']:.3f}  ({sampling_seconds:.1f} s)"
        )

    utility_settings = None
    if train_and_score is not None:
        from latent_transforms._version import __version__
        from latent_transforms.evaluation.utility_runs import UTILITY_RUNS

        # everything beside the policy, the seed, the utility and its direction that shapes a run
        run_settings = {
            "gan_fingerprint": bundle.fingerprint,
            "data": str(data),
            "dataset_options": dict(dataset_options or {}),
            "reference_split": reference_split,
            "n_real": n_real,
            "n_sources": n_sources,
            "split": {"fractions": list(real.info["split_fractions"]), "seed": split_seed},
            "n_samples": n_samples,
            "seed": seed,
            "batch_size": batch_size,
            "cache": None if cache is None else str(cache),
            "inversion_steps": inversion_steps,
            "perceptual": perceptual if isinstance(perceptual, str) else perceptual.fingerprint,
            "device": dev.type,
            "version": __version__,
        }
        if balance.rule is not None:  # the drawn samples' classes (absent: as before the class balance)
            run_settings["class_balance"] = balance.rule
        results = measure_utility(
            train_and_score,
            evaluated,
            utility_seeds,
            higher_is_better=not lower_is_better,
            progress=progress,
            store=None if folder is None else folder / UTILITY_RUNS,
            reuse=reuse_utility,
            utility=utility if isinstance(utility, str) else None,
            settings=run_settings,
        )
        for row in rows:
            row.utility = results.get(row.policy)
        utility_settings = {
            "function": utility
            if isinstance(utility, str)
            else getattr(utility, "__qualname__", repr(utility)),
            "seeds": [int(s) for s in utility_seeds],
            "higher_is_better": not lower_is_better,
        }

    from latent_transforms._version import __version__

    settings: dict[str, Any] = {
        "gan": _gan_name(gan),
        "gan_fingerprint": bundle.fingerprint,
        "data": str(data),
        "reference": (
            f"{real.info['n_real']} of {real.info['reference_slices_in_split']} slices of the "
            f"{reference_split} split"
            + (f" ({real.info['reference_patients']} patients)" if real.info["reference_patients"] else "")
        ),
        "sources": (
            f"{real.info['n_sources']} of {real.info['train_slices']} slices of the train split"
            + (f" ({real.info['train_patients']} patients)" if real.info["train_patients"] else "")
        ),
        "split": {"fractions": list(real.info["split_fractions"]), "seed": split_seed},
        "n_samples": n_samples,
        "feature_network": extractor.name,
        "feature_fingerprint": extractor.fingerprint,
        "k": k,
        "mean_image_format": mean_image_format,
        "seed": seed,
        "batch_size": batch_size,
        "device": str(dev),
        "torch_threads": torch.get_num_threads(),
        "efficiency": {"images_per_policy": n_eff, "batch_size": batch_size, "device": str(dev)}
        if n_eff > 0
        else None,
        "utility": utility_settings,
        "class_balance": balance.settings(),
        "inversion": inversion,
        "policies": [s.to_dict() for s in specs_list],
        "command": command,
        "commit": git_commit(),
        "version": __version__,
        "seconds": round(time.perf_counter() - started, 1),
    }
    report = EvaluationReport(rows, list(names), settings)
    if folder is not None:
        from latent_transforms.evaluation.plots import precision_recall_plot, sample_grid

        report.settings["seconds"] = round(time.perf_counter() - started, 1)
        paths = report.save(folder)
        plot = precision_recall_plot(report, folder / PR_PLOT_NAME)
        grid = sample_grid(
            grid_sets,
            list(bundle.modalities),
            folder / SAMPLES_NAME,
            n=grid_images,
            scale=max(1, 128 // bundle.resolution),
        )
        say(f"wrote {paths['markdown']}, {paths['json']}, {plot} and {grid}")
    return report
