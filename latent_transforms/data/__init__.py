"""Data layer: intensity windows (and, in later releases, paired datasets and the phantom).

This layer imports nothing from the rest of the library, so every other layer may use it.
"""

from latent_transforms.data.windows import IntensityWindow

__all__ = ["IntensityWindow"]
