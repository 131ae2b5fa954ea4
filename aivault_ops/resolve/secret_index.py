"""Which SOPS file holds which secret name (names are plaintext in SOPS files)."""

from __future__ import annotations

import posixpath
from collections.abc import Mapping
from dataclasses import dataclass

from aivault_ops.resolve.model import SecretFile


@dataclass(frozen=True)
class SecretIndex:
    """Readable SOPS files of a project, keyed by project-relative path."""

    files: Mapping[str, SecretFile]

    def holders(self, name: str) -> list[str]:
        """Paths of the files that have a top-level key `name`, sorted."""
        return sorted(path for path, file in self.files.items() if name in file.names)

    def names(self) -> set[str]:
        """Every secret name held by any file."""
        return {name for file in self.files.values() for name in file.names}


def normalize_ref_path(file: str) -> str | None:
    """A project-relative POSIX path, or None if it escapes the project (`..`, absolute)."""
    if file.startswith("/") or "\\" in file:
        return None
    normalized = posixpath.normpath(file)
    if normalized == ".." or normalized.startswith("../") or normalized == ".":
        return None
    return normalized


def bundle_path(relative: str) -> str:
    """The entry name of a secret file inside a bundle: always below `secrets/`."""
    return relative if relative.startswith("secrets/") else f"secrets/{relative}"
