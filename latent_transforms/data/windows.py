"""Intensity windows: map physical values of one modality to the generator's range [-1, 1] and back."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from latent_transforms.errors import ConfigError


@dataclass(frozen=True)
class IntensityWindow:
    """A clip window ``[low, high]`` in physical units, mapped linearly to ``[-1, 1]``.

    The paper clips MRI to ``[0, 1900]`` and CT to ``[-1000, 2000]`` HU. 8-bit images that are
    already windowed use ``IntensityWindow(0, 255)``.

    Args:
        low: physical value mapped to -1 (values below are clipped).
        high: physical value mapped to +1 (values above are clipped); must exceed ``low``.
        unit: free text shown in reports, e.g. ``"HU"``.

    Example:
        >>> ct = IntensityWindow(-1000.0, 2000.0, "HU")
        >>> ct.normalize(torch.tensor([-1000.0, 500.0, 3000.0]))
        tensor([-1.,  0.,  1.])
        >>> ct.denormalize(torch.tensor([0.0]))
        tensor([500.])
    """

    low: float
    high: float
    unit: str = ""

    def __post_init__(self) -> None:
        if not (math.isfinite(self.low) and math.isfinite(self.high)) or self.high <= self.low:
            raise ConfigError(
                f"IntensityWindow needs finite low < high; got low={self.low}, high={self.high}. "
                "Example: IntensityWindow(-1000, 2000, 'HU') for CT."
            )

    @property
    def width(self) -> float:
        """``high - low`` in physical units."""
        return self.high - self.low

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """Clip ``x`` (any shape, physical units) to the window and map it to ``[-1, 1]`` (float)."""
        x = x.to(torch.promote_types(x.dtype, torch.float32)) if not x.is_floating_point() else x
        return (x.clamp(self.low, self.high) - self.low) * (2.0 / self.width) - 1.0

    def denormalize(self, x: torch.Tensor) -> torch.Tensor:
        """Map ``x`` in ``[-1, 1]`` (any shape) back to physical units; values outside are clipped."""
        return (x.clamp(-1.0, 1.0) + 1.0) * (self.width / 2.0) + self.low

    def to_dict(self) -> dict[str, float | str]:
        """JSON-ready form, as stored in a bundle's ``config.json``."""
        return {"low": self.low, "high": self.high, "unit": self.unit}

    @classmethod
    def from_dict(cls, data: dict[str, float | str]) -> IntensityWindow:
        """Inverse of :meth:`to_dict`."""
        return cls(float(data["low"]), float(data["high"]), str(data.get("unit", "")))


#: A window as the metrics take it: an :class:`IntensityWindow` or a ``(low, high)`` pair.
WindowLike = IntensityWindow | tuple[float, float] | Sequence[float]


def as_window(window: WindowLike) -> IntensityWindow:
    """An :class:`IntensityWindow` from a window or a ``(low, high)`` pair in physical units.

    Example:
        >>> as_window((-1000, 2000)).width
        3000.0
    """
    if isinstance(window, IntensityWindow):
        return window
    if (
        isinstance(window, Sequence)
        and not isinstance(window, str)
        and len(window) == 2
        and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in window)
    ):
        return IntensityWindow(float(window[0]), float(window[1]))
    raise ConfigError(
        f"expected an IntensityWindow or a (low, high) pair of numbers, got {window!r}. "
        "Fix: pass e.g. IntensityWindow(-1000, 2000, 'HU') or (-1000, 2000) for CT, (0, 255) for 8-bit "
        "slices."
    )
