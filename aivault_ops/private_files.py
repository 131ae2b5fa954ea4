"""Files and folders only their owner may read: key files, the user config."""

from __future__ import annotations

from pathlib import Path


def make_private_parents(path: Path) -> None:
    """Create each missing parent directory of `path` with mode 0700.

    Prevents a key landing in a directory others can list or enter because
    `mkdir -p` followed the umask; directories that already exist are left
    exactly as they are.
    """
    missing = [parent for parent in path.absolute().parents if not parent.exists()]
    for directory in reversed(missing):
        try:
            directory.mkdir(0o700)
        except FileExistsError:
            continue
        directory.chmod(0o700)
