"""Every file the runtime opens under `<state-dir>/oauth2/`, opened so it cannot hang or be
redirected.

- the directory is created mode 0700; an existing one must be a real
  directory (not a symlink) owned by the runtime's user, and is put back
  to 0700 if others may use it;
- files are opened with `O_NOFOLLOW | O_NONBLOCK` and must be regular
  files owned by the runtime's user: a symlink, a FIFO, a device or a
  directory at a cache or lock path is refused, never followed or waited on;
- a file is replaced by `atomic_write.replace_file` (a new temporary file
  with a random name, `O_EXCL | O_NOFOLLOW`, fsynced, renamed over the old
  one), mode 0600.

Every refusal is an `AuthUnavailable` naming the path inside the state dir.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Final

from aivault_ops.atomic_write import replace_file
from aivault_ops.runtime.auth.base import AuthUnavailable

READ_LIMIT: Final = 1024 * 1024
_OPEN: Final = os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


def _refused(path: Path, what: str) -> AuthUnavailable:
    return AuthUnavailable(f"o_auth2 token cache oauth2/{path.name}: {what}")


def private_dir(path: Path) -> Path:
    """`path` created 0700, or an existing one checked (and made 0700 again)."""
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        info = path.lstat()
        if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid():
            raise _refused(path, "is not a directory owned by the runtime's user")
        if info.st_mode & 0o077:
            path.chmod(0o700)  # a real directory (lstat above), not a link
    except OSError as error:
        raise _refused(path, f"cannot be prepared ({error.strerror})") from None
    return path


def _check_regular(path: Path, fd: int) -> None:
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode) or info.st_uid != os.geteuid():
        os.close(fd)
        raise _refused(path, "is not a regular file owned by the runtime's user")


def _open(path: Path, flags: int) -> int:
    try:
        fd = os.open(path, flags | _OPEN, 0o600)
    except FileNotFoundError:
        raise
    except OSError as error:  # ELOOP: a symlink; ENXIO: a FIFO nobody reads; EISDIR …
        raise _refused(path, f"cannot be opened ({error.strerror})") from None
    _check_regular(path, fd)
    return fd


def read_private(path: Path) -> bytes | None:
    """The file's bytes (up to READ_LIMIT), None when it does not exist."""
    try:
        fd = _open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        return os.read(fd, READ_LIMIT)
    finally:
        os.close(fd)


def open_lock_file(path: Path) -> int:
    """A descriptor on the lock file `path` (created 0600 if absent), for `fcntl.flock`."""
    return _open(path, os.O_RDWR | os.O_CREAT)


def replace_private(path: Path, data: bytes) -> None:
    """Replace the regular file `path` (or create it) with `data`, mode 0600, atomically."""
    old = _existing_mode(path)
    if old is not None and not stat.S_ISREG(old):
        raise _refused(path, "is not a regular file owned by the runtime's user")
    try:
        replace_file(path, data)
    except OSError as error:
        raise _refused(path, f"cannot be written ({error.strerror})") from None


def _existing_mode(path: Path) -> int | None:
    try:
        return path.lstat().st_mode
    except FileNotFoundError:
        return None
