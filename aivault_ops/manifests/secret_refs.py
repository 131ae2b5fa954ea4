"""Where the manifests say a secret lives: the files of `secretRef`s naming it."""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath

from aivault_ops.manifests.loader import PROJECT_FILE


def project_root(start: Path) -> Path | None:
    """The nearest directory at or above `start` holding `aivault-ops.yaml`."""
    for directory in (start, *start.parents):
        if (directory / PROJECT_FILE).is_file():
            return directory
    return None


def declared_files(name: str, start: Path) -> list[Path]:
    """Files (relative to the current directory) that Credential `secretRef(s)` name for `name`.

    The policy repo is the nearest one at or above `start`.

    Only refs that stay inside the project count, so a manifest cannot steer a
    write outside the policy repo.
    """
    from aivault_ops.diagnostics import Report
    from aivault_ops.manifests.loader import load_project

    root = project_root(start.absolute())
    if root is None:
        return []
    loaded = load_project(root, environment=None, report=Report())
    files = {
        ref.file
        for credential in loaded.credentials
        for ref in credential.secret_refs.values()
        if ref.name == name and _inside(ref.file)
    }
    return [Path(os.path.relpath(root / file, Path.cwd())) for file in sorted(files)]


def _inside(relative: str) -> bool:
    path = PurePosixPath(relative)
    return bool(relative) and not path.is_absolute() and ".." not in path.parts
