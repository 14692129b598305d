"""The package version (read by ``pyproject.toml`` and shown by ``latent-transforms info``)."""

__version__ = "0.1.0.dev0"
