"""Options and path rules shared by several commands."""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from pathlib import Path

from aivault_ops.errors import UsageError
from aivault_ops.manifests.loader import PROJECT_FILE

DEFAULT_PROJECT_DIR = Path("vault.d")


def add_env_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--env",
        metavar="E",
        help="environment whose values render *.yaml.j2 manifests (spec.environments)",
    )


def add_project_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "project_dir",
        nargs="?",
        metavar="DIR",
        type=Path,
        help="the policy repo (default: ./vault.d when it exists, else .)",
    )


def project_dir(given: Path | None) -> Path:
    """DESIGN §8: DIR defaults to ./vault.d when it exists, else the current directory."""
    if given is not None:
        if not given.is_dir():
            raise UsageError(f"{given}: not a directory")
        return given
    return DEFAULT_PROJECT_DIR if DEFAULT_PROJECT_DIR.is_dir() else Path()


def find_project_roots(paths: Sequence[Path]) -> list[Path]:
    """Project directories for the given dirs/files; files pick their nearest project."""
    if not paths:
        return [project_dir(None)]
    roots: list[Path] = []
    for path in paths:
        root = path if path.is_dir() else _enclosing_project(path)
        if root not in roots:
            roots.append(root)
    return roots


def _enclosing_project(file: Path) -> Path:
    if not file.exists():
        raise UsageError(f"{file}: no such file or directory")
    for parent in file.resolve().parents:
        if (parent / PROJECT_FILE).is_file():
            return Path(os.path.relpath(parent))
    raise UsageError(f"{file}: not inside a policy repo (no {PROJECT_FILE} above it)")


def display_prefix(root: Path) -> str:
    """How a project's files are shown: relative to the current directory."""
    relative = os.path.relpath(root)
    return "" if relative == "." else f"{Path(relative).as_posix()}/"
