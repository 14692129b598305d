"""Where a bundle comes from: a local folder, ``builtin:<name>``, or a Hugging Face Hub repo id."""

from __future__ import annotations

import re
from pathlib import Path

import huggingface_hub
from huggingface_hub import constants as hf_constants, errors as hf_errors

from latent_transforms._version import __version__
from latent_transforms.errors import BundleNotFoundError
from latent_transforms.networks import builtin

LIBRARY_NAME = "latent-transforms"
#: Files a bundle may hold; nothing else is downloaded (never a pickle).
BUNDLE_PATTERNS = ["config.json", "*.safetensors", "README.md"]
_REPO_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*/[A-Za-z0-9][A-Za-z0-9_.\-]*$")


def is_repo_id(source: str) -> bool:
    """True for strings shaped like ``namespace/name``.

    Example:
        >>> is_repo_id("me/pelvis-gan"), is_repo_id("../gan")
        (True, False)
    """
    return bool(_REPO_ID_RE.match(source)) and ".." not in source


def resolve_source(
    source: str | Path,
    *,
    revision: str | None = None,
    cache_dir: str | Path | None = None,
    token: str | bool | None = None,
    local_files_only: bool = False,
    force_download: bool = False,
    what: str = "GAN bundle",
    loader: str = "load_gan",
) -> Path:
    """Return the local folder holding the bundle ``source``, downloading it from the Hub if needed.

    ``source`` is checked in this order: an existing folder; ``builtin:<name>``; a Hub repo id
    ``namespace/name`` (through ``huggingface_hub.snapshot_download``, honouring ``HF_HUB_OFFLINE``,
    ``cache_dir``, ``revision`` and ``force_download``). Offline, a repo that is not in the local cache
    raises :class:`BundleNotFoundError` naming the repo and how to fetch it. ``what`` names the kind of
    bundle in error messages (``"GAN bundle"``, ``"diffusion bundle"``) and ``loader`` the function that
    loads it (``"load_gan"``, ``"load_diffusion"``).

    Example:
        >>> resolve_source("builtin:pelvis-phantom-64").name
        'pelvis-phantom-64'
    """
    text = str(source)
    path = Path(source).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise BundleNotFoundError(
                f"{path} is a folder but holds no config.json, so it is not a {what}. Point to the "
                f"folder written by save_pretrained ({loader} reads it) or `latent-transforms convert`."
            )
        return path
    if text.startswith(builtin.PREFIX):
        return builtin.resolve(text, what=what)
    if not is_repo_id(text):
        raise BundleNotFoundError(
            f"{text!r} is not an existing folder, not 'builtin:<name>' and not a Hub repo id "
            "('namespace/name'). Check the path."
        )
    return _download(
        text,
        revision=revision,
        cache_dir=cache_dir,
        token=token,
        local_files_only=local_files_only,
        force_download=force_download,
        what=what,
        loader=loader,
    )


def _download(
    repo_id: str,
    *,
    revision: str | None,
    cache_dir: str | Path | None,
    token: str | bool | None,
    local_files_only: bool,
    force_download: bool = False,
    what: str = "GAN bundle",
    loader: str = "load_gan",
) -> Path:
    offline = bool(hf_constants.HF_HUB_OFFLINE) or local_files_only
    rev = revision or "main"
    try:
        folder = huggingface_hub.snapshot_download(
            repo_id,
            revision=revision,
            cache_dir=cache_dir,
            token=token,
            local_files_only=offline,
            force_download=force_download,
            allow_patterns=BUNDLE_PATTERNS,
            library_name=LIBRARY_NAME,
            library_version=__version__,
        )
    except (hf_errors.RepositoryNotFoundError, hf_errors.RevisionNotFoundError) as exc:
        raise BundleNotFoundError(
            f"the Hugging Face Hub has no repo {repo_id!r} at revision {rev!r} (or it is private: log in "
            f"with `hf auth login` or pass token=...). Original error: {exc}"
        ) from exc
    except Exception as exc:  # offline, unreachable, or timed out: all mean "not available here"
        where = cache_dir or hf_constants.HF_HUB_CACHE
        reason = (
            "offline mode is on (HF_HUB_OFFLINE=1 or local_files_only=True)"
            if offline
            else f"the Hub could not be reached ({type(exc).__name__})"
        )
        raise BundleNotFoundError(
            f"cannot load {what} {repo_id!r} (revision {rev!r}): it is not in the local Hugging Face "
            f"cache ({where}) and {reason}. To fix: on a machine with internet run "
            f"`hf download {repo_id} --local-dir {repo_id.split('/')[-1]}` (or huggingface-cli download), "
            f"copy that folder here and call {loader}('path/to/folder'); or copy the Hub cache folder and "
            "set HF_HOME; or go online and unset HF_HUB_OFFLINE."
        ) from exc
    if not (Path(folder) / "config.json").is_file():
        raise BundleNotFoundError(
            f"Hub repo {repo_id!r} (revision {rev!r}) has no config.json: it is not a latent-transforms "
            f"{what}. StyleGAN2 pickles can be converted with `latent-transforms convert`."
        )
    return Path(folder)
