"""``PairedVolumeDataset``: 2D slices of co-registered NIfTI volumes (SynthRAD2023 layout or explicit pairs).

nibabel is an optional dependency (``pip install 'latent-transforms[nifti]'``); it is imported only when a
dataset is built or a volume is read. With ``meta=True`` the items are MONAI ``MetaTensor`` s carrying
each slice's affine (``pip install 'latent-transforms[monai]'``).
"""

from __future__ import annotations

import bisect
import os
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from latent_transforms.data.items import BODY_THRESHOLD_HU, body_mask, check_modalities, item_key
from latent_transforms.data.resize import as_size, resize_image, resize_mask
from latent_transforms.errors import ConfigError, MissingDependencyError

NIFTI_INSTALL = "pip install 'latent-transforms[nifti]'"
MONAI_INSTALL = "pip install 'latent-transforms[monai]'"
SYNTHRAD_FILES: dict[str, str] = {"mri": "mr.nii.gz", "ct": "ct.nii.gz", "mask": "mask.nii.gz"}
_SEPARATORS = "_-. "

PathLike = str | os.PathLike[str]


def _nibabel() -> ModuleType:
    """Import nibabel, or raise :class:`MissingDependencyError` naming the extra that installs it."""
    try:
        import nibabel
    except ImportError as exc:
        raise MissingDependencyError(
            "PairedVolumeDataset reads NIfTI files with nibabel, an optional dependency that is not "
            f"installed (import failed: {exc}). Install it with: {NIFTI_INSTALL}"
        ) from exc
    return nibabel


def _stem(path: PathLike) -> str:
    name = Path(path).name
    if name.lower().endswith(".gz"):
        name = name[:-3]
    stem, _ = os.path.splitext(name)
    return stem or name


def _common_token_prefix(names: Sequence[str]) -> str:
    n = min(len(s) for s in names)
    for i in range(n):
        if any(s[i] != names[0][i] for s in names):
            n = i
            break
    while n > 0 and not all(len(s) == n or s[n] in _SEPARATORS for s in names):
        n -= 1
    return names[0][:n].rstrip(_SEPARATORS)


def patient_id_from_files(paths: Sequence[PathLike]) -> str:
    """A stable patient id for one group of files (one file per modality) of the flat layout.

    Tried in order, on the file names without their extension (``.nii.gz``, ``.nii``, ...):

    1. the leading tokens all names share (tokens are separated by ``_``, ``-``, ``.`` or space);
    2. the trailing tokens all names share;
    3. the name of the folder all files sit in, if they share one;
    4. the first file's name.

    Args:
        paths: one path per modality (and optionally the mask), e.g. ``("1PA001_mr.nii.gz", ...)``.

    Returns:
        The id (non-empty ``str``); it depends only on the names, never on the order of the groups.

    Example:
        >>> patient_id_from_files(["data/1PA001_mr.nii.gz", "data/1PA001_ct.nii.gz"])
        '1PA001'
        >>> patient_id_from_files(["mr_017.nii", "ct_017.nii"])
        '017'
        >>> patient_id_from_files(["pelvis/p3/mr.nii.gz", "pelvis/p3/ct.nii.gz"])
        'p3'
    """
    if not paths:
        raise ConfigError(
            "patient_id_from_files needs at least one path; got none. Give one path per modality."
        )
    stems = [_stem(p) for p in paths]
    prefix = _common_token_prefix(stems)
    if prefix:
        return prefix
    suffix = _common_token_prefix([s[::-1] for s in stems])[::-1]
    if suffix:
        return suffix
    parents = {Path(p).parent.name for p in paths}
    if len(parents) == 1 and (parent := parents.pop()):
        return parent
    return stems[0]


@dataclass(frozen=True)
class _Patient:
    """One patient's files, volume shape and affine (from the NIfTI headers of its first modality)."""

    name: str
    paths: tuple[tuple[str, str], ...]  # (modality, path) in modality order
    mask: str | None
    shape: tuple[int, int, int]
    affine: np.ndarray = field(default_factory=lambda: np.eye(4), compare=False)  # voxel -> world (mm)


def _header(path: str) -> tuple[tuple[int, ...], np.ndarray]:
    """The voxel shape and the 4 x 4 affine stored in a NIfTI header; reads no voxel data."""
    nib = _nibabel()
    try:
        image = nib.load(path)
    except Exception as exc:  # nibabel raises several types (ImageFileError, OSError, EOFError, ...)
        raise ConfigError(
            f"expected a NIfTI file readable by nibabel at {path}, but reading its header failed: {exc}. "
            "Check that the file is complete and is .nii or .nii.gz."
        ) from exc
    return tuple(int(s) for s in image.shape), np.asarray(image.affine, dtype=np.float64)


def _meta_tensor() -> Any:
    """MONAI's ``MetaTensor`` class, or :class:`MissingDependencyError` naming the extra that installs it."""
    try:
        from monai.data import MetaTensor
    except ImportError as exc:
        raise MissingDependencyError(
            "PairedVolumeDataset(meta=True) returns MONAI MetaTensors, but MONAI is not installed (import "
            f"failed: {exc}). Install it with: {MONAI_INSTALL}, or leave meta=False."
        ) from exc
    return MetaTensor


def _as_3d(shape: tuple[int, ...], path: str) -> tuple[int, int, int]:
    if len(shape) >= 3 and all(s == 1 for s in shape[3:]):
        return shape[0], shape[1], shape[2]
    raise ConfigError(
        f"expected a 3D volume (or 4D+ with trailing size-1 axes) in {path}; its header says shape {shape}. "
        "Give one 3D volume per modality."
    )


def _read_volume(path: str, shape: tuple[int, int, int], *, binary: bool) -> np.ndarray:
    """All voxels of one file: ``float32`` physical values (scaling applied), or ``bool`` for masks."""
    nib = _nibabel()
    image = nib.load(path)
    data = np.asanyarray(image.dataobj) != 0 if binary else image.get_fdata(dtype=np.float32)
    return np.asarray(data).reshape(shape)


class PairedVolumeDataset(Dataset[dict[str, Any]]):
    """2D slices of co-registered NIfTI volumes, one item per slice (see :mod:`latent_transforms.data.items`).

    **Layouts.**

    - SynthRAD2023 (``root_or_pairs`` a folder): one sub-folder per patient holding ``files[m]`` for
      every modality ``m`` and optionally ``files["mask"]``; the patient id is the folder name. Folders
      holding none of the modality files (e.g. SynthRAD's ``overview``) and hidden folders are skipped; a
      folder holding only some of them is an error.
    - Flat pairs: a sequence of ``(mri_path, ct_path)`` tuples (one path per modality, in ``modalities``
      order, optionally followed by a mask path), whose patient id is :func:`patient_id_from_files`; or a
      mapping ``{patient: (mri_path, ct_path[, mask_path])}``.

    Patients are sorted by id; items are patient-major, then by slice.

    **Slices.** Slice ``k`` runs along voxel axis ``axis`` (default 2, the last one); the first and the last
    ``drop_slices`` slices of every volume are dropped (the paper drops 10 at each end), so a patient with
    ``n`` slices gives ``n - 2 * drop_slices`` items and ``item["slice"]`` is ``k`` in the volume. A patient
    with fewer than ``2 * drop_slices + 1`` slices raises :class:`~latent_transforms.errors.ConfigError`
    when the dataset is built (nothing is dropped silently); exclude it with ``patients=`` or lower
    ``drop_slices``.

    **Orientation.** Voxels keep nibabel's array order (no reorientation to RAS/LPS, no flips). Each
    slice is transposed so that rows follow the later remaining voxel axis and columns the earlier one:
    for ``axis=2``, ``item[m][0, row, col]`` is voxel ``(col, row, k)`` (rows = y, columns = x, the way
    an axial slice is displayed with ``imshow``). If your files store y the other way round, flip with
    ``torch.flip(x, dims=[-2])``.

    **Values.** Each modality is ``float32`` ``[1, H, W]`` in physical units (the NIfTI scaling is applied),
    resized from the volume's in-plane size with bilinear interpolation (``align_corners=False``,
    antialiased when shrinking; the paper resizes 512 -> 256). ``"mask"`` is the mask file's slice
    (non-zero = 1, resized nearest) when the patient has one, else
    :func:`~latent_transforms.data.items.body_mask` of the returned ``"ct"`` with ``mask_threshold``, else
    (no mask file and no ``"ct"`` modality) all ones.

    **Affine.** With ``meta=True`` every image (and the mask) is a MONAI ``MetaTensor`` whose ``affine``
    (4 x 4, ``float64``) maps the item's array index ``(row, column, 0)`` to the world coordinates
    (millimetres, nibabel's RAS+) of the first modality's NIfTI header, resize included:
    :meth:`slice_affine`. Its ``meta`` also holds ``filename_or_obj`` (the file), ``original_affine`` (the
    volume's affine) and ``slice``. The default (``meta=False``) returns plain tensors.

    **I/O.** Building the dataset reads only the NIfTI headers (shapes, through nibabel's lazy proxies).
    Volumes are read whole on first use and kept in a per-process LRU cache of ``cache_volumes`` patients,
    so iterating one patient's slices in order reads each file once. With a shuffling sampler most items
    come from another patient, so keep ``cache_volumes`` small (a 512x512x100 ``float32`` volume is
    100 MB). The dataset holds only paths, never open files: it pickles for ``DataLoader`` workers, each of
    which gets an empty cache.

    Args:
        root_or_pairs: SynthRAD2023-style folder, sequence of path tuples, or ``{patient: paths}``.
        resolution: output side length (or ``(height, width)``); ``None`` keeps the volume's size.
        drop_slices: slices dropped at each end of every volume (``>= 0``).
        modalities: item keys, in the order of the paths of the flat layout.
        files: SynthRAD layout: file name of each modality and of the optional ``"mask"``; default
            ``{"mri": "mr.nii.gz", "ct": "ct.nii.gz", "mask": "mask.nii.gz"}`` restricted to ``modalities``.
        patients: keep only these patient ids (``None``: all).
        axis: voxel axis the slices run along (0, 1 or 2; negative counts from the end).
        cache_volumes: how many patients' volumes each process keeps in memory (0 = none).
        mask_threshold: body-mask threshold on ``"ct"`` in its units (paper: -500 HU).
        meta: return MONAI ``MetaTensor`` s carrying each slice's affine (see **Affine**).

    Raises:
        ConfigError: bad arguments, missing or unreadable files, modalities of a patient with different
            shapes, or a patient with too few slices.
        MissingDependencyError: nibabel is not installed (or MONAI, with ``meta=True``).

    Example:
        >>> import os, tempfile, nibabel as nib, numpy as np
        >>> ct = np.full((64, 48, 30), -1000, np.int16)  # voxel axes x, y, z; air
        >>> ct[16:48, 12:36] = 40  # a body: half of x, half of y
        >>> with tempfile.TemporaryDirectory() as root:
        ...     for patient in ["1PA001", "1PA002"]:
        ...         os.makedirs(f"{root}/{patient}")
        ...         nib.save(nib.Nifti1Image(ct, np.eye(4)), f"{root}/{patient}/ct.nii.gz")
        ...         nib.save(nib.Nifti1Image(ct + 1000.0, np.eye(4)), f"{root}/{patient}/mr.nii.gz")
        ...     ds = PairedVolumeDataset(root, resolution=32, drop_slices=10)
        ...     item = ds[0]
        >>> len(ds), ds.patients, ds.slices_of("1PA002")[:3]
        (20, ['1PA001', '1PA002'], [10, 11, 12])
        >>> item["mri"].shape, item["ct"].dtype, item["key"], item["mask"].mean().item()
        (torch.Size([1, 32, 32]), torch.float32, '1PA001/0010', 0.25)
    """

    def __init__(
        self,
        root_or_pairs: PathLike | Sequence[Sequence[PathLike]] | Mapping[str, Sequence[PathLike]],
        resolution: int | tuple[int, int] | None = 256,
        drop_slices: int = 10,
        modalities: Sequence[str] = ("mri", "ct"),
        files: Mapping[str, str] | None = None,
        patients: Sequence[str] | None = None,
        axis: int = 2,
        cache_volumes: int = 2,
        mask_threshold: float = BODY_THRESHOLD_HU,
        meta: bool = False,
    ) -> None:
        _nibabel()  # fail first, with the install hint
        if not isinstance(meta, bool):
            raise ConfigError(f"meta must be True or False; got {meta!r}.")
        if meta:
            _meta_tensor()
        self.meta = meta
        self.modalities: tuple[str, ...] = _check_modalities(modalities)
        self.resolution: tuple[int, int] | None = None if resolution is None else as_size(resolution)
        if isinstance(drop_slices, bool) or not isinstance(drop_slices, int) or drop_slices < 0:
            raise ConfigError(f"drop_slices must be an int >= 0; got {drop_slices!r}. The paper uses 10.")
        self.drop_slices = drop_slices
        if isinstance(axis, bool) or not isinstance(axis, int) or not -3 <= axis <= 2:
            raise ConfigError(
                f"axis must be 0, 1 or 2 (or -3..-1); got {axis!r}. Axial slices are usually axis=2."
            )
        self.axis = axis % 3
        if isinstance(cache_volumes, bool) or not isinstance(cache_volumes, int) or cache_volumes < 0:
            raise ConfigError(f"cache_volumes must be an int >= 0; got {cache_volumes!r}. Example: 2.")
        self.cache_volumes = cache_volumes
        self.mask_threshold = float(mask_threshold)
        self.files: dict[str, str] = _check_files(files, self.modalities)

        if isinstance(root_or_pairs, str | os.PathLike):
            self.root: str | None = str(root_or_pairs)
            found = _discover_folders(Path(root_or_pairs), self.modalities, self.files)
        else:
            self.root = None
            found = _discover_pairs(root_or_pairs, self.modalities)
        found = _select(found, patients)
        self._records: list[_Patient] = [self._record(name, paths) for name, paths in sorted(found.items())]
        self._starts: list[int] = []
        total = 0
        for record in self._records:
            self._starts.append(total)
            total += record.shape[self.axis] - 2 * self.drop_slices
        self._length = total
        self._cache: OrderedDict[str, dict[str, np.ndarray]] = OrderedDict()

    # -- index -----------------------------------------------------------------------------------
    def _record(self, name: str, paths: dict[str, str]) -> _Patient:
        headers = {key: _header(path) for key, path in paths.items()}
        shapes = {key: _as_3d(headers[key][0], path) for key, path in paths.items()}
        reference = shapes[self.modalities[0]]
        for key, shape in shapes.items():
            if shape != reference:
                raise ConfigError(
                    f"patient {name!r}: expected every volume to have the shape of its "
                    f"{self.modalities[0]} {reference}, but its {key} has shape {shape} "
                    f"({paths[self.modalities[0]]} vs {paths[key]}). Resample the volumes onto one grid "
                    "(paired datasets need co-registered volumes) or leave the patient out with patients=."
                )
        count = reference[self.axis]
        if count < 2 * self.drop_slices + 1:
            raise ConfigError(
                f"patient {name!r} has {count} slices along axis {self.axis} (shape {reference}), but "
                f"drop_slices={self.drop_slices} needs at least {2 * self.drop_slices + 1}. Lower "
                "drop_slices, check axis, or leave the patient out with patients=."
            )
        return _Patient(
            name=name,
            paths=tuple((m, paths[m]) for m in self.modalities),
            mask=paths.get("mask"),
            shape=reference,
            affine=headers[self.modalities[0]][1],
        )

    def _locate(self, index: int) -> tuple[_Patient, int]:
        if isinstance(index, bool) or not isinstance(index, int | np.integer):
            raise TypeError(f"dataset indices are ints; got {type(index).__name__}.")
        index = int(index)
        if index < 0:
            index += self._length
        if not 0 <= index < self._length:
            raise IndexError(f"index out of range for a dataset of {self._length} slices")
        position = bisect.bisect_right(self._starts, index) - 1
        record = self._records[position]
        return record, self.drop_slices + index - self._starts[position]

    def _position(self, patient: str) -> int:
        for position, record in enumerate(self._records):
            if record.name == patient:
                return position
        raise ConfigError(
            f"expected one of this dataset's {len(self._records)} patients, got {patient!r}; "
            f"it has e.g. {self.patients[:5]}. Use dataset.patients for the full list."
        )

    @property
    def patients(self) -> list[str]:
        """Sorted patient ids (one per volume group)."""
        return [record.name for record in self._records]

    def patient_of(self, index: int) -> str:
        """The patient of item ``index`` (no file is read)."""
        return self._locate(index)[0].name

    def indices_of(self, patient: str) -> list[int]:
        """Dataset indices of ``patient``'s items, in slice order."""
        position = self._position(patient)
        start = self._starts[position]
        record = self._records[position]
        return list(range(start, start + record.shape[self.axis] - 2 * self.drop_slices))

    def slices_of(self, patient: str) -> list[int]:
        """The volume slice numbers ``patient`` contributes (``item["slice"]`` values), ascending."""
        record = self._records[self._position(patient)]
        return list(range(self.drop_slices, record.shape[self.axis] - self.drop_slices))

    def volume_shape(self, patient: str) -> tuple[int, int, int]:
        """``patient``'s voxel shape, from the NIfTI header."""
        return self._records[self._position(patient)].shape

    def slice_affine(self, index: int) -> np.ndarray:
        """The 4 x 4 affine of item ``index``: its array index ``(row, column, 0)`` -> world millimetres.

        Row and column follow the voxel axes of the slice (see **Orientation**), the third index the
        slice axis; the resize to ``resolution`` scales the steps and shifts the origin by the
        ``align_corners=False`` pixel-centre rule. No file is read.
        """
        record, k = self._locate(index)
        col_axis, row_axis = (a for a in range(3) if a != self.axis)
        voxel = np.zeros((4, 4))  # item index (row, column, 0, 1) -> voxel index of the volume
        voxel[row_axis, 0] = voxel[col_axis, 1] = voxel[self.axis, 2] = 1.0
        voxel[self.axis, 3] = k
        voxel[3, 3] = 1.0
        scale = np.eye(4)  # resized index -> index before the resize (pixel centres)
        if self.resolution is not None:
            before = (record.shape[row_axis], record.shape[col_axis])
            for dim, (n_in, n_out) in enumerate(zip(before, self.resolution, strict=True)):
                scale[dim, dim] = n_in / n_out
                scale[dim, 3] = 0.5 * n_in / n_out - 0.5
        return record.affine @ voxel @ scale

    # -- data ------------------------------------------------------------------------------------
    def _volumes(self, record: _Patient) -> dict[str, np.ndarray]:
        volumes = self._cache.get(record.name)
        if volumes is not None:
            self._cache.move_to_end(record.name)
            return volumes
        volumes = {m: _read_volume(path, record.shape, binary=False) for m, path in record.paths}
        if record.mask is not None:
            volumes["mask"] = _read_volume(record.mask, record.shape, binary=True)
        if self.cache_volumes > 0:
            self._cache[record.name] = volumes
            while len(self._cache) > self.cache_volumes:
                self._cache.popitem(last=False)
        return volumes

    def _slice(self, volume: np.ndarray, k: int) -> torch.Tensor:
        plane = np.ascontiguousarray(np.take(volume, k, axis=self.axis).T)
        return torch.from_numpy(plane)[None]

    def __len__(self) -> int:
        return self._length

    def __getitem__(self, index: int) -> dict[str, Any]:
        record, k = self._locate(index)
        volumes = self._volumes(record)
        item: dict[str, Any] = {}
        for modality in self.modalities:
            image = self._slice(volumes[modality], k)
            item[modality] = image if self.resolution is None else resize_image(image, self.resolution)
        if "mask" in volumes:
            mask = self._slice(volumes["mask"], k)
            item["mask"] = resize_mask(mask, self.resolution or (mask.shape[-2], mask.shape[-1]))
        elif "ct" in item:
            item["mask"] = body_mask(item["ct"], self.mask_threshold)
        else:
            item["mask"] = torch.ones_like(item[self.modalities[0]])
        if self.meta:
            self._attach_meta(item, record, k, index)
        item["patient"] = record.name
        item["slice"] = k
        item["key"] = item_key(record.name, k)
        return item

    def _attach_meta(self, item: dict[str, Any], record: _Patient, k: int, index: int) -> None:
        """Wrap the images and the mask of ``item`` in MetaTensors with the slice's affine."""
        meta_tensor = _meta_tensor()
        affine = torch.as_tensor(self.slice_affine(index), dtype=torch.float64)
        files = dict(record.paths)
        for key in (*self.modalities, "mask"):
            source = files.get(
                key, record.mask if key == "mask" and record.mask else files[self.modalities[0]]
            )
            meta = {"filename_or_obj": source, "original_affine": record.affine.copy(), "slice": k}
            item[key] = meta_tensor(item[key], affine=affine.clone(), meta=meta)

    # -- pickling (DataLoader workers) -------------------------------------------------------------
    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_cache"] = OrderedDict()
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)

    def __repr__(self) -> str:
        source = f"root={self.root!r}" if self.root is not None else f"pairs={len(self._records)}"
        resolution = None if self.resolution is None else list(self.resolution)
        return (
            f"{type(self).__name__}({source}, patients={len(self._records)}, slices={self._length}, "
            f"resolution={resolution}, drop_slices={self.drop_slices}, modalities={self.modalities}, "
            f"axis={self.axis}, cache_volumes={self.cache_volumes}, mask_threshold={self.mask_threshold}"
            f"{', meta=True' if self.meta else ''})"
        )


# -- discovery ---------------------------------------------------------------------------------------
def _check_modalities(modalities: Sequence[str]) -> tuple[str, ...]:
    return check_modalities(modalities)


def _check_files(files: Mapping[str, str] | None, modalities: tuple[str, ...]) -> dict[str, str]:
    if files is None:
        missing = [m for m in modalities if m not in SYNTHRAD_FILES]
        if missing:
            raise ConfigError(
                f"no default file name for modalities {missing} (defaults: {SYNTHRAD_FILES}). "
                f"Give them, e.g. files={{{missing[0]!r}: '{missing[0]}.nii.gz', ...}}."
            )
        return {key: SYNTHRAD_FILES[key] for key in (*modalities, "mask")}
    unknown = sorted(set(files) - {*modalities, "mask"})
    missing = [m for m in modalities if m not in files]
    if unknown or missing:
        raise ConfigError(
            f"files must name one file per modality {list(modalities)} plus optionally 'mask'; got keys "
            f"{sorted(files)} (missing {missing}, unknown {unknown}). "
            "Example: files={'mri': 'mr.nii.gz', 'ct': 'ct.nii.gz', 'mask': 'mask.nii.gz'}."
        )
    return {key: str(files[key]) for key in (*modalities, "mask") if key in files}


def _discover_folders(
    root: Path, modalities: tuple[str, ...], files: dict[str, str]
) -> dict[str, dict[str, str]]:
    if not root.is_dir():
        raise ConfigError(
            f"expected a folder of patient sub-folders (SynthRAD2023 layout), got {str(root)!r}, which is "
            "not a folder. Check the path, or pass a list of (mri_path, ct_path) pairs."
        )
    found: dict[str, dict[str, str]] = {}
    incomplete: list[str] = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        present = {m: folder / files[m] for m in modalities if (folder / files[m]).is_file()}
        if not present:
            continue
        if len(present) < len(modalities):
            lacking = [files[m] for m in modalities if m not in present]
            incomplete.append(f"{folder.name} (no {', '.join(lacking)})")
            continue
        paths = {m: str(p) for m, p in present.items()}
        if "mask" in files and (folder / files["mask"]).is_file():
            paths["mask"] = str(folder / files["mask"])
        found[folder.name] = paths
    if incomplete:
        raise ConfigError(
            f"expected every patient folder under {str(root)!r} to hold {[files[m] for m in modalities]}, "
            f"but {len(incomplete)} do not: {incomplete[:5]}. Add the files, pass modalities= with only the "
            "ones you have, or move those folders out."
        )
    if not found:
        raise ConfigError(
            f"expected patient sub-folders holding {[files[m] for m in modalities]} under {str(root)!r}; "
            "found none. Check the path and the files= names (SynthRAD2023: 'mr.nii.gz', 'ct.nii.gz')."
        )
    return found


def _discover_pairs(
    pairs: Sequence[Sequence[PathLike]] | Mapping[str, Sequence[PathLike]], modalities: tuple[str, ...]
) -> dict[str, dict[str, str]]:
    named: list[tuple[str | None, Sequence[PathLike]]]
    if isinstance(pairs, Mapping):
        named = [(str(name), paths) for name, paths in pairs.items()]
    elif isinstance(pairs, Sequence):
        named = [(None, paths) for paths in pairs]
    else:
        raise ConfigError(
            f"expected a folder, a sequence of path tuples or a {{patient: paths}} mapping; got "
            f"{type(pairs).__name__}. Example: [('p1_mr.nii.gz', 'p1_ct.nii.gz')]."
        )
    if not named:
        raise ConfigError("expected at least one (mri_path, ct_path) pair; got none. Give the volume files.")
    found: dict[str, dict[str, str]] = {}
    for name, paths in named:
        if isinstance(paths, str | os.PathLike) or len(paths) not in (len(modalities), len(modalities) + 1):
            raise ConfigError(
                f"expected each pair to hold one path per modality {list(modalities)} (optionally followed "
                f"by a mask path); got {paths!r}. Example: ('p1_mr.nii.gz', 'p1_ct.nii.gz')."
            )
        keys = [*modalities, "mask"][: len(paths)]
        entry = {key: str(path) for key, path in zip(keys, paths, strict=True)}
        missing = [path for path in entry.values() if not Path(path).is_file()]
        if missing:
            raise ConfigError(
                f"expected volume files, but these do not exist: {missing[:5]}. Check the paths."
            )
        patient = name if name is not None else patient_id_from_files([entry[m] for m in modalities])
        if patient in found:
            raise ConfigError(
                f"two pairs get the patient id {patient!r} ({found[patient][modalities[0]]} and "
                f"{entry[modalities[0]]}); ids must be unique. Pass a mapping "
                "{patient: (mri_path, ct_path)} instead."
            )
        found[patient] = entry
    return found


def _select(found: dict[str, dict[str, str]], patients: Sequence[str] | None) -> dict[str, dict[str, str]]:
    if patients is None:
        return found
    wanted = [patients] if isinstance(patients, str) else list(patients)
    unknown = sorted(set(wanted) - set(found))
    if unknown:
        raise ConfigError(
            f"patients= names {unknown[:5]} ({len(unknown)} unknown), but the files give {sorted(found)[:5]}"
            f"{' ...' if len(found) > 5 else ''}. Use the folder names (or the ids of the pairs)."
        )
    return {name: found[name] for name in wanted}
