"""The audit log's descriptors: the cross-process lock and the active log file.

`AuditFiles` keeps `audit/.lock` and `audit/audit.jsonl` open, so an append
costs flock, stat, write and unlock. The stat under the lock is also how a
process notices that another one rotated the file (renamed it away): the
inode changed, so the descriptor is reopened. Any failure of the OS (no
descriptors, a full disk, an I/O error) is never left behind: `discard`
closes whatever is open and the next call opens everything again, and a
write that failed half-way is cut back to where it started, so a torn line
never stays in the chain. Every system call goes through `FileOps`, the
seam where tests inject EMFILE, ENOSPC or EIO.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aivault_ops.runtime.observe.audit_segments import ACTIVE_NAME

_forks = [0]  # bumped in every forked child: cheaper than getpid() on each request


def _count_fork() -> None:
    _forks[0] += 1


os.register_at_fork(after_in_child=_count_fork)


@dataclass(frozen=True)
class FileOps:
    """The system calls the audit log makes (the real ones unless a test swaps one)."""

    open: Callable[..., int] = os.open
    close: Callable[[int], None] = os.close
    write: Callable[[int, bytes], int] = os.write
    fstat: Callable[[int], os.stat_result] = os.fstat
    stat: Callable[[Path], os.stat_result] = os.stat
    fstatvfs: Callable[[int], Any] = os.fstatvfs
    ftruncate: Callable[[int, int], None] = os.ftruncate
    flock: Callable[[int, int], None] = fcntl.flock
    rename: Callable[[Path, Path], None] = os.rename


class AuditFiles:
    """The open lock and log descriptors of one process.

    Reopened after a fork, when the active file was rotated away, replaced
    or removed, and after any failure (`discard`).
    """

    __slots__ = ("_forks", "_inode", "_lock_fd", "_log_fd", "_ops", "directory", "opens", "path")

    def __init__(self, directory: Path, ops: FileOps | None = None) -> None:
        self.directory = directory
        self.path = directory / ACTIVE_NAME
        self._ops = ops or FileOps()
        self._forks = _forks[0]
        self._lock_fd = -1
        self._log_fd = -1
        self._inode = -1
        self.opens = 0  # how often the log file was opened: a change means another file

    @property
    def inode(self) -> int:
        """The inode of the open log file (-1 when none is open). While it stays open no
        other file can be given this inode, so it identifies the file."""
        return self._inode

    def _forget_inherited(self) -> None:
        """After a fork the parent's descriptors (and its lock) are not ours: drop them
        without closing, the parent still uses them."""
        if self._forks != _forks[0]:
            self._forks, self._lock_fd, self._log_fd, self._inode = _forks[0], -1, -1, -1

    def _open_lock(self) -> None:
        self._forget_inherited()
        if self._lock_fd < 0:
            self._lock_fd = self._create(self.directory / ".lock", os.O_RDWR)

    def _create(self, path: Path, flags: int) -> int:
        """Open (creating) `path`; a removed audit directory is made again (0700)."""
        try:
            return self._ops.open(path, flags | os.O_CREAT, 0o600)
        except FileNotFoundError:
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            return self._ops.open(path, flags | os.O_CREAT, 0o600)

    def prepare(self) -> None:
        """Open the lock and the active file (if not open yet).

        Called before anything is sent upstream, so a log that cannot be
        opened refuses the request instead of losing its line.
        """
        self._open_lock()
        self._open_log()

    def free_bytes(self) -> int:
        """Bytes free (for unprivileged writers) on the open log's filesystem."""
        status = self._ops.fstatvfs(self._log_fd)
        return int(status.f_bavail) * int(status.f_frsize)

    def lock(self) -> None:
        """Take the exclusive cross-process lock on `audit/.lock`."""
        self._open_lock()
        self._ops.flock(self._lock_fd, fcntl.LOCK_EX)

    def unlock(self) -> None:
        """Release the lock taken by `lock`; if that fails, closing the descriptor
        releases it (the lines are written either way)."""
        if self._lock_fd < 0:
            return
        try:
            self._ops.flock(self._lock_fd, fcntl.LOCK_UN)
        except OSError:
            self.discard()

    def stat(self) -> tuple[int, int]:
        """(size, inode) of the active file, (0, -1) when it is missing; a file rotated
        away, replaced or removed is reopened on the next write. Call under `lock`."""
        try:
            status = self._ops.stat(self.path)
        except FileNotFoundError:
            self._close_log()
            return 0, -1
        if status.st_ino != self._inode:
            self._close_log()
        return status.st_size, status.st_ino

    def rotate(self, closed_name: str) -> None:
        """Rename the active file to `closed_name` in the same directory; the next write
        creates a new active file. Call under `lock`."""
        self._ops.rename(self.path, self.directory / closed_name)
        self._close_log()

    def write(self, data: bytes, size: int) -> None:
        """Append `data` to the active file, whose size is `size`; call under `lock`.

        One write on an O_APPEND descriptor. A short or failed write is cut
        back to `size` (best effort) and raised, so no torn line is left.
        """
        self._open_log()
        try:
            written = self._ops.write(self._log_fd, data)
            if written != len(data):
                raise OSError(f"short write: {written} of {len(data)} bytes")
        except OSError:
            self._truncate(size)
            raise

    def _truncate(self, size: int) -> None:
        try:
            self._ops.ftruncate(self._log_fd, size)
        except OSError:
            self.discard()

    def _open_log(self) -> None:
        if self._log_fd >= 0:
            return
        self._log_fd = self._create(self.path, os.O_WRONLY | os.O_APPEND)
        self.opens += 1
        self._inode = self._ops.fstat(self._log_fd).st_ino

    def _close_log(self) -> None:
        fd, self._log_fd, self._inode = self._log_fd, -1, -1
        if fd >= 0:
            self._quiet_close(fd)

    def _quiet_close(self, fd: int) -> None:
        with contextlib.suppress(OSError):  # the descriptor is gone either way
            self._ops.close(fd)

    def discard(self) -> None:
        """Close both descriptors (this process's only); the next call reopens them.
        Closing the lock descriptor also releases a lock still held."""
        self._forget_inherited()
        self._close_log()
        fd, self._lock_fd = self._lock_fd, -1
        if fd >= 0:
            self._quiet_close(fd)
