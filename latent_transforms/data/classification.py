"""Labelled single-modality images for classification: MedMNIST ``.npz`` files, class folders, arrays.

Every item is a plain ``dict`` (PyTorch's default collate and MONAI both take it):

- ``"image"``: ``float32`` tensor ``[C, R, R]`` in the data's own units (0-255 for 8-bit images); the
  dataset's :attr:`~LabelledImages.windows` map each channel to the generator's ``[-1, 1]``;
- ``"label"``: ``int`` class index in ``[0, num_classes)``;
- ``"key"``: ``str``, unique within the dataset (``"<split>/<index:05d>"`` for arrays, the relative file
  path for folders).

Images are resized to ``resolution`` when one is given (bilinear; 28 px MedMNIST images become 32 px for
a 32 px GAN).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from latent_transforms.data.resize import resize_image
from latent_transforms.data.windows import IntensityWindow
from latent_transforms.errors import ConfigError, MissingDependencyError

__all__ = ["MEDMNIST_SPLITS", "LabelledImages"]

#: The splits a MedMNIST file holds, under the keys ``<split>_images`` / ``<split>_labels``.
MEDMNIST_SPLITS = ("train", "val", "test")
IMAGE_SUFFIXES = (".png", ".npy")


def _as_nchw(images: Any) -> torch.Tensor:
    """Arrays ``[N, H, W]``, ``[N, H, W, C]`` (C <= 4, MedMNIST's colour layout) or ``[N, C, H, W]``."""
    x = torch.as_tensor(np.asarray(images))
    if x.ndim == 3:
        return x[:, None]
    if x.ndim == 4 and x.shape[-1] in (1, 3, 4) and x.shape[1] not in (1, 3, 4):
        return x.permute(0, 3, 1, 2)
    if x.ndim == 4:
        return x
    raise ConfigError(
        f"expected images [N, H, W], [N, H, W, C] or [N, C, H, W], got an array of shape {tuple(x.shape)}. "
        "Fix: stack the images into one array first."
    )


def _default_window(images: torch.Tensor) -> IntensityWindow:
    if images.dtype == torch.uint8:
        return IntensityWindow(0.0, 255.0)
    if images.numel() == 0:
        raise ConfigError("expected at least one image, got none.")
    lo, hi = float(images.min()), float(images.max())
    if lo >= 0.0 and hi <= 1.0:
        return IntensityWindow(0.0, 1.0)
    if lo >= -1.0 and hi <= 1.0:
        return IntensityWindow(-1.0, 1.0)
    raise ConfigError(
        f"cannot guess the intensity window of float images with values in [{lo:.3g}, {hi:.3g}]. Fix: pass "
        "window=IntensityWindow(low, high) (the range that maps to the generator's [-1, 1])."
    )


class LabelledImages(Dataset[dict[str, Any]]):
    """A dataset of labelled single-modality images, held in memory.

    Args:
        images: ``[N, H, W]``, ``[N, H, W, C]`` or ``[N, C, H, W]`` array or tensor (uint8 or float).
        labels: ``[N]`` or ``[N, 1]`` integer class indices.
        resolution: resize every image to ``resolution x resolution`` (``None``: keep the size).
        window: the value range that maps to ``[-1, 1]`` (default: 0-255 for uint8, ``[0, 1]`` or
            ``[-1, 1]`` for floats already in that range).
        channel_names: one name per channel (the GAN bundle's modality names; default ``("image",)``
            for one channel, ``("channel0", ...)`` otherwise).
        class_names: one name per class (default ``"0"``, ``"1"``, ...).
        keys: one unique key per item (default ``"<prefix>/<index:05d>"``).
        key_prefix: the prefix of the default keys.
        num_classes: the number of classes (default ``max(label) + 1``).

    Attributes:
        labels: ``[N]`` int64 tensor. num_classes: ``int``. windows: one window per channel.

    Example:
        >>> ds = LabelledImages(np.zeros((4, 28, 28), np.uint8), [0, 1, 1, 0], resolution=32)
        >>> item = ds[1]
        >>> item["image"].shape, item["label"], item["key"], ds.class_counts()
        (torch.Size([1, 32, 32]), 1, 'images/00001', [2, 2])
        >>> ds
        LabelledImages(n=4, channels=('image',), resolution=32, classes=['0', '1'], counts=[2, 2])
    """

    def __init__(
        self,
        images: Any,
        labels: Any,
        *,
        resolution: int | None = None,
        window: IntensityWindow | None = None,
        channel_names: Sequence[str] | None = None,
        class_names: Sequence[str] | None = None,
        keys: Sequence[str] | None = None,
        key_prefix: str = "images",
        num_classes: int | None = None,
    ) -> None:
        x = _as_nchw(images)
        y = torch.as_tensor(np.asarray(labels)).reshape(-1).long()
        if len(x) != len(y):
            raise ConfigError(f"got {len(x)} images but {len(y)} labels; give one label per image.")
        if len(x) == 0:
            raise ConfigError("expected at least one image, got none. Fix: check the data path and split.")
        if int(y.min()) < 0:
            raise ConfigError(f"labels must be class indices >= 0; got {int(y.min())}.")
        self.window = window if window is not None else _default_window(x)
        self.num_classes = int(num_classes) if num_classes is not None else int(y.max()) + 1
        if int(y.max()) >= self.num_classes:
            raise ConfigError(f"label {int(y.max())} is outside [0, {self.num_classes}) (num_classes).")
        channels = x.shape[1]
        if channel_names is None:
            channel_names = ("image",) if channels == 1 else tuple(f"channel{i}" for i in range(channels))
        if len(channel_names) != channels:
            raise ConfigError(f"{len(channel_names)} channel names for {channels}-channel images.")
        self.channel_names = tuple(str(c) for c in channel_names)
        if class_names is None:
            class_names = [str(i) for i in range(self.num_classes)]
        if len(class_names) != self.num_classes:
            raise ConfigError(f"{len(class_names)} class names for {self.num_classes} classes.")
        self.class_names = [str(c) for c in class_names]
        if keys is None:
            keys = [f"{key_prefix}/{i:05d}" for i in range(len(x))]
        if len(keys) != len(x) or len(set(keys)) != len(keys):
            raise ConfigError("keys must be unique, one per image.")
        self.keys = [str(k) for k in keys]
        self.resolution = int(resolution) if resolution is not None else None
        self._images = x
        self.labels = y

    @property
    def windows(self) -> list[IntensityWindow]:
        """One intensity window per channel (all the same here)."""
        return [self.window] * len(self.channel_names)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> dict[str, Any]:
        image = self._images[index].to(torch.float32)
        if self.resolution is not None and tuple(image.shape[-2:]) != (self.resolution, self.resolution):
            image = resize_image(image, self.resolution)
            image = image.clamp(self.window.low, self.window.high)
        return {"image": image, "label": int(self.labels[index]), "key": self.keys[index]}

    def class_counts(self) -> list[int]:
        """Images per class, ``[N_0, N_1, ...]``."""
        return torch.bincount(self.labels, minlength=self.num_classes).tolist()

    def images_tensor(self, *, normalized: bool = True) -> torch.Tensor:
        """All images as one ``[N, C, R, R]`` float32 tensor (``normalized``: in ``[-1, 1]``).

        Example:
            >>> ds = LabelledImages(np.full((2, 4, 4), 255, np.uint8), [0, 1])
            >>> ds.images_tensor().unique().tolist()
            [1.0]
        """
        out = torch.stack([self[i]["image"] for i in range(len(self))])
        return self.window.normalize(out) if normalized else out

    # -- constructors --------------------------------------------------------------------------------
    @classmethod
    def from_medmnist(
        cls,
        source: str | Path,
        split: str = "train",
        *,
        resolution: int | None = None,
        channel_names: Sequence[str] | None = None,
        class_names: Sequence[str] | None = None,
        download_root: str | Path | None = None,
    ) -> LabelledImages:
        """One split of a MedMNIST ``.npz`` file (keys ``train_images``, ``train_labels``, ...).

        Args:
            source: the path of the ``.npz`` file, or a MedMNIST flag such as ``"pneumoniamnist"`` (the
                official file through the optional ``medmnist`` package, which downloads it; needs
                internet the first time).
            split: ``"train"``, ``"val"`` or ``"test"``.
            resolution, channel_names, class_names: see the class.
            download_root: where ``medmnist`` keeps its files (default: its own).

        Example:
            >>> import tempfile, os
            >>> path = os.path.join(tempfile.mkdtemp(), "toy.npz")
            >>> labels = np.array([[0], [1], [1]])
            >>> np.savez(path, val_images=np.zeros((3, 28, 28), np.uint8), val_labels=labels)
            >>> LabelledImages.from_medmnist(path, "val").class_counts()
            [1, 2]
        """
        if split not in MEDMNIST_SPLITS:
            raise ConfigError(f"split must be one of {MEDMNIST_SPLITS}; got {split!r}.")
        path = Path(source).expanduser()
        if not path.suffix and not path.exists():
            path = _download_medmnist(str(source), download_root)
        if not path.is_file():
            raise ConfigError(
                f"no MedMNIST file at {path}. Fix: pass the path of the .npz file (medmnist:PATH), or a "
                "MedMNIST flag such as medmnist:pneumoniamnist with the optional medmnist package and "
                "internet."
            )
        with np.load(path) as data:
            names = (f"{split}_images", f"{split}_labels")
            missing = [n for n in names if n not in data.files]
            if missing:
                raise ConfigError(
                    f"{path} has no {missing}; it has {sorted(data.files)}. Fix: use a MedMNIST-style file "
                    "with <split>_images and <split>_labels arrays."
                )
            images, labels = data[names[0]], data[names[1]]
        info = _medmnist_classes(path.stem) if class_names is None else None
        return cls(
            images,
            labels,
            resolution=resolution,
            channel_names=channel_names,
            class_names=class_names if class_names is not None else info,
            key_prefix=split,
            num_classes=len(info) if info is not None else None,
        )

    @classmethod
    def from_folder(
        cls,
        root: str | Path,
        *,
        resolution: int | None = None,
        channel_names: Sequence[str] | None = None,
    ) -> LabelledImages:
        """One sub-folder per class (sorted names are the classes) holding PNG or NPY images.

        Example:
            >>> import tempfile
            >>> root = Path(tempfile.mkdtemp())
            >>> for c in ("normal", "pneumonia"):
            ...     (root / c).mkdir()
            ...     np.save(root / c / "a.npy", np.zeros((8, 8), np.uint8))
            >>> ds = LabelledImages.from_folder(root)
            >>> ds.class_names, ds[1]["key"]
            (['normal', 'pneumonia'], 'pneumonia/a.npy')
        """
        root = Path(root).expanduser()
        classes = sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
        if not classes:
            raise ConfigError(
                f"{root} has no class folders. Fix: put the images of each class in a sub-folder named for "
                "the class (e.g. normal/*.png, pneumonia/*.png)."
            )
        images, labels, keys = [], [], []
        for label, name in enumerate(classes):
            files = sorted(p for p in (root / name).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
            for path in files:
                images.append(_read_image(path))
                labels.append(label)
                keys.append(f"{name}/{path.name}")
        if not images:
            raise ConfigError(f"no .png or .npy images under {root}/<class>/.")
        shapes = {a.shape for a in images}
        if len(shapes) > 1 and resolution is None:
            raise ConfigError(
                f"the images have different shapes {sorted(shapes)[:3]}; pass resolution=... to resize them."
            )
        if len(shapes) > 1:
            assert resolution is not None
            tensors = [resize_image(torch.as_tensor(a).float(), resolution) for a in images]
            stacked: Any = torch.stack(tensors)
            window = IntensityWindow(0.0, 255.0) if images[0].dtype == np.uint8 else None
        else:
            stacked, window = np.stack(images), None
        return cls(
            stacked,
            labels,
            resolution=resolution,
            window=window,
            channel_names=channel_names,
            class_names=classes,
            keys=keys,
            num_classes=len(classes),
        )

    def __repr__(self) -> str:
        return (
            f"LabelledImages(n={len(self)}, channels={self.channel_names}, resolution={self.resolution}, "
            f"classes={self.class_names}, counts={self.class_counts()})"
        )


def _read_image(path: Path) -> np.ndarray:
    if path.suffix.lower() == ".npy":
        array = np.load(path, allow_pickle=False)
    else:
        from PIL import Image

        with Image.open(path) as image:
            array = np.asarray(image)
    if array.ndim == 3 and array.shape[-1] in (3, 4):
        array = np.moveaxis(array[..., :3], -1, 0)
    elif array.ndim == 2:
        array = array[None]
    else:
        raise ConfigError(f"{path} is not a 2D image (shape {array.shape}).")
    return array


def _medmnist_classes(stem: str) -> list[str] | None:
    """Class names of a known MedMNIST flag, from the optional ``medmnist`` package (else ``None``)."""
    if importlib.util.find_spec("medmnist") is None:
        return None
    try:
        from medmnist import INFO
    except Exception:  # a broken optional install must not break reading the file
        return None
    info = INFO.get(stem.lower())
    if info is None:
        return None
    return [info["label"][k] for k in sorted(info["label"], key=int)]


def _download_medmnist(flag: str, root: str | Path | None) -> Path:
    """The official file of a MedMNIST flag, fetched by the ``medmnist`` package (needs internet once)."""
    if importlib.util.find_spec("medmnist") is None:
        raise MissingDependencyError(
            f"{flag!r} is neither a file nor usable without the optional 'medmnist' package. Fix: pass "
            f"the path of the .npz file (medmnist:/path/to/{flag}.npz), or pip install medmnist "
            "(internet needed to download the official file once)."
        )
    import medmnist

    info = medmnist.INFO.get(flag.lower())
    if info is None:
        raise ConfigError(f"unknown MedMNIST flag {flag!r}; known: {sorted(medmnist.INFO)[:8]}...")
    dataset_class = getattr(medmnist, info["python_class"])
    folder = Path(root) if root is not None else Path.home() / ".medmnist"
    folder.mkdir(parents=True, exist_ok=True)
    try:
        dataset_class(split="train", download=True, root=str(folder))
    except Exception as exc:
        raise ConfigError(
            f"could not download the MedMNIST file for {flag!r} ({exc}). Fix: download {flag}.npz on a "
            f"machine with internet and pass its path: medmnist:/path/to/{flag}.npz."
        ) from exc
    return folder / f"{flag.lower()}.npz"
