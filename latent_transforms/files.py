"""Writing files so that nothing half-written is ever left on disk: one atomic write for the whole library.

Every writer (bundles, weights, caches, checkpoints, studies, exports, reports) goes through
:func:`atomic_write` or :func:`atomic_path`: the content goes to a temporary file in the target's folder,
is flushed and ``fsync``-ed, then renamed over the target (``os.replace``, atomic on POSIX and Windows),
and the folder is ``fsync``-ed so the rename survives a power cut. A reader therefore sees the old
complete file or the new complete one, never a mix. :func:`file_lock` serialises writers of one file
across processes (POSIX ``flock``; a no-op where the platform has none).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

try:  # POSIX only
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

__all__ = [
    "atomic_create",
    "atomic_path",
    "atomic_write",
    "file_lock",
    "folder_lock",
    "fsync_dir",
    "replace_folder",
]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def fsync_dir(folder: str | os.PathLike[str]) -> None:
    """Make a rename or link inside ``folder`` durable (best effort: not every platform opens folders).

    Example:
        >>> import tempfile
        >>> fsync_dir(tempfile.gettempdir())
    """
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def file_lock(path: str | os.PathLike[str]) -> Iterator[None]:
    """Hold an exclusive inter-process lock on ``<path>.lock`` for the ``with`` block.

    Example:
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as d, file_lock(f"{d}/index.json"):
        ...     pass
    """
    lock_path = Path(f"{os.fspath(path)}.lock")
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with _flock(lock_path):
        yield


@contextlib.contextmanager
def folder_lock(folder: str | os.PathLike[str], name: str = ".lock") -> Iterator[None]:
    """Hold an exclusive inter-process lock on the file ``<folder>/<name>`` for the ``with`` block.

    For writers that guard several files of one folder with one lock (the latent cache's ``index.json``
    and ``cache.json``). The lock file is opened read-only (``flock`` needs no write access to it).

    Example:
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as d, folder_lock(d):
        ...     Path(d, ".lock").is_file()
        True
    """
    with _flock(Path(folder) / name):
        yield


@contextlib.contextmanager
def _flock(lock_path: Path) -> Iterator[None]:
    fd = os.open(lock_path, os.O_RDONLY | os.O_CREAT, 0o666)
    try:
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the flock


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str], *, lock: bool = False) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; when the block ends without error, move it into place.

    Write the whole file to the yielded path inside the ``with`` block (any library that takes a file
    name works: ``torch.save``, ``safetensors.torch.save_file``, ``fig.savefig``). On success the temp
    file gets the usual permissions (``0o666 & ~umask``), is ``fsync``-ed and renamed over ``path``; on
    an exception it is deleted and ``path`` is untouched. ``lock=True`` holds :func:`file_lock` on
    ``path`` for the whole write. Parent folders are created.

    Example:
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as d:
        ...     with atomic_path(f"{d}/x.txt") as tmp:
        ...         _ = tmp.write_text("done")
        ...     (Path(d) / "x.txt").read_text()
        'done'
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    with file_lock(target) if lock else contextlib.nullcontext():
        fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        os.close(fd)
        tmp = Path(name)
        try:
            yield tmp
            os.chmod(tmp, 0o666 & ~_umask())
            with open(tmp, "rb") as handle:
                os.fsync(handle.fileno())
            os.replace(tmp, target)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        fsync_dir(target.parent)


def atomic_write(
    path: str | os.PathLike[str],
    data: str | bytes | Callable[[Path], object],
    *,
    lock: bool = False,
) -> Path:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_path`) and return ``path``.

    Args:
        path: the target file.
        data: text (written as UTF-8), bytes, or a function that writes the file at the path it is given.
        lock: hold an inter-process lock on ``path`` while writing.

    Example:
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as d:
        ...     atomic_write(f"{d}/a.txt", "hi").read_text()
        'hi'
    """
    with atomic_path(path, lock=lock) as tmp:
        if isinstance(data, str):
            tmp.write_text(data, encoding="utf-8")
        elif isinstance(data, bytes | bytearray):
            tmp.write_bytes(bytes(data))
        else:
            data(tmp)
    return Path(path)


def atomic_create(path: str | os.PathLike[str], data: str | bytes) -> bool:
    """Create ``path`` holding ``data`` unless it exists; ``True`` when this call created it.

    Race-free between processes: a complete, ``fsync``-ed temp file is hard-linked into place, which fails
    when another process got there first (its file is then left as it is). On a file system without hard
    links the file is created with ``O_EXCL`` and written in place. Parent folders are created.

    Example:
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as d:
        ...     atomic_create(f"{d}/a.json", "{}"), atomic_create(f"{d}/a.json", "[]")
        ...     Path(d, "a.json").read_text()
        (True, False)
        '{}'
    """
    target = Path(path)
    payload = data.encode("utf-8") if isinstance(data, str) else bytes(data)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    tmp = Path(name)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        try:
            os.link(tmp, target)
        except FileExistsError:
            return False
        except OSError:  # pragma: no cover - file systems without hard links
            try:
                out = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
            except FileExistsError:
                return False
            with os.fdopen(out, "wb") as handle:
                handle.write(payload)
                handle.flush()
                os.fsync(handle.fileno())
        fsync_dir(target.parent)
        return True
    finally:
        tmp.unlink(missing_ok=True)


def replace_folder(staging: str | os.PathLike[str], target: str | os.PathLike[str]) -> Path:
    """Move a completely written folder ``staging`` to ``target``, replacing an existing one.

    The old folder is first renamed aside, so a crash leaves either the old or the new folder complete
    (the aside copy, ``.<name>-old``, is removed on the next success).

    Example:
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as d:
        ...     _ = Path(d, "new").mkdir(); _ = Path(d, "new", "f").write_text("1")
        ...     replace_folder(Path(d, "new"), Path(d, "out")).joinpath("f").read_text()
        '1'
    """
    staging, target = Path(staging), Path(target)
    old = target.with_name(f".{target.name}-old")
    if target.exists():
        shutil.rmtree(old, ignore_errors=True)
        os.replace(target, old)
    os.replace(staging, target)
    fsync_dir(target.parent)
    shutil.rmtree(old, ignore_errors=True)
    return target
