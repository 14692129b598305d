"""The item contract shared by every paired dataset, and the helpers that turn items into GAN input.

Every dataset in :mod:`latent_transforms.data` yields a plain ``dict`` (MONAI and PyTorch's default
collate both handle it) with:

- one key per modality (e.g. ``"mri"``, ``"ct"``): ``float32`` tensor ``[1, H, W]`` in physical units
  (HU for CT; scanner units for MRI; 0-255 for 8-bit windowed slices);
- ``"mask"``: ``float32`` tensor ``[1, H, W]`` with values in {0, 1} (the body mask);
- ``"patient"``: ``str``; ``"slice"``: ``int`` (index along the body axis);
- ``"key"``: ``str``, unique within the dataset, ``"<patient>/<slice:04d>"``.

Datasets may add more keys (the phantom adds ``"label"`` and ``"attribute"``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch

from latent_transforms.data.windows import IntensityWindow
from latent_transforms.errors import ConfigError

BODY_THRESHOLD_HU = -500.0
RESERVED_KEYS = frozenset({"mask", "patient", "slice", "key"})


def check_modalities(modalities: Sequence[str], reserved: frozenset[str] = RESERVED_KEYS) -> tuple[str, ...]:
    """Validate modality names for a dataset: distinct, non-empty, none of the item's other keys.

    Example:
        >>> check_modalities(["mri", "ct"])
        ('mri', 'ct')
    """
    names = (modalities,) if isinstance(modalities, str) else tuple(modalities)
    if (
        not names
        or not all(isinstance(m, str) and m for m in names)
        or len(set(names)) != len(names)
        or reserved & set(names)
    ):
        raise ConfigError(
            f"modalities must be distinct non-empty names other than {sorted(reserved)}; got {modalities!r}. "
            "Example: modalities=('mri', 'ct')."
        )
    return names


def item_key(patient: str, slice_index: int) -> str:
    """The dataset key of one slice.

    Example:
        >>> item_key("p007", 12)
        'p007/0012'
    """
    return f"{patient}/{slice_index:04d}"


def body_mask(ct: torch.Tensor, threshold: float = BODY_THRESHOLD_HU) -> torch.Tensor:
    """Body mask of a CT slice: ``1.0`` where ``ct > threshold`` (paper: -500 HU), else ``0.0``.

    Args:
        ct: any shape, physical units (HU).
        threshold: in the same units as ``ct``; for 8-bit windowed CT use the window's equivalent.

    Returns:
        ``float32`` tensor of ``ct``'s shape with values in {0, 1}.

    Example:
        >>> body_mask(torch.tensor([-1000.0, -200.0, 40.0]))
        tensor([0., 1., 1.])
    """
    return (ct > threshold).to(torch.float32)


def stack_modalities(
    item: Mapping[str, object], modalities: Sequence[str], windows: Sequence[IntensityWindow]
) -> torch.Tensor:
    """Stack an item's modalities into one image ``[C, H, W]`` in ``[-1, 1]`` (the generator's range).

    A labelled-image item (``{"image": [C, H, W], "label", "key"}``, see
    :class:`~latent_transforms.data.LabelledImages`) has its channels taken in order as the modalities.

    Args:
        item: a dataset item (see the module docstring).
        modalities: channel order, e.g. a bundle's ``["mri", "ct"]``.
        windows: one :class:`IntensityWindow` per modality, same order.

    Example:
        >>> item = {"mri": torch.full((1, 2, 2), 1900.0), "ct": torch.full((1, 2, 2), -1000.0)}
        >>> w = [IntensityWindow(0, 1900), IntensityWindow(-1000, 2000, "HU")]
        >>> stack_modalities(item, ["mri", "ct"], w)[:, 0, 0].round(decimals=4).tolist()
        [1.0, -1.0]
    """
    if len(modalities) != len(windows):
        raise ConfigError(f"{len(modalities)} modalities but {len(windows)} windows; give one window each.")
    if "image" in item and not any(m in item for m in modalities):  # a labelled-image item
        image = torch.as_tensor(item["image"]).to(torch.float32)
        if image.ndim == 2:
            image = image[None]
        if image.shape[0] != len(modalities):
            raise ConfigError(
                f"the item's image has {image.shape[0]} channel(s) but {len(modalities)} modalities "
                f"{list(modalities)} were asked for. Fix: use a GAN config with one modality per channel."
            )
        return torch.cat([w.normalize(image[i : i + 1]) for i, w in enumerate(windows)], dim=0)
    missing = [m for m in modalities if m not in item]
    if missing:
        raise ConfigError(
            f"item has no {missing}; it has keys {sorted(k for k in item if isinstance(k, str))}. "
            "Name the dataset's modalities the way the GAN bundle does (e.g. modalities=('mri', 'ct'))."
        )
    channels = []
    for name, window in zip(modalities, windows, strict=True):
        x = torch.as_tensor(item[name])
        if x.ndim == 2:
            x = x[None]
        channels.append(window.normalize(x.to(torch.float32)))
    return torch.cat(channels, dim=0)
