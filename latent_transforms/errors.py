"""Exceptions raised by latent-transforms.

Every message says what was expected, what was given and how to fix it.
All errors derive from :class:`LatentTransformsError`, so ``except LatentTransformsError``
catches anything the library raises on purpose.
"""

from __future__ import annotations


class LatentTransformsError(Exception):
    """Base class of every error raised on purpose by latent-transforms."""


class ConfigError(LatentTransformsError, ValueError):
    """A configuration value is invalid (e.g. a resolution that is not a power of two)."""


class BundleNotFoundError(LatentTransformsError, FileNotFoundError):
    """A GAN bundle could not be found: not a folder, not cached, Hub unreachable or offline."""


class WeightMismatchError(LatentTransformsError, ValueError):
    """The weights in a bundle do not match the architecture its ``config.json`` describes."""


class NonFiniteWeightsError(WeightMismatchError):
    """A weights file of a bundle holds NaN or infinite values, so its network would compute NaN.

    The message names the file, the first tensor with such values and how many there are.
    """


class UnsafePickleError(LatentTransformsError, ValueError):
    """A pickle holds something other than the persisted state of a StyleGAN2 checkpoint."""


class ConversionError(LatentTransformsError, ValueError):
    """A checkpoint was read safely but cannot be turned into a GAN bundle."""


class FeatureNetworkUnavailableError(LatentTransformsError, RuntimeError):
    """A feature network cannot be built here: its package is not installed or its weights file is absent.

    The message names the file to place (and where) or the package to install. The offline options,
    ``"efficientnet-lite0"`` (weights shipped in a package), ``"discriminator"`` and ``"random"``, never
    need the network.
    """


class MissingDependencyError(LatentTransformsError, ImportError):
    """An optional dependency that the requested feature needs is not installed.

    The message names the ``pip install`` command that adds it.
    """


class EncoderNotFoundError(LatentTransformsError, FileNotFoundError):
    """A GAN bundle holds no ``encoder.safetensors``; ``latent-transforms train-encoder`` makes one."""


class CacheMismatchError(LatentTransformsError, ValueError):
    """A latent cache does not match what it is opened or written with, or its files are damaged.

    Raised when the cache was made with another generator (fingerprint) or other projector settings,
    when an entry's fields (names, shapes, dtypes) differ from the ones the cache records, and by
    ``LatentCache.verify`` for unreadable or inconsistent shards. The message names what was expected,
    what was found and the fix (another cache folder, the matching GAN bundle, ``verify(repair=True)``).
    """


class CacheNotFoundError(LatentTransformsError, FileNotFoundError):
    """No latent cache exists at the given folder (no ``cache.json``) and it was opened read-only."""
