"""Intensity windows: map physical values of one modality to the generator's range [-1, 1] and back."""

from __future__ import annotations

import math
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
