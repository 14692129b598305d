"""Bundles shipped inside the package, addressed as ``builtin:<name>``."""

from __future__ import annotations

from pathlib import Path

from latent_transforms.errors import BundleNotFoundError

#: Folder holding one sub-folder per built-in bundle.
BUILTIN_ROOT = Path(__file__).resolve().parent.parent / "builtin"
PREFIX = "builtin:"


def available(root: Path | None = None) -> list[str]:
    """Names of the built-in bundles in this installation."""
    root = root or BUILTIN_ROOT
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if (p / "config.json").is_file())


def resolve(source: str, root: Path | None = None, *, what: str = "GAN bundle") -> Path:
    """Folder of the built-in bundle ``builtin:<name>``; a clear error lists what exists (``what``: the
    kind of bundle asked for, named in the error)."""
    name = source[len(PREFIX) :] if source.startswith(PREFIX) else source
    root = root or BUILTIN_ROOT
    folder = root / name
    if not (folder / "config.json").is_file():
        names = available(root)
        listing = ", ".join(f"builtin:{n}" for n in names) if names else "none in this installation"
        raise BundleNotFoundError(
            f"no built-in {what} named {name!r} (available: {listing}). Load a local folder or a "
            "Hugging Face Hub repo id instead, e.g. load_gan('path/to/bundle')."
        )
    return folder
