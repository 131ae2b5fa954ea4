"""Replace a file's bytes so that readers see the old or the new bytes, never a mix.

The one way aivault-ops rewrites a file (manifests, SOPS files, user config,
runtime state, the OCI bundle cache): a temporary file with a random name in
the same directory, created with `O_EXCL | O_NOFOLLOW` (never a file or link
that is already there), written and fsynced, then renamed over the target.
The temporary file is removed on any failure. Two processes writing the same
file at once each rename a whole file; the last rename wins.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

PRIVATE = 0o600


def replace_file(
    path: Path, data: bytes, *, mode: int = PRIVATE, keep_mode: bool = False, sync_dir: bool = False
) -> None:
    """Write `data` to `path` atomically with permissions `mode`.

    `keep_mode`: an existing file keeps its permissions (`mode` is for a new one).
    `sync_dir`: fsync the directory too, so the rename survives a power loss.
    """
    if keep_mode:
        with contextlib.suppress(FileNotFoundError):
            mode = path.stat().st_mode & 0o777
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), mode)
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        Path(temporary).replace(path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    if sync_dir:
        fsync_directory(path.parent)


def fsync_directory(directory: Path) -> None:
    """Make a rename or a new file in `directory` survive a power loss."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
