"""Find the SOPS files below a directory, and which of them holds a secret name."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

from aivault_ops.sops.config import CONFIG_NAME
from aivault_ops.sops.errors import SopsError
from aivault_ops.sops.metadata import SopsMetadata, read_metadata

DEFAULT_DIR = "secrets"
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


def all_metadata(root: Path) -> tuple[list[SopsMetadata], list[str]]:
    """Metadata of every SOPS file below `root`, and the errors of those that failed."""
    found, failed = [], []
    for path in candidate_files(root):
        try:
            found.append(read_metadata(path))
        except SopsError as error:
            failed.append(error.message)
    return found, failed


def unique_holder(name: str, root: Path) -> Path | None:
    """The one file below `root` holding `name`; refuses ambiguity and unreadable files."""
    metas, failed = all_metadata(root)
    holders = [meta.path for meta in metas if name in meta.secret_names]
    if len(holders) > 1:
        files = ", ".join(str(path) for path in holders)
        raise SopsError(f"{name} is ambiguous: found in {files}", hint="pass --file F")
    if not holders and failed:
        raise SopsError(
            f"no readable SOPS file below the current directory holds {name}",
            hint="unreadable: " + "; ".join(failed),
        )
    return holders[0] if holders else None


def default_file(name: str) -> Path:
    """Where a new secret goes without `--file`: `secrets/<name, lower-cased>.sops.yaml`."""
    stem = re.sub(r"[^a-z0-9._-]+", "-", name.lower()).strip("-.") or "secret"
    return Path(DEFAULT_DIR) / f"{stem}.sops.yaml"
