"""Atomic file writes: write a temporary file in the destination's folder, flush
it to disk, then ``os.replace`` it over the destination.

A crash or an exception mid-write leaves the old file (if any) untouched and
no temporary file behind; a ``kill -9`` mid-write leaves a temporary
``.<name>.<pid>.XXXX.tmp``, which :func:`engine.validate.sweep_stale_temporaries`
removes once that process is gone.

>>> with atomic_write("weights.bin") as handle:      # a binary file object
...     handle.write(payload)
>>> with atomic_path("weights.h5") as tmp:            # a path, for libraries
...     h5py.File(tmp, "w").close()                   # that open files by name
"""
from __future__ import annotations

import contextlib
import os
import tempfile
from typing import IO, Iterator


def _target_mode(path: str) -> int:
    """Permissions for the new file: the old file's, else what umask allows."""
    try:
        return os.stat(path).st_mode & 0o777
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def _temporary_in(path: str) -> tuple[int, str]:
    if "\0" in path:
        from .errors import DataError
        raise DataError(f"cannot write {path!r}: a path cannot contain a NUL character")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise FileNotFoundError(2, "folder does not exist", folder)
    # the writer's pid in the name: a later run can tell a killed writer's leftovers from a live one's
    return tempfile.mkstemp(prefix=f".{os.path.basename(path)}.{os.getpid()}.", suffix=".tmp", dir=folder)


def _remove_quietly(path: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)


def _fsync_file(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[str]:
    """Yield a temporary path beside ``path``; on a clean exit it replaces ``path``.

    For writers that take a file name (h5py, numpy.savez). The temporary file
    exists (empty) when the block starts; the writer may truncate or recreate it.
    """
    path = os.fspath(path)
    fd, tmp = _temporary_in(path)
    os.close(fd)
    try:
        yield tmp
        os.chmod(tmp, _target_mode(path))
        _fsync_file(tmp)
        os.replace(tmp, path)
    except BaseException:
        _remove_quietly(tmp)
        raise


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "wb", encoding: str | None = None,
                 newline: str | None = None) -> Iterator[IO]:
    """Yield an open file object whose contents replace ``path`` on a clean exit.

    ``mode`` is "wb" (default) or "w" (text, ``encoding`` default utf-8, ``newline`` as
    for ``open``: "" for the csv module).
    """
    if mode not in ("wb", "w"):
        raise ValueError(f"atomic_write mode must be 'wb' or 'w', not {mode!r}")
    path = os.fspath(path)
    fd, tmp = _temporary_in(path)
    try:
        handle: IO
        if mode == "w":
            handle = os.fdopen(fd, "w", encoding=encoding or "utf-8", newline=newline)
        else:
            handle = os.fdopen(fd, "wb")
        with handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, _target_mode(path))
        os.replace(tmp, path)
    except BaseException:
        _remove_quietly(tmp)
        raise


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Replace ``path`` with ``data`` atomically."""
    with atomic_write(path, "wb") as handle:
        handle.write(data)


def write_chunks(path: str | os.PathLike, chunks) -> None:
    """Replace ``path`` with the bytes of ``chunks`` (an iterable of bytes-like) atomically."""
    with atomic_write(path, "wb") as handle:
        for chunk in chunks:
            handle.write(chunk)


def write_text(path: str | os.PathLike, text: str, encoding: str = "utf-8") -> None:
    """Replace ``path`` with ``text`` atomically."""
    with atomic_write(path, "w", encoding=encoding) as handle:
        handle.write(text)
