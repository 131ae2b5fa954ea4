"""Publish bundles into a target directory, atomically and never overwriting.

A bundle appears under its final name `bundle-<serial>.tar.gz` only once it
is completely written and flushed to disk; a crash at any moment leaves at
most a `.tmp-bundle-…` file, which no reader ever considers.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Final

from aivault_ops.atomic_write import fsync_directory
from aivault_ops.bundle.errors import BundleError, BundleExists
from aivault_ops.bundle.source import DirectoryBundleSource, bundle_file_name

LOCK_NAME: Final = ".aivault-ops.lock"
TEMP_PREFIX: Final = ".tmp-bundle-"
_NO_HARDLINKS: Final = {errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK}


def newest_bundle(target_dir: Path) -> tuple[int, Path] | None:
    """The highest serial published in `target_dir` and its file, or None."""
    source = DirectoryBundleSource(target_dir)
    refs = source.list()
    return (refs[-1].serial, source.path(refs[-1])) if refs else None


@contextlib.contextmanager
def target_lock(target_dir: Path) -> Iterator[None]:
    """Hold an exclusive lock on `target_dir` (blocking until it is free).

    Prevents two concurrent applies from reading the same newest serial and
    both publishing serial + 1: take the lock, read `newest_bundle`, publish,
    release. The lock is `flock` on `<target>/.aivault-ops.lock` and dies with
    its process, so a crashed apply never leaves the target locked.
    """
    fd = os.open(target_dir / LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def publish_bundle(target_dir: Path, data: bytes, serial: int) -> Path:
    """Write `data` as `<target_dir>/bundle-<serial>.tar.gz`; refuse an existing one.

    Atomic: the bytes go to a temporary file in the same directory, are
    fsynced, then linked to the final name (which fails if the name exists)
    and the directory is fsynced. Call it under `target_lock`.
    """
    if type(serial) is not int or serial < 0:
        raise BundleError(f"invalid serial {serial!r}: a bundle serial is an integer >= 0")
    final = target_dir / bundle_file_name(serial)
    if final.exists():
        raise _exists(final)
    temp = _write_temp(target_dir, data)
    try:
        _link_no_overwrite(temp, final)
    finally:
        temp.unlink(missing_ok=True)
    fsync_directory(target_dir)
    return final


def _write_temp(target_dir: Path, data: bytes) -> Path:
    try:
        fd, name = tempfile.mkstemp(prefix=TEMP_PREFIX, suffix=".partial", dir=target_dir)
    except OSError as error:
        raise BundleError(f"{target_dir}: cannot write a bundle: {error.strerror}") from None
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), 0o644)
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException as error:
        Path(name).unlink(missing_ok=True)
        if isinstance(error, OSError):
            raise BundleError(f"{name}: cannot write: {error.strerror}") from None
        raise
    return Path(name)


def _link_no_overwrite(temp: Path, final: Path) -> None:
    """Give `temp` the name `final` without ever replacing an existing file.

    `os.link` fails when `final` exists, unlike `rename`. On filesystems
    without hard links it falls back to rename after an existence check, which
    is safe only because publishers hold `target_lock`.
    """
    try:
        os.link(temp, final)
    except FileExistsError:
        raise _exists(final) from None
    except OSError as error:
        if error.errno not in _NO_HARDLINKS:
            raise BundleError(f"{final}: cannot publish: {error.strerror}") from None
        if final.exists():
            raise _exists(final) from None
        temp.rename(final)


def _exists(final: Path) -> BundleExists:
    return BundleExists(
        f"{final} already exists; a published bundle is never overwritten",
        hint="use the next serial (apply picks newest + 1 under the target lock)",
    )
