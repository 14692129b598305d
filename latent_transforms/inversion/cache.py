"""The on-disk latent cache: inverted latents ``w*`` keyed by image content or by dataset key.

Inverting an image costs hundreds of generator forward/backward passes; LatentAugment needs ``w*`` for
every real image at every epoch. :class:`LatentCache` stores them once, on disk, safe against killed
runs and against many processes writing at once (DataLoader workers, ``torchrun`` ranks).

Layout of a cache folder::

    cache.json                 format version, generator fingerprint, projector settings, field layout
    index.json                 speed-up only: every entry's (shard, row), and the shards it covers
    shards/<time>-<pid>-<uuid8>.safetensors
                               one tensor per field, [rows, *field shape]; the shard's keys (JSON list)
                               and the generator fingerprint in the safetensors metadata
    corrupt/                   shards moved aside by ``verify(repair=True)``
    .lock                      ``flock``-ed while ``index.json``/``cache.json`` are rewritten

Guarantees:

- Every file appears atomically (temp file in the same folder, flush + fsync, ``os.replace``), so a
  reader sees a shard whole or not at all. A run killed at any point (SIGKILL included) loses only
  the entries it had not flushed yet; a half-written temp file is ignored, and removed once it is older
  than :data:`STALE_TEMP_SECONDS` (never a live writer's).
- The shards are the source of truth: each carries its own keys. ``index.json`` only saves reading
  shard headers; shards it does not list are found by listing ``shards/``. When two shards hold the
  same key, the first in sorted name order wins, in every process.
- Writers never share a file name, so any number of processes may append at once without locks; only
  rewriting ``index.json`` takes the ``flock``. Readers never lock.
- A cache made with another generator (fingerprint) or other projector settings is refused with
  :class:`~latent_transforms.errors.CacheMismatchError`.

Example:
    >>> import tempfile, torch
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     with LatentCache(folder, fingerprint="ab" * 32, settings={"steps": 100}) as cache:
    ...         added = cache.put("patient-003/slice-012", torch.zeros(8), psnr=torch.tensor([31.5, 29.0]))
    ...     reader = LatentCache.open(folder)
    ...     reader.get("patient-003/slice-012").shape, len(reader), reader.settings
    (torch.Size([8]), 1, {'steps': 100})
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import os
import threading
import time
import uuid
import warnings
from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open

from latent_transforms.checks import check_choice, check_int
from latent_transforms.errors import CacheMismatchError, CacheNotFoundError, ConfigError
from latent_transforms.files import atomic_create, atomic_write, folder_lock, fsync_dir
from latent_transforms.networks.weights import atomic_save

__all__ = ["STALE_TEMP_SECONDS", "LatentCache", "image_key"]

FORMAT = "latent-transforms-latent-cache"
SHARD_FORMAT = "latent-transforms-latent-cache-shard"
INDEX_FORMAT = "latent-transforms-latent-cache-index"
FORMAT_VERSION = 1
CACHE_JSON = "cache.json"
INDEX_JSON = "index.json"
SHARDS_DIR = "shards"
CORRUPT_DIR = "corrupt"
LOCK_NAME = ".lock"
SHARD_SUFFIX = ".safetensors"
#: Temp files older than this many seconds belong to a dead writer and may be removed. A live writer
#: writes a shard in well under a second, so this never removes a file still being written.
STALE_TEMP_SECONDS = 600.0

_KEY_SCALE = 2**14
_KEY_RANGE_TOLERANCE = 1e-3
_DTYPES = {"float32": torch.float32, "int64": torch.int64, "bool": torch.bool}
_Layout = dict[str, tuple[tuple[int, ...], torch.dtype]]


def image_key(image: torch.Tensor) -> str:
    """Content key of a normalised image: SHA-256 (hex) of its values quantised to int16, and its shape.

    The image is converted to float32 on the CPU and quantised as
    ``clamp(round(image * 2**14), -32768, 32767)`` (a step of 2⁻¹⁴ ≈ 6e-5, far below what matters for
    an image in ``[-1, 1]``), so ulp-level float differences (float64 vs float32 input, CPU vs GPU
    normalisation) leave the key unchanged unless a value sits exactly on a rounding boundary of that
    grid. Values from integer data (uint8 PNG, int16 HU) normalised to ``[-1, 1]`` stay clear of those
    boundaries in practice; where keys must be exactly reproducible, use dataset keys
    (``"patient-003/slice-012"``) instead.

    Args:
        image: ``[C, H, W]`` float tensor in ``[-1, 1]`` (the generator's range), any device.

    Returns:
        64 lowercase hex characters.

    Raises:
        ConfigError: not a ``[C, H, W]`` float tensor, empty, non-finite, or outside ``[-1, 1]``
            (a physical-range image, e.g. CT in HU, would collapse to a handful of keys).

    Example:
        >>> import torch
        >>> x = torch.linspace(-1, 1, 2 * 4 * 4).reshape(2, 4, 4)
        >>> image_key(x) == image_key(x.double()), len(image_key(x))
        (True, 64)
    """
    if not isinstance(image, torch.Tensor):
        raise ConfigError(f"image_key expects a torch.Tensor [C, H, W], got {type(image).__name__}.")
    if image.ndim != 3:
        raise ConfigError(
            f"image_key expects one image [C, H, W], got shape {tuple(image.shape)}; "
            "for a batch, call it per sample (LatentCache.get_batch does)."
        )
    if not image.is_floating_point():
        raise ConfigError(
            f"image_key expects a float image normalised to [-1, 1], got dtype {image.dtype}; "
            "normalise it first (IntensityWindow / the transform's normalisation)."
        )
    if image.numel() == 0:
        raise ConfigError(f"image_key got an empty image of shape {tuple(image.shape)}.")
    x = image.detach().to(device="cpu", dtype=torch.float32)
    if not torch.isfinite(x).all():
        raise ConfigError("image_key got an image with NaN or Inf values; expected finite values in [-1, 1].")
    peak = float(x.abs().max())
    if peak > 1.0 + _KEY_RANGE_TOLERANCE:
        raise ConfigError(
            f"image_key expects values in [-1, 1], got max |value| = {peak:.4g}; normalise the image to the "
            "generator's range first (a physical range such as HU would map many images to one key)."
        )
    q = torch.round(x * _KEY_SCALE).clamp_(-32768, 32767).to(torch.int16).contiguous()
    digest = hashlib.sha256(f"latent-transforms-image-key-v1|{list(q.shape)}|".encode())
    digest.update(q.numpy().astype("<i2", copy=False).tobytes())
    return digest.hexdigest()


class LatentCache:
    """Inverted latents ``w*`` (and per-entry extras) on disk, keyed by strings, safe for many processes.

    Each entry is a fixed set of named tensors ("fields"): ``w`` (required; ``[w_dim]`` for W space or
    ``[num_ws, w_dim]`` for W+, stored float32) and any extras such as ``psnr`` ``[C]``, ``ssim`` ``[C]``,
    ``steps`` ``[]``. Float fields are stored float32, integer fields int64, bool fields bool. The first
    entry written fixes the fields' names, per-entry shapes and dtypes for the whole cache (recorded in
    ``cache.json``); an entry that differs raises :class:`~latent_transforms.errors.CacheMismatchError`.

    Keys are strings: :func:`image_key` of the normalised image, or any dataset key such as
    ``"patient-003/slice-012"``. An entry is written once: putting a key the cache already holds is a
    no-op (so a resumed run can simply put everything again, or skip ``key in cache``).

    Entries are buffered in memory and written as one shard every ``shard_size`` entries, on
    :meth:`flush`, :meth:`close` and on leaving a ``with`` block; buffered entries are already visible
    to :meth:`get` and ``in`` in this process. Entries that other processes flush become visible through
    :meth:`refresh`, which ``in``/:meth:`get` call by themselves (at most every :attr:`refresh_interval`
    seconds) when a key is missing. Iteration order is sorted key order.

    The object pickles as its constructor arguments (reopened in the receiving process, buffer not
    included: flush first); after a ``fork`` the child drops the parent's unflushed entries, which the
    parent still owns.

    Args:
        folder: the cache folder; created (with parents) in mode ``"a"``.
        fingerprint: the generator's fingerprint, ``GanBundle.fingerprint`` (hex SHA-256 of its weights).
            A cache made with another generator is refused.
        settings: the projector settings, a JSON-able mapping, recorded on creation (``{}`` when None).
            When opening an existing cache, a mapping that differs from the recorded one is refused
            (unless ``check_settings=False``); ``None`` accepts whatever is recorded.
        mode: ``"a"``: create or append; ``"r"``: read-only (the folder must hold a cache).
        shard_size: entries per shard (≥ 1).
        check_settings: compare ``settings`` with the recorded ones.

    Raises:
        CacheMismatchError: the fingerprint or settings differ from the recorded ones.
        CacheNotFoundError: ``mode="r"`` and the folder holds no cache.
        ConfigError: an invalid argument.

    Example:
        >>> import tempfile, torch
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     cache = LatentCache(folder, fingerprint="0f" * 32, shard_size=2)
        ...     images = torch.rand(3, 2, 8, 8) * 2 - 1
        ...     keys = [image_key(x) for x in images]
        ...     psnr, steps = torch.full((3, 2), 30.0), torch.tensor([9, 9, 9])
        ...     cache.put_batch(keys, torch.ones(3, 4, 16), psnr=psnr, steps=steps)
        ...     w, found = cache.get_batch(images)
        ...     cache.close()
        ...     w.shape, found.tolist(), cache.space, len(cache)
        3
        (torch.Size([3, 4, 16]), [True, True, True], 'W+', 3)
    """

    #: Seconds between the automatic re-scans that ``in``/``get`` do when a key is missing.
    refresh_interval: float = 1.0
    #: Seconds between ``index.json`` rewrites after flushes (``close``/``write_index`` always rewrite it).
    index_interval: float = 30.0
    #: Bytes of loaded shards kept in memory (least recently used are dropped first).
    max_loaded_bytes: int = 256 * 2**20

    def __init__(
        self,
        folder: str | os.PathLike[str],
        *,
        fingerprint: str,
        settings: Mapping[str, Any] | None = None,
        mode: str = "a",
        shard_size: int = 256,
        check_settings: bool = True,
    ) -> None:
        if not isinstance(fingerprint, str) or not fingerprint.strip():
            raise ConfigError(
                "fingerprint must be the generator's fingerprint string (bundle.fingerprint), "
                f"got {fingerprint!r}."
            )
        self._setup(folder, fingerprint.strip(), settings, mode, shard_size, check_settings)

    @classmethod
    def open(cls, folder: str | os.PathLike[str]) -> LatentCache:
        """Open an existing cache read-only, whatever generator made it (no fingerprint or settings check).

        Use it to inspect a cache: :attr:`fingerprint` and :attr:`settings` say what made it.

        Raises:
            CacheNotFoundError: the folder holds no cache.

        Example:
            >>> import tempfile, torch
            >>> with tempfile.TemporaryDirectory() as folder:
            ...     LatentCache(folder, fingerprint="12" * 32, settings={"space": "W"}).close()
            ...     cache = LatentCache.open(folder)
            ...     cache.fingerprint[:4], cache.settings, cache.mode
            ('1212', {'space': 'W'}, 'r')
        """
        self = cls.__new__(cls)
        self._setup(folder, None, None, "r", 256, False)
        return self

    # ------------------------------------------------------------------ setup

    def _setup(
        self,
        folder: str | os.PathLike[str],
        fingerprint: str | None,
        settings: Mapping[str, Any] | None,
        mode: str,
        shard_size: int,
        check_settings: bool,
    ) -> None:
        check_choice("mode", mode, ("a", "r"), fix="'a' creates or appends, 'r' opens read-only.")
        shard_size = check_int("shard_size", shard_size, low=1)
        self._folder = Path(folder).expanduser().absolute()
        self._shards_dir = self._folder / SHARDS_DIR
        self._mode = mode
        self._shard_size = shard_size
        self._lock = threading.RLock()
        self._pid = os.getpid()
        self._buffer: OrderedDict[str, dict[str, torch.Tensor]] = OrderedDict()
        self._loc: dict[str, tuple[str, int]] = {}
        self._shard_rows: dict[str, int] = {}
        self._bad: dict[str, str] = {}
        self._loaded: OrderedDict[str, dict[str, torch.Tensor]] = OrderedDict()
        self._loaded_bytes = 0
        self._last_refresh = time.monotonic()
        self._last_index = time.monotonic()
        self._index_dirty = False
        self._closed = False
        self._fields_recorded = False
        norm_settings = None if settings is None else _normalise_settings(settings)
        meta_path = self._folder / CACHE_JSON

        if mode == "r":
            if not meta_path.is_file():
                raise CacheNotFoundError(
                    f"no latent cache at {self._folder} ({CACHE_JSON} not found). Check the path, or "
                    "create the cache by inverting the images first (LatentCache(folder, fingerprint=..., "
                    "mode='a'), which `latent-transforms invert` does)."
                )
        else:
            if self._folder.exists() and not self._folder.is_dir():
                raise ConfigError(f"latent cache folder {self._folder} exists and is not a folder.")
            self._shards_dir.mkdir(parents=True, exist_ok=True)
            if not meta_path.is_file():
                if self._list_shards():
                    raise CacheMismatchError(
                        f"{self._folder} holds shards but no {CACHE_JSON}: it is damaged or not a latent "
                        "cache made by latent-transforms. Use an empty folder, or restore its cache.json."
                    )
                if fingerprint is None:  # pragma: no cover - open() is read-only
                    raise ConfigError("a new cache needs the generator's fingerprint.")
                self._create_meta(fingerprint, {} if norm_settings is None else norm_settings)

        meta = self._read_meta()
        self._fingerprint: str = meta["fingerprint"]
        self._settings: dict[str, Any] = meta["settings"]
        self._fields: _Layout | None = _parse_layout(meta.get("fields"), meta_path)
        self._fields_recorded = self._fields is not None
        if fingerprint is not None and fingerprint != self._fingerprint:
            raise CacheMismatchError(
                f"the latent cache at {self._folder} was made with the generator whose fingerprint is "
                f"{self._fingerprint}, but this generator's fingerprint is {fingerprint}. Latents only fit "
                "the generator they were inverted with. Fix: use another cache folder for this generator, or "
                "load the GAN bundle the cache was made with (compare bundle.fingerprint)."
            )
        if check_settings and norm_settings is not None and norm_settings != self._settings:
            raise CacheMismatchError(
                f"the latent cache at {self._folder} was made with other projector settings: "
                f"{_settings_diff(norm_settings, self._settings)}. Fix: use another cache folder for these "
                "settings, invert with the recorded ones (LatentCache.open(folder).settings), or pass "
                "check_settings=False to use the latents anyway."
            )
        if mode == "a":
            self._remove_stale_temps(STALE_TEMP_SECONDS)
        self._rebuild_view()

    def __reduce__(self) -> tuple[Any, ...]:
        return (
            _reopen,
            (str(self._folder), self._fingerprint, self._mode, self._shard_size),
        )

    # ------------------------------------------------------------------ properties

    @property
    def folder(self) -> Path:
        """The cache folder (absolute)."""
        return self._folder

    @property
    def fingerprint(self) -> str:
        """Fingerprint of the generator the cache was made with (from ``cache.json``)."""
        return self._fingerprint

    @property
    def settings(self) -> dict[str, Any]:
        """The projector settings recorded when the cache was created (a copy)."""
        return copy.deepcopy(self._settings)

    @property
    def mode(self) -> str:
        """``"a"`` (create/append) or ``"r"`` (read-only)."""
        return self._mode

    @property
    def shard_size(self) -> int:
        """Entries buffered before a shard is written."""
        return self._shard_size

    @property
    def fields(self) -> dict[str, tuple[tuple[int, ...], torch.dtype]]:
        """Each field's per-entry shape and dtype, e.g. ``{"w": ((14, 512), torch.float32), ...}``.

        Empty until the first entry is put (here or, after :meth:`refresh`, by another process).
        """
        return dict(self._fields or {})

    @property
    def w_shape(self) -> tuple[int, ...] | None:
        """Per-entry shape of ``w``: ``(w_dim,)`` (W) or ``(num_ws, w_dim)`` (W+); None while empty."""
        return None if self._fields is None else self._fields["w"][0]

    @property
    def space(self) -> str | None:
        """``"W"`` or ``"W+"``, from :attr:`w_shape`; None while the cache is empty."""
        shape = self.w_shape
        return None if shape is None else ("W" if len(shape) == 1 else "W+")

    @property
    def buffered(self) -> int:
        """Entries put in this process but not flushed to a shard yet."""
        return len(self._buffer)

    # ------------------------------------------------------------------ writing

    def put(self, key: str, w: torch.Tensor, **extras: torch.Tensor | float | int) -> bool:
        """Add one entry (buffered; see :meth:`flush`).

        Args:
            key: :func:`image_key` of the normalised image, or a dataset key (any non-empty string).
            w: ``[w_dim]`` (W) or ``[num_ws, w_dim]`` (W+), finite, any float dtype and device.
            **extras: per-entry tensors or numbers, e.g. ``psnr=[C]``, ``steps=500``; same names, shapes
                and dtypes for every entry of the cache. Float extras may be ±Inf (a perfect PSNR), not NaN.

        Returns:
            True if the entry was added, False if the cache already held ``key`` (nothing is changed).

        Raises:
            CacheMismatchError: the fields differ from the cache's.
            ConfigError: read-only or closed cache, a bad key, shape or value.

        Example:
            >>> import tempfile, torch
            >>> fp = "aa" * 32
            >>> with tempfile.TemporaryDirectory() as folder, LatentCache(folder, fingerprint=fp) as cache:
            ...     cache.put("case-1", torch.zeros(8), steps=10), cache.put("case-1", torch.ones(8), steps=3)
            (True, False)
        """
        with_batch = {"w": _as_tensor("w", w).unsqueeze(0)}
        for name, value in extras.items():
            with_batch[name] = _as_tensor(name, value).unsqueeze(0)
        return self._put_tensors([key], with_batch) == 1

    def put_batch(
        self, keys: Sequence[str], w: torch.Tensor, **extras: torch.Tensor | Sequence[float] | Sequence[int]
    ) -> int:
        """Add a batch of entries (buffered; a shard is written each time ``shard_size`` are buffered).

        Args:
            keys: ``B`` strings (see :meth:`put`); a key already held, or repeated in ``keys``, is skipped.
            w: ``[B, w_dim]`` (W) or ``[B, num_ws, w_dim]`` (W+), finite.
            **extras: ``[B, ...]`` tensors (e.g. ``psnr=[B, C]``, ``steps=[B]``).

        Returns:
            The number of entries added.

        Raises:
            CacheMismatchError: the fields differ from the cache's.
            ConfigError: read-only or closed cache, bad keys, a batch size that differs between arguments.

        Example:
            >>> import tempfile, torch
            >>> fp = "aa" * 32
            >>> with tempfile.TemporaryDirectory() as folder, LatentCache(folder, fingerprint=fp) as cache:
            ...     cache.put_batch(["a", "b", "a"], torch.zeros(3, 8), psnr=torch.zeros(3, 2))
            2
        """
        tensors = {"w": _as_tensor("w", w)}
        for name, value in extras.items():
            tensors[name] = _as_tensor(name, value)
        return self._put_tensors(keys, tensors)

    def _put_tensors(self, keys: Sequence[str], tensors: dict[str, torch.Tensor]) -> int:
        if isinstance(keys, str):
            raise ConfigError(
                "put_batch expects a sequence of keys, got one string; use put() for one entry."
            )
        keys = list(keys)
        for key in keys:
            if not isinstance(key, str) or not key:
                raise ConfigError(
                    f"cache keys are non-empty strings (image_key(image) or a dataset key), got {key!r}."
                )
        batch = len(keys)
        for name, tensor in tensors.items():
            if tensor.ndim == 0 or tensor.shape[0] != batch:
                got = (
                    "a scalar"
                    if tensor.ndim == 0
                    else f"{tensor.shape[0]} rows (shape {tuple(tensor.shape)})"
                )
                raise ConfigError(
                    f"{len(keys)} keys were given but {name!r} has {got}; give one row per key."
                )
        w = tensors["w"]
        if w.ndim not in (2, 3) or not w.is_floating_point():
            raise ConfigError(
                f"w must be float [B, w_dim] (W) or [B, num_ws, w_dim] (W+) (one entry: [w_dim] or "
                f"[num_ws, w_dim]), got {w.dtype} of shape {tuple(w.shape)}."
            )
        if not torch.isfinite(w).all():
            raise ConfigError(
                "w holds NaN or Inf values; the inversion diverged for some entries. Not stored."
            )
        for name, tensor in tensors.items():
            if tensor.is_floating_point() and torch.isnan(tensor).any():
                raise ConfigError(f"extra field {name!r} holds NaN values; not stored.")
        with self._lock:
            self._check_writable()
            self._check_pid()
            layout: _Layout = {name: (tuple(t.shape[1:]), t.dtype) for name, t in tensors.items()}
            if self._fields is None:
                self._fields = layout
            else:
                tensors = self._conform(tensors, layout)
            added = 0
            for i, key in enumerate(keys):
                if key in self._loc or key in self._buffer:
                    continue
                self._buffer[key] = {name: t[i].clone() for name, t in tensors.items()}
                added += 1
                if len(self._buffer) >= self._shard_size:
                    self._flush_locked()
            return added

    def _conform(self, tensors: dict[str, torch.Tensor], layout: _Layout) -> dict[str, torch.Tensor]:
        """Cast integer values to a recorded float field; raise CacheMismatchError on any other difference."""
        assert self._fields is not None
        expected = self._fields
        if set(layout) != set(expected):
            missing = sorted(set(expected) - set(layout))
            unexpected = sorted(set(layout) - set(expected))
            raise CacheMismatchError(
                f"the latent cache at {self._folder} stores the fields {sorted(expected)}, but this entry "
                f"has {sorted(layout)} (missing: {missing}, unexpected: {unexpected}). Fix: give the same "
                "extras for every entry, or use another cache folder."
            )
        out = dict(tensors)
        for name, (shape, dtype) in layout.items():
            exp_shape, exp_dtype = expected[name]
            if dtype != exp_dtype and exp_dtype == torch.float32 and dtype in (torch.int64, torch.bool):
                out[name] = tensors[name].to(torch.float32)
                dtype = torch.float32
            if shape != exp_shape or dtype != exp_dtype:
                raise CacheMismatchError(
                    f"field {name!r}: the latent cache at {self._folder} stores {_dtype_name(exp_dtype)} of "
                    f"per-entry shape {list(exp_shape)}, but this entry has {_dtype_name(dtype)} of shape "
                    f"{list(shape)}. A cache holds one latent space and one field layout: use another cache "
                    "folder (e.g. one per space/resolution)."
                )
        return out

    def flush(self) -> str | None:
        """Write the buffered entries as one shard now; returns its file name (None if nothing was buffered).

        On return the entries are on disk (fsync-ed) and survive a crash.

        Example:
            >>> import tempfile, torch
            >>> fp = "aa" * 32
            >>> with tempfile.TemporaryDirectory() as folder, LatentCache(folder, fingerprint=fp) as cache:
            ...     _ = cache.put("x", torch.zeros(4))
            ...     cache.flush().endswith(".safetensors"), cache.buffered, cache.flush()
            (True, 0, None)
        """
        with self._lock:
            self._check_pid()
            if not self._buffer:
                return None
            self._check_writable()
            return self._flush_locked()

    def _flush_locked(self) -> str:
        self._record_fields()
        assert self._fields is not None
        keys = list(self._buffer)
        tensors = {
            name: torch.stack([self._buffer[key][name] for key in keys]).contiguous() for name in self._fields
        }
        name = f"{time.time_ns():019d}-{os.getpid()}-{uuid.uuid4().hex[:8]}{SHARD_SUFFIX}"
        metadata = {
            "format": SHARD_FORMAT,
            "version": str(FORMAT_VERSION),
            "fingerprint": self._fingerprint,
            "keys": json.dumps(keys),
        }
        atomic_save(tensors, self._shards_dir / name, metadata=metadata)  # fsyncs the shard and the folder
        self._buffer.clear()
        self._add_shard(name, keys)
        self._index_dirty = True
        if time.monotonic() - self._last_index >= self.index_interval:
            self._write_index_locked()
        return name

    def _record_fields(self) -> None:
        """Record this process's field layout in cache.json, or check it against the recorded one."""
        if self._fields_recorded:
            return
        assert self._fields is not None
        with self._file_lock():
            meta = self._read_meta()
            recorded = _parse_layout(meta.get("fields"), self._folder / CACHE_JSON)
            if recorded is None:
                meta["fields"] = _dump_layout(self._fields)
                atomic_write(self._folder / CACHE_JSON, json.dumps(meta, indent=2) + "\n")
            elif recorded != self._fields:
                raise CacheMismatchError(
                    f"another process recorded the fields {_describe_layout(recorded)} in {self._folder} "
                    f"while this one buffered entries with {_describe_layout(self._fields)}; nothing was "
                    "written. Fix: write the same fields from every process, or use another cache folder."
                )
        self._fields_recorded = True

    def write_index(self) -> None:
        """Rewrite ``index.json`` from every shard on disk (under the folder's ``flock``).

        The index only speeds up opening; :meth:`close` and the flushes (every :attr:`index_interval`
        seconds) keep it fresh, so calling this is rarely needed.

        Example:
            >>> import tempfile, torch
            >>> fp = "aa" * 32
            >>> with tempfile.TemporaryDirectory() as folder, LatentCache(folder, fingerprint=fp) as cache:
            ...     _ = cache.put("x", torch.zeros(4)); _ = cache.flush(); cache.write_index()
            ...     (cache.folder / "index.json").is_file()
            True
        """
        with self._lock:
            self._check_writable()
            self._write_index_locked()

    def _write_index_locked(self) -> None:
        with self._file_lock():
            self._refresh_locked()
            shards = sorted(self._shard_rows)
            position = {name: i for i, name in enumerate(shards)}
            index = {
                "format": INDEX_FORMAT,
                "version": FORMAT_VERSION,
                "shards": [[name, self._shard_rows[name]] for name in shards],
                "entries": {key: [position[shard], row] for key, (shard, row) in sorted(self._loc.items())},
            }
            atomic_write(self._folder / INDEX_JSON, json.dumps(index, separators=(",", ":")))
        self._last_index = time.monotonic()
        self._index_dirty = False

    def close(self) -> None:
        """Flush the buffer and update ``index.json``; further writes raise. Reads keep working.

        Example:
            >>> import tempfile, torch
            >>> with tempfile.TemporaryDirectory() as folder:
            ...     cache = LatentCache(folder, fingerprint="aa" * 32)
            ...     _ = cache.put("x", torch.zeros(4))
            ...     cache.close()
            ...     "x" in LatentCache(folder, fingerprint="aa" * 32, mode="r")
            True
        """
        with self._lock:
            if self._closed:
                return
            self._check_pid()
            if self._mode == "a":
                self.flush()
                if self._index_dirty or not (self._folder / INDEX_JSON).exists():
                    self._write_index_locked()
            self._closed = True

    def __enter__(self) -> LatentCache:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            if self._buffer and os.getpid() == self._pid and not self._closed:
                warnings.warn(
                    f"LatentCache({str(self._folder)!r}) was dropped with {len(self._buffer)} unflushed "
                    "entries, which are lost; use `with LatentCache(...) as cache:` or call close().",
                    RuntimeWarning,
                    stacklevel=2,
                )
        except Exception:  # pragma: no cover - interpreter shutdown
            pass

    # ------------------------------------------------------------------ reading

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, str):
            return False
        with self._lock:
            if key in self._loc or key in self._buffer:
                return True
            self._maybe_refresh()
            return key in self._loc

    def __len__(self) -> int:
        with self._lock:
            return len(self._loc) + sum(1 for key in self._buffer if key not in self._loc)

    def __iter__(self) -> Iterator[str]:
        return iter(self.keys())

    def keys(self) -> list[str]:
        """All keys (flushed, and buffered in this process), in sorted order."""
        with self._lock:
            return sorted(set(self._loc).union(self._buffer))

    def get(self, key: str) -> torch.Tensor:
        """The latent ``w`` of ``key``: float32 ``[w_dim]`` (W) or ``[num_ws, w_dim]`` (W+), on the CPU.

        Raises:
            KeyError: the cache does not hold ``key`` (after a re-scan for other processes' shards).

        Example:
            >>> import tempfile, torch
            >>> fp = "aa" * 32
            >>> with tempfile.TemporaryDirectory() as folder, LatentCache(folder, fingerprint=fp) as cache:
            ...     _ = cache.put("x", torch.full((2, 4), 0.5, dtype=torch.float64))
            ...     cache.get("x").dtype, cache.get("x").shape
            (torch.float32, torch.Size([2, 4]))
        """
        return self.entry(key)["w"]

    def entry(self, key: str) -> dict[str, torch.Tensor]:
        """Every field of ``key``'s entry (``w`` and the extras), as CPU tensors.

        Raises:
            KeyError: the cache does not hold ``key``.

        Example:
            >>> import tempfile, torch
            >>> fp = "aa" * 32
            >>> with tempfile.TemporaryDirectory() as folder, LatentCache(folder, fingerprint=fp) as cache:
            ...     _ = cache.put("x", torch.zeros(4), psnr=torch.tensor([30.0, 28.0]), steps=12)
            ...     sorted(cache.entry("x")), cache.entry("x")["steps"]
            (['psnr', 'steps', 'w'], tensor(12))
        """
        with self._lock:
            found = self._lookup([key])[0]
            if found is None:
                raise KeyError(self._missing_message([key], 1))
            return found

    def get_batch(
        self,
        images: torch.Tensor | None = None,
        *,
        keys: Sequence[str] | None = None,
        missing: str = "raise",
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The latents of a batch, looked up by image content or by key.

        Args:
            images: ``[B, C, H, W]`` float images in ``[-1, 1]``; keyed by :func:`image_key`.
            keys: ``B`` keys, instead of ``images``.
            missing: ``"raise"``: a missing key raises KeyError; ``"mask"``: its row of ``w`` is zeros and
                ``found`` is False there.

        Returns:
            ``(w, found)``: ``w`` float32 ``[B, *w_shape]`` and ``found`` bool ``[B]``, on the images' device
            (CPU for keys). While the cache holds no entry at all ``w`` is ``[B, 0]``.

        Example:
            >>> import tempfile, torch
            >>> fp = "aa" * 32
            >>> with tempfile.TemporaryDirectory() as folder, LatentCache(folder, fingerprint=fp) as cache:
            ...     _ = cache.put("a", torch.ones(3))
            ...     w, found = cache.get_batch(keys=["a", "b"], missing="mask")
            ...     w.tolist(), found.tolist()
            ([[1.0, 1.0, 1.0], [0.0, 0.0, 0.0]], [True, False])
        """
        if (images is None) == (keys is None):
            raise ConfigError(
                "get_batch needs either images [B, C, H, W] or keys=[...], not both and not neither."
            )
        if missing not in ("raise", "mask"):
            raise ConfigError(f"missing must be 'raise' or 'mask', got {missing!r}.")
        device = torch.device("cpu")
        if images is not None:
            if not isinstance(images, torch.Tensor) or images.ndim != 4:
                got = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
                raise ConfigError(f"get_batch expects images [B, C, H, W], got {got}.")
            device = images.device
            on_cpu = images.detach().to(device="cpu", dtype=torch.float32)
            key_list = [image_key(image) for image in on_cpu]
        else:
            if isinstance(keys, str):
                raise ConfigError("keys must be a sequence of strings, got one string; wrap it in a list.")
            key_list = list(keys or [])
        with self._lock:
            entries = self._lookup(key_list)
            found = torch.tensor([e is not None for e in entries], dtype=torch.bool)
            n_missing = len(key_list) - int(found.sum())
            if n_missing and missing == "raise":
                raise KeyError(
                    self._missing_message(
                        [k for k, e in zip(key_list, entries, strict=True) if e is None], len(key_list)
                    )
                )
            shape = self.w_shape
        if shape is None:
            w = torch.zeros(len(key_list), 0)
        else:
            w = torch.zeros((len(key_list), *shape))
            for i, e in enumerate(entries):
                if e is not None:
                    w[i] = e["w"]
        return w.to(device), found.to(device)

    def _lookup(self, keys: Sequence[str]) -> list[dict[str, torch.Tensor] | None]:
        """Entries of ``keys`` (None where missing); one lazy refresh on misses, one retry for lost shards."""
        if any(key not in self._loc and key not in self._buffer for key in keys):
            self._maybe_refresh()
        for attempt in range(2):
            try:
                return [self._read_entry(key) for key in keys]
            except FileNotFoundError:
                # A shard was moved aside (verify(repair=True) in another process): rebuild and retry.
                if attempt:
                    raise
                self._rebuild_view()
        raise AssertionError("unreachable")  # pragma: no cover

    def _read_entry(self, key: str) -> dict[str, torch.Tensor] | None:
        loc = self._loc.get(key)
        if loc is None:
            entry = self._buffer.get(key)
            return None if entry is None else {name: t.clone() for name, t in entry.items()}
        shard, row = loc
        data = self._shard_data(shard)
        return {name: t[row].clone() for name, t in data.items()}

    def _shard_data(self, name: str) -> dict[str, torch.Tensor]:
        data = self._loaded.get(name)
        if data is not None:
            self._loaded.move_to_end(name)
            return data
        path = self._shards_dir / name
        if not path.exists():
            raise FileNotFoundError(path)
        try:
            with safe_open(str(path), framework="pt") as fh:
                data = {k: fh.get_tensor(k) for k in fh.keys()}  # noqa: SIM118 - safe_open has no __iter__
        except FileNotFoundError:
            raise
        except Exception as exc:
            raise CacheMismatchError(
                f"shard {path} of the latent cache cannot be read ({exc}). Fix: run "
                f"LatentCache(...).verify(repair=True), which moves damaged shards into {CORRUPT_DIR}/."
            ) from exc
        size = sum(t.numel() * t.element_size() for t in data.values())
        self._loaded[name] = data
        self._loaded_bytes += size
        while self._loaded_bytes > self.max_loaded_bytes and len(self._loaded) > 1:
            _, old = self._loaded.popitem(last=False)
            self._loaded_bytes -= sum(t.numel() * t.element_size() for t in old.values())
        return data

    def _missing_message(self, missing: list[str], total: int) -> str:
        shown = ", ".join(repr(k) for k in missing[:3]) + (", ..." if len(missing) > 3 else "")
        return (
            f"{len(missing)} of {total} key(s) not in the latent cache at {self._folder} "
            f"({len(self)} entries): {shown}. Invert those images first (the projector stores them "
            "here), check that the keys are image_key() of the images normalised to [-1, 1] (or the "
            "dataset keys used when writing), or use get_batch(..., missing='mask')."
        )

    # ------------------------------------------------------------------ scanning

    def refresh(self) -> int:
        """Re-scan ``shards/`` for shards other processes wrote since; returns the change in entry count.

        ``in`` and :meth:`get` call this by themselves (at most every :attr:`refresh_interval` seconds)
        when a key is missing.

        Example:
            >>> import tempfile, torch
            >>> with tempfile.TemporaryDirectory() as folder:
            ...     reader = LatentCache(folder, fingerprint="aa" * 32, mode="a")
            ...     with LatentCache(folder, fingerprint="aa" * 32) as writer:
            ...         _ = writer.put("x", torch.zeros(4))
            ...     reader.refresh(), len(reader)
            (1, 1)
        """
        with self._lock:
            before = len(self._loc)
            self._refresh_locked()
            return len(self._loc) - before

    def _maybe_refresh(self) -> None:
        if time.monotonic() - self._last_refresh >= self.refresh_interval:
            self._refresh_locked()

    def _refresh_locked(self) -> None:
        self._last_refresh = time.monotonic()
        names = set(self._list_shards())
        tracked = set(self._shard_rows) | set(self._bad)
        if tracked - names:  # shards moved aside: start over
            self._rebuild_view()
            return
        for name in sorted(names - tracked):
            self._scan_shard(name)
        if self._fields is None:
            self._fields = _parse_layout(self._read_meta().get("fields"), self._folder / CACHE_JSON)
            self._fields_recorded = self._fields is not None

    def _rebuild_view(self) -> None:
        self._loc = {}
        self._shard_rows = {}
        self._bad = {}
        self._loaded.clear()
        self._loaded_bytes = 0
        self._last_refresh = time.monotonic()
        names = self._list_shards()
        present = set(names)
        index = self._read_index()
        if index is not None and all(name in present for name, _ in index["shards"]):
            shards = index["shards"]
            self._shard_rows = {name: rows for name, rows in shards}
            self._loc = {key: (shards[i][0], row) for key, (i, row) in index["entries"].items()}
        for name in names:
            if name not in self._shard_rows:
                self._scan_shard(name)

    def _scan_shard(self, name: str) -> None:
        """Read one shard's header (keys, rows) and merge its keys (the smaller shard name wins)."""
        try:
            keys = _shard_keys(self._shards_dir / name, self._fingerprint)
        except FileNotFoundError:
            return
        except CacheMismatchError as exc:
            self._bad[name] = str(exc)
            warnings.warn(
                f"{exc} Its entries are ignored; run verify(repair=True) to move it aside.",
                RuntimeWarning,
                stacklevel=3,
            )
            return
        self._add_shard(name, keys)

    def _add_shard(self, name: str, keys: list[str]) -> None:
        self._shard_rows[name] = len(keys)
        for row, key in enumerate(keys):
            current = self._loc.get(key)
            if current is None or name < current[0]:
                self._loc[key] = (name, row)

    def _list_shards(self) -> list[str]:
        try:
            with os.scandir(self._shards_dir) as it:
                return sorted(
                    e.name for e in it if e.name.endswith(SHARD_SUFFIX) and not e.name.startswith(".")
                )
        except FileNotFoundError:
            return []

    def _read_index(self) -> dict[str, Any] | None:
        """index.json if present and consistent, else None (the shards are scanned instead)."""
        try:
            index = json.loads((self._folder / INDEX_JSON).read_text(encoding="utf-8"))
            if index.get("format") != INDEX_FORMAT or index.get("version") != FORMAT_VERSION:
                return None
            shards = [(str(name), int(rows)) for name, rows in index["shards"]]
            for _key, (i, row) in index["entries"].items():
                if not (0 <= i < len(shards) and 0 <= row < shards[i][1]):
                    return None
            index["shards"] = shards
            return index
        except (OSError, ValueError, TypeError, KeyError, AttributeError):
            return None

    # ------------------------------------------------------------------ verification

    def verify(self, *, repair: bool = False) -> dict[str, Any]:
        """Check every shard: readable, keys match rows, fields have the recorded shapes/dtypes, values valid.

        Valid values: ``w`` finite, float extras not NaN. Temp files of killed writers are counted (and, with
        ``repair``, removed when older than :data:`STALE_TEMP_SECONDS`); they never hide or damage entries.

        Args:
            repair: move damaged shards into ``corrupt/`` (their entries are then simply missing and get
                recomputed), remove stale temp files and rewrite ``index.json``. Needs mode ``"a"``.

        Returns:
            Counts: ``shards`` (good), ``rows``, ``entries`` (distinct keys), ``duplicates`` (rows whose key
            an earlier shard holds), ``corrupt`` (damaged shards), ``moved`` (their names, when repaired),
            ``temp_files`` (left), ``removed_temp_files``, ``index`` (``"ok"``, ``"stale"``, ``"missing"``
            or ``"invalid"``, before repair).

        Raises:
            CacheMismatchError: a damaged shard (or a broken ``cache.json``), unless ``repair``.

        Example:
            >>> import tempfile, torch
            >>> fp = "aa" * 32
            >>> with tempfile.TemporaryDirectory() as folder, LatentCache(folder, fingerprint=fp) as cache:
            ...     _ = cache.put_batch(["a", "b"], torch.zeros(2, 4)); _ = cache.flush()
            ...     report = cache.verify()
            ...     report["shards"], report["entries"], report["corrupt"]
            (1, 2, 0)
        """
        with self._lock:
            if repair:
                self._check_writable()
            meta = self._read_meta()
            fields = _parse_layout(meta.get("fields"), self._folder / CACHE_JSON)
            problems: dict[str, str] = {}
            seen: set[str] = set()
            rows = duplicates = good = 0
            names = self._list_shards()
            for name in names:
                path = self._shards_dir / name
                try:
                    with safe_open(str(path), framework="pt") as fh:
                        metadata = fh.metadata() or {}
                        tensors = {k: fh.get_tensor(k) for k in fh.keys()}  # noqa: SIM118
                except FileNotFoundError:
                    continue
                except Exception as exc:
                    problems[name] = f"unreadable ({exc})"
                    continue
                keys, reason = _check_shard(metadata, tensors, fields, meta["fingerprint"])
                if reason is not None:
                    problems[name] = reason
                    continue
                good += 1
                rows += len(keys)
                for key in keys:
                    if key in seen:
                        duplicates += 1
                    seen.add(key)
            index_state = self._index_state(names)
            if problems and not repair:
                listed = "; ".join(f"{name}: {why}" for name, why in sorted(problems.items())[:5])
                raise CacheMismatchError(
                    f"{len(problems)} damaged shard(s) in the latent cache at {self._folder}: {listed}. Fix: "
                    f"cache.verify(repair=True) moves them into {CORRUPT_DIR}/ (their entries are then "
                    "recomputed by the next inversion run)."
                )
            moved: list[str] = []
            removed = 0
            if repair:
                if problems:
                    (self._folder / CORRUPT_DIR).mkdir(exist_ok=True)
                    for name in sorted(problems):
                        with contextlib.suppress(FileNotFoundError):
                            os.replace(self._shards_dir / name, self._folder / CORRUPT_DIR / name)
                            moved.append(name)
                    fsync_dir(self._shards_dir)
                removed = self._remove_stale_temps(STALE_TEMP_SECONDS)
                self._rebuild_view()
                self._write_index_locked()
            else:
                self._refresh_locked()
            return {
                "shards": good,
                "rows": rows,
                "entries": len(seen),
                "duplicates": duplicates,
                "corrupt": len(problems),
                "moved": moved,
                "temp_files": len(self._temp_files()),
                "removed_temp_files": removed,
                "index": index_state,
            }

    def _index_state(self, names: list[str]) -> str:
        if not (self._folder / INDEX_JSON).exists():
            return "missing"
        index = self._read_index()
        if index is None:
            return "invalid"
        listed = {name for name, _ in index["shards"]}
        return "ok" if listed == set(names) else "stale"

    def _temp_files(self) -> list[Path]:
        found = []
        for folder in (self._folder, self._shards_dir):
            with contextlib.suppress(FileNotFoundError), os.scandir(folder) as it:
                found += [Path(e.path) for e in it if e.name.startswith(".") and e.name.endswith(".tmp")]
        return found

    def _remove_stale_temps(self, max_age: float) -> int:
        """Remove temp files older than ``max_age`` seconds (a live writer's are always younger)."""
        removed = 0
        now = time.time()
        for path in self._temp_files():
            with contextlib.suppress(FileNotFoundError, PermissionError):
                if now - path.stat().st_mtime > max_age:
                    path.unlink()
                    removed += 1
        return removed

    # ------------------------------------------------------------------ helpers

    def _check_writable(self) -> None:
        if self._mode != "a":
            raise ConfigError(
                f"the latent cache at {self._folder} is open read-only (mode='r'); open it with mode='a' "
                "to add entries."
            )
        if self._closed:
            raise ConfigError(f"the latent cache at {self._folder} is closed; open it again to add entries.")

    def _check_pid(self) -> None:
        if os.getpid() != self._pid:  # forked: the buffered entries are the parent's to flush
            self._buffer.clear()
            self._pid = os.getpid()

    def _file_lock(self) -> contextlib.AbstractContextManager[None]:
        return folder_lock(self._folder, LOCK_NAME)

    def _create_meta(self, fingerprint: str, settings: dict[str, Any]) -> None:
        """Create cache.json race-free: a complete temp file is hard-linked into place, which fails if any
        other process got there first (then its cache.json is read and compared like any existing one)."""
        meta = {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "fingerprint": fingerprint,
            "settings": settings,
            "fields": None,
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        atomic_create(self._folder / CACHE_JSON, json.dumps(meta, indent=2) + "\n")

    def _read_meta(self) -> dict[str, Any]:
        path = self._folder / CACHE_JSON
        for attempt in range(20):
            try:
                meta = json.loads(path.read_text(encoding="utf-8"))
                break
            except FileNotFoundError as exc:
                raise CacheNotFoundError(f"{path} disappeared: the latent cache was removed.") from exc
            except ValueError as exc:
                if attempt == 19:  # still unreadable after ~2 s: damaged, not being written
                    raise CacheMismatchError(
                        f"{path} is not valid JSON ({exc}); the latent cache's metadata is damaged. Fix: "
                        "restore it, or use another cache folder."
                    ) from exc
                time.sleep(0.1)
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            raise CacheMismatchError(f"{path} is not a latent-transforms latent cache (format {FORMAT!r}).")
        if not isinstance(meta.get("version"), int) or meta["version"] > FORMAT_VERSION:
            raise CacheMismatchError(
                f"{path} has format version {meta.get('version')!r}; this latent-transforms reads version "
                f"{FORMAT_VERSION}. Fix: upgrade latent-transforms."
            )
        if not isinstance(meta.get("fingerprint"), str) or not isinstance(meta.get("settings"), dict):
            raise CacheMismatchError(
                f"{path} lacks the generator fingerprint or the settings; it is damaged."
            )
        return meta

    def __repr__(self) -> str:
        shape = None if self.w_shape is None else list(self.w_shape)
        extra = f", buffered={len(self._buffer)}" if self._buffer else ""
        return (
            f"LatentCache({str(self._folder)!r}, entries={len(self)}{extra}, "
            f"fingerprint={self._fingerprint[:12]!r}, space={self.space!r}, w_shape={shape}, "
            f"mode={self._mode!r})"
        )


def _reopen(folder: str, fingerprint: str, mode: str, shard_size: int) -> LatentCache:
    """Unpickle a LatentCache: reopen the folder in this process (no settings check: same cache)."""
    return LatentCache(
        folder, fingerprint=fingerprint, mode=mode, shard_size=shard_size, check_settings=False
    )


def _as_tensor(name: str, value: Any) -> torch.Tensor:
    """CPU tensor of ``value``: floats as float32, integers as int64, bools as bool."""
    try:
        tensor = value.detach() if isinstance(value, torch.Tensor) else torch.as_tensor(value)
    except Exception as exc:
        raise ConfigError(f"field {name!r} must be a tensor or numbers, got {type(value).__name__}.") from exc
    tensor = tensor.cpu()
    if tensor.dtype == torch.bool:
        return tensor
    if tensor.is_complex():
        raise ConfigError(f"field {name!r} is complex ({tensor.dtype}); store real float or integer values.")
    return tensor.to(torch.float32) if tensor.is_floating_point() else tensor.to(torch.int64)


def _dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def _dump_layout(layout: _Layout) -> dict[str, dict[str, Any]]:
    return {
        name: {"shape": list(shape), "dtype": _dtype_name(dtype)}
        for name, (shape, dtype) in sorted(layout.items())
    }


def _parse_layout(raw: Any, source: Path) -> _Layout | None:
    if raw is None:
        return None
    try:
        layout = {str(n): (tuple(int(s) for s in f["shape"]), _DTYPES[f["dtype"]]) for n, f in raw.items()}
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        raise CacheMismatchError(f"{source} has an unreadable field layout {raw!r}; it is damaged.") from exc
    if "w" not in layout:
        raise CacheMismatchError(f"{source} records no 'w' field; it is damaged.")
    return layout


def _describe_layout(layout: _Layout) -> str:
    return ", ".join(f"{n}: {_dtype_name(d)}{list(s)}" for n, (s, d) in sorted(layout.items()))


def _normalise_settings(settings: Mapping[str, Any]) -> dict[str, Any]:
    if not isinstance(settings, Mapping):
        raise ConfigError(
            f"settings must be a mapping (the projector settings), got {type(settings).__name__}."
        )
    try:
        return json.loads(json.dumps(dict(settings), sort_keys=True, allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise ConfigError(
            f"settings must be JSON-able (numbers, strings, lists, dicts); {exc}. Convert tensors and paths "
            "to plain values."
        ) from exc


def _settings_diff(expected: dict[str, Any], found: dict[str, Any]) -> str:
    names = sorted(set(expected) | set(found), key=str)
    diffs = [
        f"{name}: expected {expected.get(name, '<absent>')!r}, found {found.get(name, '<absent>')!r}"
        for name in names
        if expected.get(name, "<absent>") != found.get(name, "<absent>")
    ]
    return "; ".join(diffs[:6]) + ("; ..." if len(diffs) > 6 else "")


def _shard_keys(path: Path, fingerprint: str) -> list[str]:
    """The keys a shard holds, from its header only (cheap); CacheMismatchError if it is not a good shard."""
    try:
        with safe_open(str(path), framework="pt") as fh:
            metadata = fh.metadata() or {}
            rows = {fh.get_slice(name).get_shape()[0] for name in fh.keys()}  # noqa: SIM118
    except FileNotFoundError:
        raise
    except Exception as exc:
        raise CacheMismatchError(f"shard {path} of the latent cache cannot be read ({exc}).") from exc
    keys = _metadata_keys(metadata)
    if keys is None:
        raise CacheMismatchError(
            f"shard {path} has no key list in its metadata; it is not a latent-cache shard."
        )
    if metadata.get("fingerprint") != fingerprint:
        raise CacheMismatchError(
            f"shard {path} was written for the generator {metadata.get('fingerprint')!r}, "
            f"not {fingerprint!r}."
        )
    if rows != {len(keys)}:
        raise CacheMismatchError(f"shard {path} lists {len(keys)} keys but holds {sorted(rows)} rows.")
    return keys


def _metadata_keys(metadata: Mapping[str, str]) -> list[str] | None:
    try:
        keys = json.loads(metadata["keys"])
    except (KeyError, TypeError, ValueError):
        return None
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        return None
    return keys


def _check_shard(
    metadata: Mapping[str, str], tensors: dict[str, torch.Tensor], fields: _Layout | None, fingerprint: str
) -> tuple[list[str], str | None]:
    """(keys, reason the shard is damaged or None)."""
    keys = _metadata_keys(metadata)
    if keys is None or metadata.get("format") != SHARD_FORMAT:
        return [], "no latent-cache key list in its metadata"
    if len(set(keys)) != len(keys):
        return keys, "repeated keys"
    if metadata.get("fingerprint") != fingerprint:
        return keys, f"written for the generator {metadata.get('fingerprint')!r}, not {fingerprint!r}"
    if fields is None:
        return keys, "cache.json records no field layout, yet this shard exists"
    if set(tensors) != set(fields):
        return keys, f"fields {sorted(tensors)}, expected {sorted(fields)}"
    for name, (shape, dtype) in fields.items():
        tensor = tensors[name]
        if tensor.dtype != dtype or tuple(tensor.shape) != (len(keys), *shape):
            return keys, (
                f"field {name!r} is {_dtype_name(tensor.dtype)}{list(tensor.shape)}, expected "
                f"{_dtype_name(dtype)}{[len(keys), *shape]}"
            )
        if name == "w" and not torch.isfinite(tensor).all():
            return keys, "non-finite values in w"
        if tensor.is_floating_point() and torch.isnan(tensor).any():
            return keys, f"NaN values in {name!r}"
    return keys, None
