"""Which files of a policy repo are manifests, and which are secret files."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

MANIFEST_SUFFIXES = (".yaml", ".yml", ".yaml.j2", ".yml.j2")
SOPS_CONFIG = ".sops.yaml"
SECRETS_DIR = "secrets"
TESTS_DIR = "tests"  # policy test files (`aivault-ops test`), never manifests


@dataclass(frozen=True)
class ProjectFiles:
    """Candidate files of one project, as project-relative POSIX paths, sorted."""

    root: Path
    yaml_files: tuple[str, ...]  # manifests or YAML SOPS files (told apart by content)
    secret_dir_files: tuple[str, ...]  # every file below secrets/, any format

    def absolute(self, relative: str) -> Path:
        return self.root / relative


def is_template(relative: str) -> bool:
    """`*.yaml.j2` / `*.yml.j2`: rendered with Jinja2 before parsing."""
    return relative.endswith(".j2")


def discover(root: Path) -> ProjectFiles:
    """Walk `root` (hidden directories and `.sops.yaml` excluded) and sort what is found."""
    yaml_files: list[str] = []
    secret_files: list[str] = []
    for path in sorted(_walk(root)):
        relative = path.relative_to(root).as_posix()
        if relative.split("/", 1)[0] == SECRETS_DIR:
            secret_files.append(relative)  # never a manifest, whatever its extension
        elif relative.split("/", 1)[0] == TESTS_DIR and "/" in relative:
            continue
        elif relative.endswith(MANIFEST_SUFFIXES) and path.name != SOPS_CONFIG:
            yaml_files.append(relative)
    return ProjectFiles(root, tuple(yaml_files), tuple(secret_files))


def _walk(root: Path) -> list[Path]:
    found: list[Path] = []
    for path in root.iterdir():
        if path.name.startswith(".") and path.name != SOPS_CONFIG:
            continue
        if path.is_dir() and not path.is_symlink():
            found.extend(_walk(path))
        elif path.is_file():
            found.append(path)
    return found
