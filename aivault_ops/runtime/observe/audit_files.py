"""The audit log's descriptors: the cross-process lock and today's log file.

`AuditFiles` keeps `audit/.lock` and the day file open, so an append costs
flock, stat, write and unlock. Any failure of the OS (no descriptors, a
full disk, an I/O error) is never left behind: `discard` closes whatever is
open and the next call opens everything again, and a write that failed
half-way is cut back to where it started, so a torn line never stays in the
chain. Every system call goes through `FileOps`, the seam where tests inject
EMFILE, ENOSPC or EIO.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

FILE_NAME: Final = re.compile(r"\d{4}-\d{2}-\d{2}\.jsonl")
_TAIL_BLOCK: Final = 4096
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


def last_line(path: Path) -> bytes | None:
    """The last line of a file (without newline), or None when it is empty."""
    with path.open("rb") as handle:
        end = handle.seek(0, os.SEEK_END)
        position, data = end, b""
        while position > 0:
            position = max(0, position - _TAIL_BLOCK)
            handle.seek(position)
            data = handle.read(end - position)
            if b"\n" in data.removesuffix(b"\n"):
                break
    if not data:
        return None
    return data.removesuffix(b"\n").rsplit(b"\n", 1)[-1]


def ends_torn(path: Path) -> bool:
    """Whether a non-empty file's last byte is not a newline (a line was cut short)."""
    with path.open("rb") as handle:
        if handle.seek(0, os.SEEK_END) == 0:
            return False
        handle.seek(-1, os.SEEK_END)
        return handle.read(1) != b"\n"


class AuditFiles:
    """The open lock and log descriptors of one process.

    Reopened after a fork, when the day's file changes or was replaced or
    removed, and after any failure (`discard`).
    """

    __slots__ = ("_forks", "_inode", "_lock_fd", "_log_fd", "_ops", "_target", "directory")

    def __init__(self, directory: Path, ops: FileOps | None = None) -> None:
        self.directory = directory
        self._ops = ops or FileOps()
        self._forks = _forks[0]
        self._lock_fd = -1
        self._log_fd = -1
        self._target: Path | None = None
        self._inode = -1

    def _forget_inherited(self) -> None:
        """After a fork the parent's descriptors (and its lock) are not ours: drop them
        without closing, the parent still uses them."""
        if self._forks != _forks[0]:
            self._forks, self._lock_fd, self._log_fd, self._target = _forks[0], -1, -1, None

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

    def prepare(self, target: Path) -> None:
        """Open the lock and `target` (if not open yet).

        Called before anything is sent upstream, so a log that cannot be
        opened refuses the request instead of losing its line.
        """
        self._open_lock()
        self._open_log(target)

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

    def size(self, target: Path) -> int:
        """Current size of `target` (0 when missing); a replaced or removed file is
        reopened on the next write. Call under `lock`."""
        try:
            status = self._ops.stat(target)
        except FileNotFoundError:
            self._close_log()
            return 0
        if target is not self._target or status.st_ino != self._inode:
            self._close_log()
        return status.st_size

    def write(self, target: Path, data: bytes, size: int) -> None:
        """Append `data` to `target`, whose size is `size`; call under `lock`.

        One write on an O_APPEND descriptor. A short or failed write is cut
        back to `size` (best effort) and raised, so no torn line is left.
        """
        self._open_log(target)
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

    def _open_log(self, target: Path) -> None:
        if self._log_fd >= 0 and target is self._target:
            return
        self._close_log()
        self._log_fd = self._create(target, os.O_WRONLY | os.O_APPEND)
        self._target = target
        self._inode = self._ops.fstat(self._log_fd).st_ino

    def _close_log(self) -> None:
        fd, self._log_fd, self._target = self._log_fd, -1, None
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
