"""The benchmark's data: open ``--data``, split it by patient, and serve paired MRI/CT slices.

Every split is a :class:`SliceSet`: a dataset of ``{"mri": [1, R, R], "ct": [1, R, R], "key": str}``
items in physical units (HU for CT; scanner units for MRI; 0-255 grey levels for 8-bit slice folders),
which is what the library's transforms take (``value_range="physical"``) and what the metrics score.
Small splits are loaded into memory once (the phantom at 64 px is a few MB); large ones (SynthRAD2023 at
256 px) are read lazily by the DataLoader's workers.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, Subset

import latent_transforms as lt
from latent_transforms.data import BODY_THRESHOLD_HU, open_paired_dataset
from latent_transforms.evaluation import evenly_spread

#: Preload a split into memory when its two float32 modalities take less than this many bytes.
PRELOAD_BYTES = 2 * 1024**3


class SliceSet(Dataset):
    """Paired slices of one split: items ``{"mri", "ct", "key"}``, each image ``[1, R, R]`` float32.

    Small splits are loaded into memory once. Large ones (SynthRAD2023 at 256 px: ~10 GB) are written
    once, in dataset order, to a float32 array on disk (``spill``, a ``.npy`` file opened as a memory map)
    and read from there: shuffled training batches then cost one memory-mapped read per slice instead of
    one volume read per slice.

    Args:
        items: a dataset of the library's paired items (``"mri"``, ``"ct"``, ``"key"``, ...).
        preload: ``True`` reads every item now into two tensors; ``False`` does not; ``"auto"``
            preloads when the split takes less than :data:`PRELOAD_BYTES`.
        spill: where a split that is not preloaded is stored (``None``: read ``items`` lazily, the slow
            path for volumes). A complete file from an earlier run with the same keys is reused.

    Example:
        >>> ds = SliceSet(lt.PelvisPhantom(2, 3, resolution=16), preload=True)
        >>> len(ds), ds[0]["ct"].shape, ds.keys[:2]
        (6, torch.Size([1, 16, 16]), ['phantom-000/0000', 'phantom-000/0001'])
    """

    def __init__(self, items: Any, *, preload: bool | str = "auto", spill: str | Path | None = None) -> None:
        self.items = items
        n = len(items)
        first = items[0] if n else None
        self.resolution = int(first["ct"].shape[-1]) if first is not None else 0
        size = n * 2 * 4 * self.resolution**2
        self.preloaded = bool(preload) if preload != "auto" else size < PRELOAD_BYTES
        self.mri: torch.Tensor | None = None
        self.ct: torch.Tensor | None = None
        self.spill = Path(spill) if spill is not None and not self.preloaded else None
        self._array: np.ndarray | None = None
        if self.preloaded and n:
            loaded = [items[i] for i in range(n)]
            self.mri = torch.stack([it["mri"].float() for it in loaded])
            self.ct = torch.stack([it["ct"].float() for it in loaded])
            self.keys = [str(it["key"]) for it in loaded]
        elif self.spill is not None and n:
            self.keys = self._write_spill(n)
        else:
            self.keys = [str(items[i]["key"]) for i in range(n)] if n else []

    def _write_spill(self, n: int) -> list[str]:
        assert self.spill is not None
        done = self.spill.with_suffix(".keys.json")
        if done.is_file() and self.spill.is_file():
            keys = json.loads(done.read_text())
            if len(keys) == n:
                return [str(k) for k in keys]
        self.spill.parent.mkdir(parents=True, exist_ok=True)
        shape = (n, 2, self.resolution, self.resolution)
        array = np.lib.format.open_memmap(self.spill, mode="w+", dtype=np.float32, shape=shape)
        keys = []
        for i in range(n):
            item = self.items[i]
            array[i, 0] = item["mri"][0].float().numpy()
            array[i, 1] = item["ct"][0].float().numpy()
            keys.append(str(item["key"]))
        array.flush()
        del array
        done.write_text(json.dumps(keys))  # written last: marks the file complete
        return keys

    def _spilled(self) -> np.ndarray:
        if self._array is None:  # opened lazily, also in each DataLoader worker
            self._array = np.load(self.spill, mmap_mode="r")
        return self._array

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_array": None}

    def __len__(self) -> int:
        return len(self.keys)

    def __getitem__(self, index: int) -> dict[str, Any]:
        if self.mri is not None and self.ct is not None:
            return {"mri": self.mri[index], "ct": self.ct[index], "key": self.keys[index]}
        if self.spill is not None:
            pair = torch.from_numpy(np.array(self._spilled()[index]))
            return {"mri": pair[:1], "ct": pair[1:], "key": self.keys[index]}
        item = self.items[index]
        return {"mri": item["mri"].float(), "ct": item["ct"].float(), "key": str(item["key"])}

    def stacked(self) -> tuple[torch.Tensor, torch.Tensor]:
        """All slices as ``(mri [N, 1, R, R], ct [N, 1, R, R])`` float32 on the CPU."""
        if self.mri is not None and self.ct is not None:
            return self.mri, self.ct
        items = [self[i] for i in range(len(self))]
        return torch.stack([it["mri"] for it in items]), torch.stack([it["ct"] for it in items])

    def __repr__(self) -> str:
        return f"SliceSet(n={len(self)}, resolution={self.resolution}, preloaded={self.preloaded})"


@dataclass
class BenchmarkData:
    """The three patient splits of the benchmark and how their values are read.

    Attributes:
        spec: the ``--data`` string.
        train: slices the GAN, the latent cache and every Pix2Pix model are trained on.
        val: held-out patients for the ``p`` sweep (Fig. 6) and the validation MAE.
        test: held-out patients for the final scores (Tables II, III, V; Fig. 4; the error maps).
        body_threshold: the body-mask threshold on CT, in the CT window's units (-500 HU; 42.5 for
            8-bit slices windowed from [-1000, 2000] HU).
        units: the CT window's unit (``"HU"``, ``"uint8"``...), the unit of MAE.
        dataset_windows: the windows the dataset itself declares (8-bit folders: ``[0, 255]``), or ``None``.
        info: sizes, patients and the split, for the report.

    Example:
        >>> data = open_benchmark_data("phantom:patients=10,slices=2", 16, max_slices=(4, 2, 2))
        >>> len(data.train), len(data.val), len(data.test), data.body_threshold
        (4, 2, 2, -500.0)
    """

    spec: str
    train: SliceSet
    val: SliceSet
    test: SliceSet
    body_threshold: float
    units: str
    dataset_windows: dict[str, lt.IntensityWindow] | None = None
    info: dict[str, Any] = field(default_factory=dict)


def _pick(split: Any, limit: int | None) -> Any:
    """``limit`` slices spread evenly over ``split`` (all when ``limit`` is ``None``)."""
    if limit is None or limit >= len(split):
        return split
    return Subset(split, evenly_spread(len(split), limit))


def open_benchmark_data(
    data: str,
    resolution: int,
    *,
    fractions: Sequence[float] = (0.7, 0.2, 0.1),
    split_seed: int = 0,
    max_slices: Sequence[int | None] = (None, None, None),
    preload: bool | str = "auto",
    spill_dir: str | Path | None = None,
) -> BenchmarkData:
    """Open ``data`` at ``resolution`` and split it by patient into train / val / test.

    Args:
        data: ``"phantom[:patients=N,slices=M,seed=S]"``, a SynthRAD2023-style folder
            (``<patient>/mr.nii.gz, ct.nii.gz``) or a :class:`~latent_transforms.PairedSliceFolder`.
        resolution: slice size in pixels (the GAN's).
        fractions: patient fractions of train / val / test (the paper: 70 / 20 / 10 %).
        split_seed: seed of the patient split (0: the split the built-in bundle was trained with).
        max_slices: at most this many slices per split, spread evenly (``--quick``); ``None``: all.
        preload: see :class:`SliceSet`.
        spill_dir: where splits too large for memory are stored as ``<split>.npy`` (see :class:`SliceSet`).

    Returns:
        A :class:`BenchmarkData`.

    Example:
        >>> data = open_benchmark_data("phantom:patients=10,slices=2", 16)
        >>> data.info["patients"], data.units
        ({'train': 7, 'val': 2, 'test': 1}, 'HU')
    """
    dataset = open_paired_dataset(data, resolution=resolution)
    splits = lt.split_dataset(dataset, tuple(float(f) for f in fractions), seed=split_seed)
    names = ("train", "val", "test")
    missing = [n for n in names if n not in splits or len(splits[n]) == 0]
    if missing:
        raise lt.ConfigError(
            f"the split {tuple(fractions)} of {data!r} leaves no patients for {missing}. Fix: give more "
            "patients or other fractions (--split 0.7,0.2,0.1 needs at least 10 patients)."
        )
    limits = list(max_slices) + [None] * (3 - len(max_slices))
    sets = {
        n: SliceSet(
            _pick(splits[n], limit),
            preload=preload,
            spill=Path(spill_dir) / f"{n}-{resolution}px.npy" if spill_dir is not None else None,
        )
        for n, limit in zip(names, limits, strict=False)
    }
    dataset_windows = getattr(dataset, "windows", None)
    threshold = float(getattr(dataset, "mask_threshold", BODY_THRESHOLD_HU))
    unit = "HU" if dataset_windows is None else dataset_windows["ct"].unit
    units = "grey levels" if unit in ("uint8", "") else unit
    info = {
        "data": str(data),
        "resolution": resolution,
        "split_fractions": [float(f) for f in fractions],
        "split_seed": split_seed,
        "patients": {n: len(splits[n].patients) for n in names},
        "slices_in_split": {n: len(splits[n]) for n in names},
        "slices_used": {n: len(sets[n]) for n in names},
    }
    return BenchmarkData(
        str(data), sets["train"], sets["val"], sets["test"], threshold, units, dataset_windows, info
    )
