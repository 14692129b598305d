"""The real images an evaluation needs: the held-out reference set and the training sources.

- The *reference* set is what every policy's samples are compared with (FID, precision/recall): slices
  of held-out patients (``reference_split="val"`` by default), spread evenly over the split.
- The *sources* are training slices (the ``"train"`` split) that ``StandardDA`` and ``LatentAugment``
  transform; LatentAugment needs their inverted latents, made once with
  :func:`~latent_transforms.inversion.job.invert_to_cache` into a cache folder and reused later.

Splits are by patient (:func:`~latent_transforms.data.splits.split_dataset`, default fractions
0.7 / 0.2 / 0.1, seed 0: the split the built-in bundle was trained with), so no reference patient is
ever a source patient. Labelled images (``medmnist:FILE.npz``, a folder of class folders) keep their own
splits or are split per class (:func:`~latent_transforms.data.open.open_splits`).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch.utils.data import ConcatDataset, Subset

from latent_transforms.data.labels import dataset_labels, items_labels
from latent_transforms.errors import ConfigError

if TYPE_CHECKING:
    from latent_transforms.features.perceptual import PerceptualNetwork
    from latent_transforms.inversion.projector import Projector
    from latent_transforms.networks.bundle import GanBundle

__all__ = [
    "DEFAULT_DATA",
    "SPLITS",
    "RealData",
    "cache_keys",
    "evenly_spread",
    "open_real_data",
    "prepare_latents",
    "prepare_training_latents",
]

#: The phantom the built-in bundle was trained on (its ``training.data``); its val patients are held out.
DEFAULT_DATA = "phantom:patients=48,slices=32,seed=0"
#: The names ``reference_split`` takes (``"all"``: the whole dataset).
SPLITS = ("train", "val", "test", "all")


def evenly_spread(total: int, n: int) -> list[int]:
    """``min(n, total)`` distinct indices in ``[0, total)``, spread evenly, first and last included.

    The one rule every evaluation and tuning run picks its slices by (index ``i`` of ``n`` is
    ``round(i * (total - 1) / (n - 1))`` in float32, halves to even: the picks of the demo's
    ``held_out_slices``).

    Example:
        >>> evenly_spread(10, 4), evenly_spread(3, 5)
        ([0, 3, 6, 9], [0, 1, 2])
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ConfigError(f"expected a number of images >= 1, got {n!r}.")
    if total < 1:
        raise ConfigError("expected a non-empty set of images, got an empty one.")
    if n >= total:
        return list(range(total))
    return sorted(set(torch.linspace(0, total - 1, n).round().long().tolist()))


@dataclass
class RealData:
    """The reference and source images of an evaluation (see :func:`open_real_data`).

    Attributes:
        data: the dataset spec (``open_paired_dataset``).
        dataset: the opened dataset.
        splits: ``{"train", "val", "test"}`` patient subsets.
        reference_split: which split the reference set comes from (``None``: no reference set).
        reference: ``[N, C, R, R]`` float32 in ``[-1, 1]``, CPU (``N = 0`` without a reference set).
        reference_keys: their dataset keys.
        source_items: the sources as a dataset (a ``Subset`` of the train split), for inversion.
        sources: ``[S, C, R, R]`` float32 in ``[-1, 1]``, CPU.
        source_keys: their dataset keys.
        info: sizes and settings for the report.
        reference_items: the reference slices as a dataset (a ``Subset``), e.g. to invert them.
        reference_labels: the reference slices' classes, ``[N]`` int64 on CPU, when the data's items have
            a ``"label"`` (labelled images, the phantom's lesion label); else ``None``.
        source_labels: the sources' classes, ``[S]`` int64 on CPU (``None`` without labels).

    Example:
        >>> from latent_transforms import GanBundle, GanConfig
        >>> bundle = GanBundle.random(GanConfig(resolution=16, channel_base=256, channel_max=32))
        >>> real = open_real_data(bundle, "phantom:patients=10,slices=4", n_real=5, n_sources=3)
        >>> real.reference.shape, real.sources.shape
        (torch.Size([5, 2, 16, 16]), torch.Size([3, 2, 16, 16]))
    """

    data: str
    dataset: Any
    splits: dict[str, Any]
    reference_split: str | None
    reference: torch.Tensor
    reference_keys: list[str]
    source_items: Any
    sources: torch.Tensor
    source_keys: list[str]
    info: dict[str, Any] = field(default_factory=dict)
    reference_items: Any = None
    reference_labels: torch.Tensor | None = None
    source_labels: torch.Tensor | None = None

    def training_images(self, bundle: GanBundle, n: int) -> tuple[torch.Tensor, list[str]]:
        """``n`` training slices spread evenly over the train split (the ``real`` policy's samples).

        Returns:
            ``([n', C, R, R] in [-1, 1] on CPU, keys)``, ``n' = min(n, train slices)``.
        """
        images, keys, _ = _images(self.splits["train"], bundle, n)
        return images, keys

    def training_labels(self) -> torch.Tensor | None:
        """The classes of every slice of the train split, ``[T]`` int64 on CPU (its class balance), or
        ``None`` when the items have no ``"label"``.

        Read from the dataset's ``labels`` when it holds one per item (labelled images), else item by item.

        Example:
            >>> from latent_transforms import GanBundle, GanConfig
            >>> bundle = GanBundle.random(GanConfig(resolution=16, channel_base=256, channel_max=32))
            >>> real = open_real_data(bundle, "phantom:patients=10,slices=2", n_sources=2)
            >>> real.training_labels().shape, real.source_labels.shape  # the phantom's lesion labels
            (torch.Size([14]), torch.Size([2]))
        """
        return dataset_labels(self.splits["train"])

    def __repr__(self) -> str:
        return (
            f"RealData(data={self.data!r}, reference_split={self.reference_split!r}, "
            f"reference={len(self.reference)}, sources={len(self.sources)})"
        )


def _key(item: dict[str, Any], index: int) -> str:
    return str(item.get("key", index))


def _images(subset: Any, bundle: GanBundle, n: int) -> tuple[torch.Tensor, list[str], torch.Tensor | None]:
    """``min(n, len(subset))`` items spread evenly over ``subset``, stacked in the bundle's channels, their
    keys and their labels (``None`` without)."""
    from latent_transforms.inversion.job import item_image

    picks = evenly_spread(len(subset), n)
    items = [subset[i] for i in picks]
    images = torch.stack([item_image(item, bundle) for item in items]).float()
    return images, [_key(item, i) for item, i in zip(items, picks, strict=True)], items_labels(items)


def open_real_data(
    bundle: GanBundle,
    data: str | Path = DEFAULT_DATA,
    *,
    reference_split: str | None = "val",
    n_real: int | None = None,
    n_sources: int | None = 128,
    fractions: Sequence[float] = (0.7, 0.2, 0.1),
    split_seed: int = 0,
    dataset_options: Mapping[str, Any] | None = None,
) -> RealData:
    """Open ``data`` at the bundle's resolution and take the reference and source images.

    Args:
        bundle: the generator bundle (channels, windows, resolution): a GAN or a diffusion bundle.
        data: an ``open_paired_dataset`` spec (default :data:`DEFAULT_DATA`, the built-in bundle's phantom),
            or labelled images (``medmnist:FILE.npz``, a folder of class folders; their channels are the
            bundle's modalities).
        reference_split: ``"val"`` (default), ``"test"``, ``"train"``, ``"all"``, or ``None`` for no
            reference set (when only the sources are needed).
        n_real: reference slices, spread evenly over the split (default: all of them).
        n_sources: training slices that the transforming policies start from, spread evenly (``None``:
            all of them).
        fractions: patient fractions of the train / val / test split.
        split_seed: seed of the split.
        dataset_options: more arguments of ``open_paired_dataset`` (``modalities``, ``patient_pattern``,
            ``mask_threshold``: the command line's ``--modalities``, ``--patient-pattern`` and
            ``--mask-threshold``); ``modalities`` defaults to the bundle's channels.

    Returns:
        A :class:`RealData`.

    Example:
        >>> from latent_transforms import GanBundle, GanConfig
        >>> bundle = GanBundle.random(GanConfig(resolution=16, channel_base=256, channel_max=32))
        >>> real = open_real_data(bundle, "phantom:patients=10,slices=4", n_sources=2)
        >>> len(real.reference), real.info["reference_patients"]
        (8, 2)
    """
    from latent_transforms.data.open import is_labelled_spec, open_paired_dataset, open_splits
    from latent_transforms.data.splits import split_dataset

    if reference_split is not None and reference_split not in SPLITS:
        raise ConfigError(
            f"reference_split must be one of {SPLITS} or None, got {reference_split!r}. Fix: use 'val' "
            "(held-out patients, the default) or 'test'."
        )
    options = {"modalities": tuple(bundle.modalities), **(dataset_options or {})}
    if sorted(options["modalities"]) != sorted(bundle.modalities):
        raise ConfigError(
            f"the data's channels {list(options['modalities'])} are not the bundle's {bundle.modalities}; "
            "the data must hold the channels the generator was trained on. Fix: drop --modalities (the "
            "bundle's are the default) or rename the data's folders / arrays to them."
        )
    if is_labelled_spec(data, options["modalities"]):
        splits = open_splits(
            str(data),
            resolution=bundle.resolution,
            fractions=tuple(float(f) for f in fractions),
            seed=split_seed,
            channel_names=tuple(bundle.modalities),
        )
        dataset: Any = ConcatDataset([splits[k] for k in ("train", "val", "test") if k in splits])
    else:
        dataset = open_paired_dataset(str(data), resolution=bundle.resolution, **options)
        splits = dict(split_dataset(dataset, tuple(float(f) for f in fractions), seed=split_seed))
    if "train" not in splits or len(splits["train"]) == 0:
        raise ConfigError(
            f"the split {tuple(fractions)} of {data!r} has no training slices; give a train share."
        )
    if reference_split is None:
        reference_set: Any = Subset(dataset, [])
    elif reference_split == "all":
        reference_set = dataset
    else:
        if reference_split not in splits or len(splits[reference_split]) == 0:
            raise ConfigError(
                f"the split {tuple(fractions)} of {data!r} has no {reference_split!r} slices. Fix: choose "
                f"another --reference-split or other fractions."
            )
        reference_set = splits[reference_split]
    if reference_split is None:
        reference_picks: list[int] = []
        reference = torch.empty(0, len(bundle.modalities), bundle.resolution, bundle.resolution)
        reference_keys: list[str] = []
        reference_labels = None
    else:
        reference_picks = evenly_spread(len(reference_set), n_real or len(reference_set))
        reference, reference_keys, reference_labels = _images(reference_set, bundle, len(reference_picks))
    train = splits["train"]
    picks = evenly_spread(len(train), len(train) if n_sources is None else n_sources)
    source_items = Subset(train, picks)
    sources, source_keys, source_labels = _images(source_items, bundle, len(picks))
    patients = getattr(reference_set, "patients", None)
    info = {
        "data": str(data),
        "resolution": bundle.resolution,
        "split_fractions": [float(f) for f in fractions],
        "split_seed": split_seed,
        "reference_split": reference_split,
        "reference_slices_in_split": len(reference_set),
        "reference_patients": len(patients) if patients is not None else None,
        "n_real": len(reference),
        "train_slices": len(train),
        "train_patients": len(train.patients) if hasattr(train, "patients") else None,
        "n_sources": len(sources),
    }
    return RealData(
        str(data),
        dataset,
        splits,
        reference_split,
        reference,
        reference_keys,
        source_items,
        sources,
        source_keys,
        info,
        reference_items=Subset(reference_set, reference_picks),
        reference_labels=reference_labels,
        source_labels=source_labels,
    )


def cache_keys(bundle: GanBundle, folder: str | Path, real: RealData) -> str | None:
    """How a complete cache at ``folder`` holds the sources of ``real``: ``"content"`` (by
    :func:`~latent_transforms.inversion.cache.image_key`, as :func:`prepare_latents` and ``latent-transforms
    invert`` write by default) or ``"dataset"`` (by dataset key, ``latent-transforms invert --key
    dataset``); ``None`` when it lacks a source, the statistics or this generator's fingerprint.

    Example:
        >>> from latent_transforms import GanBundle, GanConfig
        >>> bundle = GanBundle.random(GanConfig(resolution=16, channel_base=256, channel_max=32))
        >>> real = open_real_data(bundle, "phantom:patients=10,slices=2", n_sources=2)
        >>> cache_keys(bundle, "no/such/cache", real) is None
        True
    """
    from latent_transforms.inversion.cache import LatentCache, image_key
    from latent_transforms.inversion.job import STATS_NAME

    folder = Path(folder)
    if not (folder / "cache.json").is_file() or not (folder / STATS_NAME).is_file():
        return None
    cache = LatentCache.open(folder)
    try:
        if cache.fingerprint != bundle.fingerprint:
            return None
        if all(image_key(x) in cache for x in real.sources):
            return "content"
        if real.source_keys and all(key in cache for key in real.source_keys):
            return "dataset"
        return None
    finally:
        cache.close()


def prepare_latents(
    bundle: GanBundle,
    real: RealData,
    folder: str | Path,
    *,
    steps: int = 150,
    perceptual: str | PerceptualNetwork = "efficientnet-lite0",
    batch_size: int = 32,
    seed: int = 0,
    device: torch.device | str | None = None,
    progress: bool = False,
    projector: Projector | None = None,
    reuse: bool = True,
) -> dict[str, Any]:
    """Invert the sources into a latent cache at ``folder`` (once; a complete cache is reused as it is).

    The projector is the demo's unless ``projector`` is given: ``steps`` steps of pixel loss in W, no
    early stop. The cache is keyed by image content and gets the sources'
    :class:`~latent_transforms.DatasetStats` (``stats.safetensors``, with ``perceptual`` features), which
    LatentAugment's diversity terms read.
    With ``reuse``, a cache that already holds every source's latent (made with this generator) and
    statistics is used without any work, whatever projector made it, keyed by content or by dataset key
    (a cache of ``latent-transforms invert --key dataset`` on the same data: the result's ``"keys"`` says
    which, and LatentAugment must then be given the sources' dataset keys); without it, the sources it
    lacks are inverted (a cache made with other projector settings is refused) and the statistics
    recomputed.

    Args:
        bundle: the GAN bundle.
        real: the :class:`RealData` whose sources to invert.
        folder: the cache folder (created).
        steps: projector steps per image.
        perceptual: the network of the statistics' perceptual means (LatentAugment rebuilds it by name).
        batch_size: images projected together.
        seed: the projector's seed.
        device: where to run.
        progress: show progress bars.
        projector: a projector of your own (e.g. with a perceptual loss); ``steps``, ``batch_size``,
            ``seed`` and ``device`` then go unused.
        reuse: skip all work when the cache is complete (see above).

    Returns:
        ``{"folder", "reused", "inverted", "seconds", "steps", "keys"}`` (``keys``: ``"content"`` or
        ``"dataset"``, how the cache holds the sources).

    Example:
        >>> import tempfile
        >>> from latent_transforms import GanBundle, GanConfig
        >>> from latent_transforms.features.perceptual import perceptual_network
        >>> bundle = GanBundle.random(GanConfig(resolution=16, channel_base=256, channel_max=32))
        >>> real = open_real_data(bundle, "phantom:patients=10,slices=2", n_real=2, n_sources=2)
        >>> net = perceptual_network("random")
        >>> with tempfile.TemporaryDirectory() as d:
        ...     first = prepare_latents(bundle, real, d, steps=2, perceptual=net)
        ...     again = prepare_latents(bundle, real, d, steps=2, perceptual=net)
        >>> first["inverted"], again["reused"]
        (2, True)
    """
    from latent_transforms.features.perceptual import perceptual_network
    from latent_transforms.inversion.job import invert_to_cache

    folder = Path(folder)
    started = time.perf_counter()
    found = cache_keys(bundle, folder, real) if reuse else None
    if found is not None:
        return {
            "folder": str(folder),
            "reused": True,
            "inverted": 0,
            "seconds": 0.0,
            "steps": None,
            "keys": found,
        }
    # invert_to_cache computes the statistics on the CPU: keep their network there.
    net = perceptual if not isinstance(perceptual, str) else perceptual_network(perceptual)
    if projector is None:
        projector = _default_projector(bundle, steps, batch_size, seed, device)
    folder.mkdir(parents=True, exist_ok=True)
    summary = invert_to_cache(bundle, real.source_items, folder, projector, perceptual=net, progress=progress)
    return {
        "folder": str(folder),
        "reused": False,
        "inverted": int(summary.get("inverted", 0)),
        "seconds": round(time.perf_counter() - started, 2),
        "steps": projector.steps,
        "keys": "content",
    }


def _default_projector(
    bundle: GanBundle, steps: int, batch_size: int, seed: int, device: torch.device | str | None
) -> Projector:
    """The evaluation's projector: ``steps`` steps of pixel loss in W, no early stop."""
    from latent_transforms.inversion.projector import Projector

    return Projector(
        bundle,
        steps=steps,
        perceptual=None,
        patience=None,
        batch_size=batch_size,
        device=torch.device(device) if device is not None else bundle.device,
        progress=False,
        seed=seed,
    )


def prepare_training_latents(
    bundle: GanBundle,
    images: torch.Tensor,
    folder: str | Path,
    *,
    steps: int = 150,
    batch_size: int = 32,
    seed: int = 0,
    device: torch.device | str | None = None,
    progress: bool = False,
    projector: Projector | None = None,
) -> dict[str, Any]:
    """Invert every training image the latent cache at ``folder`` lacks, so that LatentAugment can
    augment any of them (the task classifier's online augmentation sees the whole training split, not
    only the sources). Expensive: ``steps`` generator passes per image not yet in the cache; a later run
    reuses them.

    The images are looked up and stored by content key (:func:`~latent_transforms.image_key` of exactly
    these tensors, the ones the classifier trains on), with :func:`prepare_latents`' projector (unless
    ``projector`` is given), so the cache's projector settings must be that projector's. The cache's
    statistics (``stats.safetensors``, the sources') are left as they are.

    Args:
        bundle: the GAN bundle.
        images: the training images ``[N, C, R, R]`` float in ``[-1, 1]`` (any device).
        folder: the cache folder (it exists: :func:`prepare_latents` made it).
        steps: the projector's steps per image (as :func:`prepare_latents`).
        batch_size: images inverted together.
        seed: the projector's seed.
        device: where the projector runs (default: the bundle's device).
        progress: a progress bar over the images.
        projector: a projector of your own instead.

    Returns:
        ``{"images": N, "inverted": n, "seconds": s}`` (``n`` = 0: the cache held them all).

    Raises:
        ConfigError: the cache was made with other projector settings (and lacks some images).

    Example:
        >>> import tempfile
        >>> from latent_transforms import GanBundle, GanConfig
        >>> from latent_transforms.features.perceptual import perceptual_network
        >>> bundle = GanBundle.random(GanConfig(resolution=16, channel_base=256, channel_max=32))
        >>> real = open_real_data(bundle, "phantom:patients=10,slices=2", n_real=2, n_sources=2)
        >>> train, _ = real.training_images(bundle, 100)  # the whole train split
        >>> with tempfile.TemporaryDirectory() as d:
        ...     _ = prepare_latents(bundle, real, d, steps=2, perceptual=perceptual_network("random"))
        ...     first = prepare_training_latents(bundle, train, d, steps=2)
        ...     again = prepare_training_latents(bundle, train, d, steps=2)
        >>> len(train), first["inverted"], again["inverted"]  # the 2 sources were inverted already
        (14, 12, 0)
    """
    from latent_transforms.errors import CacheMismatchError
    from latent_transforms.inversion.cache import LatentCache, image_key

    started = time.perf_counter()
    folder = Path(folder)
    images = images.detach().float().cpu()
    keys = [image_key(x) for x in images]
    with LatentCache.open(folder) as cache:
        present = {k for k in keys if k in cache}
    missing: list[int] = []
    for i, key in enumerate(keys):
        if key not in present:
            present.add(key)  # each image once, however often it occurs
            missing.append(i)
    if missing:
        if projector is None:
            projector = _default_projector(bundle, steps, batch_size, seed, device)
        try:
            cache = LatentCache(folder, fingerprint=bundle.fingerprint, settings=projector.settings())
        except CacheMismatchError as exc:
            raise ConfigError(
                f"{exc} The classifier utility augments every training image with LatentAugment, so "
                f"{len(missing)} training images not in this cache must be inverted into it with the "
                "evaluation's projector. Fix: let the evaluation make its own cache (drop --cache), or "
                "invert the whole train split into it by content first (latent-transforms invert ... "
                "--split train)."
            ) from exc
        from tqdm.auto import tqdm

        with (
            cache,
            tqdm(total=len(missing), desc="inverting the training split", disable=not progress) as bar,
        ):
            for start in range(0, len(missing), projector.batch_size):
                chunk = missing[start : start + projector.batch_size]
                result = projector.project(images[chunk])
                extras = {"psnr": result.psnr.cpu(), "ssim": result.ssim.cpu(), "steps": result.steps.cpu()}
                if cache.fields:
                    extras = {k: v for k, v in extras.items() if k in cache.fields}
                cache.put_batch([keys[i] for i in chunk], result.w.detach().float().cpu(), **extras)
                cache.flush()
                bar.update(len(chunk))
    return {
        "images": len(images),
        "inverted": len(missing),
        "seconds": round(time.perf_counter() - started, 2),
    }
