"""The named choices of a diffusion bundle (its architecture tag, MONAI's noise schedules, what the UNet
predicts), in a module without torch so that the command line can offer them without importing it.

Example:
    >>> "cosine" in SCHEDULES, PREDICTION_TYPES[0]
    (True, 'epsilon')
"""

from __future__ import annotations

#: The ``architecture`` field of a diffusion bundle's ``config.json``.
ARCHITECTURE = "ddpm-unet"
#: MONAI's noise schedules (``monai.networks.schedulers.NoiseSchedules``).
SCHEDULES = ("linear_beta", "scaled_linear_beta", "sigmoid_beta", "cosine")
#: What the UNet predicts: the noise (Ho et al. 2020), the velocity (Salimans & Ho 2022) or the image.
PREDICTION_TYPES = ("epsilon", "v_prediction", "sample")
