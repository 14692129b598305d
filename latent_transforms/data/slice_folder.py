"""``PairedSliceFolder``: paired 2D slices already on disk as PNG, NPY or NPZ files."""

from __future__ import annotations

import itertools
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch.utils.data import Dataset

from latent_transforms.data.items import (
    BODY_THRESHOLD_HU,
    RESERVED_KEYS,
    body_mask,
    check_modalities,
    item_key,
)
from latent_transforms.data.resize import as_size, resize_image, resize_mask
from latent_transforms.data.windows import IntensityWindow
from latent_transforms.errors import ConfigError

PAPER_CT_WINDOW = IntensityWindow(-1000.0, 2000.0, "HU")
UINT8_BODY_THRESHOLD = 255.0 * (BODY_THRESHOLD_HU - PAPER_CT_WINDOW.low) / PAPER_CT_WINDOW.width
"""Where the paper's -500 HU body threshold falls once CT [-1000, 2000] HU is mapped to 0..255: 42.5."""

_EIGHT_BIT_MODES = {"1", "L", "P", "LA", "RGB", "RGBA"}
_MULTICHANNEL = "*"

PathLike = str | os.PathLike[str]
Layout = Literal["auto", "folders", "multichannel"]
Units = Literal["auto", "physical", "uint8"]


@dataclass(frozen=True)
class _Entry:
    """One slice: its patient, slice number, file stem and files (per modality, or one multichannel file)."""

    patient: str
    slice: int
    stem: str
    paths: tuple[tuple[str, str], ...]


def natural_key(name: str) -> tuple[str | int, ...]:
    """Sort key that orders digit runs by value, so ``"p1_2"`` comes before ``"p1_10"``.

    Example:
        >>> sorted(["p1_10", "p1_2", "p1_1"], key=natural_key)
        ['p1_1', 'p1_2', 'p1_10']
    """
    return tuple(int(t) if i % 2 else t.lower() for i, t in enumerate(re.split(r"(\d+)", name)))


def _group(match: re.Match[str], name: str) -> str | None:
    if name in match.re.groupindex:
        return match.group(name)
    return match.group(1) if match.re.groups else match.group(0)


def _compile(pattern: str, what: str, group: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise ConfigError(
            f"{what} must be a regular expression with a named group '{group}' (or group 1); "
            f"got {pattern!r}, which does not compile ({exc}). Example: r'^(?P<{group}>[^_]+)'."
        ) from exc


def _read_png(path: str, *, multichannel: bool) -> np.ndarray:
    from PIL import Image  # pillow comes with torchvision; imported here to keep `import` light

    with Image.open(path) as image:
        if image.mode in ("1", "P"):
            image = image.convert("RGBA" if multichannel and image.mode == "P" else "L")
        array = np.asarray(image)
    if not multichannel and array.ndim == 3:
        array = array[..., 0]  # grey stored as RGB(A): the channels are equal; use the first
    return array


def _is_eight_bit_png(path: str) -> bool:
    if not path.lower().endswith(".png"):
        return False
    from PIL import Image

    with Image.open(path) as image:  # reads the header only
        return image.mode in _EIGHT_BIT_MODES


def _plane(array: np.ndarray, path: str, what: str) -> np.ndarray:
    squeezed = array
    if squeezed.ndim == 3 and squeezed.shape[0] == 1:
        squeezed = squeezed[0]
    elif squeezed.ndim == 3 and squeezed.shape[-1] == 1:
        squeezed = squeezed[..., 0]
    if squeezed.ndim != 2:
        raise ConfigError(
            f"expected one 2D slice ([H, W] or [1, H, W]) for {what} in {path}; got an array of shape "
            f"{array.shape}. Save one slice per file, or use layout='multichannel' for [C, H, W] files."
        )
    return squeezed


def _read_npz(path: str) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as data:
        return {key: data[key] for key in data.files}


class PairedSliceFolder(Dataset[dict[str, Any]]):
    """Paired 2D slices stored as PNG, NPY or NPZ files, one item per slice (item contract: ``data.items``).

    **Layouts** (``layout="auto"`` picks ``"folders"`` when every modality has a sub-folder, else
    ``"multichannel"`` when ``root`` holds slice files):

    - ``"folders"``: one sub-folder per modality, matched case-insensitively to the modality name
      (``MRI/``, ``CT/``) unless ``folders={"mri": "MR", "ct": "CT"}`` names them; files are paired by
      name without extension (``MRI/p01_0012.png`` with ``CT/p01_0012.png``); a name missing from some
      folder is an error that lists a few. An optional ``mask`` sub-folder (or ``folders["mask"]``) gives
      the masks (non-zero = 1). Each file holds one slice: PNG (greyscale; colour PNGs use their first
      channel), NPY ``[H, W]`` or ``[1, H, W]``, NPZ with an array named after the modality or a single array.
    - ``"multichannel"``: ``root`` holds files of ``C = len(modalities)`` channels, in ``modalities`` order:
      NPY ``[C, H, W]`` or ``[H, W, C]`` (``[C, H, W]`` wins when both fit); NPZ with one array per
      modality name (plus optionally ``"mask"``) or a single ``[C, H, W]``/``[H, W, C]`` array; PNG whose
      first ``C`` channels are the modalities (R, G, B, A; greyscale ``L`` for one modality).

    **Patients and slices.** ``patient_pattern`` is searched in each file name without extension; its
    group ``patient`` (or group 1, or the whole match) is the patient id. ``slice_pattern`` likewise gives
    ``item["slice"]`` (group ``slice`` or 1, an integer); without it slices are numbered 0, 1, ... in the
    natural order of the names within each patient (``p1_2`` before ``p1_10``). Items are patient-major.

    **Values** are returned as stored, as ``float32`` ``[1, H, W]``: physical units for NPY/NPZ, 0..255 for
    8-bit PNG, 0..65535 for 16-bit PNG. ``units`` says which, and sets the defaults of ``mask_threshold``
    and ``windows``:

    - ``"physical"``: HU for CT (scanner units for MRI); ``mask_threshold`` -500.0 (the paper's, in HU);
      ``windows`` ``None`` (use the GAN bundle's).
    - ``"uint8"``: windowed 8-bit images; ``mask_threshold`` 42.5, where -500 HU falls once the paper's
      CT window [-1000, 2000] HU is mapped to 0..255; ``windows`` ``IntensityWindow(0, 255)`` per modality.
    - ``"auto"``: ``"uint8"`` if the first slice's files are 8-bit PNGs, else ``"physical"``.

    ``"mask"`` is the stored mask when there is one, else ``body_mask(item["ct"], mask_threshold)``, else
    (no ``"ct"`` modality) all ones. With ``resolution`` every slice is resized (bilinear,
    ``align_corners=False``, antialiased when shrinking; masks nearest); otherwise all modalities of one
    slice must already have one size.

    Building the dataset only lists the folders (and, for ``units="auto"``, reads one PNG header); files
    are read in ``__getitem__``. The dataset holds only paths, so it pickles for ``DataLoader`` workers.

    Args:
        root: the folder.
        modalities: item keys, in channel order for the multichannel layout.
        layout: ``"auto"``, ``"folders"`` or ``"multichannel"``.
        folders: sub-folder name of each modality (and optionally ``"mask"``) for the folders layout.
        patient_pattern: regex giving the patient of a file name (default: everything before the first ``_``).
        slice_pattern: regex giving the slice number of a file name (default: natural order per patient).
        resolution: output side length or ``(height, width)``; ``None`` keeps the stored size.
        units: ``"auto"``, ``"physical"`` or ``"uint8"`` (see above).
        mask_threshold: body-mask threshold on ``"ct"`` in stored units; ``None`` = the default of ``units``.
        windows: intensity window of each modality in stored units (mapping or sequence in ``modalities``
            order), kept as ``self.windows`` for :func:`~latent_transforms.data.items.stack_modalities`.
        extensions: file extensions read (case-insensitive).

    Raises:
        ConfigError: no matching files, files missing in a modality folder, names the patterns do not
            match, two files for one (patient, slice), or an array of an unexpected shape.

    Example:
        >>> import tempfile, numpy as np
        >>> from PIL import Image
        >>> with tempfile.TemporaryDirectory() as root:
        ...     for folder in ["MRI", "CT"]:
        ...         os.makedirs(f"{root}/{folder}")
        ...         for name in ["p1_0", "p1_1", "p2_0"]:
        ...             Image.fromarray(np.full((8, 8), 200, np.uint8)).save(f"{root}/{folder}/{name}.png")
        ...     ds = PairedSliceFolder(root, resolution=4)
        ...     item = ds[1]
        >>> ds
        PairedSliceFolder(root=..., layout='folders', modalities=('mri', 'ct'), patients=2, slices=3,
                          units='uint8', mask_threshold=42.5, resolution=[4, 4])
        >>> item["key"], item["ct"].shape, item["ct"].max().item(), item["mask"].min().item()
        ('p1/0001', torch.Size([1, 4, 4]), 200.0, 1.0)
        >>> ds.windows["ct"]
        IntensityWindow(low=0.0, high=255.0, unit='uint8')
    """

    def __init__(
        self,
        root: PathLike,
        modalities: Sequence[str] = ("mri", "ct"),
        layout: Layout = "auto",
        folders: Mapping[str, str] | None = None,
        patient_pattern: str = r"^(?P<patient>[^_]+)",
        slice_pattern: str | None = None,
        resolution: int | tuple[int, int] | None = None,
        units: Units = "auto",
        mask_threshold: float | None = None,
        windows: Mapping[str, IntensityWindow] | Sequence[IntensityWindow] | None = None,
        extensions: Sequence[str] = (".png", ".npy", ".npz"),
    ) -> None:
        self.root = str(root)
        self.modalities: tuple[str, ...] = _check_modalities(modalities)
        self.resolution: tuple[int, int] | None = None if resolution is None else as_size(resolution)
        self.extensions: tuple[str, ...] = tuple(
            e.lower() if e.startswith(".") else f".{e.lower()}"
            for e in ([extensions] if isinstance(extensions, str) else extensions)
        )
        self.patient_pattern = patient_pattern
        self.slice_pattern = slice_pattern
        if layout not in ("auto", "folders", "multichannel"):
            raise ConfigError(
                f"layout must be 'auto', 'folders' or 'multichannel'; got {layout!r}. "
                "Leave it at 'auto' to detect."
            )
        if units not in ("auto", "physical", "uint8"):
            raise ConfigError(
                f"units must be 'auto', 'physical' or 'uint8'; got {units!r}. Example: units='uint8'."
            )
        root_path = Path(root)
        if not root_path.is_dir():
            raise ConfigError(
                f"expected a folder of slices, got {self.root!r}, which is not a folder. Check the path."
            )

        sub_folders = _resolve_folders(root_path, self.modalities, folders, required=layout == "folders")
        if layout == "auto":
            layout = "folders" if sub_folders is not None else "multichannel"
        self.layout: Literal["folders", "multichannel"] = layout
        if self.layout == "folders":
            assert sub_folders is not None
            stems = _pair_folder_files(root_path, sub_folders, self.extensions)
        else:
            stems = {
                stem: ((_MULTICHANNEL, path),)
                for stem, path in _list_files(root_path, self.extensions).items()
            }
            if not stems:
                subs = sorted(p.name for p in root_path.iterdir() if p.is_dir())
                raise ConfigError(
                    f"expected either one sub-folder per modality {list(self.modalities)} or "
                    f"{list(self.extensions)} files in {self.root!r}; found sub-folders {subs[:8]} and no "
                    "such files. Name the sub-folders with folders={'mri': 'MR', 'ct': 'CT'}, or check "
                    "extensions=."
                )
        self._entries: list[_Entry] = _index(stems, patient_pattern, slice_pattern)
        self._patients: list[str] = sorted({e.patient for e in self._entries})
        self._starts: dict[str, int] = {}
        for position, entry in enumerate(self._entries):
            self._starts.setdefault(entry.patient, position)

        if units == "auto":
            first = [path for key, path in self._entries[0].paths if key != "mask"]
            units = "uint8" if all(_is_eight_bit_png(p) for p in first) else "physical"
        self.units: Literal["physical", "uint8"] = units
        if mask_threshold is None:
            mask_threshold = UINT8_BODY_THRESHOLD if units == "uint8" else BODY_THRESHOLD_HU
        self.mask_threshold = float(mask_threshold)
        self.windows: dict[str, IntensityWindow] | None = _check_windows(windows, self.modalities, units)

    # -- index -----------------------------------------------------------------------------------
    @property
    def patients(self) -> list[str]:
        """Sorted patient ids."""
        return list(self._patients)

    def _entry(self, index: int) -> _Entry:
        if isinstance(index, bool) or not isinstance(index, int | np.integer):
            raise TypeError(f"dataset indices are ints; got {type(index).__name__}.")
        index = int(index)
        if index < 0:
            index += len(self._entries)
        if not 0 <= index < len(self._entries):
            raise IndexError(f"index out of range for a dataset of {len(self._entries)} slices")
        return self._entries[index]

    def patient_of(self, index: int) -> str:
        """The patient of item ``index`` (no file is read)."""
        return self._entry(index).patient

    def indices_of(self, patient: str) -> list[int]:
        """Dataset indices of ``patient``'s items, in slice order."""
        if patient not in self._starts:
            raise ConfigError(
                f"expected one of this dataset's {len(self._patients)} patients, got {patient!r}; it has "
                f"e.g. {self._patients[:5]}. Use dataset.patients for the full list."
            )
        start = self._starts[patient]
        stop = start
        while stop < len(self._entries) and self._entries[stop].patient == patient:
            stop += 1
        return list(range(start, stop))

    def slices_of(self, patient: str) -> list[int]:
        """``patient``'s slice numbers (``item["slice"]`` values), ascending."""
        return [self._entries[i].slice for i in self.indices_of(patient)]

    def files_of(self, index: int) -> dict[str, str]:
        """Files of item ``index``: modality (or ``"mask"``) -> path; key ``"*"``: one multichannel file."""
        return dict(self._entry(index).paths)

    # -- data ------------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._entries)

    def _read(self, entry: _Entry) -> tuple[dict[str, np.ndarray], np.ndarray | None]:
        if self.layout == "multichannel":
            return _read_multichannel(entry.paths[0][1], self.modalities)
        planes: dict[str, np.ndarray] = {}
        for key, path in entry.paths:
            planes[key] = _plane(_read_single(path, key), path, key)
        mask = planes.pop("mask", None)
        return planes, mask

    def __getitem__(self, index: int) -> dict[str, Any]:
        entry = self._entry(index)
        planes, mask = self._read(entry)
        shapes = {key: plane.shape for key, plane in planes.items()}
        if mask is not None:
            shapes["mask"] = mask.shape
        if self.resolution is None and len(set(shapes.values())) > 1:
            raise ConfigError(
                f"slice {entry.stem!r}: expected all modalities to have one size, got {shapes}. "
                "Pass resolution= to resize them, or fix the files."
            )
        item: dict[str, Any] = {}
        for modality in self.modalities:
            image = torch.from_numpy(np.asarray(planes[modality], dtype=np.float32).copy())[None]
            item[modality] = image if self.resolution is None else resize_image(image, self.resolution)
        size = tuple(item[self.modalities[0]].shape[-2:])
        if mask is not None:
            item["mask"] = resize_mask(torch.from_numpy(np.asarray(mask != 0))[None], size)
        elif "ct" in item:
            item["mask"] = body_mask(item["ct"], self.mask_threshold)
        else:
            item["mask"] = torch.ones_like(item[self.modalities[0]])
        item["patient"] = entry.patient
        item["slice"] = entry.slice
        item["key"] = item_key(entry.patient, entry.slice)
        return item

    def __repr__(self) -> str:
        resolution = None if self.resolution is None else list(self.resolution)
        return (
            f"{type(self).__name__}(root={self.root!r}, layout={self.layout!r}, "
            f"modalities={self.modalities}, patients={len(self._patients)}, slices={len(self._entries)}, "
            f"units={self.units!r}, "
            f"mask_threshold={self.mask_threshold}, resolution={resolution})"
        )


# -- discovery -----------------------------------------------------------------------------------------
def _check_modalities(modalities: Sequence[str]) -> tuple[str, ...]:
    return check_modalities(modalities, RESERVED_KEYS | {_MULTICHANNEL})


def _check_windows(
    windows: Mapping[str, IntensityWindow] | Sequence[IntensityWindow] | None,
    modalities: tuple[str, ...],
    units: str,
) -> dict[str, IntensityWindow] | None:
    if windows is None:
        return {m: IntensityWindow(0.0, 255.0, "uint8") for m in modalities} if units == "uint8" else None
    if isinstance(windows, Mapping):
        result = {m: windows[m] for m in modalities if m in windows}
    else:
        result = dict(zip(modalities, windows, strict=True)) if len(windows) == len(modalities) else {}
    if len(result) != len(modalities) or not all(isinstance(w, IntensityWindow) for w in result.values()):
        raise ConfigError(
            f"windows must give one IntensityWindow per modality {list(modalities)}; got {windows!r}. "
            "Example: windows={'mri': IntensityWindow(0, 255), 'ct': IntensityWindow(0, 255)}."
        )
    return result


def _list_files(folder: Path, extensions: tuple[str, ...]) -> dict[str, str]:
    """Stem -> path of the slice files directly in ``folder``; two files with one stem is an error."""
    found: dict[str, str] = {}
    for path in sorted(folder.iterdir()):
        if not path.is_file() or path.name.startswith(".") or path.suffix.lower() not in extensions:
            continue
        if path.stem in found:
            raise ConfigError(
                f"expected one file per slice name in {str(folder)!r}, but {path.stem!r} is stored twice "
                f"({Path(found[path.stem]).name}, {path.name}). Remove one, or narrow extensions=."
            )
        found[path.stem] = str(path)
    return found


def _resolve_folders(
    root: Path, modalities: tuple[str, ...], folders: Mapping[str, str] | None, *, required: bool
) -> dict[str, Path] | None:
    """Modality (and ``"mask"``) -> sub-folder; ``None`` when the folders layout does not apply."""
    subs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    by_lower: dict[str, list[Path]] = {}
    for sub in subs:
        by_lower.setdefault(sub.name.lower(), []).append(sub)
    if folders is not None:
        unknown = sorted(set(folders) - {*modalities, "mask"})
        if unknown:
            raise ConfigError(
                f"folders= keys must be modalities {list(modalities)} or 'mask'; got unknown {unknown}. "
                "Example: folders={'mri': 'MR', 'ct': 'CT'}."
            )
    resolved: dict[str, Path] = {}
    for key in (*modalities, "mask"):
        if folders is not None and key in folders:
            path = root / folders[key]
            if not path.is_dir():
                raise ConfigError(
                    f"folders[{key!r}] = {folders[key]!r}, but {str(path)!r} is not a folder; sub-folders "
                    f"of the root are {[s.name for s in subs][:8]}. Fix the name."
                )
            resolved[key] = path
            continue
        matches = by_lower.get(key.lower(), [])
        if len(matches) > 1:
            raise ConfigError(
                f"expected one sub-folder named like {key!r} (case-insensitive), found "
                f"{[m.name for m in matches]}. "
                f"Choose one with folders={{{key!r}: {matches[0].name!r}}}."
            )
        if matches:
            resolved[key] = matches[0]
    missing = [m for m in modalities if m not in resolved]
    if not missing:
        return resolved
    if required or folders is not None:
        raise ConfigError(
            f"layout 'folders' needs one sub-folder per modality, but none matches {missing} "
            f"(case-insensitive) in {str(root)!r}, whose sub-folders are {[s.name for s in subs][:8]}. "
            "Name them with folders={'mri': 'MR', 'ct': 'CT'}."
        )
    return None


def _pair_folder_files(
    root: Path, sub_folders: dict[str, Path], extensions: tuple[str, ...]
) -> dict[str, tuple[tuple[str, str], ...]]:
    listed = {key: _list_files(folder, extensions) for key, folder in sub_folders.items()}
    every = set().union(*listed.values())
    problems = []
    for key, files in listed.items():
        lacking = sorted(every - set(files), key=natural_key)
        if lacking:
            problems.append(f"{sub_folders[key].name}/ lacks {len(lacking)}, e.g. {lacking[:5]}")
    if problems:
        raise ConfigError(
            f"expected the same slice names in every folder under {str(root)!r}; {'; '.join(problems)}. "
            "Add the missing files or remove their partners (names are compared without extension)."
        )
    if not every:
        raise ConfigError(
            f"expected {list(extensions)} files in {[str(f) for f in sub_folders.values()]}; found none. "
            "Check the folders and extensions=."
        )
    return {stem: tuple((key, listed[key][stem]) for key in sub_folders) for stem in every}


def _index(
    stems: dict[str, tuple[tuple[str, str], ...]], patient_pattern: str, slice_pattern: str | None
) -> list[_Entry]:
    patient_re = _compile(patient_pattern, "patient_pattern", "patient")
    slice_re = None if slice_pattern is None else _compile(slice_pattern, "slice_pattern", "slice")
    groups: dict[str, list[tuple[int | None, str]]] = {}
    unmatched: list[str] = []
    for stem in stems:
        match = patient_re.search(stem)
        patient = _group(match, "patient") if match else None
        number: int | None = None
        if slice_re is not None:
            slice_match = slice_re.search(stem)
            text = _group(slice_match, "slice") if slice_match else None
            if text is None or not text.strip().lstrip("+-").isdigit():
                unmatched.append(stem)
                continue
            number = int(text)
        if not patient:
            unmatched.append(stem)
            continue
        groups.setdefault(patient, []).append((number, stem))
    if unmatched:
        unmatched.sort(key=natural_key)
        raise ConfigError(
            f"expected every file name to match patient_pattern={patient_pattern!r}"
            f"{'' if slice_pattern is None else f' and slice_pattern={slice_pattern!r} (an integer)'}; "
            f"{len(unmatched)} do not, e.g. {unmatched[:5]}. Fix the patterns (named groups 'patient' and "
            "'slice') or rename the files."
        )
    entries: list[_Entry] = []
    for patient in sorted(groups):
        members = groups[patient]
        if slice_pattern is None:
            numbered = [
                (i, stem) for i, (_, stem) in enumerate(sorted(members, key=lambda m: natural_key(m[1])))
            ]
        else:
            numbered = sorted(((n, stem) for n, stem in members if n is not None), key=lambda m: m[0])
            for (a, stem_a), (b, stem_b) in itertools.pairwise(numbered):
                if a == b:
                    raise ConfigError(
                        f"expected one file per (patient, slice), but {stem_a!r} and {stem_b!r} are both "
                        f"patient {patient!r}, slice {a}. Fix slice_pattern={slice_pattern!r} or rename the "
                        "files."
                    )
        entries.extend(_Entry(patient, number, stem, stems[stem]) for number, stem in numbered)
    return entries


# -- reading --------------------------------------------------------------------------------------------
def _read_single(path: str, key: str) -> np.ndarray:
    suffix = Path(path).suffix.lower()
    if suffix == ".png":
        return _read_png(path, multichannel=False)
    if suffix == ".npy":
        return np.load(path, allow_pickle=False)
    if suffix == ".npz":
        arrays = _read_npz(path)
        if key in arrays:
            return arrays[key]
        if len(arrays) == 1:
            return next(iter(arrays.values()))
        raise ConfigError(
            f"expected {path} to hold an array named {key!r} or a single array; it holds {sorted(arrays)}. "
            f"Save it with np.savez(path, {key}=slice)."
        )
    raise ConfigError(f"cannot read {path}: expected .png, .npy or .npz. Remove it from extensions=.")


def _channels(array: np.ndarray, count: int, path: str) -> np.ndarray:
    """``[count, H, W]`` from ``[count, H, W]``, ``[H, W, count]`` or (one modality) ``[H, W]``."""
    if array.ndim == 2 and count == 1:
        return array[None]
    if array.ndim == 3 and array.shape[0] == count:
        return array
    if array.ndim == 3 and array.shape[-1] == count:
        return np.moveaxis(array, -1, 0)
    raise ConfigError(
        f"expected {path} to hold {count} channels as [C, H, W] or [H, W, C]; got shape {array.shape}. "
        "Save one channel per modality, in modalities order."
    )


def _read_multichannel(
    path: str, modalities: tuple[str, ...]
) -> tuple[dict[str, np.ndarray], np.ndarray | None]:
    count = len(modalities)
    suffix = Path(path).suffix.lower()
    mask: np.ndarray | None = None
    if suffix == ".png":
        array = _read_png(path, multichannel=True)
        if array.ndim == 2:
            array = array[..., None]
        if array.shape[-1] < count:
            raise ConfigError(
                f"expected {path} to hold at least {count} channels (one per modality {list(modalities)}); "
                f"it has {array.shape[-1]}. Save RGB/RGBA PNGs, or use NPY/NPZ."
            )
        stack = np.moveaxis(array[..., :count], -1, 0)
    elif suffix == ".npz":
        arrays = _read_npz(path)
        if all(m in arrays for m in modalities):
            planes = {m: _plane(arrays[m], path, m) for m in modalities}
            if "mask" in arrays:
                mask = _plane(arrays["mask"], path, "mask")
            return planes, mask
        if len(arrays) != 1:
            raise ConfigError(
                f"expected {path} to hold arrays named {list(modalities)} or one [C, H, W] array; it holds "
                f"{sorted(arrays)}. Save it with np.savez(path, mri=..., ct=...)."
            )
        stack = _channels(next(iter(arrays.values())), count, path)
    elif suffix == ".npy":
        stack = _channels(np.load(path, allow_pickle=False), count, path)
    else:
        raise ConfigError(f"cannot read {path}: expected .png, .npy or .npz. Remove it from extensions=.")
    return {m: stack[c] for c, m in enumerate(modalities)}, mask
