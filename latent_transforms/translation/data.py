"""Unpaired image sets for a translator: one modality's images with optional labels, in ``[-1, 1]``.

A translator is trained on two such sets that share no patient: the source modality (e.g. MRI, with the
task's labels) and the target modality (e.g. CT). :func:`read_image_folder` reads a folder of PNG / NPY
images with labels from a CSV file or from the file names; :func:`phantom_images` takes one modality of
chosen patients of the built-in phantom.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from latent_transforms.checks import check_choice, check_image_batch, check_int
from latent_transforms.data.phantom import PelvisPhantom
from latent_transforms.data.resize import resize_image
from latent_transforms.data.windows import IntensityWindow
from latent_transforms.errors import ConfigError
from latent_transforms.networks.config import PAPER_MODALITIES, Modality

__all__ = ["LABEL_KINDS", "UnpairedImages", "phantom_images", "read_image_folder"]

#: How labels read from text are typed: real values, or class names mapped to indices in sorted order.
LABEL_KINDS = ("value", "class")
IMAGE_SUFFIXES = (".png", ".npy")


@dataclass
class UnpairedImages:
    """One modality's images, in the generator's range, with optional labels and their groups (patients).

    Attributes:
        images: ``[N, C, R, R]`` float32 in ``[-1, 1]``.
        modalities: one :class:`~latent_transforms.Modality` per channel (name and window).
        labels: ``[N]`` float32 (regression) or int64 (class indices), or ``None``.
        keys: one name per image (file names, ``"<patient>/<slice>"``).
        groups: the patient (or other group) of each image; images of one group belong together.
        class_names: the class names of int labels read from text.

    Example:
        >>> labels = torch.tensor([1.0, 2.0, 3.0])
        >>> s = UnpairedImages(torch.zeros(3, 1, 8, 8), (Modality("ct"),), labels=labels)
        >>> len(s), s.keys[0], s.subset([2, 0]).labels.tolist()
        (3, 'image-00000', [3.0, 1.0])
    """

    images: torch.Tensor
    modalities: tuple[Modality, ...]
    labels: torch.Tensor | None = None
    keys: list[str] = field(default_factory=list)
    groups: list[str] = field(default_factory=list)
    class_names: list[str] | None = None

    def __post_init__(self) -> None:
        self.images = check_image_batch(self.images.float(), what="images", channels=len(self.modalities))
        n = len(self.images)
        if self.labels is not None:
            self.labels = torch.as_tensor(self.labels).reshape(-1)
            if len(self.labels) != n:
                raise ConfigError(f"got {n} images but {len(self.labels)} labels; give one label per image.")
        self.keys = list(self.keys) or [f"image-{i:05d}" for i in range(n)]
        self.groups = list(self.groups) or list(self.keys)
        if len(self.keys) != n or len(self.groups) != n:
            raise ConfigError(f"keys and groups need one entry per image ({n}).")

    def __len__(self) -> int:
        return len(self.images)

    @property
    def resolution(self) -> int:
        return int(self.images.shape[-1])

    def subset(self, indices: Sequence[int] | torch.Tensor) -> UnpairedImages:
        """The images at ``indices`` (with their labels, keys and groups)."""
        idx = torch.as_tensor(indices, dtype=torch.long).reshape(-1)
        rows = idx.tolist()
        return UnpairedImages(
            self.images[idx],
            self.modalities,
            None if self.labels is None else self.labels[idx],
            [self.keys[i] for i in rows],
            [self.groups[i] for i in rows],
            self.class_names,
        )

    def __repr__(self) -> str:
        labels = "none" if self.labels is None else str(self.labels.dtype).replace("torch.", "")
        return (
            f"UnpairedImages(n={len(self)}, modalities={[m.name for m in self.modalities]}, "
            f"resolution={self.resolution}, labels={labels}, groups={len(set(self.groups))})"
        )


def _read(path: Path) -> np.ndarray:
    if path.suffix.lower() == ".npy":
        array = np.load(path, allow_pickle=False)
    else:
        from PIL import Image

        with Image.open(path) as image:
            array = np.asarray(image.convert("L") if image.mode not in ("L", "I;16", "I", "F") else image)
    if array.ndim != 2:
        raise ConfigError(f"{path} is not a 2D single-channel image (shape {array.shape}).")
    return array


def _labels_from_csv(path: Path, column: str) -> dict[str, str]:
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    if not rows or column not in rows[0] or not ({"file", "image"} & set(rows[0])):
        raise ConfigError(
            f"{path} needs a header with a 'file' (or 'image') column and a {column!r} column, e.g.\n"
            "file,label\nscan-001.png,63.5"
        )
    name = "file" if "file" in rows[0] else "image"
    return {row[name].strip(): row[column].strip() for row in rows}


def _typed(raw: list[str], kind: str) -> tuple[torch.Tensor, list[str] | None]:
    if kind == "class":
        names = sorted(set(raw))
        return torch.tensor([names.index(r) for r in raw]), names
    try:
        return torch.tensor([float(r) for r in raw], dtype=torch.float32), None
    except ValueError as exc:
        raise ConfigError(
            f"a label is not a number ({exc}); pass label_kind='class' for class names."
        ) from exc


def read_image_folder(
    folder: str | Path,
    *,
    modality: Modality,
    resolution: int,
    labels: str | Path | None = None,
    label_pattern: str | None = None,
    label_column: str = "label",
    label_kind: str = "value",
    group_pattern: str | None = None,
) -> UnpairedImages:
    """The PNG / NPY images of ``folder`` (sorted, sub-folders included) as one modality in ``[-1, 1]``.

    Args:
        folder: the images; 2D, one channel each (PNG 8- or 16-bit, or NPY in physical units).
        modality: the name and intensity window (values inside it map to ``[-1, 1]``, outside are
            clipped; 8-bit PNGs use ``[0, 255]`` whatever the window says).
        resolution: every image is resized to ``resolution x resolution`` (bilinear).
        labels: a CSV file with a header: a ``file`` (or ``image``) column holding the path relative
            to ``folder`` and a ``label_column`` column; images it does not list are left out.
        label_pattern: instead of a CSV, a regular expression whose first group, searched in each
            relative path, is the label (e.g. ``r"age(\\d+)"`` or ``r"^(\\w+)/"`` for class folders).
        label_column: the CSV column with the label.
        label_kind: ``"value"`` (a number: regression) or ``"class"`` (names mapped to indices, sorted).
        group_pattern: a regular expression whose first group is the patient of an image (default: the
            image's own path).

    Example:
        >>> import tempfile
        >>> root = Path(tempfile.mkdtemp())
        >>> for i, age in enumerate((40, 60)):
        ...     np.save(root / f"p{i}_age{age}.npy", np.full((16, 16), 500.0, np.float32))
        >>> ct = Modality("ct", IntensityWindow(-1000, 2000, "HU"))
        >>> s = read_image_folder(root, modality=ct, resolution=8, label_pattern=r"age(\\d+)",
        ...                       group_pattern=r"^(p\\d+)_")
        >>> s.images.shape, s.labels.tolist(), s.groups, s.images.max().item()
        (torch.Size([2, 1, 8, 8]), [40.0, 60.0], ['p0', 'p1'], 0.0)
    """
    root = Path(folder).expanduser()
    check_int("resolution", resolution, low=1)
    check_choice("label_kind", label_kind, LABEL_KINDS)
    if labels is not None and label_pattern is not None:
        raise ConfigError("give labels= (a CSV file) or label_pattern= (from the file names), not both.")
    if not root.is_dir():
        raise ConfigError(f"{root} is not a folder of images.")
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    table = _labels_from_csv(Path(labels), label_column) if labels is not None else None
    if table is not None:
        files = [p for p in files if p.relative_to(root).as_posix() in table]
    if not files:
        raise ConfigError(f"no .png or .npy images under {root}" + (" listed in the CSV." if table else "."))
    images, raw, keys, groups = [], [], [], []
    for path in files:
        rel = path.relative_to(root).as_posix()
        array = _read(path)
        x = torch.as_tensor(array.astype(np.float32))[None]
        # 8-bit images use [0, 255] whatever the window says
        x = x / 127.5 - 1.0 if array.dtype == np.uint8 else modality.window.normalize(x)
        images.append(resize_image(x, resolution).clamp(-1.0, 1.0))
        keys.append(rel)
        if table is not None:
            raw.append(table[rel])
        elif label_pattern is not None:
            found = re.search(label_pattern, rel)
            if found is None:
                raise ConfigError(f"label_pattern {label_pattern!r} does not match {rel!r}.")
            raw.append(found.group(1))
        if group_pattern is not None:
            found = re.search(group_pattern, rel)
            groups.append(found.group(1) if found else rel)
    typed, class_names = _typed(raw, label_kind) if raw else (None, None)
    return UnpairedImages(torch.stack(images), (modality,), typed, keys, groups or keys, class_names)


def phantom_images(
    modality: str,
    patients: Sequence[int],
    *,
    resolution: int,
    slices_per_patient: int = 16,
    seed: int = 0,
    label: str | None = "attribute",
    windows: dict[str, IntensityWindow] | None = None,
) -> UnpairedImages:
    """One modality (``"mri"`` or ``"ct"``) of the chosen patients of the built-in phantom, in ``[-1, 1]``.

    Args:
        modality: which modality.
        patients: phantom patient indices.
        resolution: image side.
        slices_per_patient: axial slices per patient.
        seed: the phantom's seed.
        label: ``"attribute"`` (bone density in ``[0, 1]``: regression), ``"label"`` (lesions yes / no:
            classification) or ``None``.
        windows: intensity windows by modality (default: MRI ``[0, 1900]``, CT ``[-1000, 2000]`` HU).

    Example:
        >>> s = phantom_images("ct", [0, 3], resolution=16, slices_per_patient=2)
        >>> s.images.shape, s.groups, s.labels.dtype
        (torch.Size([4, 1, 16, 16]), ['phantom-000', 'phantom-000', 'phantom-003', 'phantom-003'],
         torch.float32)
    """
    check_choice("modality", modality, ("mri", "ct"))
    if label is not None:
        check_choice("label", label, ("attribute", "label"))
    chosen = [check_int("patient", p, low=0) for p in patients]
    if not chosen:
        raise ConfigError("patients is empty; choose at least one phantom patient.")
    known = {m.name: m.window for m in PAPER_MODALITIES} | dict(windows or {})
    window = known[modality]
    phantom = PelvisPhantom(
        n_patients=max(chosen) + 1, slices_per_patient=slices_per_patient, resolution=resolution, seed=seed
    )
    images, values, keys, groups = [], [], [], []
    for p in chosen:
        for s in range(slices_per_patient):
            item: dict[str, Any] = phantom[p * slices_per_patient + s]
            images.append(window.normalize(item[modality].float()).clamp(-1.0, 1.0))
            keys.append(str(item["key"]))
            groups.append(str(item["patient"]))
            if label is not None:
                values.append(item[label])
    labels = None
    if label == "attribute":
        labels = torch.tensor(values, dtype=torch.float32)
    elif label == "label":
        labels = torch.tensor(values, dtype=torch.long)
    names = ["no lesion", "lesion"] if label == "label" else None
    return UnpairedImages(torch.stack(images), (Modality(modality, window),), labels, keys, groups, names)
