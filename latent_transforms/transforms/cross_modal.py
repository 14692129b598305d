"""``CrossModalAugment``: labelled images of another modality, translated, in place of target images
(Yang & Xie's cross-modal augmentation), and the mixed training set it stands for.

Yang & Xie translate labelled source-modality images (MRI) into the target modality (CT) with an unpaired
translator and add them, with their source labels, to the target training set. Two ways to do that here:

- :func:`cross_modal_training_set`: the paper's way, offline: the target items plus every (or ``n``)
  translated source item, as one dataset with its labels;
- :class:`CrossModalAugment`: online, as a transform with the contract of the library's others: each
  target sample is replaced, with probability ``p``, by the translation of a source image drawn from the
  pool; the replaced sample's label becomes that source image's (:meth:`CrossModalAugment.with_labels`,
  or the MONAI dictionary variant ``CrossModalAugmentd``, which updates the item's label).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import torch
from torch.utils.data import Dataset

from latent_transforms.checks import GENERATOR_RANGE_LIMIT, check_image_batch, check_int
from latent_transforms.data.windows import IntensityWindow
from latent_transforms.errors import ConfigError
from latent_transforms.transforms.base import (
    VALUE_RANGES,
    RandomTransform,
    check_cuda_in_worker,
    to_working_range,
)
from latent_transforms.translation.bundle import TranslatorBundle
from latent_transforms.translation.data import UnpairedImages
from latent_transforms.translation.source import TranslatorSource

__all__ = ["CrossModalAugment", "MixedTrainingSet", "cross_modal_training_set"]


def _pool(source: Any, labels: Any) -> tuple[torch.Tensor, torch.Tensor | None, str | None]:
    """``(images, labels, forced range)`` of a source pool given as UnpairedImages, a tensor or a pair."""
    if isinstance(source, UnpairedImages):
        if labels is not None:
            raise ConfigError("source is UnpairedImages, which carry their labels; drop source_labels.")
        return source.images, source.labels, "generator"
    if isinstance(source, tuple) and len(source) == 2 and labels is None:
        source, labels = source
    images = torch.as_tensor(source)
    if images.ndim != 4 or images.shape[0] == 0:
        raise ConfigError(f"source must be a batch of images [N, C, R, R], got shape {tuple(images.shape)}.")
    values = None if labels is None else torch.as_tensor(labels).reshape(-1)
    if values is not None and len(values) != len(images):
        raise ConfigError(f"got {len(images)} source images but {len(values)} source labels.")
    return images, values, None


class CrossModalAugment(RandomTransform):
    """Replace each chosen target sample by a translated source-modality image (Yang & Xie).

    Input and output: ``[C, R, R]`` or ``[B, C, R, R]`` target-modality images (the translator's target
    channels and resolution) in the caller's range (``value_range``: ``"physical"`` through the
    translator's target windows, ``"unit"``, ``"generator"``; ``uint8`` 0-255); shape, dtype, device and
    memory layout are kept. Each sample is replaced with probability ``p`` by ``G(y)`` for a source
    image ``y`` drawn uniformly from ``source`` (the draw from the transform's generator), clamped to
    ``[-1, 1]`` before going back to the caller's range. The replaced sample's label is the source
    image's: :meth:`labels_for` gives it for drawn parameters, :meth:`with_labels` returns images and
    labels together, and the dictionary variant ``CrossModalAugmentd`` updates the item's label.

    Args:
        translator: a :class:`~latent_transforms.translation.TranslatorBundle` or a
            :func:`~latent_transforms.translation.load_translator` source (loaded lazily; pickles as the
            string).
        source: the pool of source-modality images ``[N, C_s, R, R]`` (or ``(images, labels)``, or
            :class:`~latent_transforms.translation.UnpairedImages`, already in ``[-1, 1]``).
        source_labels: ``[N]`` labels of the pool (classes or values); ``None``: labels not tracked.
        p: probability that a sample is replaced.
        value_range: what float inputs mean (see above).
        source_range: what the pool's values mean (default: ``value_range``; ``"physical"`` goes
            through the translator's source windows).
        seed: seed of the transform's generator.
        device: where the translator runs (default: the input's device).

    Example:
        >>> from latent_transforms.translation import TranslatorBundle, TranslatorConfig
        >>> translator = TranslatorBundle.random(TranslatorConfig(resolution=16, width=4, blocks=1))
        >>> mri = torch.rand(5, 1, 16, 16) * 1900              # the source pool, in T2 scanner units
        >>> t = CrossModalAugment(translator, mri, source_labels=torch.arange(5.0), p=1.0, seed=0)
        >>> ct = torch.zeros(3, 1, 16, 16)                     # target images, in HU
        >>> out, labels = t.with_labels(ct, torch.tensor([9.0, 9.0, 9.0]))
        >>> out.shape, bool(out.min() >= -1000 and out.max() <= 2000), bool((labels != 9).all())
        (torch.Size([3, 1, 16, 16]), True, True)
        >>> t
        CrossModalAugment(translator=TranslatorBundle(...), source=5 images, p=1.0, value_range='physical',
                          source_range='physical', device=None, seed=0)
    """

    needs_generator_range: ClassVar[bool] = True

    def __init__(
        self,
        translator: TranslatorBundle | str | os.PathLike[str],
        source: Any,
        source_labels: Any = None,
        *,
        p: float = 0.5,
        value_range: str = "physical",
        source_range: str | None = None,
        seed: int | None = None,
        device: torch.device | str | None = None,
    ) -> None:
        super().__init__(p=p, seed=seed, value_range=value_range, device=device)
        images, labels, forced = _pool(source, source_labels)
        source_range = forced or (value_range if source_range is None else source_range)
        if source_range not in VALUE_RANGES:
            raise ConfigError(f"source_range must be one of {VALUE_RANGES}, got {source_range!r}.")
        object.__setattr__(self, "_translator", TranslatorSource(translator))
        object.__setattr__(self, "_source", images)
        object.__setattr__(self, "_source_labels", labels)
        self.source_range = source_range
        object.__setattr__(self, "_working", None)

    # -- pickling: the pool as NumPy arrays (bytes travel to any worker) ---------------------------
    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        state["_working"] = None
        state["_source"] = self._source.numpy()
        labels = self._source_labels
        state["_source_labels"] = None if labels is None else labels.numpy()
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        state = dict(state)
        state["_source"] = torch.from_numpy(np.array(state["_source"]))
        if state["_source_labels"] is not None:
            state["_source_labels"] = torch.from_numpy(np.array(state["_source_labels"]))
        super().__setstate__(state)

    # -- the translator and the pool ----------------------------------------------------------------
    @property
    def translator(self) -> TranslatorBundle:
        """The translator bundle (loaded on first access when given as a source string)."""
        return self._translator.bundle()

    @property
    def source_labels(self) -> torch.Tensor | None:
        """The pool's labels ``[N]`` (``None`` when not given)."""
        return self._source_labels

    def __len__(self) -> int:
        return len(self._source)

    def source_images(self) -> torch.Tensor:
        """The pool in ``[-1, 1]`` (float32, CPU), converted once from ``source_range``."""
        if self._working is None:
            config = self._translator.config
            check_image_batch(
                self._source.float(),
                what="source images",
                channels=config.source_channels,
                resolution=config.resolution,
                context=f"the translator's source modalities {config.source_names}",
            )
            working = to_working_range(self._source, self.source_range, config.windows("source"))
            if self.source_range == "generator":
                check_image_batch(working, what="source images", value_limit=GENERATOR_RANGE_LIMIT)
            object.__setattr__(self, "_working", working.clamp(-1.0, 1.0).contiguous())
        return self._working

    def expected_channels(self) -> int | None:
        """The translator's target channels."""
        return self._translator.config.target_channels

    def expected_resolution(self) -> int | None:
        """The translator's resolution."""
        return self._translator.config.resolution

    def windows(self) -> Sequence[IntensityWindow] | None:
        """The translator's target windows, one per channel."""
        return self._translator.config.windows("target")

    def modality_names(self) -> list[str] | None:
        """The target modality names."""
        return self._translator.config.target_names

    # -- RandomTransform protocol ----------------------------------------------------------------------
    def draw_params(self, batch: int, generator: torch.Generator) -> dict[str, Any]:
        """``"index"`` ``[B]``: the source image each sample would be replaced by."""
        return {"index": torch.randint(len(self._source), (batch,), generator=generator)}

    def apply_batch(self, x: torch.Tensor, params: dict[str, Any], kind: str) -> torch.Tensor:
        """The translations of the chosen samples' source images, clamped to ``[-1, 1]``."""
        device = x.device
        check_cuda_in_worker(device)
        bundle = self._translator.bundle(device)
        pool = self.source_images()[params["index"]]
        return bundle.translate(pool.to(device)).clamp(-1.0, 1.0).to(x.dtype)

    def labels_for(self, params: dict[str, Any], labels: Any = None) -> torch.Tensor:
        """The labels after a call with ``params`` (``last_params``): the source label where a sample was
        replaced, ``labels`` (the input's, ``[B]``) elsewhere.

        Example:
            >>> from latent_transforms.translation import TranslatorBundle, TranslatorConfig
            >>> config = TranslatorConfig(resolution=8, width=2, blocks=0, downsamplings=1)
        >>> bundle = TranslatorBundle.random(config)
            >>> t = CrossModalAugment(bundle, torch.zeros(2, 1, 8, 8), torch.tensor([5, 6]), p=0.0,
            ...                       value_range="generator", seed=0)
            >>> _ = t(torch.zeros(3, 1, 8, 8))
            >>> t.labels_for(t.last_params, torch.tensor([1, 1, 1])).tolist()
            [1, 1, 1]
        """
        if self._source_labels is None:
            raise ConfigError(
                "this CrossModalAugment was built without source_labels, so labels are not tracked."
            )
        replaced = params["apply"]
        chosen = self._source_labels[params["index"]]
        if labels is None:
            if not bool(replaced.all()):
                raise ConfigError("some samples were kept; pass their labels to labels_for(params, labels).")
            return chosen.clone()
        given = torch.as_tensor(labels).reshape(-1)
        if len(given) != len(replaced):
            raise ConfigError(f"got {len(given)} labels for a batch of {len(replaced)}.")
        out = given.to(torch.promote_types(given.dtype, chosen.dtype)).clone()
        out[replaced] = chosen[replaced].to(out.dtype)
        return out

    def with_labels(self, images: torch.Tensor, labels: Any) -> tuple[torch.Tensor, torch.Tensor]:
        """``(augmented images, their labels)``: one call, the replaced samples' labels swapped in.

        Example:
            >>> from latent_transforms.translation import TranslatorBundle, TranslatorConfig
            >>> config = TranslatorConfig(resolution=8, width=2, blocks=0, downsamplings=1)
        >>> bundle = TranslatorBundle.random(config)
            >>> t = CrossModalAugment(bundle, torch.zeros(2, 1, 8, 8), torch.tensor([5, 5]), p=1.0,
            ...                       value_range="generator", seed=0)
            >>> t.with_labels(torch.zeros(2, 1, 8, 8), torch.tensor([0, 1]))[1].tolist()
            [5, 5]
        """
        out = self(images)
        params = self.last_params
        assert params is not None
        return out, self.labels_for(params, labels)

    def repr_params(self) -> dict[str, Any]:
        """The translator, the pool's size and the other constructor parameters."""
        return {
            "translator": _Shown(self._translator.describe()),
            "source": _Shown(f"{len(self._source)} images"),
            "p": self.p,
            "value_range": self.value_range,
            "source_range": self.source_range,
            "device": None if self.device is None else str(self.device),
            "seed": self.seed,
        }


class _Shown:
    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text


@dataclass
class MixedTrainingSet(Dataset[dict[str, Any]]):
    """Target-modality training items and translated source items with their labels (Yang & Xie's
    ``{(x_i, r_i)} ∪ {(G(y_i), r_i^(s))}``).

    Attributes:
        images: ``[N, C_t, R, R]`` float32 in ``[-1, 1]``: the target items first, then the translations.
        labels: ``[N]`` (``None`` when the inputs had none).
        translated: ``[N]`` bool, ``True`` for the translated source items.
        keys: one name per item (``"target/<key>"``, ``"translated/<key>"``).

    Items are ``{"image", "label", "key", "translated"}`` (``label`` a Python number).

    Example:
        >>> s = MixedTrainingSet(torch.zeros(2, 1, 4, 4), torch.tensor([1, 0]), torch.tensor([False, True]))
        >>> item = s[1]
        >>> item["label"], item["translated"], item["key"], s.tensors()[0].shape
        (0, True, 'translated/00001', torch.Size([2, 1, 4, 4]))
    """

    images: torch.Tensor
    labels: torch.Tensor | None
    translated: torch.Tensor
    keys: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        n = len(self.images)
        self.keys = list(self.keys) or [
            f"{'translated' if bool(t) else 'target'}/{i:05d}" for i, t in enumerate(self.translated)
        ]
        if (
            len(self.translated) != n
            or len(self.keys) != n
            or (self.labels is not None and len(self.labels) != n)
        ):
            raise ConfigError("images, labels, translated and keys need one entry per item.")

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> dict[str, Any]:
        item: dict[str, Any] = {
            "image": self.images[index],
            "key": self.keys[index],
            "translated": bool(self.translated[index]),
        }
        if self.labels is not None:
            item["label"] = self.labels[index].item()
        return item

    def tensors(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``(images, labels)`` for a training loop."""
        return self.images, self.labels

    def __repr__(self) -> str:
        n_t = int(self.translated.sum())
        return f"MixedTrainingSet(n={len(self)}, target={len(self) - n_t}, translated={n_t})"


def _as_pair(data: Any, labels: Any, what: str) -> tuple[torch.Tensor, torch.Tensor | None, list[str]]:
    if isinstance(data, UnpairedImages):
        return data.images, data.labels, list(data.keys)
    if isinstance(data, tuple) and len(data) == 2 and labels is None:
        data, labels = data
    images = check_image_batch(
        torch.as_tensor(data).float(), what=f"{what} images", value_limit=GENERATOR_RANGE_LIMIT
    )
    values = None if labels is None else torch.as_tensor(labels).reshape(-1)
    return images, values, [f"{i:05d}" for i in range(len(images))]


def cross_modal_training_set(
    translator: TranslatorBundle,
    target: Any,
    source: Any,
    *,
    target_labels: Any = None,
    source_labels: Any = None,
    n_translated: int | None = None,
    seed: int = 0,
    batch_size: int = 64,
) -> MixedTrainingSet:
    """The target training set with translated, labelled source images added (Yang & Xie's "MIX").

    Args:
        translator: the source -> target translator.
        target: target images in ``[-1, 1]`` ``[N_t, C_t, R, R]`` (or ``(images, labels)``, or
            :class:`~latent_transforms.translation.UnpairedImages`).
        source: source images in ``[-1, 1]`` ``[N_s, C_s, R, R]`` (likewise).
        target_labels: the target images' labels, for a tensor (give both or neither).
        source_labels: the source images' labels, likewise.
        n_translated: how many source images to translate and add (``None``: all; otherwise a seeded
            random subset without replacement).
        seed: the subset's seed.
        batch_size: images per translator call.

    Example:
        >>> from latent_transforms.translation import TranslatorBundle, TranslatorConfig
        >>> config = TranslatorConfig(resolution=8, width=2, blocks=0, downsamplings=1)
        >>> bundle = TranslatorBundle.random(config)
        >>> mixed = cross_modal_training_set(bundle, torch.zeros(3, 1, 8, 8), torch.zeros(4, 1, 8, 8),
        ...                                  target_labels=[0.1, 0.2, 0.3],
        ...                                  source_labels=[1.0, 2.0, 3.0, 4.0], n_translated=2)
        >>> len(mixed), mixed.translated.tolist(), mixed.labels.shape
        (5, [False, False, False, True, True], torch.Size([5]))
    """
    tx, ty, tkeys = _as_pair(target, target_labels, "target")
    sx, sy, skeys = _as_pair(source, source_labels, "source")
    if (ty is None) != (sy is None):
        raise ConfigError("give labels for both the target and the source images, or for neither.")
    n = len(sx) if n_translated is None else check_int("n_translated", n_translated, low=0, high=len(sx))
    chosen = torch.randperm(len(sx), generator=torch.Generator().manual_seed(seed))[:n].sort().values
    translated = (
        translator.translate(sx[chosen], batch_size=batch_size).clamp(-1.0, 1.0).cpu() if n else tx[:0]
    )
    if translated.shape[1:] != tx.shape[1:]:
        raise ConfigError(
            f"the translations are {tuple(translated.shape[1:])} but the target images {tuple(tx.shape[1:])}."
        )
    labels = None
    if ty is not None and sy is not None:
        kind = torch.promote_types(ty.dtype, sy.dtype)
        labels = torch.cat([ty.to(kind), sy[chosen].to(kind)])
    keys = [f"target/{k}" for k in tkeys] + [f"translated/{skeys[i]}" for i in chosen.tolist()]
    flags = torch.cat([torch.zeros(len(tx), dtype=torch.bool), torch.ones(n, dtype=torch.bool)])
    return MixedTrainingSet(torch.cat([tx.cpu(), translated]), labels, flags, keys)
