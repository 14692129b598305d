"""MONAI dictionary variants: ``LatentAugmentd``, ``SG2Sampled``, ``DiffusionSampled`` and ``StandardDAd``.

A MONAI pipeline keeps each modality under its own key (``{"mri": [1, H, W], "ct": [1, H, W], ...}``);
the library's transforms take the paired modalities as the channels of one image. A dictionary variant
stacks ``keys`` as channels in the order given (for the GAN transforms: the GAN bundle's modality
order, checked), runs the array transform, and splits the result back into the keys. Values come back
as they came in: a ``monai.data.MetaTensor`` with the same ``.meta`` and affine, a tensor, or a NumPy
array, with the same shape and dtype. Items may be single samples (per key ``[C, H, W]``) or batches
(``[B, C, H, W]``, as after ``list_data_collate``).

The classes are MONAI ``MapTransform`` + ``RandomizableTransform`` (hence ``RandomizableTrait``, so
``CacheDataset`` caches what comes before them and never their output), with the MONAI ``D`` / ``Dict``
aliases. ``prob`` is the array transform's per-sample ``p``; ``set_random_state(seed, state)`` reseeds the
array transform's generator. MONAI is optional: this module imports without it, and building one of
these classes without MONAI raises :class:`~latent_transforms.errors.MissingDependencyError` with the
``pip`` command.

Randomness in DataLoaders (see :meth:`RandomTransform.generator_for
<latent_transforms.transforms.base.RandomTransform.generator_for>`): inside a worker the library's
transforms key every draw by (seed, the loader's epoch seed, the sample's dataset key or content), so the
data are the same for any ``num_workers >= 1``. MONAI's ``DataLoader`` reseeds every randomizable
transform in each worker with a per-worker seed (its ``worker_init_fn``); a dictionary variant keeps
MONAI's own ``R`` in step but does not pass that reseed to the array transform, which would tie the draws
to the worker a sample lands in. In the main process (``num_workers=0``) the transform draws from its own
generator in call order, which gives other data than the workers' draws. MONAI's ``DataLoader`` with
``num_workers=0`` reseeds the dataset's transforms once, when it is built, from the loader's generator
(MONAI's rule, through :meth:`RandomTransformd.set_random_state`): there the loader's generator, not
``seed=``, decides the draws.
"""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Hashable, Mapping, Sequence
from typing import Any, ClassVar

import torch

from latent_transforms.errors import ConfigError, MissingDependencyError
from latent_transforms.networks.bundle import GanBundle
from latent_transforms.transforms.base import RandomTransform, cast_like
from latent_transforms.transforms.diffusion_sample import DiffusionSample
from latent_transforms.transforms.latent_augment import LatentAugment
from latent_transforms.transforms.sg2sample import SG2Sample
from latent_transforms.transforms.stacking import check_channel_order, run_on_keys
from latent_transforms.transforms.standard_da import StandardDA

try:  # MONAI is optional: the classes below exist either way and refuse to build without it
    from monai.data import MetaTensor
    from monai.data.utils import to_affine_nd
    from monai.transforms import InvertibleTransform, MapTransform, RandomizableTransform
    from monai.utils import TraceKeys, TransformBackends

    _MONAI_IMPORT_ERROR: BaseException | None = None
    _BACKEND: list[Any] = [TransformBackends.TORCH]
except ImportError as error:  # pragma: no cover - exercised by a subprocess test
    _MONAI_IMPORT_ERROR = error
    _BACKEND = []

    class MapTransform:  # type: ignore[no-redef]
        """Stand-in for ``monai.transforms.MapTransform`` when MONAI is not installed."""

    class RandomizableTransform:  # type: ignore[no-redef]
        """Stand-in for ``monai.transforms.RandomizableTransform`` when MONAI is not installed."""

    class InvertibleTransform:  # type: ignore[no-redef]
        """Stand-in for ``monai.transforms.InvertibleTransform`` when MONAI is not installed."""


__all__ = [
    "DiffusionSampleD",
    "DiffusionSampleDict",
    "DiffusionSampled",
    "LatentAugmentD",
    "LatentAugmentDict",
    "LatentAugmentd",
    "RandomTransformd",
    "SG2SampleD",
    "SG2SampleDict",
    "SG2Sampled",
    "StandardDAD",
    "StandardDADict",
    "StandardDAd",
    "monai_available",
]

MONAI_INSTALL = "pip install 'latent-transforms[monai]'  (or: pip install monai)"


def monai_available() -> bool:
    """Whether MONAI can be imported here (the dictionary transforms need it).

    Example:
        >>> isinstance(monai_available(), bool)
        True
    """
    return _MONAI_IMPORT_ERROR is None


def _require_monai(name: str) -> None:
    if _MONAI_IMPORT_ERROR is not None:
        raise MissingDependencyError(
            f"{name} is a MONAI dictionary transform, and MONAI is not installed ({_MONAI_IMPORT_ERROR}). "
            f"Fix: {MONAI_INSTALL}. Without MONAI, use the array transform on stacked channels, or "
            "latent_transforms.transforms.stacking.apply_to_keys on dicts."
        )


def _with_prob(name: str, prob: float | None, kwargs: dict[str, Any]) -> dict[str, Any]:
    if prob is not None:
        if "p" in kwargs:
            raise ConfigError(
                f"{name} got both prob={prob!r} and p={kwargs['p']!r}; they are the same thing."
            )
        kwargs = {**kwargs, "p": prob}
    return kwargs


def _key_list(keys: Any) -> tuple[Hashable, ...]:
    if isinstance(keys, (str, bytes)) or not isinstance(keys, Sequence):
        return (keys,)
    return tuple(keys)


class RandomTransformd(MapTransform, RandomizableTransform):  # type: ignore[misc]
    """MONAI dictionary wrapper of any library transform (:class:`RandomTransform`): the base of
    :class:`LatentAugmentd`, :class:`SG2Sampled` and :class:`StandardDAd`.

    ``data[k]`` for ``k`` in ``keys``: ``[C_k, H, W]`` (one sample) or ``[B, C_k, H, W]`` (a batch), a
    ``MetaTensor``, tensor or NumPy array in the range the array transform expects (physical units by
    default), all of one dtype and device. They are stacked as channels in the order of ``keys``,
    transformed with one draw, and split back (same kind of value, metadata, shape and dtype); each
    ``mask_keys`` entry (``[1, H, W]`` / ``[B, 1, H, W]``) follows the same draw, nearest neighbour (only
    transforms that move geometry accept masks). ``data[key_field]``, when present (a ``str``, or one per
    sample), keys the draw inside DataLoader workers and reaches the array transform as
    ``params["keys"]`` (:class:`LatentAugment` looks the latents up by it). Other entries pass through.

    Args:
        keys: the image entries, in channel order (the GAN bundle's modality order for GAN transforms).
        transform: the array transform (its ``p`` is this transform's ``prob``).
        mask_keys: entries resampled with the image's geometry (nearest neighbour).
        key_field: the entry holding the dataset key (``None``: never use one).
        allow_missing_keys: skip absent ``keys`` / ``mask_keys`` instead of raising.
        label_key: the entry holding the class label(s) (an int, or one per sample in a batch) that a
            conditional generator transform gives its samples (``None``: classes drawn at random); the
            entry itself passes through.

    Example:
        >>> from latent_transforms.transforms.standard_da import StandardDA
        >>> t = RandomTransformd(["mri", "ct"], StandardDA(p=1.0, seed=0))
        >>> out = t({"mri": torch.rand(1, 16, 16), "ct": torch.rand(1, 16, 16), "key": "p0/0001"})
        >>> tuple(out["mri"].shape), out["key"], t.prob
        ((1, 16, 16), 'p0/0001', 1.0)
    """

    #: Array transform class the subclass builds (``None``: any instance passed in).
    array_class: ClassVar[type[RandomTransform] | None] = None
    #: The transform needs every key (GAN channels); with ``allow_missing_keys`` a partial set is refused.
    requires_all_keys: ClassVar[bool] = False
    backend = _BACKEND

    def __init__(
        self,
        keys: Hashable | Sequence[Hashable],
        transform: RandomTransform,
        *,
        mask_keys: Hashable | Sequence[Hashable] = (),
        key_field: str | None = "key",
        allow_missing_keys: bool = False,
        label_key: str | None = None,
    ) -> None:
        _require_monai(type(self).__name__)
        if not isinstance(transform, RandomTransform):
            raise ConfigError(
                f"{type(self).__name__} wraps a latent_transforms RandomTransform, got "
                f"{type(transform).__name__}. Fix: for other transforms use MONAI's own dictionary "
                "transforms (or monai.transforms.Lambdad)."
            )
        if self.array_class is not None and not isinstance(transform, self.array_class):
            raise ConfigError(
                f"{type(self).__name__} wraps a {self.array_class.__name__}, got {type(transform).__name__}."
            )
        mask_tuple = _key_list(mask_keys) if mask_keys is not None else ()
        if mask_tuple and not transform.supports_masks:
            raise ConfigError(
                f"{type(transform).__name__} makes new images, which masks {list(mask_tuple)} cannot follow. "
                "Fix: mask_keys=() (only geometric transforms such as StandardDAd resample masks)."
            )
        self.transform = transform
        p = transform.p
        MapTransform.__init__(self, keys, allow_missing_keys)  # (its super() chain sets prob = 1.0)
        RandomizableTransform.__init__(self, prob=p)
        overlap = set(self.keys) & set(mask_tuple)
        if overlap:
            raise ConfigError(f"{sorted(map(str, overlap))} are in both keys and mask_keys; name each once.")
        self.mask_keys: tuple[Hashable, ...] = mask_tuple
        self.key_field = key_field
        self.label_key = label_key

    # -- MONAI's randomizable API --------------------------------------------------------------------
    @property
    def prob(self) -> float:
        """The probability that a sample is augmented: the array transform's ``p``."""
        return self.transform.p

    @prob.setter
    def prob(self, value: float) -> None:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= float(value) <= 1.0:
            raise ConfigError(f"prob must be a probability in [0, 1], got {value!r}.")
        self.transform.p = float(value)

    def set_random_state(self, seed: int | None = None, state: Any | None = None) -> RandomTransformd:
        """Reseed (MONAI's signature): ``seed`` an int, or ``state`` a ``numpy.random.RandomState`` to
        draw the seed from; neither: a seed from torch's global RNG. Reseeds the array transform's
        generator (inside a DataLoader worker only MONAI's ``R``; see the module docstring). Returns
        ``self``."""
        super().set_random_state(seed=seed, state=state)
        if torch.utils.data.get_worker_info() is not None:
            return self
        if seed is not None:
            self.transform.set_random_state(seed=int(seed))
        else:
            self.transform.set_random_state(state=state)
        return self

    def randomize(self, data: Any = None) -> None:
        """No-op: the per-sample draws happen in the array transform at each call (``_do_transform``
        then says whether any sample of the last call was augmented)."""

    # -- the work ------------------------------------------------------------------------------------
    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        """Augment ``data`` (a dict with ``keys``); returns a new dict, other entries unchanged."""
        if not isinstance(data, Mapping):
            raise ConfigError(
                f"{type(self).__name__} expects a dict of images (keys {list(self.keys)}), got "
                f"{type(data).__name__}. Fix: use the array transform {type(self.transform).__name__} on "
                "tensors."
            )
        if self.requires_all_keys and self.allow_missing_keys:
            present = [k for k in self.keys if k in data]
            if present and len(present) != len(self.keys):
                raise ConfigError(
                    f"{type(self).__name__} needs every modality {list(self.keys)} together (they are the "
                    f"GAN's channels); the data has only {present}."
                )
        out, applied = run_on_keys(
            self.transform,
            data,
            list(self.keys),  # type: ignore[arg-type]
            list(self.mask_keys),  # type: ignore[arg-type]
            self.key_field,
            self.allow_missing_keys,
            label_key=self.label_key,
        )
        self._do_transform = applied
        return out

    def __repr__(self) -> str:
        masks = f", mask_keys={list(self.mask_keys)}" if self.mask_keys else ""
        labels = f", label_key={self.label_key!r}" if self.label_key is not None else ""
        return f"{type(self).__name__}(keys={list(self.keys)}{masks}{labels}, transform={self.transform!r})"


def _build(cls: type[RandomTransformd], prob: float | None, kwargs: dict[str, Any]) -> RandomTransform:
    _require_monai(cls.__name__)
    assert cls.array_class is not None
    return cls.array_class(**_with_prob(cls.__name__, prob, kwargs))


class StandardDAd(RandomTransformd, InvertibleTransform):  # type: ignore[misc]
    """Dictionary variant of :class:`StandardDA` (flip, rotation, translation, elastic; one geometry
    per sample shared by every key), with masks; a MONAI ``InvertibleTransform``.

    ``keys`` (any number, e.g. ``["mri", "ct"]``) share each sample's geometry; ``mask_keys`` (e.g.
    ``["mask"]``) are resampled with it, nearest neighbour (background 0). Values keep their units,
    dtype, shape and MetaTensor metadata. ``prob`` is ``StandardDA``'s ``p`` (default 0.1, the paper's
    ``p_aug = 0.9``); the other keyword arguments go to :class:`StandardDA` (``rotate``, ``translate``,
    ``elastic``, ``elastic_alpha``, ``flip``, ``fill``, ``seed``, ``device``).

    **MONAI metadata and inverse** (as MONAI's ``RandAffined``). For every ``MetaTensor`` value the
    call updates the affine with the sample's flip, rotation and translation (``new_affine = affine @ M``,
    ``M`` the map from an output voxel to the input voxel it reads, :meth:`StandardDA.index_affine`), so
    world coordinates keep pointing at the same anatomy, and records the transform in
    ``applied_operations`` (``extra_info``: ``applied``, ``index_affine``, ``elastic``). A collated batch
    gets one record and one affine update per sample (``decollate_batch`` splits them). :meth:`inverse`
    pops the record and resamples each value back with ``M⁻¹`` (bilinear for images, nearest for
    masks; pixels that were moved out of the image come back as the fill), restoring the affine. The
    elastic displacement is not affine and has no stored inverse: the inverse undoes the flip, rotation
    and translation only, leaves the smooth elastic displacement (about ``elastic_alpha`` pixels at
    256 px) in place, and warns once. An item left alone (no sample drawn) is returned as it is and
    carries no record; its inverse leaves it alone too. Plain tensors and NumPy arrays carry no
    metadata: nothing is recorded for them.

    Example:
        >>> t = StandardDAd(["mri", "ct"], mask_keys=["mask"], prob=1.0, seed=0)
        >>> item = {"mri": torch.rand(1, 16, 16), "ct": torch.rand(1, 16, 16), "mask": torch.ones(1, 16, 16)}
        >>> out = t(item)
        >>> sorted(out), set(out["mask"].unique().tolist()) <= {0.0, 1.0}
        (['ct', 'mask', 'mri'], True)
        >>> from monai.data import MetaTensor
        >>> flip = StandardDAd(["mri"], prob=1.0, rotate=0, translate=0, elastic=None, seed=1)
        >>> out = flip({"mri": MetaTensor(torch.rand(1, 4, 4))})
        >>> record = out["mri"].applied_operations[-1]
        >>> record["class"], flip.inverse(out)["mri"].applied_operations
        ('StandardDAd', [])
    """

    array_class = StandardDA

    def __init__(
        self,
        keys: Hashable | Sequence[Hashable],
        mask_keys: Hashable | Sequence[Hashable] = (),
        *,
        prob: float | None = None,
        key_field: str | None = "key",
        allow_missing_keys: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            keys,
            _build(type(self), prob, kwargs),
            mask_keys=mask_keys,
            key_field=key_field,
            allow_missing_keys=allow_missing_keys,
        )
        self._warned_elastic = False

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        """Augment ``data``; record the geometry on every ``MetaTensor`` value (see the class docstring)."""
        out = super().__call__(data)
        if not self._do_transform:
            return out  # nothing drawn: the values are the inputs, with nothing to record
        params = self.transform.last_params
        assert params is not None
        for key in (*self.keys, *self.mask_keys):
            if key in out and isinstance(out[key], MetaTensor):
                out[key] = self._record(out[key], params, "mask" if key in self.mask_keys else "image")
        return out

    def _record(self, value: Any, params: Mapping[str, Any], kind: str) -> Any:
        height, width = value.shape[-2:]
        batch = params["batch"]
        matrices = self.transform.index_affine(params, batch, height, width)
        elastic = "noise" in params
        infos = []
        for i in range(batch):
            applied = bool(params["apply"][i])
            extra = {"applied": applied, "index_affine": matrices[i].tolist(), "elastic": elastic and applied}
            infos.append(
                {
                    **self.get_transform_info(),
                    TraceKeys.ORIG_SIZE: (int(height), int(width)),
                    TraceKeys.EXTRA_INFO: {**extra, "kind": kind},
                }
            )
        affine = value.affine.to(torch.float64)
        if value.is_batch:
            lifted = torch.stack([to_affine_nd(affine.shape[-1] - 1, m) for m in matrices])
            value.affine = affine @ lifted.to(affine)
            if not self.tracing:
                return value
            previous = value.applied_operations
            value.applied_operations = [
                [*(ops if isinstance(ops, list) else []), info]
                for ops, info in zip(
                    previous if isinstance(previous, list) else [None] * batch, infos, strict=True
                )
            ]
        else:
            value.affine = affine @ to_affine_nd(affine.shape[-1] - 1, matrices[0]).to(affine)
            if self.tracing:
                value.applied_operations = [*value.applied_operations, infos[0]]
        return value

    def inverse(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        """Undo the last call on a single item: each ``MetaTensor`` value whose last record is this
        transform's is resampled back with the inverse of its flip, rotation and translation (the elastic
        displacement stays; see the class docstring) and its affine restored. Batches: decollate first
        (``monai.data.decollate_batch``), as MONAI's inverses expect."""
        d = dict(data)
        for key in (*self.keys, *self.mask_keys):
            value = d.get(key)
            if not isinstance(value, MetaTensor):
                continue
            if value.is_batch:
                raise ConfigError(
                    f"{type(self).__name__}.inverse takes single items, but data[{key!r}] is a batch. Fix: "
                    "split it with monai.data.decollate_batch and invert each item."
                )
            ops = value.applied_operations
            if not ops or not self._transforms_match(ops[-1]):
                continue  # nothing recorded: the call left this item alone
            extra = ops[-1][TraceKeys.EXTRA_INFO]
            out = MetaTensor(value.as_tensor().clone())
            out.copy_meta_from(value)
            out.applied_operations = list(ops[:-1])
            if extra["applied"]:
                if extra["elastic"] and not self._warned_elastic:
                    self._warned_elastic = True
                    warnings.warn(
                        "StandardDAd.inverse undoes the flip, rotation and translation; the elastic "
                        "deformation (a smooth displacement of about elastic_alpha pixels at 256 px) has no "
                        "stored inverse and stays in the result.",
                        UserWarning,
                        stacklevel=2,
                    )
                matrix = torch.tensor(extra["index_affine"], dtype=torch.float64)
                inverse = torch.linalg.inv(matrix)
                out = self._resample(out, inverse, extra.get("kind", "image"))
                affine = out.affine.to(torch.float64)
                out.affine = affine @ to_affine_nd(affine.shape[-1] - 1, inverse).to(affine)
            d[key] = out
        return d

    def _resample(self, value: Any, matrix: torch.Tensor, kind: str) -> Any:
        plain = value.as_tensor()
        work = plain.to(torch.float64 if plain.dtype == torch.float64 else torch.float32)
        back = self.transform.resample_index_affine(work[None], matrix[None], kind)[0]
        result = MetaTensor(cast_like(back, plain))
        result.copy_meta_from(value)
        return result


StandardDAD = StandardDADict = StandardDAd


class LatentAugmentd(RandomTransformd):
    """Dictionary variant of :class:`LatentAugment`: the modality keys stacked in the GAN bundle's order,
    the latent ``w*`` found by the item's dataset key.

    ``keys`` name the bundle's modalities in its channel order (e.g. ``["mri", "ct"]``; another order is
    refused with the fix), each ``[1, R, R]`` (or ``[B, 1, R, R]``) at the GAN's resolution in physical
    units (``value_range`` as for :class:`LatentAugment`). When the item carries ``data[key_field]``
    (the library's datasets put ``"key": "<patient>/<slice>"``; one per sample in a batch), ``w*`` is
    looked up in the cache by that key (a cache made with ``latent-transforms invert --key dataset``);
    without a key, or when the cache holds none of the item's keys (a cache keyed by content, the
    default of ``latent-transforms invert``), by image content. ``prob`` is ``LatentAugment``'s ``p``
    (default: the preset's, 0.2 for ``"f1"``); the other keyword arguments go to :class:`LatentAugment`
    (``preset``, ``steps``, the weights, ``on_missing``, ``seed``, ``device``...). ``gan``, ``cache``
    and ``stats`` may be paths, loaded lazily in the process that first calls the transform.

    Example:
        >>> import shutil, tempfile
        >>> from latent_transforms import GanBundle, GanConfig, LatentCache
        >>> cfg = GanConfig(resolution=16, channel_base=256, channel_max=32, z_dim=16, w_dim=16)
        >>> bundle = GanBundle.random(cfg)
        >>> w = bundle.generator.mapping.w_avg.expand(2, -1)  # the inverted latents of two dataset items
        >>> folder = tempfile.mkdtemp()
        >>> cache = LatentCache(folder, fingerprint=bundle.fingerprint)
        >>> _ = cache.put_batch(["p0/0000", "p0/0001"], w); _ = cache.flush()
        >>> t = LatentAugmentd(["mri", "ct"], bundle, cache, prob=1.0, alpha_pix=0, alpha_perc=0, alpha_lat=0)
        >>> item = {"mri": torch.full((1, 16, 16), 500.0), "ct": torch.zeros(1, 16, 16), "key": "p0/0001"}
        >>> out = t(item)  # w* found by the key "p0/0001"
        >>> tuple(out["ct"].shape), out["key"], bool((out["mri"] != item["mri"]).any())
        ((1, 16, 16), 'p0/0001', True)
        >>> shutil.rmtree(folder)
    """

    array_class = LatentAugment
    requires_all_keys = True

    def __init__(
        self,
        keys: Hashable | Sequence[Hashable],
        gan: GanBundle | str | os.PathLike[str],
        cache: Any = None,
        stats: Any = None,
        *,
        prob: float | None = None,
        key_field: str | None = "key",
        allow_missing_keys: bool = False,
        **kwargs: Any,
    ) -> None:
        transform = _build(type(self), prob, {"gan": gan, "cache": cache, "stats": stats, **kwargs})
        super().__init__(keys, transform, key_field=key_field, allow_missing_keys=allow_missing_keys)
        if isinstance(gan, GanBundle):  # the modality names are at hand: check the order now
            check_channel_order(transform, [str(k) for k in self.keys])


class SG2Sampled(RandomTransformd):
    """Dictionary variant of :class:`SG2Sample` (standard SG2 DA: chosen samples replaced by GAN samples).

    ``keys`` name the bundle's modalities in its channel order (e.g. ``["mri", "ct"]``; another order is
    refused with the fix), each ``[1, R, R]`` (or ``[B, 1, R, R]``) in physical units; a replaced sample
    gets a new image in every key, metadata kept. ``prob`` is ``SG2Sample``'s ``p`` (default 0.3); the
    other keyword arguments go to :class:`SG2Sample` (``truncation_psi``, ``seed``, ``device``...).
    ``gan`` may be a path or Hub id, loaded lazily in the process that first calls the transform. With a
    conditional bundle, ``label_key`` names the entry whose class label(s) the new images get (an int, or
    one per sample in a batch; the entry passes through); without it the classes are drawn at random.

    Example:
        >>> from latent_transforms import GanBundle, GanConfig
        >>> cfg = GanConfig(resolution=16, channel_base=256, channel_max=32, z_dim=16, w_dim=16)
        >>> bundle = GanBundle.random(cfg)
        >>> t = SG2Sampled(["mri", "ct"], bundle, prob=1.0, truncation_psi=0.7, seed=0)
        >>> out = t({"mri": torch.zeros(1, 16, 16), "ct": torch.zeros(1, 16, 16)})
        >>> bool(out["ct"].min() >= -1000) and bool(out["ct"].max() <= 2000)  # CT in HU, in the window
        True
        >>> SG2Sampled(["ct", "mri"], bundle)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        latent_transforms.errors.ConfigError: keys=['ct', 'mri'] stack ... Fix: keys=['mri', 'ct'].
    """

    array_class = SG2Sample
    requires_all_keys = True

    def __init__(
        self,
        keys: Hashable | Sequence[Hashable],
        gan: GanBundle | str | os.PathLike[str],
        *,
        prob: float | None = None,
        key_field: str | None = "key",
        allow_missing_keys: bool = False,
        label_key: str | None = None,
        **kwargs: Any,
    ) -> None:
        transform = _build(type(self), prob, {"gan": gan, **kwargs})
        super().__init__(
            keys, transform, key_field=key_field, allow_missing_keys=allow_missing_keys, label_key=label_key
        )
        if isinstance(gan, GanBundle):
            check_channel_order(transform, [str(k) for k in self.keys])


class DiffusionSampled(RandomTransformd):
    """Dictionary variant of :class:`DiffusionSample` (chosen samples replaced by diffusion samples).

    ``keys`` name the bundle's modalities in its channel order (e.g. ``["image"]`` or ``["mri", "ct"]``;
    another order is refused with the fix), each ``[1, R, R]`` (or ``[B, 1, R, R]``) in physical units; a
    replaced sample gets a new image in every key, metadata kept. ``label_key`` names the entry whose
    class label(s) the new images get (an int, or one per sample in a batch; the entry passes through);
    without it a conditional bundle's classes are drawn at random. ``prob`` is ``DiffusionSample``'s
    ``p`` (default 0.3); the other keyword arguments go to :class:`DiffusionSample` (``steps``,
    ``sampler``, ``guidance``, ``seed``, ``device``...). ``diffusion`` may be a path or Hub id, loaded
    lazily in the process that first calls the transform.

    Example:
        >>> from latent_transforms import DiffusionBundle, DiffusionConfig
        >>> cfg = DiffusionConfig(resolution=8, c_dim=2, channels=(8, 8), attention_levels=(False, False),
        ...                       num_head_channels=8, norm_num_groups=8, timesteps=10)
        >>> t = DiffusionSampled(["mri", "ct"], DiffusionBundle.random(cfg), label_key="label", prob=1.0,
        ...                      steps=2, seed=0)
        >>> out = t({"mri": torch.zeros(1, 8, 8), "ct": torch.zeros(1, 8, 8), "label": 1})
        >>> out["label"], t.transform.last_params["labels"].tolist()
        (1, [1])
    """

    array_class = DiffusionSample
    requires_all_keys = True

    def __init__(
        self,
        keys: Hashable | Sequence[Hashable],
        diffusion: Any,
        *,
        prob: float | None = None,
        key_field: str | None = "key",
        allow_missing_keys: bool = False,
        label_key: str | None = None,
        **kwargs: Any,
    ) -> None:
        transform = _build(type(self), prob, {"diffusion": diffusion, **kwargs})
        super().__init__(
            keys, transform, key_field=key_field, allow_missing_keys=allow_missing_keys, label_key=label_key
        )
        if not isinstance(diffusion, (str, os.PathLike)):
            check_channel_order(transform, [str(k) for k in self.keys])


LatentAugmentD = LatentAugmentDict = LatentAugmentd
SG2SampleD = SG2SampleDict = SG2Sampled
DiffusionSampleD = DiffusionSampleDict = DiffusionSampled


def _skip_examples(doc: str | None) -> str | None:
    """Mark every doctest example of ``doc`` ``+SKIP`` (the examples need MONAI)."""
    if doc is None:
        return None
    return re.sub(r"^(\s*>>> .*)$", r"\1  # doctest: +SKIP", doc, flags=re.MULTILINE)


if _MONAI_IMPORT_ERROR is not None:  # pragma: no cover - the examples build MONAI transforms
    for _cls in (RandomTransformd, StandardDAd, LatentAugmentd, SG2Sampled, DiffusionSampled):
        _cls.__doc__ = _skip_examples(_cls.__doc__)
