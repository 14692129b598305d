"""Find the inverted latents ``w*`` of images: in a latent cache, in memory, or by inverting them now.

:class:`LatentLookup` is how :class:`~latent_transforms.LatentAugment` gets the starting point of its
walk. An image is found by a content key (:func:`~latent_transforms.image_key` of the normalised
image) or by the dataset key a MONAI dictionary carries, first in the :class:`LatentCache`, then in an
in-memory store of earlier on-the-fly inversions. A miss is inverted on the fly with a short
:class:`Projector` run (``on_missing="invert"``, a one-time warning about the cost; stored in the cache
when it is writable, else kept in memory) or refused (``on_missing="raise"``:
:class:`MissingLatentError`).
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import torch

from latent_transforms.checks import canonical_device, check_choice
from latent_transforms.errors import ConfigError
from latent_transforms.features.perceptual import DEFAULT_PERCEPTUAL_NETWORK
from latent_transforms.inversion.cache import LatentCache, image_key
from latent_transforms.inversion.projector import Projector
from latent_transforms.networks.bundle import GanBundle

__all__ = ["FAST_PROJECTOR", "ON_MISSING", "LatentLookup", "MissingLatentError"]

#: What to do with images that have no latent: invert them on the fly, or raise.
ON_MISSING = ("invert", "raise")
#: Projector options used for images missing from the cache (``projector=`` overrides any of them).
FAST_PROJECTOR: dict[str, Any] = {"steps": 100, "progress": False}


class MissingLatentError(ConfigError, KeyError):
    """Images have no inverted latent in the cache and ``on_missing="raise"`` (a ``KeyError`` too).

    Example:
        >>> isinstance(MissingLatentError("2 of 4 missing"), KeyError), str(MissingLatentError("x"))
        (True, 'x')
    """

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class LatentLookup:
    """The latents ``w*`` of a batch of images: from a cache, from memory, or inverted now.

    Args:
        on_missing: ``"invert"`` (invert misses on the fly, once, with a warning) or ``"raise"``.
        projector: options of the :class:`Projector` that inverts misses (default :data:`FAST_PROJECTOR`:
            100 steps, the cache's space and perceptual network).
        precision: the projector's precision (``"fp32"`` or ``"bf16"``).
        gan_name: the GAN's source string, for the fix in error messages.
        owner: who asks (the warning and errors name it).

    The in-memory store and the projectors (one per device) live as long as the lookup; pickling keeps
    only the options.

    Example:
        >>> import tempfile
        >>> from latent_transforms import GanBundle, GanConfig
        >>> bundle = GanBundle.random(GanConfig(resolution=16, channel_base=256, channel_max=32,
        ...                                     z_dim=16, w_dim=16))
        >>> images = torch.zeros(2, 2, 16, 16)
        >>> fp = bundle.fingerprint
        >>> with tempfile.TemporaryDirectory() as folder, LatentCache(folder, fingerprint=fp) as cache:
        ...     _ = cache.put_batch([image_key(x) for x in images], torch.ones(2, 16))
        ...     LatentLookup(on_missing="raise").find(images, bundle, cache).shape
        torch.Size([2, 16])
    """

    def __init__(
        self,
        *,
        on_missing: str = "invert",
        projector: Mapping[str, Any] | None = None,
        precision: str = "fp32",
        gan_name: str | None = None,
        owner: str = "LatentAugment",
    ) -> None:
        self.on_missing = check_choice("on_missing", on_missing, ON_MISSING)
        if projector is not None and not isinstance(projector, Mapping):
            raise ConfigError(
                f"projector must be a mapping of Projector options (e.g. {{'steps': 200}}), got "
                f"{type(projector).__name__}."
            )
        self.projector_options: dict[str, Any] | None = dict(projector) if projector is not None else None
        self.precision = precision
        self.gan_name = gan_name
        self.owner = owner
        self._reset()

    def _reset(self) -> None:
        self.memory: dict[str, torch.Tensor] = {}
        self.warned = False
        self._projectors: dict[str, Projector] = {}
        self._lock = threading.RLock()

    def __getstate__(self) -> dict[str, Any]:
        keep = ("on_missing", "projector_options", "precision", "gan_name", "owner")
        return {k: self.__dict__[k] for k in keep}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._reset()

    # -- lookup ------------------------------------------------------------------------------------
    def find(
        self,
        images: torch.Tensor,
        bundle: GanBundle,
        cache: LatentCache | None,
        keys: Sequence[str] | None = None,
    ) -> torch.Tensor:
        """The latents of ``images`` ``[B, C, R, R]`` (in ``[-1, 1]``), stacked on their device.

        Args:
            images: the batch (normalised: the content keys are of these values).
            bundle: the GAN bundle on the device to invert on (for misses).
            cache: the latent cache, or ``None``.
            keys: ``B`` dataset keys (default: :func:`image_key` of each image).

        Returns:
            ``[B, w_dim]`` or ``[B, num_ws, w_dim]`` (whatever the cache and inversions hold).

        Raises:
            MissingLatentError: a miss with ``on_missing="raise"``.
        """
        b = images.shape[0]
        if keys is not None:
            if isinstance(keys, str) or len(keys) != b:
                raise ConfigError(
                    f"keys must be a list of {b} strings (one dataset key per sample), got {keys!r:.200}."
                )
            key_list = [str(k) for k in keys]
            by = "dataset key"
        else:
            on_cpu = images.detach().to(device="cpu", dtype=torch.float32)
            key_list = [image_key(x) for x in on_cpu]
            by = "content key (image_key of the normalised image)"
        entries: list[torch.Tensor | None] = [None] * b
        if cache is not None:
            w, found = cache.get_batch(keys=key_list, missing="mask")
            for i in found.nonzero().flatten().tolist():
                entries[i] = w[i]
        for i, key in enumerate(key_list):
            if entries[i] is None and key in self.memory:
                entries[i] = self.memory[key]
        missing = [i for i, e in enumerate(entries) if e is None]
        if missing:
            if self.on_missing == "raise":
                where = (
                    f"the latent cache at {cache.folder}"
                    if cache is not None
                    else "no latent cache (cache=None)"
                )
                raise MissingLatentError(
                    f"{len(missing)} of {b} images have no inverted latent in {where} (looked up by {by}). "
                    f"Fix: invert the training images first: latent-transforms invert --gan "
                    f"{self.gan_name or 'GAN'} --data DATA --cache {cache.folder if cache else 'CACHE'}"
                    f"{' --key dataset' if keys is not None else ''}, or pass on_missing='invert' to invert "
                    "them on the fly."
                )
            idx = torch.tensor(missing, device=images.device)
            new = self.invert(images.index_select(0, idx), [key_list[i] for i in missing], bundle, cache)
            for j, i in enumerate(missing):
                entries[i] = new[j]
        return torch.stack([e.to(images.device) for e in entries if e is not None])

    def invert(
        self, images: torch.Tensor, keys: list[str], bundle: GanBundle, cache: LatentCache | None
    ) -> torch.Tensor:
        """Invert ``images`` now (a one-time warning about the cost) and store their latents under
        ``keys``: in ``cache`` when it is writable and has a compatible field layout, else in memory.
        Returns the latents on the CPU."""
        projector = self.projector(bundle, cache)
        if not self.warned:
            self.warned = True
            warnings.warn(
                f"{self.owner}: {len(keys)} image(s) have no inverted latent"
                f"{f' in the cache at {cache.folder}' if cache is not None else ' (no cache given)'}; "
                f"inverting them on the fly with a {projector.steps}-step projector, which costs about "
                f"{projector.steps} generator passes per image (this warning is shown once). Invert the "
                "training set ahead instead: latent-transforms invert --gan GAN --data DATA --cache CACHE.",
                RuntimeWarning,
                stacklevel=5,
            )
        with torch.inference_mode(False), torch.enable_grad():
            result = projector.project(images.detach().clone())
        w = result.w.detach().float().cpu()
        stored = False
        if cache is not None and cache.mode == "a":
            fields = cache.fields
            extras = {"psnr": result.psnr.cpu(), "ssim": result.ssim.cpu(), "steps": result.steps.cpu()}
            if fields:
                extras = {k: v for k, v in extras.items() if k in fields}
            if not fields or set(fields) == {"w", *extras}:
                try:
                    cache.put_batch(keys, w, **extras)
                    cache.flush()
                    stored = True
                except ValueError:  # read-only or closed cache, or another field layout
                    stored = False
        if not stored:
            for key, wi in zip(keys, w, strict=True):
                self.memory[key] = wi.clone()
        return w

    def projector(self, bundle: GanBundle, cache: LatentCache | None) -> Projector:
        """The projector for misses on ``bundle``'s device (built once per device): :data:`FAST_PROJECTOR`,
        the cache's space and perceptual network, then the ``projector`` options."""
        name = str(canonical_device(bundle.device))
        with self._lock:
            found = self._projectors.get(name)
            if found is not None:
                return found
            options = dict(FAST_PROJECTOR)
            space = cache.space if cache is not None else None
            settings = cache.settings if cache is not None else {}
            options["space"] = "w+" if space == "W+" else "w"
            options["perceptual"] = settings.get("perceptual", DEFAULT_PERCEPTUAL_NETWORK)
            options["precision"] = self.precision
            given = dict(self.projector_options or {})
            if space is not None and "space" in given and given["space"] != options["space"]:
                raise ConfigError(
                    f"projector={{'space': {given['space']!r}}} differs from the cache's space {space!r}; "
                    "latents of one cache share one space. Fix: drop the option or use another cache."
                )
            options.update(given)
            options["device"] = bundle.device
            projector = Projector(bundle, **options)
            self._projectors[name] = projector
            return projector
