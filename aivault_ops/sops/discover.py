"""Find the SOPS files below a directory, as the `secrets` commands see them."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from aivault_ops.sops.config import CONFIG_NAME

_SKIP_DIRS = frozenset({"node_modules", "__pycache__", "venv"})
_MAX_BYTES = 4 * 1024 * 1024
_MARKERS = (b"sops:", b'"sops"', b"sops_version=")


def candidate_files(root: Path) -> Iterator[Path]:
    """Files below `root` that look like SOPS files (hidden directories skipped), sorted."""
    for directory, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and d not in _SKIP_DIRS)
        for name in sorted(filenames):
            path = Path(directory) / name
            if name != CONFIG_NAME and _looks_like_sops(path):
                yield path


def _looks_like_sops(path: Path) -> bool:
    try:
        if path.stat().st_size > _MAX_BYTES:
            return False
        data = path.read_bytes()
    except OSError:
        return False
    return b"ENC[AES256_GCM," in data and any(marker in data for marker in _MARKERS)
